-- Receipts written per second (docs/benchmarks.md): deliveries keyed by
-- one small integer instead of the alert's 35-digit and the terminal's
-- 23-digit ids, which SQLite compared byte by byte at every step of every
-- seek (their long common prefixes made each comparison long).
--
-- terminal_nums and alert_nums give each terminal and alert a number: the
-- rowid, declared (an INTEGER PRIMARY KEY, which VACUUM keeps; an
-- undeclared rowid it may renumber). An alert is numbered when it is
-- stored, a terminal with its first delivery (alerts.go); the ids stay the
-- public names, the numbers never leave the database.
CREATE TABLE terminal_nums (
  num INTEGER PRIMARY KEY,
  id  TEXT NOT NULL UNIQUE REFERENCES terminals(id)
);
INSERT INTO terminal_nums(id) SELECT id FROM terminals ORDER BY id;

CREATE TABLE alert_nums (
  num INTEGER PRIMARY KEY,
  id  TEXT NOT NULL UNIQUE REFERENCES alerts(id)
);
INSERT INTO alert_nums(id) SELECT id FROM alerts ORDER BY created_at, id;

-- deliveries: as in 0008, in one B-tree keyed by the rowid key, the
-- alert's number in the high 32 bits and the terminal's in the low ones.
-- A rowid seek compares integers without decoding a record, which a
-- (alert_num, terminal_num) WITHOUT ROWID key needs; an alert's
-- deliveries stay one range of keys. alert_num and terminal_num repeat the
-- key's halves for the references and the deliveries_open index.
CREATE TABLE deliveries_0009 (
  key          INTEGER PRIMARY KEY,
  alert_num    INTEGER NOT NULL REFERENCES alert_nums(num),
  terminal_num INTEGER NOT NULL REFERENCES terminal_nums(num),
  state        TEXT NOT NULL,
  reason       TEXT NOT NULL DEFAULT '',
  detail       TEXT NOT NULL DEFAULT '',
  updated_at   INTEGER NOT NULL,
  open         INTEGER NOT NULL DEFAULT 1,
  CHECK (key = (alert_num << 32) | terminal_num AND terminal_num BETWEEN 1 AND 0xFFFFFFFF)
);
INSERT INTO deliveries_0009(key, alert_num, terminal_num, state, reason, detail, updated_at, open)
  SELECT (a.num << 32) | t.num, a.num, t.num, d.state, d.reason, d.detail, d.updated_at, d.open
  FROM deliveries d JOIN alert_nums a ON a.id = d.alert_id JOIN terminal_nums t ON t.id = d.terminal_id
  ORDER BY 1;
DROP TABLE deliveries;
ALTER TABLE deliveries_0009 RENAME TO deliveries;
CREATE INDEX deliveries_open ON deliveries(terminal_num) WHERE open = 1;
