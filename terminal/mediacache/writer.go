package mediacache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
)

// ErrHashMismatch is returned by Commit when the downloaded bytes do not hash
// to the expected SHA-256.
var ErrHashMismatch = errors.New("sha256 mismatch")

// Writer receives one download into a temp file in the cache directory. It is
// not safe for concurrent use.
type Writer struct {
	c       *Cache
	sha     string
	size    int64
	f       *os.File // nil once committed or aborted
	h       hash.Hash
	written int64
	err     error // sticky: the download cannot be committed
}

// NewWriter starts a download of the file with the given SHA-256 and size.
// The caller must Commit or Abort it.
func (c *Cache) NewWriter(sha256hex string, size int64) (*Writer, error) {
	if err := checkName(sha256hex); err != nil {
		return nil, fmt.Errorf("mediacache %s: %w", c.dir, err)
	}
	if size < 0 || size > c.maxBytes {
		return nil, fmt.Errorf("mediacache %s: file %s of %d bytes does not fit the cache bound of %d bytes", c.dir, sha256hex, size, c.maxBytes)
	}
	f, err := os.CreateTemp(c.dir, tempPrefix+sha256hex+"-*")
	if err != nil {
		return nil, fmt.Errorf("mediacache: start download of %s: %w", sha256hex, err)
	}
	return &Writer{c: c, sha: sha256hex, size: size, f: f, h: sha256.New()}, nil
}

// Write appends p to the download. Writing more than the declared size is an
// error and writes nothing.
func (w *Writer) Write(p []byte) (int, error) {
	if w.f == nil {
		return 0, fmt.Errorf("mediacache: write %s: download already finished", w.sha)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.written+int64(len(p)) > w.size {
		w.err = fmt.Errorf("mediacache: write %s: %d bytes would exceed the declared size of %d", w.sha, w.written+int64(len(p)), w.size)
		return 0, w.err
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.written += int64(n)
	if err != nil {
		w.err = fmt.Errorf("mediacache: write %s: %w", w.f.Name(), err)
		return n, w.err
	}
	return n, nil
}

// Name returns the path of the download's temp file, "" once it finished.
// The bytes written so far can be read from it while the download goes on;
// a file opened before Commit renames it (or Abort removes it) stays
// readable.
func (w *Writer) Name() string {
	if w.f == nil {
		return ""
	}
	return w.f.Name()
}

// Written returns how many bytes have been written so far.
func (w *Writer) Written() int64 { return w.written }

// Commit verifies the size and SHA-256 of the download, fsyncs it and renames
// it into place, then evicts least recently used unpinned files until the
// cache is within its bound, and returns the final path. On a verification or
// I/O error before the rename the temp file is removed and nothing is added.
// If the directory fsync or eviction fails after the rename, Commit returns
// the final path together with the error: the file is in place.
func (w *Writer) Commit() (string, error) {
	if w.f == nil {
		return "", fmt.Errorf("mediacache: commit %s: download already finished", w.sha)
	}
	final := filepath.Join(w.c.dir, w.sha)
	if err := w.place(final); err != nil {
		w.Abort()
		return "", err
	}
	w.f = nil
	var errs []error
	if err := syncDir(w.c.dir); err != nil {
		errs = append(errs, err)
	}
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.files[w.sha]
	if !ok { // a concurrent download of the same file may have got here first
		e = &entry{size: w.size}
		c.files[w.sha] = e
		c.total += w.size
	}
	c.tick++
	e.used = c.tick
	if err := c.evict(w.sha); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return final, fmt.Errorf("mediacache: committed %s, but %w", final, errors.Join(errs...))
	}
	return final, nil
}

// place checks the download, fsyncs it and renames it to final.
func (w *Writer) place(final string) error {
	if w.err != nil {
		return w.err
	}
	if w.written != w.size {
		return fmt.Errorf("mediacache: commit %s: got %d bytes, want %d", w.sha, w.written, w.size)
	}
	if got := hex.EncodeToString(w.h.Sum(nil)); got != w.sha {
		return fmt.Errorf("mediacache: commit %s: %w: got %s, want %s", w.sha, ErrHashMismatch, got, w.sha)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("mediacache: sync %s: %w", w.f.Name(), err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("mediacache: close %s: %w", w.f.Name(), err)
	}
	if err := os.Rename(w.f.Name(), final); err != nil {
		return fmt.Errorf("mediacache: commit: %w", err)
	}
	return nil
}

// Abort discards the download. It is safe to call more than once, and after
// Commit, where it does nothing.
func (w *Writer) Abort() {
	if w.f == nil {
		return
	}
	w.f.Close()
	os.Remove(w.f.Name())
	w.f = nil
}

// syncDir fsyncs dir so a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
