package mediacache

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"dalaba/protocol"
)

func openT(t testing.TB, dir string, max int64) *Cache {
	t.Helper()
	c, err := Open(dir, max)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return c
}

// testChunk is the chunk size of the tests' manifests.
const testChunk = 1000

// manifest describes b in testChunk pieces.
func manifest(b []byte) Manifest {
	m := Manifest{Size: int64(len(b)), ChunkSize: testChunk}
	for rest := b; len(rest) > 0; rest = rest[min(testChunk, len(rest)):] {
		m.Chunks = append(m.Chunks, sha256.Sum256(rest[:min(testChunk, len(rest))]))
	}
	return m
}

// sum is the name of b in the cache.
func sum(b []byte) string { return manifest(b).Key() }

// put downloads b into c chunk by chunk and commits it.
func put(t testing.TB, c *Cache, b []byte) string {
	t.Helper()
	w, err := c.NewWriter(manifest(b))
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for rest := b; len(rest) > 0; {
		n, err := w.Write(rest[:min(testChunk, len(rest))])
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
		rest = rest[n:]
	}
	path, err := w.Commit()
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return path
}

// dirNames lists dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func TestCommitPathOpen(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one chunk", []byte("a short chime")},
		{"many chunks", bytes.Repeat([]byte("siren "), 20000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c := openT(t, dir, 1<<20)
			path := put(t, c, tt.data)
			if want := filepath.Join(dir, sum(tt.data)); path != want {
				t.Fatalf("Commit path = %s, want %s", path, want)
			}
			if got, ok := c.Path(sum(tt.data)); !ok || got != path {
				t.Fatalf("Path = %s, %v; want %s, true", got, ok, path)
			}
			f, err := c.Open(sum(tt.data))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			got, _ := io.ReadAll(f)
			f.Close()
			if !bytes.Equal(got, tt.data) {
				t.Fatal("cached file differs from what was written")
			}
			if c.Size() != int64(len(tt.data)) {
				t.Fatalf("Size = %d, want %d", c.Size(), len(tt.data))
			}
			c = openT(t, dir, 1<<20)
			if _, ok := c.Path(sum(tt.data)); !ok || c.Size() != int64(len(tt.data)) {
				t.Fatalf("after reopen Path ok = %v, Size = %d", ok, c.Size())
			}
		})
	}
}

func TestFailedDownloadLeavesNothing(t *testing.T) {
	good := bytes.Repeat([]byte("announcement audio "), 80) // 1,520 bytes: two chunks
	forged := bytes.Clone(good)
	forged[1200] ^= 1
	tests := []struct {
		name    string
		m       Manifest
		writes  [][]byte
		wantErr string
	}{
		{"a chunk with another hash", manifest(good), [][]byte{good[:1000], forged[1000:]},
			fmt.Sprintf("chunk 1 has sha256 %x, want %x", sha256.Sum256(forged[1000:]), sha256.Sum256(good[1000:]))},
		{"a chunk cut short", manifest(good), [][]byte{good[:5]}, "chunk 0 has 5 bytes, want 1000"},
		{"short download", manifest(good), [][]byte{good[:1000]}, "got 1000 bytes, want 1520"},
		{"more than declared", manifest(good[:5]), [][]byte{good[:1000]}, "chunk 0 has 1000 bytes, want 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c := openT(t, dir, 1<<20)
			w, err := c.NewWriter(tt.m)
			if err != nil {
				t.Fatalf("NewWriter: %v", err)
			}
			for _, p := range tt.writes {
				w.Write(p)
			}
			_, err = w.Commit()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Commit error = %v, want one containing %q", err, tt.wantErr)
			}
			if wantMismatch := tt.name != "short download"; errors.Is(err, ErrChunkMismatch) != wantMismatch {
				t.Fatalf("Commit error %v: errors.Is ErrChunkMismatch = %v, want %v", err, !wantMismatch, wantMismatch)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Fatalf("failed download left %v behind", names)
			}
			if _, ok := c.Path(tt.m.Key()); ok || c.Size() != 0 {
				t.Fatalf("failed download is visible: Path ok = %v, Size = %d", ok, c.Size())
			}
		})
	}
}

// A file is named by its chunk list, so the same bytes listed another way,
// or other bytes, are other files.
func TestKeyNamesTheChunkList(t *testing.T) {
	a := bytes.Repeat([]byte("a"), 1500)
	m := manifest(a)
	other := m
	other.Chunks = [][32]byte{m.Chunks[0], sha256.Sum256([]byte("b"))}
	coarser := Manifest{Size: m.Size, ChunkSize: 2000, Chunks: [][32]byte{sha256.Sum256(a)}}
	longer := m
	longer.Size++
	ramp := m // 500, 500, 500 bytes: as many hashes as m's 1000 and 500
	ramp.FirstChunk = 500
	ramp.Chunks = append(ramp.Chunks, m.Chunks[1])
	for name, o := range map[string]Manifest{"another chunk": other, "another chunk size": coarser, "another size": longer, "another first piece": ramp} {
		if o.Key() == m.Key() {
			t.Errorf("%s: same key %s", name, m.Key())
		}
	}
	same := m
	same.FirstChunk = m.ChunkSize
	if same.Key() != m.Key() {
		t.Error("a first piece of the chunk size changed the key of the same pieces")
	}
	if m.Key() != manifest(bytes.Clone(a)).Key() {
		t.Error("the same manifest gave two keys")
	}
}

func TestNewWriterRefusesManifest(t *testing.T) {
	c := openT(t, t.TempDir(), 1000)
	one := sha256.Sum256([]byte("x"))
	tests := []struct {
		name    string
		m       Manifest
		wantErr string
	}{
		{"fits exactly", Manifest{Size: 1000, ChunkSize: 1000, Chunks: [][32]byte{one}}, ""},
		{"bigger than the cache", Manifest{Size: 1001, ChunkSize: 1000, Chunks: [][32]byte{one, one}}, "does not fit the cache bound"},
		{"negative", Manifest{Size: -1, ChunkSize: 1000}, "want a size ≥ 0"},
		{"no chunk size", Manifest{Size: 1, Chunks: [][32]byte{one}}, "chunk size > 0"},
		{"a chunk hash missing", Manifest{Size: 1001, ChunkSize: 1000, Chunks: [][32]byte{one}}, "1 chunk hashes for 1001 bytes in chunks of 1000 from a first of 0, want 2"},
		{"a ramp", Manifest{Size: 1000, ChunkSize: 1000, FirstChunk: 250, Chunks: [][32]byte{one, one, one}}, ""},
		{"a ramp's hash missing", Manifest{Size: 1000, ChunkSize: 1000, FirstChunk: 250, Chunks: [][32]byte{one}}, "want 3"},
		{"a first piece that does not double up to the chunk size", Manifest{Size: 1000, ChunkSize: 1000, FirstChunk: 300, Chunks: [][32]byte{one}}, "divided by a power of two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := c.NewWriter(tt.m)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("NewWriter = %v, want an error containing %q", err, tt.wantErr)
			}
			if w != nil {
				w.Abort()
			}
		})
	}
}

func TestAbort(t *testing.T) {
	dir := t.TempDir()
	c := openT(t, dir, 1000)
	w, err := c.NewWriter(manifest([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	w.Abort()
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Abort succeeded")
	}
	if _, err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("Abort left %v behind", names)
	}
}

func TestOpenMissing(t *testing.T) {
	c := openT(t, t.TempDir(), 1000)
	if _, err := c.Open(sum([]byte("absent"))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of an absent file = %v, want os.ErrNotExist", err)
	}
	if _, ok := c.Path(sum([]byte("absent"))); ok {
		t.Fatal("Path of an absent file reported true")
	}
}

func TestBadNames(t *testing.T) {
	valid := sum([]byte("x"))
	tests := []struct{ name, sha string }{
		{"empty", ""},
		{"too short", valid[:63]},
		{"too long", valid + "0"},
		{"uppercase", strings.ToUpper(valid)},
		{"not hex", "g" + valid[1:]},
		{"path traversal", "../../../etc/passwd" + valid[19:]},
		{"slash", valid[:30] + "/" + valid[31:]},
		{"temp file", tempPrefix + valid[len(tempPrefix):]},
	}
	dir := t.TempDir()
	c := openT(t, dir, 1000)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := c.Path(tt.sha); ok {
				t.Error("Path accepted a bad name")
			}
			if _, err := c.Open(tt.sha); err == nil || errors.Is(err, os.ErrNotExist) {
				t.Errorf("Open error = %v, want a validation error", err)
			}
			c.Pin(tt.sha)
			c.Unpin(tt.sha)
		})
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("bad names created %v", names)
	}
}

func TestOpenCleansLeftovers(t *testing.T) {
	dir := t.TempDir()
	keep := []byte("complete file")
	os.WriteFile(filepath.Join(dir, sum(keep)), keep, 0o600)
	os.WriteFile(filepath.Join(dir, tempPrefix+sum([]byte("half"))+"-123"), []byte("ha"), 0o600)
	os.WriteFile(filepath.Join(dir, "README"), []byte("not ours"), 0o600)

	c := openT(t, dir, 1000)
	want := []string{sum(keep), "README"} // ReadDir sorts by name
	if got := dirNames(t, dir); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after Open dir holds %v, want %v", got, want)
	}
	if c.Size() != int64(len(keep)) {
		t.Fatalf("Size = %d, want %d", c.Size(), len(keep))
	}
}

func TestConcurrentCommits(t *testing.T) {
	c := openT(t, t.TempDir(), 5000)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 10 {
				b := bytes.Repeat([]byte{byte(i), byte(j)}, 500)
				c.Pin(sum(b))
				put(t, c, b)
				if _, ok := c.Path(sum(b)); !ok {
					t.Errorf("pinned file %d/%d evicted", i, j)
				}
				c.Unpin(sum(b))
			}
		})
	}
	wg.Wait()
	put(t, c, []byte("after every pin is released"))
	if c.Size() > 5000 {
		t.Fatalf("Size = %d after a commit with nothing pinned, want <= 5000", c.Size())
	}
}

// BenchmarkDownload writes the fleet bench's alert file (167 KB) into the
// cache in the pieces a controller cuts it into (16, 16, 32, 64 and 39
// KiB), each checked against its hash, then commits it.
func BenchmarkDownload(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 167180/16)
	layout := protocol.Media{Size: int64(len(data)), ChunkSize: protocol.DefaultChunkSize, FirstChunk: protocol.DefaultFirstChunk}
	m := Manifest{Size: layout.Size, ChunkSize: layout.ChunkSize, FirstChunk: layout.FirstChunk}
	var pieces [][]byte
	for off, n := range layout.Pieces() {
		pieces = append(pieces, data[off:off+n])
		m.Chunks = append(m.Chunks, sha256.Sum256(data[off:off+n]))
	}
	c := openT(b, b.TempDir(), 1<<30)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		w, err := c.NewWriter(m)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range pieces {
			if _, err := w.Write(p); err != nil {
				b.Fatal(err)
			}
		}
		path, err := w.Commit()
		if err != nil {
			b.Fatal(err)
		}
		c.mu.Lock()
		c.forget(m.Key(), c.files[m.Key()])
		c.mu.Unlock()
		os.Remove(path)
	}
}

// A ramped download takes its pieces at the ramp's lengths, first piece
// small, and refuses one cut as if the pieces were all of the chunk size.
func TestWriterTakesARamp(t *testing.T) {
	c := openT(t, t.TempDir(), 1<<20)
	data := bytes.Repeat([]byte("0123456789"), 260) // 2,600 bytes: 250, 250, 500, 1000, 600
	m := Manifest{Size: int64(len(data)), ChunkSize: 1000, FirstChunk: 250}
	lens := []int{250, 250, 500, 1000, 600}
	for off, i := 0, 0; i < len(lens); off, i = off+lens[i], i+1 {
		m.Chunks = append(m.Chunks, sha256.Sum256(data[off:off+lens[i]]))
	}
	w, err := c.NewWriter(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:1000]); !errors.Is(err, ErrChunkMismatch) {
		t.Fatalf("a first piece of the chunk size: %v, want ErrChunkMismatch", err)
	}
	w.Abort()
	if w, err = c.NewWriter(m); err != nil {
		t.Fatal(err)
	}
	for rest, i := data, 0; len(rest) > 0; rest, i = rest[lens[i]:], i+1 {
		if _, err := w.Write(rest[:lens[i]]); err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
	}
	path, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cached file: %d bytes, %v", len(got), err)
	}
}
