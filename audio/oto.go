package audio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebitengine/oto/v3"
)

// ErrNoDevice reports that the system audio output cannot be used.
var ErrNoDevice = errors.New("audio device unavailable")

// Timing of the oto output.
const (
	// otoDeviceBuffer is the latency asked of the audio server. It bounds
	// how long sound continues after a cancel and how long Play waits after
	// the last sample left the process.
	otoDeviceBuffer = 50 * time.Millisecond
	// otoPlayerBuffer is how much PCM oto reads ahead of the device.
	otoPlayerBuffer = 200 * time.Millisecond
	// Play checks its output every otoPollPlaying while the source has
	// audio left (a cancel wakes it at once), and every otoPoll once the
	// source has ended, so that it returns within otoPoll of the last
	// sample. Checking every 5 ms throughout cost about 4% of a core
	// (docs/benchmarks.md, "Terminal footprint").
	otoPollPlaying  = 50 * time.Millisecond
	otoPoll         = 5 * time.Millisecond
	otoOpenTimeout  = 10 * time.Second
	otoStallTimeout = 2 * time.Second
)

// deviceError is a failure to open or use the audio output.
type deviceError struct{ msg string }

func (e *deviceError) Error() string { return e.msg }
func (e *deviceError) Unwrap() error { return ErrNoDevice }

// otoShared is the process's single oto context: oto allows one per process,
// and only one attempt to create it.
//
// A running context costs processor time even in silence: the audio server
// asks it for audio about 170 times a second at the 50 ms device buffer,
// about 2% of a core (docs/benchmarks.md, "Terminal footprint"). So it runs
// only while something holds it: an OtoSink that is open and awake (not
// Suspended), or a Play in progress; with no hold it is suspended.
var otoShared otoState

// otoState is the shared oto context and its bookkeeping.
type otoState struct {
	mu        sync.Mutex
	ctx       *oto.Context
	rate      int
	err       error // the failure of the one attempt, returned again on later calls
	holds     int   // awake open sinks plus Plays in progress
	suspended bool  // the context is suspended (no holds)
	broken    bool  // the context stopped playing (its audio server went away)
}

// otoHold takes a hold on the shared context, resuming it if it was
// suspended.
func otoHold() error {
	o := &otoShared
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.holdLocked()
}

// holdLocked is otoHold for callers that hold otoShared.mu.
func (o *otoState) holdLocked() error {
	if o.suspended {
		if err := o.ctx.Resume(); err != nil {
			o.broken = true
			return otoDeviceError("cannot resume the audio device", err)
		}
		o.suspended = false
	}
	o.holds++
	return nil
}

// otoRelease gives a hold back, suspending the context when it was the last.
func otoRelease() error {
	o := &otoShared
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.holds--; o.holds > 0 {
		return nil
	}
	o.suspended = true // even if oto fails: the next hold tries to resume it
	if err := o.ctx.Suspend(); err != nil {
		o.broken = true
		return otoDeviceError("cannot suspend the audio device", err)
	}
	return nil
}

// otoSuspended reports whether the shared context is suspended.
func otoSuspended() bool {
	o := &otoShared
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.suspended
}

// OpenSystemOutput opens the system audio output at rate: a
// PulseStreamSink, a connection and stream of its own, while a PulseAudio
// server answers; else oto, which then plays through ALSA (its one context
// per process is kept once open). A PulseStreamSink wakes the process about
// half as often as oto does through PulseAudio at the same latency
// (docs/benchmarks.md, "Terminal footprint"), and a new one is opened each
// time, so that the output comes back when a server that went away does,
// without restarting the process. The error, when neither works, names
// both failures.
func OpenSystemOutput(rate int) (Sink, error) {
	o := &otoShared
	o.mu.Lock()
	otoOpen := o.ctx != nil && !o.broken
	otoTried := o.ctx != nil || o.err != nil
	o.mu.Unlock()
	if otoOpen { // oto got the device when PulseAudio did not answer
		sink, err := NewOtoSink(rate)
		if err == nil {
			return sink, nil
		}
		if !errors.Is(err, ErrNoDevice) {
			return nil, err
		}
	}
	sink, err := NewPulseStreamSink(rate)
	if err == nil {
		return sink, nil
	}
	if !otoTried {
		sink, otoErr := NewOtoSink(rate)
		if otoErr == nil {
			return sink, nil
		}
		if !errors.Is(otoErr, ErrNoDevice) {
			return nil, otoErr
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return nil, fmt.Errorf("%w; %w", o.err, err)
	}
	return nil, err
}

// OtoSink plays through the system audio (PulseAudio, else ALSA) with oto.
// Play calls on one OtoSink run one at a time; several OtoSinks share the
// process's one output and are mixed.
//
// A sink opens awake. While nothing is to play, Suspend it: the output is
// suspended once no open sink is awake and no Play runs, and then costs no
// processor time (awake and silent, it costs about 2% of a core). Resume it
// a little before the next Play: a resumed output first sends the audio
// server a whole device buffer (50 ms) of what it has, silence, before a
// new Play's audio. A Play on a suspended sink resumes the output itself,
// for its duration, so its first sample may sound that much later.
type OtoSink struct {
	rate    int
	ctx     *oto.Context
	turn    chan struct{} // holds a token while a Play runs
	mu      sync.Mutex
	closed  bool
	resting bool // Suspended: this sink holds no hold on the output
}

// NewOtoSink opens the system audio output at rate (normally 48000), stereo
// s16le: PulseAudio (at PULSE_SERVER if set), else ALSA.
//
// oto supports a single output per process, opened once: a later call with
// the same rate shares it, one with another rate fails, and if opening
// failed every later call returns the same error (restart the process to
// retry). When no device can be opened the error wraps ErrNoDevice and
// reads like "audio: cannot open the audio device (PulseAudio: ...; ALSA: ...)".
//
// Tests: open it in a child process that exits before its PulseAudio server
// is stopped (see package pulsetest), because the PulseAudio client under oto
// sets its error without synchronisation when the server goes away, which the
// race detector reports.
func NewOtoSink(rate int) (*OtoSink, error) {
	if rate < minRate || rate > maxRate {
		return nil, fmt.Errorf("audio: rate %d Hz out of range (%d..%d Hz)", rate, minRate, maxRate)
	}
	o := &otoShared
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return nil, o.err
	}
	if o.ctx == nil {
		ctx, err := openOto(rate)
		if err != nil {
			o.err = err
			return nil, err
		}
		o.ctx, o.rate = ctx, rate
	} else if rate != o.rate {
		return nil, fmt.Errorf("audio: the audio device is already open at %d Hz in this process; cannot also open it at %d Hz", o.rate, rate)
	}
	if err := o.holdLocked(); err != nil {
		return nil, err
	}
	return &OtoSink{rate: rate, ctx: o.ctx, turn: make(chan struct{}, 1)}, nil
}

// openOto creates the oto context and waits for its driver to be ready.
func openOto(rate int) (*oto.Context, error) {
	ctx, ready, err := oto.NewContext(&oto.NewContextOptions{
		SampleRate:      rate,
		ChannelCount:    2,
		Format:          oto.FormatSignedInt16LE,
		BufferSize:      otoDeviceBuffer,
		ApplicationName: "dalaba",
	})
	if err != nil {
		return nil, otoDeviceError("cannot open the audio device", err)
	}
	select {
	case <-ready:
	case <-time.After(otoOpenTimeout):
		return nil, &deviceError{fmt.Sprintf("audio: cannot open the audio device (no answer after %v)", otoOpenTimeout)}
	}
	if err := ctx.Err(); err != nil {
		return nil, otoDeviceError("cannot open the audio device", err)
	}
	return ctx, nil
}

// otoDeviceError words an oto failure for a technician.
func otoDeviceError(what string, err error) error {
	detail := strings.TrimPrefix(err.Error(), "oto: initialization failed: ")
	detail = strings.ReplaceAll(detail, "oto: ", "")
	return &deviceError{fmt.Sprintf("audio: %s (%s)", what, detail)}
}

// Rate returns the sample rate of the PCM the sink expects.
func (s *OtoSink) Rate() int { return s.rate }

// Close releases the sink; when no OtoSink is awake any more the output is
// suspended. Close waits for a Play in progress to end: cancel it first.
func (s *OtoSink) Close() error {
	s.turn <- struct{}{}
	defer func() { <-s.turn }()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.resting {
		return nil
	}
	return otoRelease()
}

// Suspend lets the output rest: once no other OtoSink is awake and no Play
// runs, the audio server stops asking this process for audio. A Play in
// progress plays on to its end. Suspending a suspended or closed sink does
// nothing.
func (s *OtoSink) Suspend() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.resting {
		return nil
	}
	s.resting = true
	return otoRelease()
}

// Resume wakes the output for the Plays to come, if it was suspended.
// Resume it at least a device buffer (50 ms) before the next Play's first
// sample is due: the audio server is sent a buffer of silence first.
func (s *OtoSink) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("audio: resume a closed sink")
	}
	if !s.resting {
		return nil
	}
	if err := otoHold(); err != nil {
		return err
	}
	s.resting = false
	return nil
}

// Play plays pcm and returns once its last sample has left the device
// buffer. On cancel it stops feeding the device at once (what the device
// has buffered, up to about 50 ms, still sounds) and returns ctx.Err(). If
// a read of pcm is blocked at that moment, Play waits for it to return.
//
// If the device stops taking audio for 2 s while Play has audio for it (the
// audio server died, say), Play fails with an error wrapping ErrNoDevice.
func (s *OtoSink) Play(ctx context.Context, pcm io.Reader) error {
	select {
	case s.turn <- struct{}{}:
		defer func() { <-s.turn }()
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return errors.New("audio: play on a closed sink")
	}
	// The output runs while a Play does, even on a suspended sink.
	if err := otoHold(); err != nil {
		return err
	}
	defer otoRelease() // a failure to suspend marks the output broken; this Play played

	src := &readTracker{r: pcm}
	p := s.ctx.NewPlayer(src)
	p.SetBufferSize(int(int64(s.rate)*int64(otoPlayerBuffer)/int64(time.Second)) * frameBytes)
	p.Play()
	tick := time.NewTimer(otoPoll)
	defer tick.Stop()
	// The device's progress is what it has taken from the player. (Polling
	// the oto context's Err instead would race with the PulseAudio client,
	// which sets its error without synchronisation when the server goes.)
	lastTaken, lastMove := int64(-1), time.Now()
	for p.IsPlaying() {
		select {
		case <-ctx.Done():
			p.PauseAndStopReading()
			return ctx.Err()
		case <-tick.C:
		}
		tick.Reset(src.pollEvery())
		buffered := p.BufferedSize()
		taken := src.count() - int64(buffered)
		if taken != lastTaken || buffered == 0 { // moving, or waiting for pcm
			lastTaken, lastMove = taken, time.Now()
		} else if time.Since(lastMove) > otoStallTimeout {
			p.PauseAndStopReading()
			return s.stalled()
		}
	}
	if err := src.failure(); err != nil {
		return fmt.Errorf("audio: play: %w", err)
	}
	if err := p.Err(); err != nil {
		return fmt.Errorf("audio: play: %w", err)
	}
	return wait(ctx, otoDeviceBuffer) // the last samples are in the device buffer now; until they sound
}

// stalled returns the error for a device that stopped taking audio, and
// marks the context broken for OpenSystemOutput.
func (s *OtoSink) stalled() error {
	otoShared.mu.Lock()
	otoShared.broken = true
	otoShared.mu.Unlock()
	msg := fmt.Sprintf("audio: the audio device stopped playing (no progress for %v)", otoStallTimeout)
	if err := s.ctx.Err(); err != nil { // the failure, if any, is long recorded by now
		return otoDeviceError(msg[len("audio: "):], err)
	}
	return &deviceError{msg}
}

// readTracker counts the bytes read from a reader, notes when it ended and
// remembers its first error other than io.EOF.
type readTracker struct {
	r     io.Reader
	n     atomic.Int64
	ended atomic.Bool
	mu    sync.Mutex
	err   error
}

// Read implements io.Reader.
func (t *readTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n.Add(int64(n))
	if err != nil {
		t.ended.Store(true)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		t.mu.Lock()
		if t.err == nil {
			t.err = fmt.Errorf("read PCM: %w", err)
		}
		t.mu.Unlock()
	}
	return n, err
}

// count returns the bytes read so far.
func (t *readTracker) count() int64 { return t.n.Load() }

// pollEvery returns how long a Play reading t waits before it checks its
// output again: otoPollPlaying while t has audio left, otoPoll after.
func (t *readTracker) pollEvery() time.Duration {
	if t.ended.Load() {
		return otoPoll
	}
	return otoPollPlaying
}

// failure returns the error the reader met, if any.
func (t *readTracker) failure() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}
