-- A terminal enrolling finds its row by its one-time code's hash
-- (Store.Enroll). Without an index that read scanned every terminal: at
-- 15,000, 43 % of the controller's CPU (about 3 ms a terminal) while a new
-- fleet first came online (docs/benchmarks.md, "The storm's tail"). Only
-- terminals waiting to enrol have a hash, so the index holds only them.
CREATE INDEX terminals_enroll_hash ON terminals(enroll_hash) WHERE enroll_hash IS NOT NULL;
