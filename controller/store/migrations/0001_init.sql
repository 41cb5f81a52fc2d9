-- Dalaba controller schema, version 1.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE areas (
  code   TEXT PRIMARY KEY,          -- 12-digit 行政区划代码
  name   TEXT NOT NULL,
  parent TEXT REFERENCES areas(code)
);

CREATE TABLE issuing_keys (
  kid        TEXT PRIMARY KEY,
  public_key BLOB NOT NULL,
  created_at INTEGER NOT NULL,       -- unix ms
  not_after  INTEGER NOT NULL,
  active     INTEGER NOT NULL        -- 1: signs new commands
);

CREATE TABLE api_tokens (
  hash       TEXT PRIMARY KEY,       -- sha256 of the token, hex
  name       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);

CREATE TABLE terminals (
  id           TEXT PRIMARY KEY,     -- EBRID, 23 digits
  area_code    TEXT NOT NULL REFERENCES areas(code),
  name         TEXT NOT NULL,
  status       TEXT NOT NULL,        -- enrolling, active, revoked
  public_key   BLOB UNIQUE,
  enroll_hash  TEXT,                 -- sha256 of the one-time code
  enroll_until INTEGER,
  created_at   INTEGER NOT NULL,
  enrolled_at  INTEGER,
  latitude     REAL,
  longitude    REAL,
  last_seen    INTEGER,
  state        TEXT NOT NULL DEFAULT 'offline',
  volume       INTEGER,
  firmware     TEXT NOT NULL DEFAULT '',
  relay_ok     INTEGER,
  audio_ok     INTEGER,
  heartbeat    TEXT,                 -- last heartbeat JSON
  acked_seq    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX terminals_area ON terminals(area_code);

CREATE TABLE pending_terminals (
  public_key  BLOB PRIMARY KEY,
  kid         TEXT NOT NULL UNIQUE,
  first_seen  INTEGER NOT NULL,
  last_seen   INTEGER NOT NULL,
  remote_addr TEXT NOT NULL,
  hostname    TEXT NOT NULL,
  firmware    TEXT NOT NULL
);

CREATE TABLE media (
  sha256      TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  size        INTEGER NOT NULL,
  format      TEXT NOT NULL,
  duration_ms INTEGER NOT NULL,
  chunk_size  INTEGER NOT NULL,
  chunks      TEXT NOT NULL,         -- chunk sha256s, comma separated
  created_at  INTEGER NOT NULL
);

CREATE TABLE alerts (
  id           TEXT PRIMARY KEY,     -- EBM id, 35 digits
  command_id   TEXT NOT NULL UNIQUE,
  class        TEXT NOT NULL,
  msg_type     INTEGER NOT NULL,
  level        INTEGER NOT NULL,
  event_type   TEXT NOT NULL,
  title        TEXT NOT NULL,
  targets      TEXT NOT NULL,        -- JSON protocol.Targets
  created_at   INTEGER NOT NULL,
  created_by   TEXT NOT NULL,
  not_before   INTEGER NOT NULL,
  expires      INTEGER NOT NULL,
  status       TEXT NOT NULL,        -- active, cancelled, expired
  signed       BLOB NOT NULL,        -- JSON protocol.SignedCommand as sent
  cancel_signed BLOB,                -- the signed cancel, once cancelled
  cancelled_at INTEGER
);
CREATE INDEX alerts_created ON alerts(created_at);

CREATE TABLE deliveries (
  alert_id    TEXT NOT NULL REFERENCES alerts(id),
  terminal_id TEXT NOT NULL REFERENCES terminals(id),
  state       TEXT NOT NULL,
  reason      TEXT NOT NULL DEFAULT '',
  detail      TEXT NOT NULL DEFAULT '',
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (alert_id, terminal_id)
);
CREATE INDEX deliveries_terminal ON deliveries(terminal_id, state);

CREATE TABLE reports (
  terminal_id TEXT NOT NULL,
  seq         INTEGER NOT NULL,
  at          INTEGER NOT NULL,      -- terminal's time
  received_at INTEGER NOT NULL,
  kind        TEXT NOT NULL,
  command_id  TEXT NOT NULL DEFAULT '',
  reason      TEXT NOT NULL DEFAULT '',
  body        TEXT NOT NULL,         -- JSON protocol.Report
  PRIMARY KEY (terminal_id, seq)
);
CREATE INDEX reports_kind ON reports(kind, received_at);

CREATE TABLE faults (
  terminal_id TEXT NOT NULL,
  code        TEXT NOT NULL,
  active      INTEGER NOT NULL,
  message     TEXT NOT NULL,
  since       INTEGER NOT NULL,
  PRIMARY KEY (terminal_id, code)
);

CREATE TABLE ebm_sequence (
  day TEXT PRIMARY KEY,              -- yyyymmdd, Beijing time
  seq INTEGER NOT NULL
);
