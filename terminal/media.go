package terminal

import (
	"context"
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
	buf    []byte // the message data is in, for recycleChunk
	merr   *protocol.MediaErr
}

// fetchSlots routes incoming chunks to the fetches in progress, one per
// file: alerts and the schedule prefetch fetch at the same time, and the
// controller may interleave their chunks.
type fetchSlots struct {
	mu     sync.Mutex
	active map[[32]byte]*fetchSlot
}

// fetchSlot is one file's fetch in progress.
type fetchSlot struct {
	ch   chan chunkMsg
	quit chan struct{} // closed when the fetch ends
}

// begin claims the file with hash sum. When another fetch holds it, begin
// returns a channel closed when that one ends (then look in the cache
// again); otherwise the chunk channel and the release.
func (f *fetchSlots) begin(sum [32]byte) (ch <-chan chunkMsg, end func(), busy <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.active[sum]; ok {
		return nil, nil, s.quit
	}
	if f.active == nil {
		f.active = map[[32]byte]*fetchSlot{}
	}
	s := &fetchSlot{ch: make(chan chunkMsg, 8), quit: make(chan struct{})}
	f.active[sum] = s
	return s.ch, func() {
		f.mu.Lock()
		delete(f.active, sum)
		f.mu.Unlock()
		close(s.quit)
	}, nil
}

// deliver hands m to the fetch of sum, if one is in progress. It blocks
// while the fetch is writing, which pushes back on the controller.
func (f *fetchSlots) deliver(sum [32]byte, m chunkMsg) bool {
	f.mu.Lock()
	s := f.active[sum]
	f.mu.Unlock()
	if s == nil {
		return false
	}
	select {
	case s.ch <- m:
		return true
	case <-s.quit:
		return false
	}
}

func (t *Terminal) deliverChunk(msg []byte) {
	if t.player.live.deliver(msg) { // a live speech frame (live.go)
		return
	}
	sum, off, data, err := protocol.DecodeMediaChunk(msg)
	if err != nil {
		t.log.Warn("bad media chunk", "err", err)
		return
	}
	if !t.fetch.deliver(sum, chunkMsg{offset: off, data: data, buf: msg}) {
		t.log.Debug("media chunk nobody is fetching", "sha256", hex.EncodeToString(sum[:]), "offset", off)
		recycleChunk(msg)
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

// manifest is m's chunk list as the cache takes it. m comes from a signed
// command that passed Validate, so its hashes are hex; one that is not
// gives no chunk hash and fails any chunk checked against it.
func manifest(m protocol.Media) mediacache.Manifest {
	mf := mediacache.Manifest{Size: m.Size, ChunkSize: m.ChunkSize, Chunks: make([][32]byte, len(m.Chunks))}
	for i, h := range m.Chunks {
		hex.Decode(mf.Chunks[i][:], []byte(h))
	}
	return mf
}

// cacheKey is m's name in the cache: its file is kept under its signed
// chunk list (mediacache.Manifest), which is what each chunk was checked
// against, not under its whole-file SHA-256, which the terminal does not
// compute.
func cacheKey(m protocol.Media) string { return manifest(m).Key() }

// fetchMedia makes sure m is complete in the cache, fetching what is missing
// over the controller link and waiting for the link while it is down. Each
// chunk is checked against its hash from the signed command before it is
// written (mediacache.Writer).
func (t *Terminal) fetchMedia(ctx context.Context, m protocol.Media) error {
	return t.fetchStream(ctx, m, nil)
}

// fetchStream is fetchMedia that reports each verified chunk to st (when
// not nil), so that playback can start before the whole file is there.
func (t *Terminal) fetchStream(ctx context.Context, m protocol.Media, st *stream) error {
	var sum [32]byte
	if _, err := hex.Decode(sum[:], []byte(m.SHA256)); err != nil {
		return &mediaError{fmt.Sprintf("media %s: bad hash", m.SHA256)}
	}
	key := cacheKey(m)
	for {
		if _, ok := t.cache.Path(key); ok {
			return nil
		}
		chunks, end, busy := t.fetch.begin(sum)
		if busy == nil {
			defer end()
			return t.fetchInto(ctx, m, chunks, st)
		}
		select { // another task fetches the same file
		case <-busy:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// fetchInto fetches m into the cache, taking chunks from the claimed slot.
func (t *Terminal) fetchInto(ctx context.Context, m protocol.Media, chunks <-chan chunkMsg, st *stream) error {
	w, err := t.cache.NewWriter(manifest(m))
	if err != nil {
		return &mediaError{fmt.Sprintf("media %s: %v", m.SHA256, err)}
	}
	defer w.Abort()
	for w.Written() < m.Size {
		s, err := t.waitSession(ctx)
		if err != nil {
			return err
		}
		if err := t.receiveMedia(ctx, s, m, w, chunks, st); err != nil {
			return err
		}
	}
	if _, err := w.Commit(); err != nil {
		return fmt.Errorf("store media %s: %w", m.SHA256, err)
	}
	t.faults.clear(protocol.FaultMedia, "media "+m.SHA256+" fetched and verified")
	return nil
}

// receiveMedia asks s for the rest of m and writes verified chunks until the
// file is complete, the link ends or the chunks stop coming (it then returns
// nil and the caller asks again).
func (t *Terminal) receiveMedia(ctx context.Context, s *session, m protocol.Media, w *mediacache.Writer, chunks <-chan chunkMsg, st *stream) error {
	off := w.Written()
	req, err := protocol.Encode(protocol.TypeMediaGet, protocol.MediaGet{SHA256: m.SHA256, Offset: off, Stream: st.early()})
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
		defer recycleChunk(c.buf) // written or dropped: nothing keeps it
		if c.merr != nil {
			return &mediaError{fmt.Sprintf("controller cannot send media %s: %s", m.SHA256, c.merr.Reason)}
		}
		if int64(c.offset) != off {
			return nil
		}
		if _, err := w.Write(c.data); err != nil {
			if errors.Is(err, mediacache.ErrChunkMismatch) {
				return &mediaError{fmt.Sprintf("media %s: %v", m.SHA256, err)}
			}
			return fmt.Errorf("store media %s: %w", m.SHA256, err)
		}
		off += int64(len(c.data))
		if st != nil {
			st.progress(w.Name(), off)
		}
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
