package audio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jfreymuth/pulse"
	"github.com/jfreymuth/pulse/proto"
)

// Buffering of a PulseStreamSink's stream.
const (
	// streamTarget is the audio the server holds for the stream (its
	// tlength): the latency, as oto's device buffer is, so it bounds how long
	// sound continues after a cancel and how long Play waits after the last
	// sample.
	streamTarget = 50 * time.Millisecond
	// streamRequest is the least the server asks for at once (minreq). The
	// process wakes once per request: left to the server, a 50 ms stream is
	// asked for 12.5 ms at a time, about 80 times a second; 20 ms halves
	// that at the same latency. Larger leaves the server's own buffer
	// (tlength − 2 × minreq) too small: it then wakes every half millisecond.
	streamRequest = 20 * time.Millisecond
	// streamCheck is how often a Play checks that the server still takes
	// audio; streamStall how long it may not before Play gives up.
	streamCheck = 250 * time.Millisecond
	streamStall = 2 * time.Second
)

// PulseStreamSink plays through a PulseAudio server over a connection and a
// playback stream of its own, kept open from NewPulseStreamSink to Close and
// fed silence between Plays, as oto's output is, but with its buffering
// chosen: a 50 ms stream asked for audio at least 20 ms at a time, which
// wakes the process about half as often as oto does at the same latency
// (docs/benchmarks.md, "Terminal footprint").
//
// A sink opens awake; Suspend it while nothing is to play and the server
// stops asking it for audio, and Resume it at least a stream buffer (50 ms)
// before the next Play: the server first plays out a buffer of silence. A
// Play on a suspended sink runs the stream for its duration. A sink whose
// server went away fails its Plays and Resume with an error wrapping
// ErrNoDevice; open a new one.
type PulseStreamSink struct {
	rate   int
	client *pulse.Client
	stream *pulse.PlaybackStream
	turn   chan struct{} // holds a token while a Play runs

	mu      sync.Mutex
	wake    *sync.Cond  // signalled when the stream may run again or the sink closes
	feed    *streamFeed // the running Play's audio; nil: silence
	holds   int         // awake (1, unless resting) plus the running Play
	resting bool        // Suspended
	closed  bool
	taken   time.Time // when the server last took audio
}

var _ Sink = (*PulseStreamSink)(nil)

// NewPulseStreamSink connects to the PulseAudio server (PULSE_SERVER, else
// the user's default) and opens a stream for s16le stereo PCM at rate.
func NewPulseStreamSink(rate int) (*PulseStreamSink, error) {
	if rate < minRate || rate > maxRate {
		return nil, fmt.Errorf("audio: rate %d Hz out of range (%d..%d Hz)", rate, minRate, maxRate)
	}
	c, err := pulse.NewClient(pulse.ClientApplicationName("dalaba"), pulse.ClientTimeout(streamStall))
	if err != nil {
		return nil, &deviceError{"audio: cannot connect to PulseAudio: " + err.Error()}
	}
	s := &PulseStreamSink{rate: rate, client: c, turn: make(chan struct{}, 1), holds: 1, taken: time.Now()}
	s.wake = sync.NewCond(&s.mu)
	bytesOf := func(d time.Duration) uint32 {
		return uint32(int64(rate)*int64(d)/int64(time.Second)) * frameBytes
	}
	stream, err := c.NewPlayback(pulse.NewReader(streamReader{s}, proto.FormatInt16LE), pulse.PlaybackStereo,
		pulse.PlaybackSampleRate(rate), pulse.PlaybackMediaName("dalaba"),
		pulse.PlaybackRawOption(func(r *proto.CreatePlaybackStream) {
			r.BufferTargetLength = bytesOf(streamTarget)
			r.BufferMaxLength = 2 * r.BufferTargetLength
			r.BufferMinimumRequest = bytesOf(streamRequest)
			r.AdjustLatency = false // the server's buffer is tlength − 2 × minreq, not half of tlength
		}))
	if err != nil {
		c.Close()
		return nil, &deviceError{"audio: PulseAudio refused a playback stream: " + err.Error()}
	}
	s.stream = stream
	// Start waits for the server to start playing, which it may never do
	// if the server stalls; on a null sink it takes up to 2 s.
	started := make(chan struct{})
	go func() { stream.Start(); close(started) }()
	select {
	case <-started:
	case <-time.After(otoOpenTimeout):
		s.Close()
		return nil, &deviceError{fmt.Sprintf("audio: PulseAudio did not start a playback stream within %v", otoOpenTimeout)}
	}
	return s, nil
}

// Rate returns the sample rate of the PCM the sink expects.
func (s *PulseStreamSink) Rate() int { return s.rate }

// Close ends the stream and the connection. It waits for a Play in
// progress: cancel it first.
func (s *PulseStreamSink) Close() error {
	s.turn <- struct{}{}
	defer func() { <-s.turn }()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.wake.Broadcast()
	s.mu.Unlock()
	s.stream.Close()
	s.client.Close()
	return nil
}

// Suspend lets the stream rest: the server stops asking for audio once what
// it holds has played. A Play in progress plays on to its end. Suspending a
// suspended or closed sink does nothing.
func (s *PulseStreamSink) Suspend() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.resting {
		return nil
	}
	s.resting = true
	s.holds--
	return nil
}

// Resume wakes the stream for the Plays to come, if it was suspended. It
// fails, wrapping ErrNoDevice, if the server went away.
func (s *PulseStreamSink) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("audio: resume a closed sink")
	}
	if s.stream.Closed() {
		return &deviceError{"audio: the PulseAudio server went away"}
	}
	if !s.resting {
		return nil
	}
	s.resting = false
	s.hold()
	return nil
}

// hold runs the stream for one more holder. Callers hold s.mu.
func (s *PulseStreamSink) hold() {
	if s.holds++; s.holds == 1 {
		s.taken = time.Now() // a resting stream took nothing; it is not stalled
		s.wake.Broadcast()
	}
}

// Play plays pcm and returns once its last sample has been played, as
// OtoSink.Play does: on cancel it stops feeding the stream at once (what
// the server holds, up to 50 ms, still sounds) and returns ctx.Err(),
// waiting for a read of pcm in progress to return. If the server stops
// taking audio for 2 s, or goes away, Play fails with an error wrapping
// ErrNoDevice.
func (s *PulseStreamSink) Play(ctx context.Context, pcm io.Reader) error {
	select {
	case s.turn <- struct{}{}:
		defer func() { <-s.turn }()
	case <-ctx.Done():
		return ctx.Err()
	}
	f := &streamFeed{r: &readTracker{r: pcm}, ended: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("audio: play on a closed sink")
	}
	s.feed = f
	s.hold()
	s.mu.Unlock()
	defer func() {
		f.stop() // no read of pcm after Play returns
		s.mu.Lock()
		s.feed = nil
		s.holds--
		s.mu.Unlock()
	}()

	check := time.NewTicker(streamCheck)
	defer check.Stop()
	for ended := false; !ended; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.ended:
			ended = true
		case <-check.C:
			if err := s.failure(); err != nil {
				return err
			}
		}
	}
	if err := f.r.failure(); err != nil {
		return fmt.Errorf("audio: play: %w", err)
	}
	return wait(ctx, time.Until(f.endedAt().Add(streamTarget))) // the last samples are in the server's buffer now; until they sound
}

// failure returns the error for a stream that the server stopped taking
// audio from, or nil. (The stream's Error is not read: the client sets it
// without synchronisation.)
func (s *PulseStreamSink) failure() error {
	if s.stream.Closed() {
		return &deviceError{"audio: the PulseAudio server went away"}
	}
	s.mu.Lock()
	idle := time.Since(s.taken)
	s.mu.Unlock()
	if idle > streamStall {
		return &deviceError{fmt.Sprintf("audio: the audio device stopped playing (no progress for %v)", streamStall)}
	}
	return nil
}

// read fills b for the server: the running Play's audio, else silence. It
// blocks while nothing holds the stream, so that the server, its request
// unanswered, stops asking; Close ends the stream.
func (s *PulseStreamSink) read(b []byte) (int, error) {
	s.mu.Lock()
	for s.holds == 0 && !s.closed {
		s.wake.Wait()
	}
	if s.closed {
		s.mu.Unlock()
		return 0, pulse.EndOfData
	}
	f := s.feed
	s.taken = time.Now()
	s.mu.Unlock()
	n := 0
	if f != nil {
		n = f.fill(b)
	}
	clear(b[n:])
	return len(b), nil
}

// streamReader is the stream's view of its sink.
type streamReader struct{ s *PulseStreamSink }

func (r streamReader) Read(b []byte) (int, error) { return r.s.read(b) }

// streamFeed is one Play's audio as the stream takes it.
type streamFeed struct {
	r     *readTracker
	ended chan struct{} // closed once pcm has ended

	mu      sync.Mutex
	stopped bool
	done    bool
	doneAt  time.Time // when the last sample went to the server
}

// fill reads whole frames of pcm into b and returns how many bytes it read;
// 0 once pcm has ended or the Play stopped.
func (f *streamFeed) fill(b []byte) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped || f.done {
		return 0
	}
	n, err := io.ReadFull(f.r, b[:len(b)-len(b)%frameBytes])
	n -= n % frameBytes
	if err != nil {
		f.done, f.doneAt = true, time.Now()
		close(f.ended)
	}
	return n
}

// endedAt returns when the last sample went to the server.
func (f *streamFeed) endedAt() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.doneAt
}

// stop ends the feed, waiting for a read of pcm in progress.
func (f *streamFeed) stop() {
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
}
