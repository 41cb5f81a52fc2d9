package terminal

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/terminal/relay"
	"dalaba/terminal/relay/relaysim"
)

// rig is a terminal under test with its relay board and audio folder.
type rig struct {
	t      *testing.T
	ctl    *fakeController
	board  *relaysim.Board
	dir    string // data_dir
	wavDir string
	cfg    Config
	term   *Terminal
	stop   func()
}

func newRig(t *testing.T, ctl *fakeController) *rig {
	r := &rig{t: t, ctl: ctl, board: relaysim.New("lcus", 0), dir: t.TempDir(), wavDir: t.TempDir()}
	r.cfg = DefaultConfig()
	r.cfg.Controllers = []string{ctl.url}
	r.cfg.DataDir = r.dir
	r.cfg.EnrollToken = "123456." + ctl.fingerprint()
	r.cfg.Relay = RelayConfig{Protocol: "sim", Channel: 1, TimeoutMS: 300}
	r.cfg.Audio = AudioConfig{Output: "wav", Dir: r.wavDir, Rate: 16000}
	r.cfg.WarmupMS, r.cfg.TailMS = 50, 50
	if err := r.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs a Terminal on the rig's data folder and waits for its welcome.
func (r *rig) start(adjust ...func(*Terminal)) *Terminal {
	r.t.Helper()
	ctl := r.ctl
	ctl.mu.Lock()
	welcomes := ctl.welcomes
	ctl.mu.Unlock()
	r.term = r.startNoWait(adjust...)
	ctl.waitFor("welcome", func() bool { return ctl.welcomes > welcomes })
	r.waitConnected()
	return r.term
}

func (r *rig) waitConnected() {
	r.t.Helper()
	eventually(r.t, "terminal connected", func() bool { return r.term.Status().Connected })
}

// eventually polls cond, for state that only the terminal holds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *rig) startNoWait(adjust ...func(*Terminal)) *Terminal {
	term := New(r.cfg, testLogger(r.t))
	term.amp.open = func(ctx context.Context) (relay.Relay, error) {
		return pipeRelay(ctx, r.board, r.cfg.Relay), nil
	}
	for _, f := range adjust {
		f(term)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- term.Run(ctx) }()
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				r.t.Errorf("Run: %v", err)
			}
		case <-time.After(2 * time.Second):
			r.t.Error("terminal did not stop within 2 s")
		}
	}
	r.t.Cleanup(r.stop)
	return term
}

// pipeRelay drives board with the real LCUS driver over an in-memory pipe.
func pipeRelay(ctx context.Context, board *relaysim.Board, c RelayConfig) relay.Relay {
	ours, theirs := net.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	go board.Serve(ctx, theirs)
	return &simRelay{Relay: relay.NewLCUS(ours, c.Channel, time.Duration(c.TimeoutMS)*time.Millisecond), board: board, end: theirs, cancel: cancel}
}

// ops returns the operations the board received after the first skip frames.
func (r *rig) ops(skip int) []string {
	var out []string
	for _, e := range r.board.Log()[skip:] {
		out = append(out, e.Op)
	}
	return out
}

// wavs returns the WAV files the audio output wrote.
func (r *rig) wavs() []string {
	names, _ := filepath.Glob(filepath.Join(r.wavDir, "*.wav"))
	return names
}

// playedTone returns how long the tone at freq sounds in the WAV files the
// audio output wrote (one per media played).
func (r *rig) playedTone(freq float64) time.Duration {
	r.t.Helper()
	var total time.Duration
	for _, name := range r.wavs() {
		b, err := os.ReadFile(name)
		if err != nil {
			r.t.Fatal(err)
		}
		s, rate, err := audio.ReadWAV(b)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, seg := range audio.ToneSegments(s, rate, freq) {
			total += seg.End - seg.Start
		}
	}
	return total
}

// testLogger logs into the test's output until the test ends.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

var _ io.Writer = (*testWriter)(nil)
