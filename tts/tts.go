// Package tts turns typed text into speech: it runs a configured command
// (espeak-ng by default) that reads the text on its standard input and
// writes a WAV file on its standard output, checks what comes back, and can
// put an attention tone before the speech. The text never appears on a
// command line, so nothing in it is interpreted by a shell or as an option.
package tts

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"dalaba/audio"
)

// Config says how to run the speech command. Zero fields take Default's.
type Config struct {
	// Command is the program and its arguments. "{voice}" in an argument
	// is replaced by the language's voice. The text arrives on standard
	// input (UTF-8); the command writes one WAV file (16-bit PCM) to
	// standard output.
	Command []string
	// Voices maps a language ("zh", "en", ...) to the command's voice.
	Voices map[string]string
	// Timeout bounds one run of the command.
	Timeout time.Duration
	// MaxOutput bounds the WAV the command may write, in bytes.
	MaxOutput int64
	// MaxText bounds the text, in characters.
	MaxText int
	// Encode, when set, is a program and its arguments that read the
	// spoken WAV on standard input and write it as one MP3 on standard
	// output (lame, say). Empty: the WAV is kept. A spoken alert goes to
	// every terminal, and at 48 kbit/s a speech MP3 is a seventh of the
	// WAV's bytes (docs/operations.md, "The network an alert needs").
	Encode []string
}

// Lame is Debian's lame as Config.Encode: 48 kbit/s mono MP3, a seventh
// of espeak-ng's 22,050 Hz WAV.
var Lame = []string{"lame", "--quiet", "-m", "m", "-b", "48", "-", "-"}

// Default speaks Mandarin with espeak-ng's pinyin voice (its plain "cmn"
// voice reads hanzi as English letter names) and English with en-us.
func Default() Config {
	return Config{
		Command:   []string{"espeak-ng", "-v", "{voice}", "-b", "1", "--stdin", "--stdout"},
		Voices:    map[string]string{"zh": "cmn-latn-pinyin", "en": "en-us"},
		Timeout:   30 * time.Second,
		MaxOutput: 32 << 20,
		MaxText:   2000,
	}
}

// Engine runs the speech command. It is safe for concurrent use.
type Engine struct{ cfg Config }

// New fills cfg's zero fields from Default and checks it.
func New(cfg Config) (*Engine, error) {
	def := Default()
	if len(cfg.Command) == 0 {
		cfg.Command = def.Command
	}
	if len(cfg.Voices) == 0 {
		cfg.Voices = def.Voices
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = def.Timeout
	}
	if cfg.MaxOutput == 0 {
		cfg.MaxOutput = def.MaxOutput
	}
	if cfg.MaxText == 0 {
		cfg.MaxText = def.MaxText
	}
	switch {
	case strings.TrimSpace(cfg.Command[0]) == "":
		return nil, errors.New("command: the program name is empty")
	case len(cfg.Encode) > 0 && strings.TrimSpace(cfg.Encode[0]) == "":
		return nil, errors.New("encode: the program name is empty (leave encode out to keep the WAV)")
	case cfg.Timeout < 0 || cfg.MaxOutput < 0 || cfg.MaxText < 0:
		return nil, errors.New("timeout, output and text limits must be positive")
	}
	for lang, v := range cfg.Voices {
		if lang == "" || strings.TrimSpace(v) == "" || strings.HasPrefix(v, "-") {
			return nil, fmt.Errorf("voices: %q → %q: give a language and a voice name (not starting with -)", lang, v)
		}
	}
	return &Engine{cfg: cfg}, nil
}

// Languages lists the languages the engine has a voice for, sorted.
func (e *Engine) Languages() []string {
	out := make([]string, 0, len(e.cfg.Voices))
	for l := range e.cfg.Voices {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// ErrInput marks a request the caller must correct (empty or too long
// text, a language without a voice); other errors are the engine's.
var ErrInput = errors.New("tts")

// Request is one text to speak.
type Request struct {
	Text          string
	Lang          string // a key of Config.Voices
	AttentionTone bool   // a two-note chime before the speech
}

// Speak renders a request as one 16-bit PCM mono WAV file, or with
// Config.Encode the MP3 made of it, and returns it with its measurements.
func (e *Engine) Speak(ctx context.Context, req Request) ([]byte, audio.Info, error) {
	voice, err := e.check(req)
	if err != nil {
		return nil, audio.Info{}, err
	}
	args := make([]string, len(e.cfg.Command))
	for i, a := range e.cfg.Command {
		args[i] = strings.ReplaceAll(a, "{voice}", voice)
	}
	raw, err := e.run(ctx, "speech command", args, strings.NewReader(req.Text))
	if err != nil {
		return nil, audio.Info{}, err
	}
	speech, rate, err := audio.ReadWAV(raw)
	if err != nil {
		return nil, audio.Info{}, fmt.Errorf("speech command %s wrote no usable WAV: %w", e.cfg.Command[0], err)
	}
	if peak(speech) < 1e-3 {
		return nil, audio.Info{}, fmt.Errorf("speech command %s wrote %d samples of silence for the text", e.cfg.Command[0], len(speech))
	}
	var out []float32
	if req.AttentionTone {
		out = attentionTone(rate)
	}
	out = append(out, speech...)
	wav := encodeWAV(out, rate)
	if int64(len(wav)) > e.cfg.MaxOutput {
		return nil, audio.Info{}, fmt.Errorf("%w: the speech is %d bytes, more than the limit of %d; shorten the text", ErrInput, len(wav), e.cfg.MaxOutput)
	}
	info, err := audio.Probe(wav)
	if err != nil {
		return nil, audio.Info{}, fmt.Errorf("speech: %w", err)
	}
	if len(e.cfg.Encode) == 0 {
		return wav, info, nil
	}
	return e.encode(ctx, wav, info)
}

// encode runs Config.Encode on wav and checks that what it wrote is an
// MP3 of the same speech: one the terminals' decoder reads, as long as
// the WAV give or take the encoder's padding (encodeSlack).
func (e *Engine) encode(ctx context.Context, wav []byte, in audio.Info) ([]byte, audio.Info, error) {
	mp3, err := e.run(ctx, "audio encoder", e.cfg.Encode, bytes.NewReader(wav))
	if err != nil {
		return nil, audio.Info{}, err
	}
	info, err := audio.Probe(mp3)
	if err == nil && info.Format != "mp3" {
		err = fmt.Errorf("it is %s", strings.ToUpper(info.Format))
	}
	if err != nil {
		return nil, audio.Info{}, fmt.Errorf("audio encoder %s wrote no usable MP3 (%v): it must read a WAV on standard input and write an MP3 on standard output", e.cfg.Encode[0], err)
	}
	if d, slack := info.Duration-in.Duration, encodeSlack+in.Duration/100; d < -slack || d > slack {
		return nil, audio.Info{}, fmt.Errorf("audio encoder %s wrote %s of MP3 for %s of speech", e.cfg.Encode[0], info.Duration, in.Duration)
	}
	return mp3, info, nil
}

// encodeSlack, and 1 % of the speech, is how much shorter or longer an
// encoded file may be than its WAV: an MP3 encoder pads the start and the
// last frame (lame: about 0.1 s at 22,050 Hz), and a first frame may carry
// only its tag.
const encodeSlack = 250 * time.Millisecond

// check validates a request and returns its voice.
func (e *Engine) check(req Request) (string, error) {
	voice, ok := e.cfg.Voices[req.Lang]
	switch {
	case !ok:
		return "", fmt.Errorf("%w: lang %q has no voice; use one of %s", ErrInput, req.Lang, strings.Join(e.Languages(), ", "))
	case !utf8.ValidString(req.Text):
		return "", fmt.Errorf("%w: text is not valid UTF-8", ErrInput)
	case strings.TrimSpace(req.Text) == "":
		return "", fmt.Errorf("%w: text is empty; type what should be read out", ErrInput)
	case utf8.RuneCountInString(req.Text) > e.cfg.MaxText:
		return "", fmt.Errorf("%w: text has %d characters, more than the limit of %d", ErrInput, utf8.RuneCountInString(req.Text), e.cfg.MaxText)
	case strings.ContainsRune(req.Text, 0):
		return "", fmt.Errorf("%w: text holds a NUL character", ErrInput)
	}
	return voice, nil
}

// run executes argv, the speech command or the encoder (what), with stdin
// and returns its stdout, bounded by the timeout and the output limit.
func (e *Engine) run(ctx context.Context, what string, argv []string, stdin io.Reader) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = stdin
	// The command runs in its own process group, so that a timeout or the
	// output limit ends whatever it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4 << 10}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w (is it installed? see docs/sources.md)", what, argv[0], err)
	}
	out, rerr := io.ReadAll(io.LimitReader(stdout, e.cfg.MaxOutput+1))
	tooBig := int64(len(out)) > e.cfg.MaxOutput
	if tooBig {
		cmd.Cancel()
	}
	werr := cmd.Wait()
	msg := strings.TrimSpace(stderr.String())
	switch {
	case tooBig:
		return nil, fmt.Errorf("%w: the %s wrote more than the limit of %d bytes; shorten the text", ErrInput, what, e.cfg.MaxOutput)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s %s did not finish within %s", what, argv[0], e.cfg.Timeout)
	case werr != nil:
		return nil, fmt.Errorf("%s %s failed: %v: %s", what, argv[0], werr, msg)
	case rerr != nil:
		return nil, fmt.Errorf("read %s output: %w", what, rerr)
	}
	return out, nil
}

// limitedWriter keeps the first n bytes written to it and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if k := min(len(p), l.n); k > 0 {
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// The attention tone: two notes a sixth apart, then a pause before speech.
const (
	toneHigh   = 880.0 // Hz
	toneLow    = 660.0
	toneNote   = 400 * time.Millisecond
	tonePause  = 300 * time.Millisecond
	toneVolume = 0.5
)

// attentionTone returns the chime at rate, mono.
func attentionTone(rate int) []float32 {
	var out []float32
	for _, f := range []float64{toneHigh, toneLow} {
		s, _, _ := audio.ReadWAV(audio.ToneWAV(f, toneNote, rate, toneVolume))
		fade(s, rate)
		out = append(out, s...)
	}
	return append(out, make([]float32, int(tonePause.Seconds()*float64(rate)))...)
}

// fade ramps a note's first and last 10 ms so that it does not click.
func fade(s []float32, rate int) {
	n := min(rate/100, len(s)/2)
	for i := range n {
		g := float32(i) / float32(n)
		s[i] *= g
		s[len(s)-1-i] *= g
	}
}

func peak(s []float32) float32 {
	var p float32
	for _, v := range s {
		p = max(p, v, -v)
	}
	return p
}

// encodeWAV writes mono samples as a 16-bit PCM WAV file, with the header
// audio.ToneWAV makes for an empty file.
func encodeWAV(samples []float32, rate int) []byte {
	out := audio.ToneWAV(0, 0, rate, 0) // the 44-byte header of an empty file
	binary.LittleEndian.PutUint32(out[4:], uint32(36+2*len(samples)))
	binary.LittleEndian.PutUint32(out[40:], uint32(2*len(samples)))
	for _, v := range samples {
		out = binary.LittleEndian.AppendUint16(out, uint16(int16(math.Round(float64(max(-1, min(v, 32767.0/32768))*32768)))))
	}
	return out
}
