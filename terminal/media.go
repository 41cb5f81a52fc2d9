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

// fetchSlots routes incoming chunks to the fetches in progress, one per
// file: alerts and the schedule prefetch fetch at the same time, and the
// controller may interleave their chunks.
type fetchSlots struct {
	mu     sync.Mutex
	active map[[32]byte]*fetchSlot
}

// fetchSlot is one file's fetch in progress.
type fetchSlot struct {
	quit chan struct{} // closed when the fetch ends

	mu   sync.Mutex
	recv *receiver // the media request being answered; nil between requests
}

// receiver takes the chunks that answer one media request. Each is checked
// and written by the goroutine reading the connection, as it arrives, so
// its buffer is free again at once: handed on to the fetch's goroutine, a
// 64 KiB buffer was held until that goroutine ran, and in a simulated
// fan-out the readers of thousands of terminals ran ahead of their
// fetches, each holding one.
type receiver struct {
	m    protocol.Media
	w    *mediacache.Writer
	st   *stream
	off  int64            // verified and written so far
	now  func() time.Time // the terminal's clock
	last time.Time        // when the last chunk came (now)
	end  chan error       // the outcome, once: nil when the file is complete
	over bool             // end has been sent: nothing more is taken
}

// begin claims the file with hash sum. When another fetch holds it, begin
// returns a channel closed when that one ends (then look in the cache
// again); otherwise the slot and the release.
func (f *fetchSlots) begin(sum [32]byte) (slot *fetchSlot, end func(), busy <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.active[sum]; ok {
		return nil, nil, s.quit
	}
	if f.active == nil {
		f.active = map[[32]byte]*fetchSlot{}
	}
	s := &fetchSlot{quit: make(chan struct{})}
	f.active[sum] = s
	return s, func() {
		f.mu.Lock()
		delete(f.active, sum)
		f.mu.Unlock()
		close(s.quit)
	}, nil
}

// listen makes r the receiver of the slot's chunks (nil: none). Once it
// returns, no chunk touches the receiver it replaced.
func (s *fetchSlot) listen(r *receiver) {
	s.mu.Lock()
	s.recv = r
	s.mu.Unlock()
}

// deliver hands a chunk at offset off, or a MediaErr, to the request in
// progress for sum, if there is one. It returns once the chunk is written
// (or skipped), which pushes back on the controller while the disk is slow.
func (f *fetchSlots) deliver(sum [32]byte, off uint64, data []byte, merr *protocol.MediaErr) bool {
	f.mu.Lock()
	s := f.active[sum]
	f.mu.Unlock()
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recv == nil {
		return false // between requests: the next one asks from what is written
	}
	s.recv.take(off, data, merr)
	return true
}

// take writes a chunk if it is the next one; a chunk for another offset is
// left over from an earlier request and skipped. Called with the slot's
// lock held.
func (r *receiver) take(off uint64, data []byte, merr *protocol.MediaErr) {
	if r.over {
		return
	}
	finish := func(err error) { r.over = true; r.end <- err }
	if merr != nil {
		finish(&mediaError{fmt.Sprintf("controller cannot send media %s: %s", r.m.SHA256, merr.Reason)})
		return
	}
	if int64(off) != r.off {
		return
	}
	if _, err := r.w.Write(data); err != nil {
		if errors.Is(err, mediacache.ErrChunkMismatch) {
			finish(&mediaError{fmt.Sprintf("media %s: %v", r.m.SHA256, err)})
		} else {
			finish(fmt.Errorf("store media %s: %w", r.m.SHA256, err))
		}
		return
	}
	r.off += int64(len(data))
	r.last = r.now()
	if r.st != nil {
		r.st.progress(r.w.Name(), r.off)
	}
	if r.off >= r.m.Size {
		finish(nil)
	}
}

func (t *Terminal) deliverChunk(msg []byte) {
	if t.player.live.deliver(msg) { // a live speech frame (live.go)
		return
	}
	defer recycleChunk(msg) // written or dropped: nothing keeps it
	sum, off, data, err := protocol.DecodeMediaChunk(msg)
	if err != nil {
		t.log.Warn("bad media chunk", "err", err)
		return
	}
	if !t.fetch.deliver(sum, off, data, nil) {
		t.log.Debug("media chunk nobody is fetching", "sha256", hex.EncodeToString(sum[:]), "offset", off)
	}
}

func (t *Terminal) deliverMediaErr(m protocol.MediaErr) {
	var sum [32]byte
	if b, err := hex.DecodeString(m.SHA256); err == nil && len(b) == 32 {
		copy(sum[:], b)
		t.fetch.deliver(sum, 0, nil, &m)
	}
}

// mediaError is a media problem that fails the alert with reason "media".
type mediaError struct{ msg string }

func (e *mediaError) Error() string { return e.msg }

// manifest is m's chunk list as the cache takes it. m comes from a signed
// command that passed Validate, so its hashes are hex; one that is not
// gives no chunk hash and fails any chunk checked against it.
func manifest(m protocol.Media) mediacache.Manifest {
	mf := mediacache.Manifest{Size: m.Size, ChunkSize: m.ChunkSize, FirstChunk: m.FirstChunk, Chunks: make([][32]byte, len(m.Chunks))}
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
		slot, end, busy := t.fetch.begin(sum)
		if busy == nil {
			defer end()
			return t.fetchInto(ctx, m, slot, st)
		}
		select { // another task fetches the same file
		case <-busy:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// fetchInto fetches m into the cache through the claimed slot.
func (t *Terminal) fetchInto(ctx context.Context, m protocol.Media, slot *fetchSlot, st *stream) error {
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
		if err := t.receiveMedia(ctx, s, m, w, slot, st); err != nil {
			return err
		}
	}
	if _, err := w.Commit(); err != nil {
		return fmt.Errorf("store media %s: %w", m.SHA256, err)
	}
	t.faults.clear(protocol.FaultMedia, "media "+m.SHA256+" fetched and verified")
	return nil
}

// receiveMedia asks s for the rest of m and waits while the chunks are
// written, until the file is complete, the link ends or the chunks stop
// coming for t.chunkIdle (it then returns nil and the caller asks again).
func (t *Terminal) receiveMedia(ctx context.Context, s *session, m protocol.Media, w *mediacache.Writer, slot *fetchSlot, st *stream) error {
	off := w.Written()
	r := &receiver{m: m, w: w, st: st, off: off, now: t.clock.Now, last: t.clock.Now(), end: make(chan error, 1)}
	req, err := protocol.Encode(protocol.TypeMediaGet, protocol.MediaGet{SHA256: m.SHA256, Offset: off, Stream: st.early()})
	if err != nil {
		return err
	}
	slot.listen(r)
	defer slot.listen(nil) // what arrived before the return is written; nothing after it
	if s.send(req) != nil {
		return nil
	}
	t.log.Debug("fetching media", "sha256", m.SHA256, "offset", off, "size", m.Size)
	wait := t.chunkIdle
	for {
		select {
		case err := <-r.end:
			return err
		case <-s.done:
			return nil
		case <-t.clock.After(wait):
			// Chunks that came meanwhile moved the deadline on.
			slot.mu.Lock()
			wait = t.chunkIdle - t.clock.Now().Sub(r.last)
			slot.mu.Unlock()
			if wait <= 0 {
				return nil
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
