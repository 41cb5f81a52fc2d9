package terminal

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"dalaba/protocol"
	"dalaba/terminal/mediacache"
)

// stream is an alert's media file while it is fetched. Playback may start
// once its first chunk is verified and read on behind the fetch, never
// past the bytes already checked against the chunk hashes of the signed
// command. A chunk that fails its hash ends the stream with the error,
// which stops the playback reading it.
type stream struct {
	m    protocol.Media
	kick func() // wakes the player when the stream can start or ends

	mu       sync.Mutex
	path     string        // the partial file, while fetching
	verified int64         // bytes checked so far
	err      error         // the fetch failed: nothing more will come
	paused   time.Duration // playback waited for bytes not verified yet, since takePaused
	done     chan struct{}
	changed  chan struct{} // closed and replaced on every change
}

func newStream(m protocol.Media, kick func()) *stream {
	return &stream{m: m, kick: kick, done: make(chan struct{}), changed: make(chan struct{})}
}

// streamMinDuration is the shortest media that starts playing before it
// is complete. A shorter file takes little longer to fetch whole, and
// playing one that stalls mid-way would only add a gap.
const streamMinDuration = 5 * time.Second

// startBytes is how much of a file is verified before playback may start:
// its first chunk, or the whole of a short file.
func (s *stream) startBytes() int64 {
	if time.Duration(s.m.DurationMS)*time.Millisecond < streamMinDuration {
		return s.m.Size
	}
	_, n, _ := s.m.ChunkAt(0)
	return n
}

// early reports whether sound may start before the file is complete: the
// controller may then pace the rest (media_get's stream). A nil stream is
// a fetch nothing plays from.
func (s *stream) early() bool {
	return s != nil && s.startBytes() < s.m.Size
}

// progress records that the first n bytes of the file at path are verified.
func (s *stream) progress(path string, n int64) {
	s.mu.Lock()
	could := s.verified >= s.startBytes()
	s.path, s.verified = path, n
	close(s.changed)
	s.changed = make(chan struct{})
	can := s.verified >= s.startBytes()
	s.mu.Unlock()
	if can && !could && s.kick != nil {
		s.kick()
	}
}

// finish ends the stream: the file is complete in the cache (err nil) or
// will not be.
func (s *stream) finish(err error) {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return
	default:
	}
	if err == nil {
		s.verified = s.m.Size
	}
	s.err, s.path = err, ""
	close(s.done)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	if s.kick != nil {
		s.kick()
	}
}

// canStart reports whether playback may begin: the first chunk is verified.
func (s *stream) canStart() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err == nil && s.verified >= s.startBytes()
}

// waitChange waits until changed (s.changed when read) is closed, counting
// the wait as a pause of the playback reading s.
func (s *stream) waitChange(ctx context.Context, changed <-chan struct{}) error {
	begin := time.Now()
	defer func() {
		s.mu.Lock()
		s.paused += time.Since(begin)
		s.mu.Unlock()
	}()
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// takePaused returns how long playback has waited for bytes since the last
// call.
func (s *stream) takePaused() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.paused
	s.paused = 0
	return d
}

// failed returns the error that ended the stream, if it ended.
func (s *stream) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// streamReader reads a stream from the start, blocking for bytes not yet
// verified. It is an io.ReadSeeker over the declared (signed) size, as the
// decoders want; once the file is complete it reads the cached copy.
type streamReader struct {
	ctx   context.Context
	s     *stream
	cache *mediacache.Cache
	f     *os.File
	pos   int64
}

func newStreamReader(ctx context.Context, s *stream, cache *mediacache.Cache) *streamReader {
	return &streamReader{ctx: ctx, s: s, cache: cache}
}

func (r *streamReader) Read(b []byte) (int, error) {
	for {
		if r.pos >= r.s.m.Size {
			return 0, io.EOF
		}
		r.s.mu.Lock()
		path, verified, err, changed := r.s.path, r.s.verified, r.s.err, r.s.changed
		complete := isClosed(r.s.done) && err == nil
		r.s.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if r.pos < verified {
			if r.f == nil {
				f, oerr := r.open(path, complete)
				if oerr != nil {
					return 0, oerr
				}
				if f == nil { // renamed under us: finish is on its way
					select {
					case <-changed:
						continue
					case <-r.ctx.Done():
						return 0, context.Cause(r.ctx)
					}
				}
				r.f = f
			}
			n, rerr := r.f.ReadAt(b[:min(int64(len(b)), verified-r.pos)], r.pos)
			r.pos += int64(n)
			if n > 0 {
				return n, nil
			}
			if rerr != nil && !errors.Is(rerr, io.EOF) {
				return 0, rerr
			}
		}
		if err := r.s.waitChange(r.ctx, changed); err != nil {
			return 0, err
		}
	}
}

// open opens the partial file, or the cached one once complete; nil, nil
// when the partial file was just renamed into the cache.
func (r *streamReader) open(path string, complete bool) (*os.File, error) {
	if complete || path == "" {
		return r.cache.Open(cacheKey(r.s.m))
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return f, err
}

func (r *streamReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.s.m.Size
	}
	if offset < 0 {
		return 0, errors.New("seek before the start of the media")
	}
	r.pos = offset
	return offset, nil
}

func (r *streamReader) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
