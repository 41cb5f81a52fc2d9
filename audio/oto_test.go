package audio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"dalaba/audio/pulsetest"
)

// TestOtoSinkPulseAudio plays through oto into a real PulseAudio server
// and checks, in a recording of its null sink, what was heard and when.
//
// The playing happens in a child process (see package pulsetest): oto
// allows one output per process, and the child exits before the server is
// stopped.
func TestOtoSinkPulseAudio(t *testing.T) {
	if pulsetest.InChild() {
		otoChild(t)
		return
	}
	rec, samples, rate, marks := playInChild(t, "TestOtoSinkPulseAudio")
	type span struct{ start, end time.Time }
	heard := map[float64]span{}
	for _, c := range []struct {
		freq      float64
		want, tol time.Duration
	}{
		{1000, 500 * time.Millisecond, 60 * time.Millisecond},
		{2000, 400 * time.Millisecond, 100 * time.Millisecond},
		{1500, 200 * time.Millisecond, 60 * time.Millisecond},
	} {
		segs := ToneSegments(samples, rate, c.freq)
		if len(segs) != 1 {
			t.Fatalf("%v Hz tone heard as %v, want one segment", c.freq, segs)
		}
		heard[c.freq] = span{rec.Time(segs[0].Start), rec.Time(segs[0].End)}
		got := segs[0].End - segs[0].Start
		t.Logf("recording: %v Hz heard for %v (%v..%v)", c.freq, got, segs[0].Start, segs[0].End)
		if absDur(got-c.want) > c.tol {
			t.Errorf("%v Hz tone lasted %v in the recording, want %v ±%v", c.freq, got, c.want, c.tol)
		}
	}

	// Compare the recording's clock with the child's marks.
	tone, stopped := heard[1000], heard[2000]
	for _, name := range []string{"play", "played", "cancel"} {
		if marks[name].IsZero() {
			t.Fatalf("child did not mark %q: %v", name, marks)
		}
	}
	t.Logf("500 ms tone: heard %v after Play was called; Play returned %v after it was heard ending (Play took %v)",
		tone.start.Sub(marks["play"]), marks["played"].Sub(tone.end), marks["played"].Sub(marks["play"]))
	t.Logf("cancel: the sound stopped %v after the cancel", stopped.end.Sub(marks["cancel"]))
	const clockSlack = 15 * time.Millisecond // the recording's clock is an estimate
	if d := marks["played"].Sub(tone.end); d < -clockSlack || d > 100*time.Millisecond {
		t.Errorf("Play returned %v after the tone was heard ending, want 0..100 ms", d)
	}
	if d := tone.start.Sub(marks["play"]); d > 150*time.Millisecond {
		t.Errorf("the tone was heard %v after Play was called", d)
	}
	if d := stopped.end.Sub(marks["cancel"]); d > 100*time.Millisecond+clockSlack {
		t.Errorf("the sound stopped %v after the cancel, want within 100 ms", d)
	}
}

// playInChild runs the named test's child, which plays, against a fresh
// PulseAudio server, and returns what the server heard and the child's
// marks.
func playInChild(t *testing.T, test string) (rec *pulsetest.Recording, samples []float32, rate int, marks map[string]time.Time) {
	t.Helper()
	srv := pulsetest.Start(t)
	rec = srv.StartRecording(t, filepath.Join(t.TempDir(), "cap.wav"))
	marks = srv.RunInChild(t, test)
	rec.Stop()
	data, err := os.ReadFile(rec.Path())
	if err != nil {
		t.Fatal(err)
	}
	if samples, rate, err = ReadWAV(data); err != nil {
		t.Fatalf("recording: %v", err)
	}
	return rec, samples, rate, marks
}

// otoChild is the playing part of TestOtoSinkPulseAudio.
func otoChild(t *testing.T) {
	t.Setenv("PULSE_SERVER", os.Getenv("PULSE_SERVER")) // set by the parent; oto reads it
	sink, err := NewOtoSink(48000)
	if err != nil {
		t.Fatalf("NewOtoSink: %v", err)
	}
	if _, err := NewOtoSink(44100); err == nil || !strings.Contains(err.Error(), "already open at 48000 Hz") {
		t.Errorf("NewOtoSink at another rate: %v, want an error", err)
	}

	// 1. A 500 ms tone plays out in full, and Play returns once it has.
	pcm := tonePCM(t, 1000, 500*time.Millisecond)
	pulsetest.Mark("play")
	err = sink.Play(context.Background(), pcm)
	pulsetest.Mark("played")
	if err != nil {
		t.Fatalf("Play: %v", err)
	}
	time.Sleep(150 * time.Millisecond)

	// 2. Cancel stops the sound promptly.
	ctx, cancel := context.WithCancel(context.Background())
	pcm = tonePCM(t, 2000, 3*time.Second)
	var cancelAt time.Time
	time.AfterFunc(400*time.Millisecond, func() {
		pulsetest.Mark("cancel")
		cancelAt = time.Now()
		cancel()
	})
	err = sink.Play(ctx, pcm)
	if took := time.Since(cancelAt); took > 100*time.Millisecond {
		t.Errorf("cancelled Play returned %v after the cancel, want within 100 ms", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Play error = %v, want context.Canceled", err)
	}
	time.Sleep(150 * time.Millisecond)

	// 3. After the last sink is closed, a new one shares the same output.
	if err := sink.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := sink.Play(context.Background(), tonePCM(t, 1500, 10*time.Millisecond)); err == nil {
		t.Error("Play on a closed sink succeeded")
	}
	sink, err = NewOtoSink(48000)
	if err != nil {
		t.Fatalf("NewOtoSink again: %v", err)
	}
	defer sink.Close()
	if err := sink.Play(context.Background(), tonePCM(t, 1500, 200*time.Millisecond)); err != nil {
		t.Fatalf("Play after reopening: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
}

// TestOtoSinkSuspendsWhenIdle: the process's oto output runs only while a
// sink is awake or a Play runs (an awake output costs about 2% of a core in
// silence; BenchmarkPlay's oto-idle and oto-awake), and a suspended output
// plays in full once resumed, whether by Resume or by a Play itself.
func TestOtoSinkSuspendsWhenIdle(t *testing.T) {
	if pulsetest.InChild() {
		suspendChild(t)
		return
	}
	rec, samples, rate, marks := playInChild(t, "TestOtoSinkSuspendsWhenIdle")
	for _, c := range []struct {
		freq float64
		mark string
	}{{1000, "play-suspended"}, {1500, "play-resumed"}} {
		// In full: every part of the tone is heard. A machine starved of
		// CPU (the race detector beside other packages' tests, on two
		// cores) can pause the audio thread mid-tone; the tone then comes
		// in pieces, late but whole, which is not what this test is about.
		segs := ToneSegments(samples, rate, c.freq)
		if len(segs) == 0 {
			t.Fatalf("%s: the %v Hz tone was not heard", c.mark, c.freq)
		}
		var got time.Duration
		for _, sg := range segs {
			got += sg.End - sg.Start
		}
		span := segs[len(segs)-1].End - segs[0].Start
		t.Logf("%s: %v Hz heard for %v in %d pieces over %v, %v after Play was called", c.mark, c.freq, got, len(segs), span, rec.Time(segs[0].Start).Sub(marks[c.mark]))
		if absDur(got-300*time.Millisecond) > 60*time.Millisecond {
			t.Errorf("%s: the %v Hz tone was heard for %v (%v), want 300 ms ±60 ms", c.mark, c.freq, got, segs)
		}
		if span > 600*time.Millisecond {
			t.Errorf("%s: the %v Hz tone was spread over %v (%v), want it within 600 ms", c.mark, c.freq, span, segs)
		}
	}
}

// suspendChild is the playing part of TestOtoSinkSuspendsWhenIdle.
func suspendChild(t *testing.T) {
	t.Setenv("PULSE_SERVER", os.Getenv("PULSE_SERVER"))
	state := func(step string, want bool) {
		t.Helper()
		if got := otoSuspended(); got != want {
			t.Fatalf("%s: output suspended = %v, want %v", step, got, want)
		}
	}
	a, err := NewOtoSink(48000)
	if err != nil {
		t.Fatalf("NewOtoSink: %v", err)
	}
	state("a sink just opened", false)
	for range 2 { // twice: the second does nothing
		if err := a.Suspend(); err != nil {
			t.Fatalf("Suspend: %v", err)
		}
		state("its only sink suspended", true)
	}

	b, err := NewOtoSink(48000)
	if err != nil {
		t.Fatalf("NewOtoSink: %v", err)
	}
	state("another sink opened, awake", false)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	state("the awake sink closed", true)

	// A Play on a suspended sink runs the output while it plays.
	var reads, suspended atomic.Int32 // read by oto's goroutine
	pcm := &readHook{r: tonePCM(t, 1000, 300*time.Millisecond), hook: func() {
		reads.Add(1)
		if otoSuspended() {
			suspended.Add(1)
		}
	}}
	pulsetest.Mark("play-suspended")
	if err := a.Play(context.Background(), pcm); err != nil {
		t.Fatalf("Play on a suspended sink: %v", err)
	}
	if reads.Load() == 0 || suspended.Load() > 0 {
		t.Errorf("while a suspended sink played, the output was suspended at %d of %d reads", suspended.Load(), reads.Load())
	}
	state("a suspended sink's Play ended", true)
	time.Sleep(200 * time.Millisecond)

	// Resumed, the output stays up across Plays until suspended.
	if err := a.Resume(); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	state("resumed", false)
	time.Sleep(100 * time.Millisecond) // as a terminal does: resume, then the relay's warm-up
	pulsetest.Mark("play-resumed")
	if err := a.Play(context.Background(), tonePCM(t, 1500, 300*time.Millisecond)); err != nil {
		t.Fatalf("Play on a resumed sink: %v", err)
	}
	state("a resumed sink's Play ended", false)
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	state("the last sink closed", true)
	if err := a.Resume(); err == nil {
		t.Error("Resume of a closed sink succeeded")
	}
	state("a closed sink resumed", true)
}

// readHook calls hook before each read of r.
type readHook struct {
	r    io.Reader
	hook func()
}

func (h *readHook) Read(p []byte) (int, error) {
	h.hook()
	return h.r.Read(p)
}

// TestOtoSinkStall freezes the audio server during Play: Play must give up
// with ErrNoDevice instead of hanging.
func TestOtoSinkStall(t *testing.T) {
	if pulsetest.InChild() {
		stallChild(t)
		return
	}
	srv := pulsetest.Start(t)
	srv.RunInChild(t, "TestOtoSinkStall", fmt.Sprint("DALABA_TEST_PULSE_PID=", srv.Pid()))
}

func stallChild(t *testing.T) {
	pid, err := strconv.Atoi(os.Getenv("DALABA_TEST_PULSE_PID"))
	if err != nil {
		t.Fatalf("DALABA_TEST_PULSE_PID: %v", err)
	}
	sink, err := NewOtoSink(48000)
	if err != nil {
		t.Fatalf("NewOtoSink: %v", err)
	}
	defer sink.Close()
	defer syscall.Kill(pid, syscall.SIGCONT)
	froze := make(chan time.Time, 1)
	time.AfterFunc(300*time.Millisecond, func() {
		froze <- time.Now()
		syscall.Kill(pid, syscall.SIGSTOP)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = sink.Play(ctx, tonePCM(t, 1000, 5*time.Second))
	took := time.Since(<-froze)
	t.Logf("Play returned %v after the server froze: %v", took, err)
	if !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "stopped playing") {
		t.Errorf("Play error = %v, want ErrNoDevice (stopped playing)", err)
	}
	if took < 1800*time.Millisecond || took > 3*time.Second {
		t.Errorf("Play gave up %v after the server froze, want about 2 s", took)
	}
}

// tonePCM returns PCM for a 48 kHz stereo tone at half amplitude.
func tonePCM(t *testing.T, freq float64, d time.Duration) *bytes.Reader {
	t.Helper()
	r, err := Decode(bytes.NewReader(ToneWAV(freq, d, 48000, 0.5)), "wav", 48000, 100)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b.Bytes())
}

// TestOtoSinkNoDevice runs itself in a child process, where no audio server
// or device exists, and checks the error a technician would read.
func TestOtoSinkNoDevice(t *testing.T) {
	if os.Getenv("DALABA_AUDIO_NODEVICE_CHILD") == "1" {
		noDeviceChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOtoSinkNoDevice$", "-test.v")
	cmd.Env = append(os.Environ(), "DALABA_AUDIO_NODEVICE_CHILD=1",
		"PULSE_SERVER=unix:"+filepath.Join(t.TempDir(), "no-such-socket"),
		"ALSA_CONFIG_PATH="+filepath.Join(t.TempDir(), "no-such-alsa.conf"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestOtoSinkNoDevice") {
		t.Fatalf("child did not pass:\n%s", out)
	}
	t.Logf("child:\n%s", out)
}

func noDeviceChild(t *testing.T) {
	_, err := NewOtoSink(48000)
	if !errors.Is(err, ErrNoDevice) {
		t.Fatalf("NewOtoSink error = %v, want ErrNoDevice", err)
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	for _, want := range []string{"audio: cannot open the audio device (", "PulseAudio", "ALSA"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "oto:") {
		t.Errorf("error %q leaks oto's prefix", msg)
	}
	// oto allows one attempt per process: later calls give the same error.
	if _, err2 := NewOtoSink(48000); !errors.Is(err2, ErrNoDevice) || err2.Error() != msg {
		t.Errorf("second NewOtoSink error = %v, want %q", err2, msg)
	}
}
