package tts

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
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

// TestSpeakEncodesMP3: with an encoder (lame), the speech and its chime
// come back as an MP3 of the same length, a seventh of the WAV's bytes or
// less, that the terminals' decoder plays: the chime first, at its pitch,
// then sound.
func TestSpeakEncodesMP3(t *testing.T) {
	ttstest.RequireEncoder(t)
	req := Request{Text: "请注意，明天白天有暴雨，请村民们做好防汛准备。", Lang: "zh", AttentionTone: true}
	wav, plain, err := engine(t, Config{}).Speak(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	mp3, info, err := engine(t, Config{Encode: Lame}).Speak(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if probed, err := audio.Probe(mp3); err != nil || probed != info || info.Format != "mp3" || info.Channels != 1 {
		t.Fatalf("Probe: %+v, %v; Speak said %+v", probed, err, info)
	}
	if d := absDur(info.Duration - plain.Duration); d > encodeSlack {
		t.Fatalf("MP3 of %s for a WAV of %s", info.Duration, plain.Duration)
	}
	if len(mp3)*7 > len(wav) {
		t.Fatalf("MP3 of %d bytes for a WAV of %d: not a seventh", len(mp3), len(wav))
	}
	t.Logf("%s of speech: WAV %d bytes (%d Hz), MP3 %d bytes (%.1f times fewer)", plain.Duration, len(wav), plain.SampleRate, len(mp3), float64(len(wav))/float64(len(mp3)))
	r, err := audio.Decode(bytes.NewReader(mp3), "mp3", 48000, 100)
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	left := make([]float32, 0, len(pcm)/4)
	var sum float64
	for i := 0; i+4 <= len(pcm); i += 4 {
		v := float32(int16(binary.LittleEndian.Uint16(pcm[i:]))) / 32768
		left = append(left, v)
		sum += float64(v) * float64(v)
	}
	if rms := math.Sqrt(sum / float64(len(left))); rms < 0.01 {
		t.Fatalf("decoded RMS %.4f: nearly silent", rms)
	}
	// The encoder's delay comes first: lame writing to a pipe cannot go back
	// to write the gapless tag that lets a decoder drop it (about 50 ms).
	const delay = 100 * time.Millisecond
	chime := left[:int((2*toneNote+delay).Seconds()*48000)]
	var shift time.Duration
	for i, c := range []struct {
		f          float64
		start, end time.Duration
	}{{toneHigh, 0, toneNote}, {toneLow, toneNote, 2 * toneNote}} {
		segs := audio.ToneSegments(chime, 48000, c.f)
		if len(segs) == 1 && i == 0 {
			shift = segs[0].Start
		}
		if len(segs) != 1 || shift < 0 || shift > delay || absDur(segs[0].Start-shift-c.start) > 30*time.Millisecond || absDur(segs[0].End-shift-c.end) > 30*time.Millisecond {
			t.Fatalf("decoded note %d (%.0f Hz): segments %v, want one at %s..%s after a delay of at most %s", i, c.f, segs, c.start, c.end, delay)
		}
	}
}

// TestEncoderFailures: an encoder that fails, writes something other than
// an MP3, or an MP3 of other audio, is an error naming it; nothing is
// returned.
func TestEncoderFailures(t *testing.T) {
	ttstest.RequireEncoder(t)
	other := filepath.Join(t.TempDir(), "other.wav")
	if err := os.WriteFile(other, audio.ToneWAV(440, 10*time.Second, 22050, 0.5), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		cmd  []string
		want string
	}{
		"fails":       {[]string{"sh", "-c", "echo bad bitrate >&2; exit 1"}, "bad bitrate"},
		"keeps a WAV": {[]string{"cat"}, "no usable MP3 (it is WAV)"},
		"not audio":   {[]string{"echo", "hello"}, "no usable MP3"},
		"other audio": {[]string{"sh", "-c", "cat >/dev/null; lame --quiet -m m -b 48 " + other + " -"}, "of MP3 for"},
		"not found":   {[]string{"/nonexistent/lame"}, "is it installed"},
	} {
		mp3, _, err := engine(t, Config{Encode: c.cmd}).Speak(context.Background(), Request{Text: "请注意", Lang: "zh"})
		if err == nil || !strings.Contains(err.Error(), c.want) || mp3 != nil {
			t.Errorf("%s: %d bytes, %v; want an error containing %q", name, len(mp3), err, c.want)
		}
	}
}

func TestConfigRefused(t *testing.T) {
	for name, cfg := range map[string]Config{
		"empty program": {Command: []string{""}},
		"empty encoder": {Encode: []string{" "}},
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
