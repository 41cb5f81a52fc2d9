package terminal

import (
	"fmt"
	"log/slog"
	"sync"

	"dalaba/audio"
	"dalaba/protocol"
)

// speaker owns the audio output. An output that cannot open is a fault and
// is tried again on the next alert.
//
// The output rests while the amplifier is OFF: the player wakes it as it
// switches the relay ON (a warm-up or more before the first sample) and
// lets it rest once the relay is OFF again, after the tail.
type speaker struct {
	t    *Terminal
	cfg  AudioConfig
	log  *slog.Logger
	open func() (audio.Sink, error) // replaced in tests

	mu    sync.Mutex
	sink  audio.Sink
	awake bool // the player wants the output awake
}

// restingSink is an output that costs processor time while open, even in
// silence, unless suspended (audio.PulseStreamSink and audio.OtoSink, the
// system outputs: about 1–2% of a core).
type restingSink interface {
	Suspend() error
	Resume() error
}

func newSpeaker(t *Terminal, cfg AudioConfig) *speaker {
	s := &speaker{t: t, cfg: cfg, log: t.log.With("subsystem", "audio")}
	s.open = s.openSink
	return s
}

func (s *speaker) openSink() (audio.Sink, error) {
	switch s.cfg.Output {
	case "wav":
		return audio.NewWAVFileSink(s.cfg.Dir, s.cfg.Rate)
	case "silent":
		return audio.NewSilentSink(s.cfg.Rate), nil
	case "hold":
		return audio.NewHoldSink(s.cfg.Rate), nil
	case "oto":
		return audio.OpenSystemOutput(s.cfg.Rate)
	}
	return nil, fmt.Errorf("audio.output %q has no sink", s.cfg.Output)
}

func (s *speaker) start() {
	if _, err := s.get(); err != nil {
		s.log.Error("audio output not ready", "err", err)
	}
}

// get returns the open sink, opening it if needed.
func (s *speaker) get() (audio.Sink, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sink != nil {
		return s.sink, nil
	}
	sink, err := s.open()
	if err == nil {
		err = s.apply(sink)
		if err != nil {
			sink.Close()
		}
	}
	if err != nil {
		err = fmt.Errorf("audio output %q cannot open: %w", s.cfg.Output, err)
		s.t.faults.raise(protocol.FaultAudio, err.Error())
		return nil, err
	}
	s.sink = sink
	s.t.faults.clear(protocol.FaultAudio, "audio output open")
	return sink, nil
}

// apply suspends or resumes sink as the player wants it. Callers hold s.mu.
func (s *speaker) apply(sink audio.Sink) error {
	r, ok := sink.(restingSink)
	switch {
	case !ok:
		return nil
	case s.awake:
		return r.Resume()
	}
	return r.Suspend()
}

// wake readies the output for playing, as the relay switches ON. An output
// that fails to wake is dropped, to be opened again, and raises the audio
// fault; the output is then left resting.
func (s *speaker) wake() error {
	return s.setAwake(true)
}

// rest lets the output rest while nothing plays (the relay is OFF).
func (s *speaker) rest() {
	s.setAwake(false)
}

func (s *speaker) setAwake(awake bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.awake = awake
	if s.sink == nil {
		return nil
	}
	err := s.apply(s.sink)
	if err == nil {
		return nil
	}
	s.awake = false
	s.sink.Close()
	s.sink = nil
	err = fmt.Errorf("audio output %q failed: %w", s.cfg.Output, err)
	s.t.faults.raise(protocol.FaultAudio, err.Error())
	return err
}

// failed drops a sink whose playback failed, to reopen it next time.
func (s *speaker) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sink != nil {
		s.sink.Close()
		s.sink = nil
	}
	s.t.faults.raise(protocol.FaultAudio, err.Error())
}

// probe opens again an output that failed, so that its recovery (the audio
// server is back) is reported before the next alert needs it.
func (s *speaker) probe() {
	if s.t.faults.isActive(protocol.FaultAudio) {
		s.get()
	}
}

func (s *speaker) ok() bool {
	s.mu.Lock()
	open := s.sink != nil
	s.mu.Unlock()
	return open && !s.t.faults.isActive(protocol.FaultAudio)
}

func (s *speaker) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sink != nil {
		s.sink.Close()
		s.sink = nil
	}
}
