package controller

import (
	"os"
	"strings"
	"testing"
	"time"
)

// A stored description that does not cut its file into whole pieces (a
// first piece that does not double up to the chunk size) is refused when
// its file is framed, with an error that names it, not walked forever.
func TestChunkFramesRefusesABadStoredDescription(t *testing.T) {
	ms, err := openMediaStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := tone(20 * time.Second) // 320 KB: past the ramp
	m := describeMedia(data, "wav", 20000)
	if err := os.WriteFile(ms.path(m.SHA256), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if frames, err := ms.chunkFrames(m); err != nil || len(frames) != len(m.Chunks) {
		t.Fatalf("a good description: %d frames for %d pieces, %v", len(frames), len(m.Chunks), err)
	}
	ms.frames = map[string]framed{} // not from the cache
	m.FirstChunk = 3000
	frames, err := ms.chunkFrames(m)
	if err == nil || !strings.Contains(err.Error(), "first_chunk 3000") {
		t.Fatalf("a first piece of 3000 bytes: %d frames, %v; want an error naming first_chunk", len(frames), err)
	}
}
