// Package mediacache is the terminal's content-addressed audio cache. A file
// is named by the key of its Manifest (the SHA-256 of each of its chunks, as
// a signed command lists them) and only appears under that name once every
// chunk matched its hash and the file was fsynced, so a name in the cache is
// always a complete, verified file, even after a power cut mid-download. The
// cache keeps its total size within a bound by evicting the least recently
// used files that are not pinned.
//
// A Cache is safe for concurrent use; only one Cache may use a directory.
package mediacache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// tempPrefix starts the names of files still being downloaded.
const tempPrefix = ".part-"

// Cache is an open cache directory.
type Cache struct {
	dir      string
	maxBytes int64

	mu    sync.Mutex
	files map[string]*entry
	pins  map[string]int
	total int64
	tick  uint64 // last use stamp handed out
}

// entry is one complete file in the cache.
type entry struct {
	size int64
	used uint64 // larger is more recent
}

// Open opens the cache in dir, creating dir if needed, and removes temp files
// left by interrupted downloads. Use order across restarts comes from the
// files' modification times.
func Open(dir string, maxBytes int64) (*Cache, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("mediacache %s: maxBytes is %d, want > 0", dir, maxBytes)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mediacache %s: %w", dir, err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("mediacache %s: %w", dir, err)
	}
	c := &Cache{dir: dir, maxBytes: maxBytes, files: make(map[string]*entry), pins: make(map[string]int)}
	type found struct {
		name string
		size int64
		mod  time.Time
	}
	var all []found
	for _, de := range des {
		if strings.HasPrefix(de.Name(), tempPrefix) {
			if err := os.Remove(filepath.Join(dir, de.Name())); err != nil {
				return nil, fmt.Errorf("mediacache %s: remove leftover download: %w", dir, err)
			}
			continue
		}
		if checkName(de.Name()) != nil || !de.Type().IsRegular() {
			continue // not ours
		}
		fi, err := de.Info()
		if err != nil {
			return nil, fmt.Errorf("mediacache %s: %w", dir, err)
		}
		all = append(all, found{de.Name(), fi.Size(), fi.ModTime()})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mod.Before(all[j].mod) })
	for _, f := range all {
		c.tick++
		c.files[f.name] = &entry{size: f.size, used: c.tick}
		c.total += f.size
	}
	return c, nil
}

// checkName reports whether name is a key: 64 lowercase hex digits.
func checkName(name string) error {
	if len(name) != 64 {
		return fmt.Errorf("key %q is %d characters, want 64 lowercase hex digits", name, len(name))
	}
	for i := range len(name) {
		if c := name[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("key %q: character %d is %q, want lowercase hex", name, i, c)
		}
	}
	return nil
}

// Path returns the path of the complete file with the given key and marks
// it used. It reports false if the file is absent or the name is invalid.
func (c *Cache) Path(key string) (string, bool) {
	if checkName(key) != nil {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.files[key]
	if !ok {
		return "", false
	}
	path := filepath.Join(c.dir, key)
	if _, err := os.Stat(path); err != nil { // removed behind our back
		c.forget(key, e)
		return "", false
	}
	c.touch(path, e)
	return path, true
}

// Open opens the complete file with the given key for reading and marks
// it used. An absent file gives an error wrapping os.ErrNotExist.
func (c *Cache) Open(key string) (*os.File, error) {
	if err := checkName(key); err != nil {
		return nil, fmt.Errorf("mediacache %s: %w", c.dir, err)
	}
	path := filepath.Join(c.dir, key)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.files[key]
	if !ok {
		return nil, fmt.Errorf("mediacache: open %s: %w", path, os.ErrNotExist)
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			c.forget(key, e)
		}
		return nil, fmt.Errorf("mediacache: %w", err)
	}
	c.touch(path, e)
	return f, nil
}

// touch marks e most recently used, in memory and in the file's modification
// time so the order survives a restart. A failed Chtimes only costs LRU
// accuracy after a restart, so it is ignored.
func (c *Cache) touch(path string, e *entry) {
	c.tick++
	e.used = c.tick
	now := time.Now()
	_ = os.Chtimes(path, now, now)
}

func (c *Cache) forget(name string, e *entry) {
	delete(c.files, name)
	c.total -= e.size
}

// Pin protects a file from eviction until a matching Unpin; pins nest. The
// file need not be in the cache yet. An invalid name is ignored.
func (c *Cache) Pin(key string) {
	if checkName(key) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pins[key]++
}

// Unpin undoes one Pin. An invalid or unpinned name is ignored.
func (c *Cache) Unpin(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pins[key] <= 1 {
		delete(c.pins, key)
		return
	}
	c.pins[key]--
}

// Size returns the total size of the complete files in the cache; downloads
// in progress are not counted.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// evict removes least recently used, unpinned files other than keep until
// the total is within maxBytes. Pinned files may hold it above the bound.
func (c *Cache) evict(keep string) error {
	if c.total <= c.maxBytes {
		return nil
	}
	var names []string
	for name := range c.files {
		if name != keep && c.pins[name] == 0 {
			names = append(names, name)
		}
	}
	sort.Slice(names, func(i, j int) bool { return c.files[names[i]].used < c.files[names[j]].used })
	var errs []error
	for _, name := range names {
		if c.total <= c.maxBytes {
			break
		}
		err := os.Remove(filepath.Join(c.dir, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("evict: %w", err))
			continue
		}
		c.forget(name, c.files[name])
	}
	return errors.Join(errs...)
}
