package terminal

import (
	"context"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/protocol"
)

// restingWAV is the rig's WAV output with a suspendable output's Suspend
// and Resume, as the system outputs (audio.PulseStreamSink, audio.OtoSink)
// have: it notes what happened, and when.
type restingWAV struct {
	audio.Sink
	mu     sync.Mutex
	awake  bool
	events []sinkEvent
}

var _ restingSink = (*restingWAV)(nil)

type sinkEvent struct {
	what  string // resume, suspend, play, played
	awake bool   // the output was awake at that moment
	at    time.Time
}

func (s *restingWAV) note(what string) {
	s.events = append(s.events, sinkEvent{what, s.awake, time.Now()})
}

func (s *restingWAV) Suspend() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.awake = false
	s.note("suspend")
	return nil
}

func (s *restingWAV) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.awake = true
	s.note("resume")
	return nil
}

func (s *restingWAV) Play(ctx context.Context, pcm io.Reader) error {
	s.mu.Lock()
	s.note("play")
	s.mu.Unlock()
	err := s.Sink.Play(ctx, pcm)
	s.mu.Lock()
	s.note("played")
	s.mu.Unlock()
	return err
}

func (s *restingWAV) isAwake() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.awake
}

func (s *restingWAV) log() []sinkEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// TestOutputRestsWhileIdle: the audio output is suspended while the
// terminal waits (an awake oto output costs about 2% of a core in
// silence), woken as the relay switches ON, a warm-up before the first
// sample, kept awake across back-to-back alerts, and suspended again only
// after the last one and its tail, once the relay is OFF.
func TestOutputRestsWhileIdle(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.cfg.WarmupMS, r.cfg.TailMS = 150, 100
	sink := &restingWAV{}
	r.start(func(term *Terminal) {
		term.speaker.open = func() (audio.Sink, error) {
			wav, err := audio.NewWAVFileSink(r.wavDir, r.cfg.Audio.Rate)
			sink.Sink = wav
			return sink, err
		}
	})
	if ev := sink.log(); len(ev) == 0 || sink.isAwake() {
		t.Fatalf("output awake while the terminal waits: %v", ev)
	}
	base := len(sink.log())

	first := ctl.alert([]protocol.Media{tone(ctl, 300*time.Millisecond)}, nil)
	second := ctl.alert([]protocol.Media{tone(ctl, 200*time.Millisecond)}, nil)
	ctl.send(ctl.sign(first))
	ctl.send(ctl.sign(second))
	ctl.waitState(first.ID, protocol.DeliveryDone)
	ctl.waitState(second.ID, protocol.DeliveryDone)
	eventually(t, "the output suspended after the relay switched OFF", func() bool { return !sink.isAwake() })
	if r.board.On(1) {
		t.Fatal("relay left ON")
	}

	ev := sink.log()[base:]
	var whats []string
	for _, e := range ev {
		whats = append(whats, e.what)
	}
	t.Logf("output: %v", whats)
	if want := []string{"resume", "play", "played", "play", "played", "suspend"}; !slices.Equal(whats, want) {
		t.Fatalf("output went %v, want %v: woken once, both alerts back to back, then suspended", whats, want)
	}
	for _, e := range ev[1:5] {
		if !e.awake {
			t.Errorf("%s at %v with the output suspended", e.what, e.at)
		}
	}
	if lead := ev[1].at.Sub(ev[0].at); lead < ms(r.cfg.WarmupMS)-5*time.Millisecond {
		t.Errorf("woken %v before the first play, want at least the warm-up (%d ms)", lead, r.cfg.WarmupMS)
	}
	if after := ev[5].at.Sub(ev[4].at); after < ms(r.cfg.TailMS) {
		t.Errorf("suspended %v after the last play, want after the tail (%d ms)", after, r.cfg.TailMS)
	}
}
