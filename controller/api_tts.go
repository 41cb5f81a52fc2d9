package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"dalaba/controller/store"
	"dalaba/protocol"
	"dalaba/tts"
)

// TTSConfig is the config key "tts": the speech command (docs/sources.md).
// Zero values take tts.Default's (espeak-ng; zh → cmn-latn-pinyin, en → en-us).
type TTSConfig struct {
	Command        []string          `json:"command"` // argv; "{voice}" is replaced; text on stdin, WAV on stdout
	Voices         map[string]string `json:"voices"`  // language → voice
	TimeoutSeconds int               `json:"timeout_seconds"`
	MaxChars       int               `json:"max_chars"`
	Encode         []string          `json:"encode"` // argv; WAV on stdin, MP3 on stdout; absent: tts.Lame; []: keep the WAV
}

// engineConfig is the tts engine's config. Spoken media are encoded by
// lame (tts.Lame) unless the config names another encoder, or none ([]):
// a spoken alert goes to every terminal (docs/operations.md, "The network
// an alert needs"), and as WAV a 5,000-terminal fan-out left three
// loudspeakers in five pausing mid-alert (docs/benchmarks.md).
func (t TTSConfig) engineConfig(maxUploadMB int) tts.Config {
	encode := t.Encode
	if encode == nil {
		encode = tts.Lame
	}
	return tts.Config{Command: t.Command, Voices: t.Voices, Timeout: time.Duration(t.TimeoutSeconds) * time.Second,
		MaxOutput: int64(maxUploadMB) << 20, MaxText: t.MaxChars, Encode: encode}
}

// validate checks the "tts" key.
func (t TTSConfig) validate() error {
	if t.TimeoutSeconds < 0 || t.TimeoutSeconds > 600 {
		return fmt.Errorf("tts.timeout_seconds: %d is outside 1..600 (0: the default 30)", t.TimeoutSeconds)
	}
	if t.MaxChars < 0 || t.MaxChars > 20000 {
		return fmt.Errorf("tts.max_chars: %d is outside 1..20000 (0: the default 2000)", t.MaxChars)
	}
	if _, err := tts.New(t.engineConfig(1)); err != nil {
		return fmt.Errorf("tts.%v", err)
	}
	return nil
}

// TTSRequest asks for text to be spoken and stored as media.
type TTSRequest struct {
	Text          string `json:"text"`
	Lang          string `json:"lang"`           // "zh" (default) or "en", or a configured language
	AttentionTone bool   `json:"attention_tone"` // a two-note chime before the speech
}

// ErrSpeech marks a failure of the speech engine itself (not of the text).
var ErrSpeech = errors.New("text to speech failed")

// SpeakMedia speaks a text with the configured engine and stores the MP3
// the encoder makes of it (or, with "encode": [], the WAV) exactly like an
// upload (AddMedia). Nothing is stored when it fails.
func (c *Controller) SpeakMedia(ctx context.Context, req TTSRequest) (store.Media, error) {
	if req.Lang == "" {
		req.Lang = "zh"
	}
	eng, err := tts.New(c.cfg.TTS.engineConfig(c.cfg.MaxUploadMB))
	if err != nil {
		return store.Media{}, fmt.Errorf("%w: %v", ErrSpeech, err)
	}
	speech, info, err := eng.Speak(ctx, tts.Request{Text: req.Text, Lang: req.Lang, AttentionTone: req.AttentionTone})
	switch {
	case errors.Is(err, tts.ErrInput) && strings.Contains(err.Error(), "lang "):
		return store.Media{}, invalid("lang", "%v", strings.TrimPrefix(err.Error(), "tts: "))
	case errors.Is(err, tts.ErrInput):
		return store.Media{}, invalid("text", "%v", strings.TrimPrefix(err.Error(), "tts: "))
	case err != nil:
		return store.Media{}, fmt.Errorf("%w: %v", ErrSpeech, err)
	}
	return c.AddMedia(ctx, ttsName(req, info.Format), speech)
}

// ttsName names spoken media after its language and first words, with
// the extension of its format.
func ttsName(req TTSRequest, format string) string {
	words := strings.Join(strings.Fields(req.Text), " ")
	if utf8.RuneCountInString(words) > 24 {
		words = string([]rune(words)[:24]) + "…"
	}
	return "tts-" + req.Lang + "-" + strings.NewReplacer("/", "_", "\\", "_").Replace(words) + "." + format
}

func (c *Controller) apiTTS(w http.ResponseWriter, r *http.Request, p *principal) {
	var req TTSRequest
	if err := readJSON(r, &req); err != nil {
		c.fail(w, r, err)
		return
	}
	m, err := c.SpeakMedia(r.Context(), req)
	if errors.Is(err, ErrSpeech) {
		c.log.Error("text to speech", "err", err)
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	text := req.Text
	if utf8.RuneCountInString(text) > 200 {
		text = string([]rune(text)[:200]) + "…"
	}
	c.auditAs(r.Context(), p, "media.tts", m.SHA256, "", "",
		fmt.Sprintf("%s, %d bytes, %d ms, tone %v: %s", m.Name, m.Size, m.DurationMS, req.AttentionTone, text))
	writeJSON(w, http.StatusCreated, m)
}

// apiMediaFile serves a stored media file, for preview before sending.
func (c *Controller) apiMediaFile(w http.ResponseWriter, r *http.Request, p *principal) {
	sha := r.PathValue("sha256")
	if !protocol.ValidSHA256(sha) {
		c.fail(w, r, invalid("sha256", "%q is not 64 lowercase hex digits", sha))
		return
	}
	m, err := c.store.MediaByHash(r.Context(), sha)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	f, err := openMedia(c.media.path(m.SHA256))
	if err != nil {
		c.fail(w, r, fmt.Errorf("media %s: %w", sha, err))
		return
	}
	defer f.Close()
	ctype := map[string]string{"wav": "audio/wav", "mp3": "audio/mpeg"}[m.Format]
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "private, max-age=86400, immutable")
	http.ServeContent(w, r, "", m.CreatedAt, f)
}
