-- EBD exchange with the superior platform (docs/ebd.md): every packet
-- received, once per EBD id; the alerts EBMs became, with what state was
-- last reported upward and when to try again; the daily counter of the EBD
-- ids this platform sends.
CREATE TABLE ebd_packets (
  id          TEXT PRIMARY KEY,      -- EBDID
  sender      TEXT NOT NULL,         -- SRC/EBRID
  type        TEXT NOT NULL,         -- EBDType
  received_at INTEGER NOT NULL,
  result_code INTEGER NOT NULL,      -- the EBDResponse ResultCode answered
  result_desc TEXT NOT NULL
);

CREATE TABLE ebd_alerts (
  ebm_id          TEXT PRIMARY KEY,  -- the superior platform's EBMID
  alert_id        TEXT NOT NULL UNIQUE REFERENCES alerts(id),
  sender          TEXT NOT NULL,     -- SRC/EBRID, the DEST of state reports
  ebd_id          TEXT NOT NULL,     -- the packet that carried it
  reported_state  INTEGER NOT NULL DEFAULT -1, -- BrdStateCode last accepted upward; -1 none
  reported_at     INTEGER NOT NULL DEFAULT 0,
  final           INTEGER NOT NULL DEFAULT 0,  -- 1 once a final state was accepted upward
  attempts        INTEGER NOT NULL DEFAULT 0,  -- failed reports since the last success
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT NOT NULL DEFAULT ''
);

CREATE TABLE ebd_sequence (
  day TEXT PRIMARY KEY,              -- yyyymmdd, Beijing time
  seq INTEGER NOT NULL
);
