-- Key rotation: retired issuing keys, and which keys each terminal said it
-- trusts in its last hello.
ALTER TABLE issuing_keys ADD COLUMN retired_at INTEGER;
ALTER TABLE terminals ADD COLUMN key_ids TEXT NOT NULL DEFAULT '';
-- The sha256 of each alert's signed payload, so a terminal's rejection
-- (which names the payload by hash, as it cannot trust the id inside)
-- finds its delivery.
ALTER TABLE alerts ADD COLUMN payload_sha TEXT NOT NULL DEFAULT '';
CREATE INDEX alerts_payload_sha ON alerts(payload_sha);
