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
)

// ErrReplay is returned by Admit for an id already recorded.
var ErrReplay = errors.New("command already seen")

// Guard is an open replay-guard file. It is safe for concurrent use; only one
// Guard may have a file open.
type Guard struct {
	path string

	mu       sync.Mutex
	f        *os.File // nil once closed
	end      int64    // offset just past the last good frame
	dirty    bool     // bytes past end may remain from a failed write
	dirDirty bool     // the rename of a compaction is not yet durable
	ids      map[string]time.Time
}

// Open opens the guard file at path, creating it if missing.
func Open(path string) (*Guard, error) {
	if err := os.Remove(tempPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("seen %s: remove leftover temp file: %w", path, err)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := replaceFile(path, magic); err != nil {
			return nil, fmt.Errorf("seen %s: create: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("seen %s: %w", path, err)
	}
	g := &Guard{path: path, f: f, ids: make(map[string]time.Time)}
	if err := g.load(); err != nil {
		f.Close()
		return nil, fmt.Errorf("seen %s: %w", path, err)
	}
	return g, nil
}

// load reads every frame into g.ids and truncates a torn tail.
func (g *Guard) load() error {
	buf, err := io.ReadAll(g.f)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if len(buf) == 0 { // created empty by someone else; nothing to lose
		if _, err := g.f.WriteAt(magic, 0); err != nil {
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
	g.end = int64(off)
	if off < len(buf) {
		if err := g.f.Truncate(g.end); err != nil {
			return fmt.Errorf("truncate torn tail at offset %d: %w", off, err)
		}
		if err := g.f.Sync(); err != nil {
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
	if g.f == nil {
		return fmt.Errorf("seen %s: admit %s: guard is closed", g.path, id)
	}
	if _, ok := g.ids[id]; ok {
		return fmt.Errorf("command %s: %w", id, ErrReplay)
	}
	if err := g.write(encodeFrame(id, expires)); err != nil {
		return fmt.Errorf("seen %s: admit %s: %w", g.path, id, err)
	}
	g.ids[id] = expires
	return nil
}

// write appends b at g.end and fsyncs; on failure it cuts the file back.
func (g *Guard) write(b []byte) error {
	if g.dirDirty {
		if err := syncDir(g.path); err != nil {
			return err
		}
		g.dirDirty = false
	}
	if g.dirty {
		if err := g.f.Truncate(g.end); err != nil {
			return fmt.Errorf("truncate to %d after earlier failure: %w", g.end, err)
		}
		g.dirty = false
	}
	_, err := g.f.WriteAt(b, g.end)
	if err == nil {
		err = g.f.Sync()
	}
	if err != nil {
		if terr := g.f.Truncate(g.end); terr != nil {
			g.dirty = true
			return errors.Join(err, fmt.Errorf("truncate back to %d: %w", g.end, terr))
		}
		g.f.Sync() // best effort: a surviving frame only refuses a command that failed
		return err
	}
	g.end += int64(len(b))
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
	if g.f == nil {
		return nil
	}
	err := g.f.Close()
	g.f = nil
	if err != nil {
		return fmt.Errorf("seen %s: close: %w", g.path, err)
	}
	return nil
}
