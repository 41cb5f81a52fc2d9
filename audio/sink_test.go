package audio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// pcmOf returns d of 1 kHz tone as s16le stereo PCM at 48 kHz.
func pcmOf(t *testing.T, d time.Duration) io.Reader {
	t.Helper()
	if d == 0 {
		return bytes.NewReader(nil)
	}
	r, err := Decode(bytes.NewReader(ToneWAV(1000, d, 48000, 0.5)), "wav", 48000, 100)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// timedPlay plays pcm and returns how long Play took.
func timedPlay(ctx context.Context, s Sink, pcm io.Reader) (time.Duration, error) {
	start := time.Now()
	err := s.Play(ctx, pcm)
	return time.Since(start), err
}

func TestSinksHoldForTheDuration(t *testing.T) {
	sinks := map[string]func(t *testing.T) Sink{
		"silent": func(t *testing.T) Sink { return NewSilentSink(48000) },
		"wav file": func(t *testing.T) Sink {
			s, err := NewWAVFileSink(t.TempDir(), 48000)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	for name, newSink := range sinks {
		for _, d := range []time.Duration{0, 130 * time.Millisecond, 600 * time.Millisecond} {
			t.Run(name+" "+d.String(), func(t *testing.T) {
				s := newSink(t)
				defer s.Close()
				took, err := timedPlay(context.Background(), s, pcmOf(t, d))
				if err != nil {
					t.Fatalf("Play: %v", err)
				}
				if took < d || took > d+80*time.Millisecond {
					t.Errorf("Play of %v took %v", d, took)
				}
			})
		}
	}
}

func TestSinksCancel(t *testing.T) {
	dir := t.TempDir()
	wavSink, err := NewWAVFileSink(dir, 48000)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]Sink{"silent": NewSilentSink(48000), "wav file": wavSink} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			pcm := pcmOf(t, 5*time.Second)
			start := time.Now()
			time.AfterFunc(200*time.Millisecond, cancel)
			err := s.Play(ctx, pcm)
			took := time.Since(start)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Play error = %v, want context.Canceled", err)
			}
			if took < 200*time.Millisecond || took > 300*time.Millisecond {
				t.Errorf("Play returned %v after start, cancel was at 200ms", took)
			}
		})
	}
	// The cancelled file is complete and holds what was played before the cancel.
	names, _ := filepath.Glob(filepath.Join(dir, "*.wav"))
	if len(names) != 1 {
		t.Fatalf("files %v, want one", names)
	}
	data, _ := os.ReadFile(names[0])
	info, err := Probe(data)
	if err != nil || info.Duration < 150*time.Millisecond || info.Duration > 300*time.Millisecond {
		t.Errorf("cancelled file: %+v, %v; want about 200ms of audio", info, err)
	}
}

func TestWAVFileSink(t *testing.T) {
	dir := t.TempDir()
	s, err := NewWAVFileSink(dir, 48000)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{300 * time.Millisecond, 120 * time.Millisecond} {
		if err := s.Play(context.Background(), pcmOf(t, d)); err != nil {
			t.Fatalf("Play: %v", err)
		}
	}
	// A new sink in the same directory continues the numbering.
	s2, err := NewWAVFileSink(dir, 48000)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Play(context.Background(), pcmOf(t, 50*time.Millisecond)); err != nil {
		t.Fatalf("Play: %v", err)
	}
	s.Close()
	if err := s.Play(context.Background(), pcmOf(t, 10*time.Millisecond)); err == nil {
		t.Error("Play on a closed sink succeeded")
	}

	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	want := []struct {
		prefix string
		d      time.Duration
	}{{"0001-", 300 * time.Millisecond}, {"0002-", 120 * time.Millisecond}, {"0003-", 50 * time.Millisecond}}
	if len(names) != len(want) {
		t.Fatalf("files %v, want %d", names, len(want))
	}
	pattern := regexp.MustCompile(`^\d{4}-\d{8}T\d{6}\.wav$`)
	for i, name := range names {
		base := filepath.Base(name)
		if !pattern.MatchString(base) || !strings.HasPrefix(base, want[i].prefix) {
			t.Errorf("file %q, want %sYYYYMMDDTHHMMSS.wav", base, want[i].prefix)
		}
		data, _ := os.ReadFile(name)
		info, err := Probe(data)
		if err != nil || info != (Info{"wav", 48000, 2, want[i].d}) {
			t.Errorf("%s: %+v, %v; want %v of 48 kHz stereo", base, info, err, want[i].d)
		}
		samples, _, _ := ReadWAV(data)
		if segs := ToneSegments(samples, 48000, 1000); len(segs) != 1 {
			t.Errorf("%s: tone segments %v, want one", base, segs)
		}
	}
}

func TestNewWAVFileSinkErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := NewWAVFileSink(filepath.Join(file, "sub"), 48000); err == nil {
		t.Error("NewWAVFileSink under a file succeeded")
	}
	if _, err := NewWAVFileSink(t.TempDir(), 100); err == nil || !strings.Contains(err.Error(), "rate 100 Hz out of range") {
		t.Errorf("NewWAVFileSink(rate 100) error = %v", err)
	}
}

func TestSinksReportReadErrors(t *testing.T) {
	wavSink, err := NewWAVFileSink(t.TempDir(), 48000)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	for name, s := range map[string]Sink{"silent": NewSilentSink(48000), "wav file": wavSink} {
		t.Run(name, func(t *testing.T) {
			pcm := io.MultiReader(io.LimitReader(pcmOf(t, time.Second), 4800), iotest.ErrReader(boom))
			if err := s.Play(context.Background(), pcm); !errors.Is(err, boom) {
				t.Errorf("Play error = %v, want %v", err, boom)
			}
		})
	}
}
