-- Operators: named users with roles and areas, sign-in sessions, API
-- tokens per user, the sealed audit log, and alerts awaiting approval.
CREATE TABLE users (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,    -- sign-in name
  display     TEXT NOT NULL,
  password    TEXT NOT NULL,           -- argon2id encoding
  must_change INTEGER NOT NULL,        -- 1: a one-time password, change at first sign-in
  roles       TEXT NOT NULL,           -- comma separated
  areas       TEXT NOT NULL,           -- comma separated area codes
  disabled    INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL,
  password_at INTEGER NOT NULL
);

CREATE TABLE sessions (
  hash       TEXT PRIMARY KEY,         -- sha256 of the cookie value
  user_id    INTEGER NOT NULL REFERENCES users(id),
  csrf       TEXT NOT NULL,
  source     TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_used  INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

ALTER TABLE api_tokens ADD COLUMN user_id INTEGER REFERENCES users(id);

CREATE TABLE audit_log (
  seq    INTEGER PRIMARY KEY,
  at     INTEGER NOT NULL,
  actor  TEXT NOT NULL,
  source TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  before TEXT NOT NULL,
  after  TEXT NOT NULL,
  detail TEXT NOT NULL,
  prev   BLOB NOT NULL,
  seal   BLOB NOT NULL
);

-- An alert waiting for approval keeps the exact command to be signed.
ALTER TABLE alerts ADD COLUMN draft BLOB;              -- protocol.Command JSON, before signing
ALTER TABLE alerts ADD COLUMN approved_by TEXT;
ALTER TABLE alerts ADD COLUMN approved_at INTEGER;
ALTER TABLE alerts ADD COLUMN decision_comment TEXT;
ALTER TABLE alerts ADD COLUMN needs_review INTEGER NOT NULL DEFAULT 0;  -- sent at once by issue-now
ALTER TABLE alerts ADD COLUMN reviewed_by TEXT;
