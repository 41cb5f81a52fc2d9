package tts

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/tts/ttstest"
)

func engine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// speech checks a WAV from Speak: valid, mono 16-bit, as long as Info
// says, and loud enough to be speech rather than silence.
func speech(t *testing.T, wav []byte, info audio.Info) []float32 {
	t.Helper()
	probed, err := audio.Probe(wav)
	if err != nil || probed != info {
		t.Fatalf("Probe: %+v, %v; Speak said %+v", probed, err, info)
	}
	s, rate, err := audio.ReadWAV(wav)
	if err != nil || rate != info.SampleRate || info.Channels != 1 || info.Format != "wav" {
		t.Fatalf("ReadWAV: rate %d, %v; info %+v", rate, err, info)
	}
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	if rms := math.Sqrt(sum / float64(len(s))); rms < 0.01 {
		t.Fatalf("speech RMS %.4f: nearly silent", rms)
	}
	return s
}

// TestSpeakMandarin: a Chinese sentence of 24 characters read by espeak-ng's
// pinyin voice lasts as long as someone speaking it (at least 150 ms a
// character; hanzi read as English letter names would be far longer).
func TestSpeakMandarin(t *testing.T) {
	ttstest.Require(t)
	text := "请注意，明天白天有暴雨，请村民们做好防汛准备。"
	wav, info, err := engine(t, Config{}).Speak(context.Background(), Request{Text: text, Lang: "zh"})
	if err != nil {
		t.Fatal(err)
	}
	speech(t, wav, info)
	chars := len([]rune(text))
	if min, max := time.Duration(chars)*150*time.Millisecond, time.Duration(chars)*600*time.Millisecond; info.Duration < min || info.Duration > max {
		t.Fatalf("%d characters spoken in %s, want %s..%s", chars, info.Duration, min, max)
	}
}

func TestSpeakEnglish(t *testing.T) {
	ttstest.Require(t)
	wav, info, err := engine(t, Config{}).Speak(context.Background(), Request{Text: "Flood warning for Rong'an county.", Lang: "en"})
	if err != nil {
		t.Fatal(err)
	}
	speech(t, wav, info)
	if info.Duration < time.Second || info.Duration > 10*time.Second {
		t.Fatalf("duration %s", info.Duration)
	}
}

// TestAttentionTone: the chime comes first (880 Hz then 660 Hz), then the
// speech, all in one WAV.
func TestAttentionTone(t *testing.T) {
	ttstest.Require(t)
	e := engine(t, Config{})
	req := Request{Text: "请注意", Lang: "zh"}
	_, plain, err := e.Speak(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	req.AttentionTone = true
	wav, info, err := e.Speak(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	s := speech(t, wav, info)
	if want := plain.Duration + 2*toneNote + tonePause; absDur(info.Duration-want) > 5*time.Millisecond {
		t.Fatalf("with tone %s, want %s", info.Duration, want)
	}
	for i, c := range []struct {
		f          float64
		start, end time.Duration
	}{{toneHigh, 0, toneNote}, {toneLow, toneNote, 2 * toneNote}} {
		segs := audio.ToneSegments(s[:int((2*toneNote).Seconds()*float64(info.SampleRate))], info.SampleRate, c.f)
		if len(segs) != 1 || absDur(segs[0].Start-c.start) > 15*time.Millisecond || absDur(segs[0].End-c.end) > 15*time.Millisecond {
			t.Fatalf("note %d (%.0f Hz): segments %v, want one at %s..%s", i, c.f, segs, c.start, c.end)
		}
	}
}

func absDur(d time.Duration) time.Duration { return max(d, -d) }

// TestTextNeverInterpreted: text that looks like options or shell syntax is
// read out, never run: it travels on stdin.
func TestTextNeverInterpreted(t *testing.T) {
	ttstest.Require(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	text := "-w " + marker + " ; touch " + marker + " $(touch " + marker + ") `touch " + marker + "`"
	_, info, err := engine(t, Config{}).Speak(context.Background(), Request{Text: text, Lang: "en"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the text was interpreted: the marker file exists")
	}
	if info.Duration < time.Second {
		t.Fatalf("duration %s: the text was not read", info.Duration)
	}
}

func TestInputRefused(t *testing.T) {
	e := engine(t, Config{MaxText: 10})
	for name, req := range map[string]Request{
		"empty":        {Text: "  \n", Lang: "zh"},
		"unknown lang": {Text: "你好", Lang: "fr"},
		"too long":     {Text: strings.Repeat("长", 11), Lang: "zh"},
		"not utf-8":    {Text: "\xff\xfe", Lang: "zh"},
		"nul":          {Text: "a\x00b", Lang: "en"},
	} {
		if _, _, err := e.Speak(context.Background(), req); !errors.Is(err, ErrInput) {
			t.Errorf("%s: %v, want ErrInput", name, err)
		}
	}
}

// TestCommandFailures: a hung, runaway, failing or non-WAV command is an
// error that names what went wrong. Only the hung one has a short
// timeout: on a loaded machine even echo can take longer than 300 ms to
// start (a CI run saw it).
func TestCommandFailures(t *testing.T) {
	voices := map[string]string{"en": "x"}
	for name, c := range map[string]struct {
		cmd  []string
		want string
	}{
		"hangs":      {[]string{"sleep", "30"}, "did not finish within"},
		"too much":   {[]string{"sh", "-c", "head -c 100000 /dev/zero"}, "more than the limit"},
		"fails":      {[]string{"sh", "-c", "echo no such voice >&2; exit 3"}, "no such voice"},
		"not a WAV":  {[]string{"echo", "hello"}, "no usable WAV"},
		"not found":  {[]string{"/nonexistent/speak"}, "is it installed"},
		"silent WAV": {[]string{"sh", "-c", "head -c 44 /dev/zero"}, "no usable WAV"},
	} {
		timeout := 20 * time.Second
		if name == "hangs" {
			timeout = 300 * time.Millisecond
		}
		e := engine(t, Config{Command: c.cmd, Voices: voices, Timeout: timeout, MaxOutput: 1000})
		_, _, err := e.Speak(context.Background(), Request{Text: "hello", Lang: "en"})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
}

func TestConfigRefused(t *testing.T) {
	for name, cfg := range map[string]Config{
		"empty program": {Command: []string{""}},
		"option voice":  {Voices: map[string]string{"zh": "--stdout"}},
		"no language":   {Voices: map[string]string{"": "en"}},
		"negative":      {Timeout: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// BenchmarkSpeakMandarin reports how much faster than real time espeak-ng
// speaks a Chinese sentence, command start included (x_realtime).
func BenchmarkSpeakMandarin(b *testing.B) {
	ttstest.Require(b)
	e := engine(b, Config{})
	req := Request{Text: "请注意，明天白天有暴雨，请村民们做好防汛准备。", Lang: "zh", AttentionTone: true}
	var audioTime time.Duration
	start := time.Now()
	for b.Loop() {
		_, info, err := e.Speak(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		audioTime += info.Duration
	}
	b.ReportMetric(audioTime.Seconds()/time.Since(start).Seconds(), "x_realtime")
}
