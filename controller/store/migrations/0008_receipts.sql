-- Receipts written per second (docs/benchmarks.md): fewer B-trees and
-- columns written per report and per delivery moved.
--
-- report_acks: the highest report sequence stored for each terminal (was
-- terminals.acked_seq, which made every batch rewrite whole terminal
-- rows). A terminal numbers its reports 1, 2, 3... and sends them in order
-- (docs/protocol.md, section 5), so a report at or below it is a repeat:
-- no (terminal_id, seq) index is needed to tell.
CREATE TABLE report_acks (
  terminal_id TEXT PRIMARY KEY REFERENCES terminals(id),
  seq         INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO report_acks(terminal_id, seq)
  SELECT id, MAX(acked_seq, COALESCE((SELECT MAX(seq) FROM reports r WHERE r.terminal_id = terminals.id), 0)) FROM terminals
  WHERE acked_seq > 0 OR EXISTS (SELECT 1 FROM reports r WHERE r.terminal_id = terminals.id);
ALTER TABLE terminals DROP COLUMN acked_seq;

-- reports: kept in arrival order (rowid), without an index (they are
-- listed newest first); the columns at, command_id and reason repeated
-- what body holds, and reports_kind served no query.
CREATE TABLE reports_0008 (
  terminal_id TEXT NOT NULL,
  seq         INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  kind        TEXT NOT NULL,
  body        TEXT NOT NULL          -- JSON protocol.Report
);
INSERT INTO reports_0008(terminal_id, seq, received_at, kind, body)
  SELECT terminal_id, seq, received_at, kind, body FROM reports ORDER BY received_at, terminal_id, seq;
DROP TABLE reports;
ALTER TABLE reports_0008 RENAME TO reports;

-- deliveries: one B-tree keyed (alert_id, terminal_id) instead of a rowid
-- table and its key's index. open is 1 until the state is final
-- (protocol.DeliveryFinal); only open deliveries are indexed by terminal,
-- by a column a step between unfinished states does not write, so such a
-- step rewrites one row and no index.
CREATE TABLE deliveries_0008 (
  alert_id    TEXT NOT NULL REFERENCES alerts(id),
  terminal_id TEXT NOT NULL REFERENCES terminals(id),
  state       TEXT NOT NULL,
  reason      TEXT NOT NULL DEFAULT '',
  detail      TEXT NOT NULL DEFAULT '',
  updated_at  INTEGER NOT NULL,
  open        INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (alert_id, terminal_id)
) WITHOUT ROWID;
INSERT INTO deliveries_0008(alert_id, terminal_id, state, reason, detail, updated_at, open)
  SELECT alert_id, terminal_id, state, reason, detail, updated_at,
    state NOT IN ('rejected', 'done', 'failed', 'cancelled', 'expired') FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_0008 RENAME TO deliveries;
CREATE INDEX deliveries_open ON deliveries(terminal_id) WHERE open = 1;
