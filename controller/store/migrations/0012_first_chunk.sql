-- A media file is hashed in pieces that start small and double up to its
-- chunk size, so a terminal that plays as the file comes can sound after
-- its first small piece (protocol.Media.FirstChunk, docs/protocol.md §6).
-- Files stored before keep 0: every piece of chunk_size, as they were
-- described to terminals then.
ALTER TABLE media ADD COLUMN first_chunk INTEGER NOT NULL DEFAULT 0;
