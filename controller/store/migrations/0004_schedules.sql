-- Schedules: programs (routine broadcasts with a recurrence rule), the
-- schedule versions made for each terminal, the occurrences each version
-- carried, and what happened to every occurrence on every terminal.
CREATE TABLE programs (
  id           TEXT PRIMARY KEY,
  title        TEXT NOT NULL,
  media        TEXT NOT NULL,        -- sha256s in play order, comma separated
  targets      TEXT NOT NULL,        -- JSON protocol.Targets
  volume       INTEGER NOT NULL,
  priority     INTEGER NOT NULL,
  repeat       INTEGER NOT NULL,
  late_minutes INTEGER NOT NULL,
  rule         TEXT NOT NULL,        -- JSON schedule.Rule
  created_at   INTEGER NOT NULL,
  created_by   TEXT NOT NULL,
  updated_at   INTEGER NOT NULL,
  updated_by   TEXT NOT NULL,
  effective_at INTEGER NOT NULL,     -- when its rule, targets or validity last changed
  deleted_at   INTEGER               -- kept, so its past occurrences can still be explained
);

-- One row per schedule command made for a terminal. acked_at: the terminal
-- reported the command done (saved, in force).
CREATE TABLE schedule_versions (
  terminal_id  TEXT NOT NULL REFERENCES terminals(id),
  version      INTEGER NOT NULL,
  command_id   TEXT NOT NULL UNIQUE,
  made_at      INTEGER NOT NULL,
  window_from  INTEGER NOT NULL,
  window_until INTEGER NOT NULL,
  hash         TEXT NOT NULL,        -- of the window's items, to skip unchanged schedules
  acked_at     INTEGER,
  PRIMARY KEY (terminal_id, version)
);
CREATE INDEX schedule_versions_until ON schedule_versions(window_until);

-- Each occurrence sent to a terminal, once: the run of versions that
-- carried it, and when the terminal first confirmed holding it.
CREATE TABLE schedule_items (
  terminal_id   TEXT NOT NULL,
  item_id       TEXT NOT NULL,       -- program id @ start
  program_id    TEXT NOT NULL,
  start         INTEGER NOT NULL,
  latest        INTEGER NOT NULL,
  first_version INTEGER NOT NULL,
  last_version  INTEGER NOT NULL,
  acked_at      INTEGER,
  PRIMARY KEY (terminal_id, item_id)
);
CREATE INDEX schedule_items_program ON schedule_items(program_id, start);

-- The outcome of an occurrence on a terminal: reported by the terminal, or
-- recorded by the controller (quiet hours). The latest report wins.
CREATE TABLE occurrences (
  terminal_id      TEXT NOT NULL,
  item_id          TEXT NOT NULL,
  program_id       TEXT NOT NULL,
  start            INTEGER NOT NULL,
  schedule_version INTEGER NOT NULL,
  state            TEXT NOT NULL,    -- played, preempted, skipped
  reason           TEXT NOT NULL DEFAULT '',
  preempted_by     TEXT NOT NULL DEFAULT '',
  started          INTEGER,
  ended            INTEGER,
  played_ms        INTEGER NOT NULL DEFAULT 0,
  source           TEXT NOT NULL,    -- terminal, controller
  reported_at      INTEGER NOT NULL,
  PRIMARY KEY (terminal_id, item_id)
);
CREATE INDEX occurrences_program ON occurrences(program_id, start);
