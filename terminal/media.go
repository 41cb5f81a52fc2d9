package terminal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"dalaba/protocol"
	"dalaba/terminal/mediacache"
)

// chunkIdle is how long a fetch waits for the next chunk before asking again.
const chunkIdle = 30 * time.Second

// chunkMsg is a binary media chunk, or a MediaErr, for the fetch in progress.
type chunkMsg struct {
	offset uint64
	data   []byte
	merr   *protocol.MediaErr
}

// fetchSlot routes incoming chunks to the one fetch in progress (the player
// fetches one file at a time).
type fetchSlot struct {
	mu   sync.Mutex
	want [32]byte
	ch   chan chunkMsg
	quit chan struct{}
}

// begin claims the slot for the file with hash sum; end releases it.
func (f *fetchSlot) begin(sum [32]byte) (ch <-chan chunkMsg, end func()) {
	c, quit := make(chan chunkMsg, 8), make(chan struct{})
	f.mu.Lock()
	f.want, f.ch, f.quit = sum, c, quit
	f.mu.Unlock()
	return c, func() {
		f.mu.Lock()
		if f.ch == c {
			f.ch, f.quit = nil, nil
		}
		f.mu.Unlock()
		close(quit)
	}
}

// deliver hands m to the fetch of sum, if one is in progress. It blocks
// while the fetch is writing, which pushes back on the controller.
func (f *fetchSlot) deliver(sum [32]byte, m chunkMsg) bool {
	f.mu.Lock()
	ch, quit, want := f.ch, f.quit, f.want
	f.mu.Unlock()
	if ch == nil || sum != want {
		return false
	}
	select {
	case ch <- m:
		return true
	case <-quit:
		return false
	}
}

func (t *Terminal) deliverChunk(msg []byte) {
	sum, off, data, err := protocol.DecodeMediaChunk(msg)
	if err != nil {
		t.log.Warn("bad media chunk", "err", err)
		return
	}
	if !t.fetch.deliver(sum, chunkMsg{offset: off, data: data}) {
		t.log.Debug("media chunk nobody is fetching", "sha256", hex.EncodeToString(sum[:]), "offset", off)
	}
}

func (t *Terminal) deliverMediaErr(m protocol.MediaErr) {
	var sum [32]byte
	if b, err := hex.DecodeString(m.SHA256); err == nil && len(b) == 32 {
		copy(sum[:], b)
		t.fetch.deliver(sum, chunkMsg{merr: &m})
	}
}

// mediaError is a media problem that fails the alert with reason "media".
type mediaError struct{ msg string }

func (e *mediaError) Error() string { return e.msg }

// fetchMedia makes sure m is complete in the cache, fetching what is missing
// over the controller link and waiting for the link while it is down. Each
// chunk is checked against its hash from the signed command before it is
// written; the whole file is checked again on Commit.
func (t *Terminal) fetchMedia(ctx context.Context, m protocol.Media) error {
	if _, ok := t.cache.Path(m.SHA256); ok {
		return nil
	}
	var sum [32]byte
	if _, err := hex.Decode(sum[:], []byte(m.SHA256)); err != nil {
		return &mediaError{fmt.Sprintf("media %s: bad hash", m.SHA256)}
	}
	w, err := t.cache.NewWriter(m.SHA256, m.Size)
	if err != nil {
		return &mediaError{fmt.Sprintf("media %s: %v", m.SHA256, err)}
	}
	defer w.Abort()
	chunks, end := t.fetch.begin(sum)
	defer end()
	for w.Written() < m.Size {
		s, err := t.waitSession(ctx)
		if err != nil {
			return err
		}
		if err := t.receiveMedia(ctx, s, m, w, chunks); err != nil {
			return err
		}
	}
	if _, err := w.Commit(); err != nil {
		if errors.Is(err, mediacache.ErrHashMismatch) {
			return &mediaError{fmt.Sprintf("media %s: %v", m.SHA256, err)}
		}
		return fmt.Errorf("store media %s: %w", m.SHA256, err)
	}
	t.faults.clear(protocol.FaultMedia, "media "+m.SHA256+" fetched and verified")
	return nil
}

// receiveMedia asks s for the rest of m and writes verified chunks until the
// file is complete, the link ends or the chunks stop coming (it then returns
// nil and the caller asks again).
func (t *Terminal) receiveMedia(ctx context.Context, s *session, m protocol.Media, w *mediacache.Writer, chunks <-chan chunkMsg) error {
	off := w.Written()
	req, err := protocol.Encode(protocol.TypeMediaGet, protocol.MediaGet{SHA256: m.SHA256, Offset: off})
	if err != nil {
		return err
	}
	if s.send(req) != nil {
		return nil
	}
	t.log.Debug("fetching media", "sha256", m.SHA256, "offset", off, "size", m.Size)
	// take writes a chunk if it is the next one; a chunk for another
	// offset is left over from an earlier request and skipped.
	take := func(c chunkMsg) error {
		if c.merr != nil {
			return &mediaError{fmt.Sprintf("controller cannot send media %s: %s", m.SHA256, c.merr.Reason)}
		}
		if int64(c.offset) != off {
			return nil
		}
		if err := checkChunk(m, off, c.data); err != nil {
			return err
		}
		if _, err := w.Write(c.data); err != nil {
			return fmt.Errorf("store media %s: %w", m.SHA256, err)
		}
		off += int64(len(c.data))
		return nil
	}
	for off < m.Size {
		select {
		case c := <-chunks:
			if err := take(c); err != nil {
				return err
			}
		case <-s.done:
			// Keep what arrived before the link dropped.
			for {
				select {
				case c := <-chunks:
					if err := take(c); err != nil {
						return err
					}
				default:
					return nil
				}
			}
		case <-t.clock.After(chunkIdle):
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// checkChunk verifies the chunk at off against the signed chunk hashes.
func checkChunk(m protocol.Media, off int64, data []byte) error {
	i := off / int64(m.ChunkSize)
	want := min(int64(m.ChunkSize), m.Size-off)
	if off%int64(m.ChunkSize) != 0 || int(i) >= len(m.Chunks) || int64(len(data)) != want {
		return &mediaError{fmt.Sprintf("media %s: chunk at offset %d has %d bytes, want %d", m.SHA256, off, len(data), want)}
	}
	got := sha256.Sum256(data)
	exp, _ := hex.DecodeString(m.Chunks[i])
	if !bytes.Equal(got[:], exp) {
		return &mediaError{fmt.Sprintf("media %s: chunk %d has sha256 %x, want %s", m.SHA256, i, got, m.Chunks[i])}
	}
	return nil
}
