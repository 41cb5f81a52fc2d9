package seen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openT(t testing.TB, path string) *Guard {
	t.Helper()
	g, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func admit(t *testing.T, g *Guard, id string, exp time.Time) {
	t.Helper()
	if err := g.Admit(id, exp); err != nil {
		t.Fatalf("Admit(%q): %v", id, err)
	}
}

func TestAdmitReplay(t *testing.T) {
	tests := []struct {
		name   string
		reopen bool
	}{
		{"same process", false},
		{"after reopen", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seen")
			g := openT(t, path)
			admit(t, g, "cmd-1", t0)
			admit(t, g, "cmd-2", t0)
			if tt.reopen {
				g.Close()
				g = openT(t, path)
			}
			if !g.Seen("cmd-1") || !g.Seen("cmd-2") || g.Seen("cmd-3") {
				t.Fatalf("Seen = %v %v %v, want true true false", g.Seen("cmd-1"), g.Seen("cmd-2"), g.Seen("cmd-3"))
			}
			size, _ := os.Stat(path)
			if err := g.Admit("cmd-1", t0.Add(time.Hour)); !errors.Is(err, ErrReplay) {
				t.Fatalf("second Admit = %v, want ErrReplay", err)
			}
			if after, _ := os.Stat(path); after.Size() != size.Size() {
				t.Fatalf("a replay grew the file from %d to %d bytes", size.Size(), after.Size())
			}
			admit(t, g, "cmd-3", t0)
		})
	}
}

func TestBadIDs(t *testing.T) {
	tests := []struct {
		name, id string
		wantErr  bool
	}{
		{"uuid", "6f1c2a9e-8d4b-4f0e-9a51-3c7d2b1e0f44", false},
		{"128 bytes", strings.Repeat("a", 128), false},
		{"empty", "", true},
		{"129 bytes", strings.Repeat("a", 129), true},
		{"non-ASCII", "cmd-é", true},
		{"control byte", "cmd\n1", true},
	}
	g := openT(t, filepath.Join(t.TempDir(), "seen"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := g.Admit(tt.id, t0)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Admit(%q) error = %v, want error %v", tt.id, err, tt.wantErr)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seen")
	g := openT(t, path)
	for i := range 100 {
		admit(t, g, fmt.Sprintf("old-%d", i), t0.Add(-time.Hour))
	}
	admit(t, g, "in-grace", t0.Add(-time.Minute))
	admit(t, g, "live", t0.Add(time.Hour))
	before, _ := os.Stat(path)

	if err := g.Prune(t0, 5*time.Minute); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	after, _ := os.Stat(path)
	if after.Size() >= before.Size() {
		t.Fatalf("Prune did not compact: %d bytes before, %d after", before.Size(), after.Size())
	}
	admit(t, g, "after-prune", t0.Add(time.Hour))
	g.Close()

	g = openT(t, path)
	tests := []struct {
		id   string
		want bool
	}{
		{"old-0", false},
		{"old-99", false},
		{"in-grace", true},
		{"live", true},
		{"after-prune", true},
	}
	for _, tt := range tests {
		if got := g.Seen(tt.id); got != tt.want {
			t.Errorf("after prune and reopen Seen(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
	admit(t, g, "old-0", t0.Add(time.Hour))
	if _, err := os.Stat(tempPath(path)); !os.IsNotExist(err) {
		t.Fatalf("temp file left behind: %v", err)
	}
}

func TestTornTail(t *testing.T) {
	tests := []struct {
		name  string
		cut   int
		add   []byte
		wantC bool // whether the last id survives
	}{
		{"last byte missing", 1, nil, false},
		{"half the frame missing", 10, nil, false},
		{"garbage appended", 0, []byte("\x07\xde\xad\xbe\xef garbage"), true},
		{"zeros appended", 0, make([]byte, 512), true},
		{"cut then garbage", 4, []byte("\xff\xfe\xfd"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seen")
			g := openT(t, path)
			admit(t, g, "a", t0)
			admit(t, g, "b", t0)
			admit(t, g, "c", t0)
			g.Close()
			b, _ := os.ReadFile(path)
			b = append(b[:len(b)-tt.cut], tt.add...)
			os.WriteFile(path, b, 0o600)

			g = openT(t, path)
			if !g.Seen("a") || !g.Seen("b") || g.Seen("c") != tt.wantC {
				t.Fatalf("Seen a,b,c = %v %v %v, want true true %v", g.Seen("a"), g.Seen("b"), g.Seen("c"), tt.wantC)
			}
			if !tt.wantC {
				admit(t, g, "c", t0) // a half-written id was never admitted
			}
			admit(t, g, "d", t0)
			g.Close()
			g = openT(t, path)
			for _, id := range []string{"a", "b", "c", "d"} {
				if !g.Seen(id) {
					t.Fatalf("after recovery and reopen %q is not seen", id)
				}
			}
		})
	}
}

func TestCorruptMiddle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seen")
	g := openT(t, path)
	admit(t, g, "first", t0)
	admit(t, g, "second", t0)
	admit(t, g, "third", t0)
	g.Close()
	b, _ := os.ReadFile(path)
	at := len(magic) + frameHeaderSize + len("first")
	b[at+frameHeaderSize+1] ^= 0x01 // a byte of "second"
	os.WriteFile(path, b, 0o600)
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("offset %d", at)) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open error = %v, want one naming %s and offset %d", err, path, at)
	}
}

func TestConcurrentAdmit(t *testing.T) {
	g := openT(t, filepath.Join(t.TempDir(), "seen"))
	var admitted, replays atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 10 {
				err := g.Admit(fmt.Sprintf("cmd-%d", i), t0)
				switch {
				case err == nil:
					admitted.Add(1)
				case errors.Is(err, ErrReplay):
					replays.Add(1)
				default:
					t.Errorf("Admit: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 10 || replays.Load() != 70 {
		t.Fatalf("admitted %d and refused %d, want 10 and 70", admitted.Load(), replays.Load())
	}
}

func BenchmarkAdmit(b *testing.B) {
	g := openT(b, filepath.Join(b.TempDir(), "seen"))
	i := 0
	for b.Loop() {
		if err := g.Admit(fmt.Sprintf("6f1c2a9e-8d4b-4f0e-9a51-%012d", i), t0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
