package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "settings.json")
	for _, content := range []string{"first", "second, longer"} {
		if err := Write(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if err := Write(filepath.Join(dir, "missing", "x"), []byte("x"), 0o600); err == nil {
		t.Fatal("write into a missing folder succeeded")
	}
}

func TestTailAppend(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	tail := &Tail{F: f}
	for _, s := range []string{"ab", "cde"} {
		if err := tail.Append([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if tail.End != 5 {
		t.Fatalf("end %d, want 5", tail.End)
	}
	// Junk past the good end, as a torn earlier write leaves, is overwritten.
	f.WriteAt([]byte("XXXXXXXX"), 5)
	tail.dirty = true
	if err := tail.Append([]byte("f")); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != "abcdef" {
		t.Fatalf("file holds %q, want abcdef", got)
	}
	// Replace switches to a new file.
	q := filepath.Join(filepath.Dir(p), "log.new")
	g, _ := os.OpenFile(q, os.O_RDWR|os.O_CREATE, 0o600)
	g.Write([]byte("zz"))
	if err := tail.Replace(g, 2); err != nil {
		t.Fatal(err)
	}
	if err := tail.Append([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(q); string(got) != "zzy" {
		t.Fatalf("new file holds %q, want zzy", got)
	}
	g.Close()
}
