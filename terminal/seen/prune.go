package seen

import (
	"bufio"
	"fmt"
	"os"
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
	if g.tail.F == nil {
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
	g.ids = ids
	return g.tail.Replace(f, end)
}
