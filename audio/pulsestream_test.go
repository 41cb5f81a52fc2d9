package audio

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"dalaba/audio/pulsetest"
)

// TestPulseStreamSink plays through a PulseStreamSink into a real
// PulseAudio server and checks, in a recording of its null sink, what was
// heard and when: tones in full, each heard about as long after Play was
// called as through oto (the terminal starts its output early by that
// latency, docs/benchmarks.md "Starting together"), Play returning once the
// tone has sounded, a cancel silencing it within 100 ms, and a suspended
// sink that the server stops asking for audio, playing in full once resumed
// or by a Play of its own.
func TestPulseStreamSink(t *testing.T) {
	srv := pulsetest.Start(t)
	t.Setenv("PULSE_SERVER", srv.Address())
	rec := srv.StartRecording(t, filepath.Join(t.TempDir(), "cap.wav"))
	sink, err := NewPulseStreamSink(48000)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close() // before the server stops

	type played struct {
		freq          float64
		length        time.Duration
		called, ended time.Time
	}
	var plays []played
	play := func(ctx context.Context, freq float64, length time.Duration) error {
		t.Helper()
		p := played{freq: freq, length: length, called: time.Now()}
		err := sink.Play(ctx, tonePCM(t, freq, length))
		p.ended = time.Now()
		plays = append(plays, p)
		return err
	}
	// 1. Tones on an awake sink, a little apart, as a terminal plays.
	for _, freq := range []float64{600, 800, 1000, 1200, 1400} {
		if err := play(context.Background(), freq, 300*time.Millisecond); err != nil {
			t.Fatalf("Play: %v", err)
		}
		time.Sleep(time.Duration(freq/10) * time.Millisecond) // starts in different phases of the stream's requests
	}
	// 2. A cancel.
	ctx, cancel := context.WithCancel(context.Background())
	var cancelAt time.Time
	time.AfterFunc(400*time.Millisecond, func() { cancelAt = time.Now(); cancel() })
	if err := play(ctx, 2000, 3*time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Play error = %v, want context.Canceled", err)
	}
	if took := plays[len(plays)-1].ended.Sub(cancelAt); took > 100*time.Millisecond {
		t.Errorf("cancelled Play returned %v after the cancel, want within 100 ms", took)
	}
	time.Sleep(150 * time.Millisecond)
	// 3. Suspended, the server stops asking; a Play runs the stream itself.
	if err := sink.Suspend(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	sink.mu.Lock()
	idle := time.Since(sink.taken)
	sink.mu.Unlock()
	if idle < 200*time.Millisecond {
		t.Errorf("suspended, the stream was last asked for audio %v ago, want it to rest", idle)
	}
	if err := play(context.Background(), 1600, 300*time.Millisecond); err != nil {
		t.Fatalf("Play on a suspended sink: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	// 4. Resumed, as a terminal does before the relay's warm-up.
	if err := sink.Resume(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := play(context.Background(), 1800, 300*time.Millisecond); err != nil {
		t.Fatalf("Play on a resumed sink: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	rec.Stop()

	samples, rate := readRecording(t, rec)
	const clockSlack = 15 * time.Millisecond // the recording's clock is an estimate
	var latencies []time.Duration
	for i, p := range plays {
		segs := ToneSegments(samples, rate, p.freq)
		if len(segs) != 1 {
			t.Fatalf("%v Hz tone heard as %v, want one segment", p.freq, segs)
		}
		start, end := rec.Time(segs[0].Start), rec.Time(segs[0].End)
		latency := start.Sub(p.called)
		t.Logf("%v Hz: heard %v after Play was called, for %v; Play returned %v after it ended",
			p.freq, latency.Round(time.Millisecond), segs[0].End-segs[0].Start, p.ended.Sub(end).Round(time.Millisecond))
		if p.freq == 2000 {
			if d := end.Sub(cancelAt); d > 100*time.Millisecond+clockSlack {
				t.Errorf("the sound stopped %v after the cancel, want within 100 ms", d)
			}
			continue
		}
		if got := segs[0].End - segs[0].Start; absDur(got-p.length) > 60*time.Millisecond {
			t.Errorf("%v Hz tone lasted %v, want %v ±60 ms", p.freq, got, p.length)
		}
		if d := p.ended.Sub(end); d < -clockSlack || d > 100*time.Millisecond {
			t.Errorf("%v Hz: Play returned %v after the tone was heard ending, want 0..100 ms", p.freq, d)
		}
		if i < 5 {
			latencies = append(latencies, latency)
		}
	}
	slices.Sort(latencies)
	t.Logf("awake: heard %v after Play was called (median %v)", latencies, latencies[len(latencies)/2])
	if m := latencies[len(latencies)/2]; m < 10*time.Millisecond || m > 80*time.Millisecond {
		t.Errorf("awake: the tones were heard a median %v after Play was called, want about 40 ms", m)
	}
}

// readRecording reads what rec recorded, once it has stopped.
func readRecording(t *testing.T, rec *pulsetest.Recording) ([]float32, int) {
	t.Helper()
	data, err := os.ReadFile(rec.Path())
	if err != nil {
		t.Fatal(err)
	}
	samples, rate, err := ReadWAV(data)
	if err != nil {
		t.Fatalf("recording: %v", err)
	}
	return samples, rate
}

// TestPulseStreamSinkReopens: a PulseStreamSink plays a tone into one
// server; that server is killed, and opening fails with ErrNoDevice; a new
// server comes up at the same address and a new PulseStreamSink plays into
// it, as the system output does once the audio server is back. (Each sink
// is closed before its server stops, so the client's unsynchronised error
// on a lost server never happens here.)
func TestPulseStreamSinkReopens(t *testing.T) {
	dir, err := os.MkdirTemp("", "pl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	link := filepath.Join(dir, "s")
	t.Setenv("PULSE_SERVER", "unix:"+link)
	play := func(srv *pulsetest.Server, hz float64) {
		t.Helper()
		os.Remove(link)
		if err := os.Symlink(srv.Socket, link); err != nil {
			t.Fatal(err)
		}
		rec := srv.StartRecording(t, filepath.Join(t.TempDir(), "rec.wav"))
		sink, err := NewPulseStreamSink(48000)
		if err != nil {
			t.Fatal(err)
		}
		pcm, err := Decode(bytes.NewReader(ToneWAV(hz, time.Second, 48000, 0.5)), "wav", 48000, 100)
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.Play(context.Background(), pcm); err != nil {
			t.Fatalf("play: %v", err)
		}
		sink.Close()
		time.Sleep(100 * time.Millisecond)
		rec.Stop()
		samples, rate := readRecording(t, rec)
		// A machine starved of CPU may leave a dropout: count what sounded.
		segs := ToneSegments(samples, rate, hz)
		var heard time.Duration
		for _, sg := range segs {
			heard += sg.End - sg.Start
		}
		if len(segs) == 0 || heard < 900*time.Millisecond || segs[len(segs)-1].End-segs[0].Start > 1300*time.Millisecond {
			t.Fatalf("recording holds %v of the %v Hz tone, want 1 s of it", segs, hz)
		}
		if len(segs) > 1 {
			t.Logf("the %v Hz tone has dropouts (a busy machine): %v", hz, segs)
		}
	}
	first := pulsetest.Start(t)
	play(first, 1000)
	syscall.Kill(first.Pid(), syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		sink, err := NewPulseStreamSink(48000)
		if errors.Is(err, ErrNoDevice) {
			break
		}
		if err == nil {
			sink.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("NewPulseStreamSink with the server killed: %v, want ErrNoDevice", err)
		}
	}
	play(pulsetest.Start(t), 1400)
}
