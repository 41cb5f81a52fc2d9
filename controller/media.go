package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"dalaba/audio"
	"dalaba/controller/store"
	"dalaba/internal/atomicfile"
	"dalaba/protocol"
)

// mediaStore keeps audio files on disk by sha256, and the files sent
// lately as ready-encoded chunk frames: when thousands of terminals fetch
// an alert's file at once, it is read and framed once, not once each.
type mediaStore struct {
	dir   string
	pacer *mediaPacer

	mu     sync.Mutex
	frames map[string]framed // sha256 → its description and encoded chunks
	order  []string          // least recently used first
	bytes  int64
}

// framed is a media file ready to send: what the signed commands say of it,
// and its chunks as media frames.
type framed struct {
	m      protocol.Media
	chunks [][]byte
}

// frameCacheBytes bounds the encoded chunks kept in memory.
const frameCacheBytes = 128 << 20

func openMediaStore(dir string) (*mediaStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create media folder: %w", err)
	}
	return &mediaStore{dir: dir, pacer: newMediaPacer(paceFanOut), frames: map[string]framed{}}, nil
}

// cached returns the media with this hash and its chunk frames when they
// are in memory: thousands of terminals asking for an alert's file at once
// are answered without a database read each (media are never changed or
// deleted).
func (ms *mediaStore) cached(sha string) (framed, bool) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	f, ok := ms.frames[sha]
	if ok {
		ms.touch(sha)
	}
	return f, ok
}

// chunkFrames returns m's chunks encoded as media frames, shared and never
// modified.
func (ms *mediaStore) chunkFrames(m protocol.Media) ([][]byte, error) {
	if f, ok := ms.cached(m.SHA256); ok {
		return f.chunks, nil
	}
	data, err := os.ReadFile(ms.path(m.SHA256))
	if err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("media %s as stored: %w", m.SHA256, err)
	}
	if int64(len(data)) != m.Size {
		return nil, fmt.Errorf("media %s: %d bytes on disk, %d recorded", m.SHA256, len(data), m.Size)
	}
	var sum [32]byte
	copy(sum[:], mustHex(m.SHA256))
	var frames [][]byte
	for off, n := range m.Pieces() {
		frames = append(frames, protocol.EncodeMediaChunk(sum, uint64(off), data[off:off+n]))
	}
	if m.Size > frameCacheBytes/4 {
		return frames, nil // too big to keep
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if _, ok := ms.frames[m.SHA256]; !ok {
		ms.frames[m.SHA256] = framed{m, frames}
		ms.order = append(ms.order, m.SHA256)
		ms.bytes += m.Size
	}
	for ms.bytes > frameCacheBytes && len(ms.order) > 1 {
		old := ms.order[0]
		ms.order = ms.order[1:]
		for _, f := range ms.frames[old].chunks {
			ms.bytes -= int64(len(f) - protocol.MediaChunkHeader)
		}
		delete(ms.frames, old)
	}
	return frames, nil
}

// touch moves sha to the most recently used end. Callers hold ms.mu.
func (ms *mediaStore) touch(sha string) {
	if i := slices.Index(ms.order, sha); i >= 0 {
		ms.order = append(slices.Delete(ms.order, i, i+1), sha)
	}
}

func (m *mediaStore) path(sha string) string { return filepath.Join(m.dir, sha) }

// ErrBadMedia marks an upload that is not acceptable audio.
var ErrBadMedia = errors.New("bad media")

// AddMedia validates an uploaded audio file by decoding it, measures it,
// hashes it in chunks and stores it. Nothing is stored if any step fails.
func (c *Controller) AddMedia(ctx context.Context, name string, data []byte) (store.Media, error) {
	var m store.Media
	if len(data) == 0 {
		return m, fmt.Errorf("%w: the file is empty", ErrBadMedia)
	}
	if max := int64(c.cfg.MaxUploadMB) << 20; int64(len(data)) > max {
		return m, fmt.Errorf("%w: %d bytes is larger than the limit of %d MB", ErrBadMedia, len(data), c.cfg.MaxUploadMB)
	}
	info, err := audio.Probe(data)
	if err != nil {
		return m, fmt.Errorf("%w: %v", ErrBadMedia, err)
	}
	m = store.Media{Media: describeMedia(data, info.Format, info.Duration.Milliseconds()), Name: cleanName(name), CreatedAt: c.now()}
	if err := atomicfile.Write(c.media.path(m.SHA256), data, 0o600); err != nil {
		return store.Media{}, fmt.Errorf("store media %s: %w", m.SHA256, err)
	}
	if err := c.store.PutMedia(ctx, m); err != nil {
		return store.Media{}, err
	}
	return c.store.MediaByHash(ctx, m.SHA256)
}

// describeMedia hashes data whole and in pieces from DefaultFirstChunk up
// to DefaultChunkSize.
func describeMedia(data []byte, format string, durationMS int64) protocol.Media {
	sum := sha256.Sum256(data)
	m := protocol.Media{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), Format: format,
		DurationMS: durationMS, ChunkSize: protocol.DefaultChunkSize, FirstChunk: protocol.DefaultFirstChunk}
	for off, n := range m.Pieces() {
		s := sha256.Sum256(data[off : off+n])
		m.Chunks = append(m.Chunks, hex.EncodeToString(s[:]))
	}
	return m
}

func cleanName(name string) string {
	name = filepath.Base(strings.TrimSpace(name))
	if name == "." || name == "/" || name == "" {
		return "upload"
	}
	if len(name) > 200 {
		name = name[:200]
	}
	return name
}

func openMedia(path string) (*os.File, error) { return os.Open(path) }

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(fmt.Sprintf("mustHex(%q): %v", s, err)) // callers validate first
	}
	return b
}
