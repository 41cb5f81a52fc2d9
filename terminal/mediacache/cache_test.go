package mediacache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func openT(t testing.TB, dir string, max int64) *Cache {
	t.Helper()
	c, err := Open(dir, max)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return c
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// put downloads b into c in 1000-byte chunks and commits it.
func put(t testing.TB, c *Cache, b []byte) string {
	t.Helper()
	w, err := c.NewWriter(sum(b), int64(len(b)))
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for rest := b; len(rest) > 0; {
		n, err := w.Write(rest[:min(1000, len(rest))])
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
	good := []byte("announcement audio")
	tests := []struct {
		name    string
		size    int64
		write   []byte
		wantErr string
	}{
		{"hash mismatch", int64(len(good)), []byte("ANNOUNCEMENT AUDIO"), "sha256 mismatch: got " + sum([]byte("ANNOUNCEMENT AUDIO")) + ", want " + sum(good)},
		{"short download", int64(len(good)), good[:5], "got 5 bytes, want 18"},
		{"more than declared", 5, good, "exceed the declared size of 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c := openT(t, dir, 1<<20)
			w, err := c.NewWriter(sum(good), tt.size)
			if err != nil {
				t.Fatalf("NewWriter: %v", err)
			}
			w.Write(tt.write)
			_, err = w.Commit()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Commit error = %v, want one containing %q", err, tt.wantErr)
			}
			if tt.name == "hash mismatch" && !errors.Is(err, ErrHashMismatch) {
				t.Fatalf("Commit error %v is not ErrHashMismatch", err)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Fatalf("failed download left %v behind", names)
			}
			if _, ok := c.Path(sum(good)); ok || c.Size() != 0 {
				t.Fatalf("failed download is visible: Path ok = %v, Size = %d", ok, c.Size())
			}
		})
	}
}

func TestNewWriterRefusesSize(t *testing.T) {
	c := openT(t, t.TempDir(), 1000)
	tests := []struct {
		name    string
		size    int64
		wantErr bool
	}{
		{"fits exactly", 1000, false},
		{"bigger than the cache", 1001, true},
		{"negative", -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := c.NewWriter(sum([]byte(tt.name)), tt.size)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewWriter(size %d) error = %v, want error %v", tt.size, err, tt.wantErr)
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
	w, err := c.NewWriter(sum([]byte("x")), 1)
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
			if w, err := c.NewWriter(tt.sha, 1); err == nil {
				w.Abort()
				t.Error("NewWriter accepted a bad name")
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
