-- A terminal enrolling finds its row by its one-time code's hash
-- (Store.Enroll). Without an index that read scanned every terminal: about
-- 7 ms a terminal at 15,000, most of the controller's time while a new
-- fleet first came online (docs/benchmarks.md, "Ramp-up"). Only terminals
-- waiting to enrol have a hash, so the index holds only them.
CREATE INDEX terminals_enroll_hash ON terminals(enroll_hash) WHERE enroll_hash IS NOT NULL;
