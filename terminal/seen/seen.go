// Package seen is the terminal's replay guard: it durably remembers the ids
// of commands already accepted until they expire, so a command replayed by an
// attacker or a confused relay is refused even after a restart.
//
// The file is an append-only log of checksummed (id, expiry) frames. A torn
// tail from a power cut is truncated on Open (a half-written id was never
// admitted); damage followed by valid frames is an error naming its offset.
package seen

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"dalaba/internal/atomicfile"
)

// ErrReplay is returned by Admit for an id already recorded.
var ErrReplay = errors.New("command already seen")

// Guard is an open replay-guard file. It is safe for concurrent use; only one
// Guard may have a file open.
type Guard struct {
	path string

	mu   sync.Mutex
	tail atomicfile.Tail // the file (F nil once closed) and its good end
	ids  map[string]time.Time
}

// Open opens the guard file at path, creating it if missing.
func Open(path string) (*Guard, error) {
	if err := os.Remove(tempPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("seen %s: remove leftover temp file: %w", path, err)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := atomicfile.Write(path, magic, 0o600); err != nil {
			return nil, fmt.Errorf("seen %s: create: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("seen %s: %w", path, err)
	}
	g := &Guard{path: path, tail: atomicfile.Tail{F: f}, ids: make(map[string]time.Time)}
	if err := g.load(); err != nil {
		f.Close()
		return nil, fmt.Errorf("seen %s: %w", path, err)
	}
	return g, nil
}

// load reads every frame into g.ids and truncates a torn tail.
func (g *Guard) load() error {
	buf, err := io.ReadAll(g.tail.F)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if len(buf) == 0 { // created empty by someone else; nothing to lose
		if _, err := g.tail.F.WriteAt(magic, 0); err != nil {
			return fmt.Errorf("write header: %w", err)
		}
		buf = magic
	}
	if len(buf) < len(magic) || string(buf[:len(magic)]) != string(magic) {
		return fmt.Errorf("bad header %q: not a replay-guard file", buf[:min(len(buf), len(magic))])
	}
	off := len(magic)
	for off < len(buf) {
		id, exp, n, err := decodeFrame(buf[off:])
		if err != nil {
			if next, ok := findFrame(buf, off+1); ok {
				return fmt.Errorf("corrupt record at offset %d (%v); a valid record follows at offset %d", off, err, next)
			}
			break // torn tail
		}
		g.ids[id] = exp
		off += n
	}
	g.tail.End = int64(off)
	if off < len(buf) {
		if err := g.tail.F.Truncate(g.tail.End); err != nil {
			return fmt.Errorf("truncate torn tail at offset %d: %w", off, err)
		}
		if err := g.tail.F.Sync(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	}
	return nil
}

// Admit durably records id with its expiry and returns nil, or returns
// ErrReplay, recording nothing, if id is already recorded.
func (g *Guard) Admit(id string, expires time.Time) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("seen %s: %w", g.path, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.tail.F == nil {
		return fmt.Errorf("seen %s: admit %s: guard is closed", g.path, id)
	}
	if _, ok := g.ids[id]; ok {
		return fmt.Errorf("command %s: %w", id, ErrReplay)
	}
	if err := g.tail.Append(encodeFrame(id, expires)); err != nil {
		return fmt.Errorf("seen %s: admit %s: %w", g.path, id, err)
	}
	g.ids[id] = expires
	return nil
}

// Seen reports whether id is recorded (admitted and not yet pruned).
func (g *Guard) Seen(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.ids[id]
	return ok
}

// Close closes the file.
func (g *Guard) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.tail.F == nil {
		return nil
	}
	err := g.tail.F.Close()
	g.tail.F = nil
	if err != nil {
		return fmt.Errorf("seen %s: close: %w", g.path, err)
	}
	return nil
}
