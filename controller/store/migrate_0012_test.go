package store

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"dalaba/protocol"
)

// TestMigration0012 migrates a database of version 11 holding a media
// file, which keeps its pieces of chunk_size (first_chunk 0), as it was
// described to terminals before; a file stored after the migration keeps
// its first piece's size.
func TestMigration0012(t *testing.T) {
	old := newOldDB(t, 11)
	before := protocol.Media{SHA256: strings.Repeat("a", 64), Size: 70 << 10, Format: "mp3", DurationMS: 9000,
		ChunkSize: protocol.DefaultChunkSize, Chunks: []string{strings.Repeat("b", 64), strings.Repeat("c", 64)}}
	old.exec(`INSERT INTO media(sha256, name, size, format, duration_ms, chunk_size, chunks, created_at) VALUES (?, 'old.mp3', ?, ?, ?, ?, ?, ?)`,
		before.SHA256, before.Size, before.Format, before.DurationMS, before.ChunkSize, strings.Join(before.Chunks, ","), ms(t0))
	s := old.migrate(12)
	ctx := context.Background()
	got, err := s.MediaByHash(ctx, before.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Media, before) || got.Name != "old.mp3" {
		t.Fatalf("migrated media %+v, want %+v", got, before)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("migrated media no longer valid: %v", err)
	}
	ramp := protocol.Media{SHA256: strings.Repeat("d", 64), Size: 20 << 10, Format: "mp3", DurationMS: 2500,
		ChunkSize: protocol.DefaultChunkSize, FirstChunk: protocol.DefaultFirstChunk, Chunks: []string{strings.Repeat("e", 64), strings.Repeat("f", 64)}}
	if err := s.PutMedia(ctx, Media{Media: ramp, Name: "new.mp3", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.MediaByHash(ctx, ramp.SHA256); err != nil || !reflect.DeepEqual(got.Media, ramp) {
		t.Fatalf("new media %+v (%v), want %+v", got.Media, err, ramp)
	}
}
