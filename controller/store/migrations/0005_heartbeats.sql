-- Heartbeat history: what each terminal said about itself over the last
-- days, for the terminal page's chart. Not every heartbeat is kept: a row
-- is written when something changes (state, volume, relay, audio, what is
-- playing), when the terminal goes offline, and at least every few minutes
-- otherwise; rows older than the history window are pruned on insert.
CREATE TABLE heartbeats (
  terminal_id TEXT NOT NULL REFERENCES terminals(id),
  at          INTEGER NOT NULL,  -- unix ms, controller clock
  state       TEXT NOT NULL,     -- idle, playing, fault, offline
  volume      INTEGER,           -- NULL when offline
  relay_ok    INTEGER,
  relay_on    INTEGER,
  audio_ok    INTEGER,
  playing     TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (terminal_id, at)
) WITHOUT ROWID;
