package controller

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/controller/store"
	"dalaba/tts/ttstest"
)

// TestTTSMedia: typed text is spoken by the real espeak-ng and encoded by
// the real lame (the default tts.encode), stored as media like an upload
// (the same description, the file previewable at its URL), audited, and
// an alert carrying it plays to the end on a terminal.
func TestTTSMedia(t *testing.T) {
	t.Parallel()
	ttstest.RequireEncoder(t)
	h := startController(t, nil)
	h.setPolicy(t, noApproval())
	_, termA := h.enrolledTerminal(t, villageA, "大巷村一号")
	cadre := h.user(t, "cadre-a", []string{"cadre"}, villageA)

	var m store.Media
	cadre.mustCall(t, http.StatusCreated, "POST", "/api/v1/media/tts",
		TTSRequest{Text: "各位村民请注意，今晚八点在村委会开会，请大家准时参加。", Lang: "zh", AttentionTone: true}, &m)
	if m.Format != "mp3" || m.DurationMS < 5000 || !strings.HasPrefix(m.Name, "tts-zh-各位村民") || !strings.HasSuffix(m.Name, ".mp3") {
		t.Fatalf("media %+v: want an MP3 of over 5 s (streamed to the terminal) named after the text", m)
	}
	if wavBytes := m.DurationMS * 44100 / 1000; m.Size*7 > wavBytes {
		t.Fatalf("%d bytes for %d ms: not a seventh of a 22,050 Hz WAV's %d", m.Size, m.DurationMS, wavBytes)
	}
	var listed []store.Media
	h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/media", nil, &listed)
	if len(listed) != 1 || listed[0].SHA256 != m.SHA256 || listed[0].Size != m.Size {
		t.Fatalf("media list %+v, want the spoken file", listed)
	}

	// The preview is the stored file itself: the chime, decoded as a
	// terminal decodes it, after lame's padding.
	resp, mp3 := request(t, apiClient, "GET", h.base+"/api/v1/media/"+m.SHA256, http.Header{"Authorization": {"Bearer " + h.token}}, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "audio/mpeg" || int64(len(mp3)) != m.Size {
		t.Fatalf("preview: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(mp3))
	}
	info, err := audio.Probe(mp3)
	if err != nil || info.Duration.Milliseconds() != m.DurationMS {
		t.Fatalf("preview probe %+v, %v; media says %d ms", info, err, m.DurationMS)
	}
	r, err := audio.Decode(bytes.NewReader(mp3), "mp3", 48000, 100)
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]byte, 48000*4)
	if _, err := io.ReadFull(r, pcm); err != nil {
		t.Fatal(err)
	}
	left := make([]float32, 48000)
	for i := range left {
		left[i] = float32(int16(binary.LittleEndian.Uint16(pcm[4*i:]))) / 32768
	}
	if segs := audio.ToneSegments(left, 48000, 880); len(segs) != 1 || segs[0].Start > 100*time.Millisecond {
		t.Fatalf("chime at the start: %v", segs)
	}
	if !hasAudit(h.auditEntries(t, ""), "media.tts", "cadre-a", m.SHA256) {
		t.Fatal("no media.tts audit entry")
	}

	v := AlertView{}
	cadre.mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts",
		AlertRequest{Class: "daily", Title: "开会通知", Areas: []string{villageA}, Media: []string{m.SHA256}}, &v)
	h.waitDelivery(t, v.ID, termA, "done")

	// Input the operator must correct names the field; nothing is stored.
	cadre.refused(t, http.StatusBadRequest, "text", "POST", "/api/v1/media/tts", TTSRequest{Text: " ", Lang: "zh"})
	cadre.refused(t, http.StatusBadRequest, "lang", "POST", "/api/v1/media/tts", TTSRequest{Text: "bonjour", Lang: "fr"})
	cadre.refused(t, http.StatusBadRequest, "text", "POST", "/api/v1/media/tts", TTSRequest{Text: strings.Repeat("长", 2001)})
	cadre.refused(t, http.StatusBadRequest, "body", "POST", "/api/v1/media/tts", map[string]any{"text": "x", "voice": "evil"})
	h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/media", nil, &listed)
	if len(listed) != 1 {
		t.Fatalf("%d media after refused requests, want 1", len(listed))
	}
	h.admin.refused(t, http.StatusNotFound, "", "GET", "/api/v1/media/"+strings.Repeat("0", 64), nil)
	h.admin.refused(t, http.StatusBadRequest, "sha256", "GET", "/api/v1/media/..%2f..%2fetc", nil)
}

// TestTTSMediaKeepsWAV: with "encode": [] the spoken WAV itself is stored
// (the chime at its very start), and an alert carrying it plays to the
// end on a terminal.
func TestTTSMediaKeepsWAV(t *testing.T) {
	t.Parallel()
	ttstest.Require(t)
	h := startController(t, func(c *Config) { c.TTS.Encode = []string{} })
	h.setPolicy(t, noApproval())
	_, termA := h.enrolledTerminal(t, villageA, "大巷村一号")
	cadre := h.user(t, "cadre-a", []string{"cadre"}, villageA)

	var m store.Media
	cadre.mustCall(t, http.StatusCreated, "POST", "/api/v1/media/tts",
		TTSRequest{Text: "各位村民请注意，今晚八点在村委会开会。", Lang: "zh", AttentionTone: true}, &m)
	if m.Format != "wav" || m.DurationMS < 2000 || !strings.HasPrefix(m.Name, "tts-zh-各位村民") || !strings.HasSuffix(m.Name, ".wav") {
		t.Fatalf("media %+v: want a WAV of a few seconds named after the text", m)
	}
	resp, wav := request(t, apiClient, "GET", h.base+"/api/v1/media/"+m.SHA256, http.Header{"Authorization": {"Bearer " + h.token}}, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "audio/wav" || int64(len(wav)) != m.Size {
		t.Fatalf("preview: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(wav))
	}
	s, rate, err := audio.ReadWAV(wav)
	if err != nil {
		t.Fatal(err)
	}
	if segs := audio.ToneSegments(s[:rate], rate, 880); len(segs) != 1 || segs[0].Start > 10*time.Millisecond {
		t.Fatalf("chime at the start: %v", segs)
	}
	v := AlertView{}
	cadre.mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts",
		AlertRequest{Class: "daily", Title: "开会通知", Areas: []string{villageA}, Media: []string{m.SHA256}}, &v)
	h.waitDelivery(t, v.ID, termA, "done")
}

// TestTTSConfigEncodeRefused: an encoder without a program is refused
// when the config is loaded, naming the key.
func TestTTSConfigEncodeRefused(t *testing.T) {
	err := TTSConfig{Encode: []string{" "}}.validate()
	if err == nil || !strings.HasPrefix(err.Error(), "tts.encode: the program name is empty") {
		t.Fatalf("validate = %v", err)
	}
}

// TestTTSEngineFailure: a broken speech command is a 503 naming the
// failure, and stores nothing.
func TestTTSEngineFailure(t *testing.T) {
	t.Parallel()
	h := startController(t, func(c *Config) {
		c.TTS = TTSConfig{Command: []string{"sh", "-c", "echo voice data missing >&2; exit 1"}}
	})
	e := h.officer(t).refused(t, http.StatusServiceUnavailable, "", "POST", "/api/v1/media/tts", TTSRequest{Text: "请注意"})
	if !strings.Contains(e.Error, "voice data missing") {
		t.Fatalf("error %q does not say why", e.Error)
	}
	var listed []store.Media
	h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/media", nil, &listed)
	if len(listed) != 0 {
		t.Fatalf("%d media stored", len(listed))
	}
}
