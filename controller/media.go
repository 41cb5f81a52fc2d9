package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"dalaba/audio"
	"dalaba/controller/store"
	"dalaba/internal/atomicfile"
	"dalaba/protocol"
)

// mediaStore keeps audio files on disk by sha256.
type mediaStore struct{ dir string }

func openMediaStore(dir string) (*mediaStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create media folder: %w", err)
	}
	return &mediaStore{dir: dir}, nil
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

// describeMedia hashes data whole and in DefaultChunkSize pieces.
func describeMedia(data []byte, format string, durationMS int64) protocol.Media {
	sum := sha256.Sum256(data)
	m := protocol.Media{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), Format: format,
		DurationMS: durationMS, ChunkSize: protocol.DefaultChunkSize}
	for off := 0; off < len(data); off += m.ChunkSize {
		end := min(off+m.ChunkSize, len(data))
		s := sha256.Sum256(data[off:end])
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
