-- CAP 1.2 messages received (docs/sources.md), by POST or from a feed. A
-- message is identified by its sender and identifier: the same message
-- received again is answered from here and not processed twice.
CREATE TABLE cap_messages (
  sender      TEXT NOT NULL,
  identifier  TEXT NOT NULL,
  sent        TEXT NOT NULL,             -- as the message wrote it
  msg_type    TEXT NOT NULL,             -- Alert, Update, Cancel, Ack, Error
  status      TEXT NOT NULL,             -- Actual, Exercise, System, Test, Draft
  received_at INTEGER NOT NULL,
  via         TEXT NOT NULL,             -- "api <user>" or "feed <url>"
  signed_by   TEXT NOT NULL DEFAULT '',  -- subject of the certificate that verified it
  alert_id    TEXT REFERENCES alerts(id),-- the alert it created, if any
  outcome     TEXT NOT NULL,             -- what was done, for people
  document    BLOB NOT NULL,             -- the message as received
  PRIMARY KEY (sender, identifier)
);
CREATE INDEX cap_messages_alert ON cap_messages(alert_id);
