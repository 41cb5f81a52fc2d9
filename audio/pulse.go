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

// pulseLatency is the buffer asked of the PulseAudio server, and the wait
// after the last sample. Twice oto's, since this output is fed from its own
// goroutine on a busy board; a cancel deletes the stream, which silences
// it at once whatever is buffered.
const pulseLatency = 100 * time.Millisecond

// PulseSink plays through a PulseAudio server over a connection of its own,
// one playback stream per Play. Unlike oto's one context per process, a
// PulseSink can be opened again after the server went away and came back.
// The system output no longer uses it: PulseStreamSink, its stream kept
// open between Plays, starts a Play's audio a set latency after the call,
// which the terminal's start timing relies on, and can rest while idle.
type PulseSink struct {
	rate   int
	client *pulse.Client
	turn   chan struct{} // holds a token while a Play runs
}

// NewPulseSink connects to the PulseAudio server (PULSE_SERVER, else the
// user's default) for PCM at rate.
func NewPulseSink(rate int) (*PulseSink, error) {
	if rate < minRate || rate > maxRate {
		return nil, fmt.Errorf("audio: rate %d Hz out of range (%d..%d Hz)", rate, minRate, maxRate)
	}
	c, err := pulse.NewClient(pulse.ClientApplicationName("dalaba"), pulse.ClientTimeout(otoStallTimeout))
	if err != nil {
		return nil, &deviceError{"audio: cannot connect to PulseAudio: " + err.Error()}
	}
	return &PulseSink{rate: rate, client: c, turn: make(chan struct{}, 1)}, nil
}

// Rate returns the sample rate of the PCM the sink expects.
func (s *PulseSink) Rate() int { return s.rate }

// Close ends the connection. It waits for a Play in progress: cancel it
// first.
func (s *PulseSink) Close() error {
	s.turn <- struct{}{}
	defer func() { <-s.turn }()
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
	return nil
}

// Play plays pcm and returns once its last sample has been played, as
// OtoSink.Play does. If the server goes away it fails with an error
// wrapping ErrNoDevice.
func (s *PulseSink) Play(ctx context.Context, pcm io.Reader) error {
	select {
	case s.turn <- struct{}{}:
		defer func() { <-s.turn }()
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.client == nil {
		return errors.New("audio: play on a closed sink")
	}
	src := &pulseSource{r: &readTracker{r: pcm}, eof: make(chan struct{})}
	stream, err := s.client.NewPlayback(pulse.NewReader(src, proto.FormatInt16LE), pulse.PlaybackStereo,
		pulse.PlaybackSampleRate(s.rate), pulse.PlaybackLatency(pulseLatency.Seconds()), pulse.PlaybackMediaName("dalaba"))
	if err != nil {
		return &deviceError{"audio: PulseAudio refused a playback stream: " + err.Error()}
	}
	defer func() {
		src.stop() // no read of pcm after Play returns
		stream.Close()
	}()
	stream.Start()
	begin := time.Now()
	tick := time.NewTimer(otoPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		tick.Reset(src.r.pollEvery())
		if stream.Closed() || stream.Error() != nil {
			msg := "audio: the PulseAudio server went away"
			if err := stream.Error(); err != nil {
				msg += " (" + err.Error() + ")"
			}
			return &deviceError{msg}
		}
		select {
		case <-src.eof:
		default:
			continue
		}
		if err := src.r.failure(); err != nil {
			return fmt.Errorf("audio: play: %w", err)
		}
		played := samplesDuration(src.r.count()/frameBytes, s.rate) + pulseLatency
		if time.Since(begin) >= played {
			return nil
		}
	}
}

// pulseSource feeds a stream from pcm until EOF, then ends the stream. The
// stream reads from its own goroutine; stop makes later reads end it.
type pulseSource struct {
	r    *readTracker
	eof  chan struct{}
	once sync.Once

	mu      sync.Mutex
	stopped bool
}

func (p *pulseSource) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return 0, pulse.EndOfData
	}
	b = b[:len(b)-len(b)%frameBytes]
	n, err := io.ReadFull(p.r, b)
	n -= n % frameBytes
	if err != nil {
		p.once.Do(func() { close(p.eof) })
		if n == 0 {
			return 0, pulse.EndOfData
		}
	}
	return n, nil
}

func (p *pulseSource) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
}
