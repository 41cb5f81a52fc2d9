package mediacache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"dalaba/protocol"
)

// ErrChunkMismatch is returned by Write for a chunk whose length or
// SHA-256 differs from the manifest's.
var ErrChunkMismatch = errors.New("not the chunk the manifest lists")

// Manifest describes a file by the SHA-256 of each piece of it, in order:
// pieces of ChunkSize, or, with FirstChunk, a first piece of FirstChunk
// and each after it as large as all before it up to ChunkSize
// (protocol.Media.ChunkAt); the last may be shorter. A file is cached
// under its manifest's Key: the terminal takes both from a signed command,
// so a name in the cache stands for bytes that a signed chunk list vouched
// for, and a command with another chunk list for the same file never
// reuses them.
type Manifest struct {
	Size       int64
	ChunkSize  int
	FirstChunk int // 0: ChunkSize
	Chunks     [][32]byte
}

// Key returns the name of m's file in the cache: the SHA-256, in hex, of
// its size, chunk size, first piece's size when smaller than the chunk
// size, and chunk hashes.
func (m Manifest) Key() string {
	h := sha256.New()
	n := make([]byte, 0, 24)
	n = binary.BigEndian.AppendUint64(n, uint64(m.Size))
	n = binary.BigEndian.AppendUint64(n, uint64(m.ChunkSize))
	if m.FirstChunk > 0 && m.FirstChunk < m.ChunkSize {
		n = binary.BigEndian.AppendUint64(n, uint64(m.FirstChunk))
	}
	h.Write([]byte("dalaba media manifest\n"))
	h.Write(n)
	for _, c := range m.Chunks {
		h.Write(c[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// layout is m's pieces as protocol.Media cuts them.
func (m Manifest) layout() protocol.Media {
	return protocol.Media{Size: m.Size, ChunkSize: m.ChunkSize, FirstChunk: m.FirstChunk}
}

// check reports whether m's chunk list fits its size.
func (m Manifest) check() error {
	if m.Size < 0 || m.ChunkSize <= 0 || !protocol.FirstChunkFits(m.ChunkSize, m.FirstChunk) {
		return fmt.Errorf("manifest of %d bytes in chunks of %d from a first of %d: want a size ≥ 0, a chunk size > 0 and a first piece of it divided by a power of two", m.Size, m.ChunkSize, m.FirstChunk)
	}
	want := 0
	if m.Size > 0 {
		l := m.layout()
		want = l.ChunkCount()
	}
	if len(m.Chunks) != want {
		return fmt.Errorf("manifest has %d chunk hashes for %d bytes in chunks of %d from a first of %d, want %d", len(m.Chunks), m.Size, m.ChunkSize, m.FirstChunk, want)
	}
	return nil
}

// Writer receives one download into a temp file in the cache directory,
// chunk by chunk, each checked against the manifest before it is written.
// It is not safe for concurrent use.
type Writer struct {
	c       *Cache
	m       Manifest
	key     string
	f       *os.File // nil once committed or aborted
	written int64
	err     error // sticky: the download cannot be committed
}

// NewWriter starts a download of the file m describes. The caller must
// Commit or Abort it.
func (c *Cache) NewWriter(m Manifest) (*Writer, error) {
	key := m.Key()
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("mediacache %s: %w", c.dir, err)
	}
	if m.Size > c.maxBytes {
		return nil, fmt.Errorf("mediacache %s: file %s of %d bytes does not fit the cache bound of %d bytes", c.dir, key, m.Size, c.maxBytes)
	}
	f, err := os.CreateTemp(c.dir, tempPrefix+key+"-*")
	if err != nil {
		return nil, fmt.Errorf("mediacache: start download of %s: %w", key, err)
	}
	return &Writer{c: c, m: m, key: key, f: f}, nil
}

// Write appends the next chunk, p, once its SHA-256 matches the manifest's.
// A chunk of the wrong length or hash writes nothing and fails the download
// (ErrChunkMismatch).
func (w *Writer) Write(p []byte) (int, error) {
	if w.f == nil {
		return 0, fmt.Errorf("mediacache: write %s: download already finished", w.key)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.written >= w.m.Size {
		w.err = fmt.Errorf("mediacache: write %s: %d bytes past its end of %d bytes: %w", w.key, len(p), w.m.Size, ErrChunkMismatch)
		return 0, w.err
	}
	l := w.m.layout()
	i, want, _ := l.ChunkAt(w.written) // written is where a piece starts
	if int64(len(p)) != want {
		w.err = fmt.Errorf("mediacache: write %s: chunk %d has %d bytes, want %d: %w", w.key, i, len(p), want, ErrChunkMismatch)
		return 0, w.err
	}
	if got := sha256.Sum256(p); got != w.m.Chunks[i] {
		w.err = fmt.Errorf("mediacache: write %s: chunk %d has sha256 %x, want %x: %w", w.key, i, got, w.m.Chunks[i], ErrChunkMismatch)
		return 0, w.err
	}
	n, err := w.f.Write(p)
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

// Commit checks the download is complete, fsyncs it and renames
// it into place, then evicts least recently used unpinned files until the
// cache is within its bound, and returns the final path. On a verification or
// I/O error before the rename the temp file is removed and nothing is added.
// If the directory fsync or eviction fails after the rename, Commit returns
// the final path together with the error: the file is in place.
func (w *Writer) Commit() (string, error) {
	if w.f == nil {
		return "", fmt.Errorf("mediacache: commit %s: download already finished", w.key)
	}
	final := filepath.Join(w.c.dir, w.key)
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
	e, ok := c.files[w.key]
	if !ok { // a concurrent download of the same file may have got here first
		e = &entry{size: w.m.Size}
		c.files[w.key] = e
		c.total += w.m.Size
	}
	c.tick++
	e.used = c.tick
	if err := c.evict(w.key); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return final, fmt.Errorf("mediacache: committed %s, but %w", final, errors.Join(errs...))
	}
	return final, nil
}

// place checks that the download is complete, fsyncs it and renames it
// to final.
func (w *Writer) place(final string) error {
	if w.err != nil {
		return w.err
	}
	if w.written != w.m.Size {
		return fmt.Errorf("mediacache: commit %s: got %d bytes, want %d", w.key, w.written, w.m.Size)
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
