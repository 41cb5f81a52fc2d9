package mediacache

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// clip returns 100 bytes of audio named by a letter.
func clip(name byte) []byte { return bytes.Repeat([]byte{name}, 100) }

// present reports which of the clips named in names are in c.
func present(c *Cache, names string) string {
	var out []byte
	for i := range len(names) {
		if _, err := os.Stat(filepath.Join(c.dir, sum(clip(names[i])))); err == nil {
			out = append(out, names[i])
		}
	}
	return string(out)
}

func TestEviction(t *testing.T) {
	tests := []struct {
		name  string
		pin   string // clips pinned before D is committed
		touch string // clips used, in order, before D is committed
		want  string // clips left after D
	}{
		{"oldest goes", "", "", "BCD"},
		{"used clip stays", "", "A", "ACD"},
		{"pinned clip stays", "A", "", "ACD"},
		{"pinned and used", "A", "B", "ABD"},
		{"everything pinned keeps the new file", "ABC", "", "ABCD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openT(t, t.TempDir(), 300)
			for _, n := range []byte("ABC") {
				put(t, c, clip(n))
			}
			for i := range len(tt.pin) {
				c.Pin(sum(clip(tt.pin[i])))
			}
			for i := range len(tt.touch) {
				c.Path(sum(clip(tt.touch[i])))
			}
			put(t, c, clip('D'))
			if got := present(c, "ABCD"); got != tt.want {
				t.Fatalf("after committing D the cache holds %s, want %s", got, tt.want)
			}
			if c.Size() != int64(100*len(tt.want)) {
				t.Fatalf("Size = %d, want %d", c.Size(), 100*len(tt.want))
			}
			for i := range len(tt.pin) {
				c.Unpin(sum(clip(tt.pin[i])))
			}
			put(t, c, clip('E'))
			if c.Size() > 300 {
				t.Fatalf("after unpinning, Size = %d, want <= 300", c.Size())
			}
		})
	}
}

func TestPinsNest(t *testing.T) {
	c := openT(t, t.TempDir(), 100)
	put(t, c, clip('A'))
	c.Pin(sum(clip('A')))
	c.Pin(sum(clip('A')))
	c.Unpin(sum(clip('A')))
	put(t, c, clip('B'))
	if got := present(c, "AB"); got != "AB" {
		t.Fatalf("A evicted while still pinned once: cache holds %s", got)
	}
	c.Unpin(sum(clip('A')))
	put(t, c, clip('C'))
	if got := present(c, "ABC"); got != "C" {
		t.Fatalf("after the last Unpin cache holds %s, want C", got)
	}
}

func TestUseOrderSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	c := openT(t, dir, 300)
	for _, n := range []byte("ABC") {
		put(t, c, clip(n))
	}
	// Make A the most recently used on disk, as a Path call before a
	// restart would have.
	base := time.Now().Add(-time.Hour)
	for i, n := range []byte("BCA") {
		mt := base.Add(time.Duration(i) * time.Minute)
		os.Chtimes(filepath.Join(dir, sum(clip(n))), mt, mt)
	}
	c = openT(t, dir, 300)
	put(t, c, clip('D'))
	if got := present(c, "ABCD"); got != "ACD" {
		t.Fatalf("after restart and commit the cache holds %s, want ACD", got)
	}
}
