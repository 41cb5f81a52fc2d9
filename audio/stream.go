package audio

import (
	"encoding/binary"
	"io"
	"math"
	"sync"
	"time"
)

// Stream is a jitter buffer for live audio: Write takes 16-bit mono PCM as
// it arrives from the network; Read gives s16le stereo at the sink's rate,
// for Sink.Play.
//
// Read first waits until Prebuffer of audio is queued (keeping only the
// newest Prebuffer, so a late start does not add delay), then returns what
// is queued. When the queue runs dry Read waits briefly and returns no
// bytes, so the sink plays silence instead of stopping; once the audio
// handed out has all been heard, it prebuffers again. Audio queued beyond
// MaxDelay (counting what the sink holds) is dropped, oldest first, so a
// burst after a stall never leaves a lasting delay. After Close, Read
// returns what is queued and then io.EOF; after Abort, io.EOF at once.
type Stream struct {
	inRate, outRate int64
	gain            float64
	prebuffer       int64 // bytes of output
	maxDelay        time.Duration

	mu        sync.Mutex
	arrived   chan struct{} // signalled by Write and Close
	q         []byte        // output PCM not yet read
	buffering bool
	closed    bool
	aborted   bool
	drainAt   time.Time // when the sink will have played everything read so far
	// resampling state: output frame n sits at input position n·in/out
	last    float64 // the previous input sample
	inBase  int64   // absolute index of the next input sample
	n       int64   // next output frame
	havePrv bool
	dropped int64 // output bytes dropped as late
	gaps    int   // times the queue ran dry while playing
}

// streamPoll bounds how long Read waits for audio before it returns none,
// so a sink's read loop never blocks for long.
const streamPoll = 10 * time.Millisecond

// NewStream returns a jitter buffer from mono PCM at inRate to stereo at
// outRate, scaled by Gain(volume).
func NewStream(inRate, outRate, volume int, prebuffer, maxDelay time.Duration) *Stream {
	s := &Stream{inRate: int64(inRate), outRate: int64(outRate), gain: Gain(volume), maxDelay: maxDelay,
		arrived: make(chan struct{}, 1), buffering: true}
	s.prebuffer = s.bytesFor(prebuffer)
	return s
}

func (s *Stream) bytesFor(d time.Duration) int64 {
	return int64(d) * s.outRate / int64(time.Second) * frameBytes
}

func (s *Stream) durationOf(n int64) time.Duration {
	return time.Duration(n / frameBytes * int64(time.Second) / s.outRate)
}

// Write queues mono s16le PCM (an odd trailing byte is ignored).
func (s *Stream) Write(pcm []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	for i := 0; i+1 < len(pcm); i += 2 {
		v := float64(int16(binary.LittleEndian.Uint16(pcm[i:])))
		if !s.havePrv {
			s.last, s.havePrv = v, true
		}
		// Emit the output frames that lie between the previous sample and this one.
		for {
			pos := s.n * s.inRate
			idx, rem := pos/s.outRate, pos%s.outRate
			if idx >= s.inBase {
				break
			}
			t := float64(rem) / float64(s.outRate)
			out := (s.last + (v-s.last)*t) * s.gain
			sample := uint16(int16(math.Round(min(max(out, -32768), 32767))))
			s.q = binary.LittleEndian.AppendUint16(s.q, sample)
			s.q = binary.LittleEndian.AppendUint16(s.q, sample)
			s.n++
		}
		s.last = v
		s.inBase++
	}
	s.trim(time.Now())
	select {
	case s.arrived <- struct{}{}:
	default:
	}
}

// trim drops the oldest queued audio beyond the allowed delay. Callers hold s.mu.
func (s *Stream) trim(now time.Time) {
	limit := s.prebuffer
	if !s.buffering {
		limit = s.bytesFor(s.maxDelay - max(s.drainAt.Sub(now), 0))
	}
	if extra := int64(len(s.q)) - max(limit, s.prebuffer); extra > 0 {
		extra -= extra % frameBytes
		s.q = s.q[extra:]
		s.dropped += extra
	}
}

// Close ends the stream: Read returns the queued audio, then io.EOF.
func (s *Stream) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	select {
	case s.arrived <- struct{}{}:
	default:
	}
}

// Abort ends the stream at once: Read returns io.EOF.
func (s *Stream) Abort() {
	s.mu.Lock()
	s.aborted = true
	s.mu.Unlock()
	s.Close()
}

// Read implements io.Reader. It returns (0, nil) when no audio is ready.
func (s *Stream) Read(p []byte) (int, error) {
	for waited := false; ; waited = true {
		s.mu.Lock()
		n, err, ok := s.take(p, time.Now())
		s.mu.Unlock()
		if ok || waited {
			return n, err
		}
		t := time.NewTimer(streamPoll)
		select {
		case <-s.arrived:
		case <-t.C:
		}
		t.Stop()
	}
}

// take hands out queued audio if it may. Callers hold s.mu.
func (s *Stream) take(p []byte, now time.Time) (n int, err error, ok bool) {
	if s.aborted || s.closed && len(s.q) == 0 {
		return 0, io.EOF, true
	}
	if !s.buffering && len(s.q) == 0 && !now.Before(s.drainAt) {
		s.buffering = true // everything handed out has been heard: build up again
		s.gaps++
	}
	if s.buffering {
		if int64(len(s.q)) < s.prebuffer && !s.closed {
			return 0, nil, false
		}
		s.trim(now)
		s.buffering = false
	}
	n = copy(p[:len(p)-len(p)%frameBytes], s.q)
	if n == 0 {
		return 0, nil, false
	}
	s.q = s.q[n:]
	if s.drainAt.Before(now) {
		s.drainAt = now
	}
	s.drainAt = s.drainAt.Add(s.durationOf(int64(n)))
	return n, nil, true
}

// Stats returns how much audio was dropped as late and how often the
// queue ran dry while playing.
func (s *Stream) Stats() (dropped time.Duration, gaps int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.durationOf(s.dropped), s.gaps
}
