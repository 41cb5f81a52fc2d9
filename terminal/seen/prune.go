package seen

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// tempPath is where a replacement file is built before the rename.
func tempPath(path string) string { return path + ".tmp" }

// Prune forgets ids whose expiry is before now-grace and rewrites the file
// without them (temp, fsync, rename, fsync directory). If Prune fails the
// guard still remembers every id.
func (g *Guard) Prune(now time.Time, grace time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.f == nil {
		return fmt.Errorf("seen %s: prune: guard is closed", g.path)
	}
	cutoff := now.Add(-grace)
	var keep []string
	for id, exp := range g.ids {
		if !exp.Before(cutoff) {
			keep = append(keep, id)
		}
	}
	if len(keep) == len(g.ids) {
		return nil
	}
	sort.Strings(keep)
	if err := g.compact(keep); err != nil {
		return fmt.Errorf("seen %s: prune: %w", g.path, err)
	}
	return nil
}

// compact replaces the file with one holding only keep and forgets the other
// ids. If the rename did not happen g is unchanged.
func (g *Guard) compact(keep []string) error {
	tmp := tempPath(g.path)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	n, _ := w.Write(magic)
	end := int64(n)
	ids := make(map[string]time.Time, len(keep))
	for _, id := range keep {
		ids[id] = g.ids[id]
		n, _ = w.Write(encodeFrame(id, g.ids[id]))
		end += int64(n)
	}
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, g.path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	g.f.Close() // the old inode is unlinked; its close error is moot
	g.f, g.end, g.dirty, g.ids = f, end, false, ids
	if err := syncDir(g.path); err != nil {
		g.dirDirty = true // write retries it before trusting the new file
		return err
	}
	return nil
}

// replaceFile atomically puts a file holding b at path.
func replaceFile(path string, b []byte) error {
	tmp := tempPath(path)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(path)
}

// syncDir fsyncs the directory holding path so a rename in it is durable.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", d.Name(), err)
	}
	return nil
}
