package controller

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"dalaba/controller/store"
	"dalaba/protocol"
)

func TestAPIRequiresToken(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	wrong, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	auths := []struct{ name, header string }{
		{"no header", ""},
		{"empty bearer", "Bearer "},
		{"wrong token", "Bearer " + wrong},
		{"admin token without the Bearer scheme", h.token},
		{"admin token under the Basic scheme", "Basic " + h.token},
		{"admin token with a byte more", "Bearer " + h.token + "A"},
		{"admin token's hash", "Bearer " + HashSecret(h.token)},
	}
	// Bodies that the routes would accept with the token: nothing of them
	// may be stored without it.
	bodies := map[string]any{
		"POST /api/v1/areas":     store.Area{Code: "450224102009", Name: "未授权村", Parent: township},
		"POST /api/v1/terminals": EnrollRequest{AreaCode: villageA, Name: "未授权"},
		"POST /api/v1/media":     tone(100 * time.Millisecond),
		"POST /api/v1/alerts":    AlertRequest{Title: "未授权", Level: 2, Areas: []string{villageA}},
	}
	paths := strings.NewReplacer("{id}", "64502241020030000000001", "{kid}", "0123456789abcdef")
	routes := h.c.apiRoutes()
	if len(routes) == 0 {
		t.Fatal("no API routes")
	}
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.pattern, " ")
		path = paths.Replace(path)
		for _, a := range auths {
			t.Run(rt.pattern+"/"+a.name, func(t *testing.T) {
				status, raw := h.callAs(t, a.header, method, path, bodies[rt.pattern], nil)
				if status != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401: %s", status, raw)
				}
				var body apiError
				if err := json.Unmarshal(raw, &body); err != nil || !strings.Contains(body.Error, "token") {
					t.Fatalf("error body %s (%v) does not say what is wrong with the token", raw, err)
				}
			})
		}
	}
	t.Run("health needs no token", func(t *testing.T) {
		status, raw := h.callAs(t, "", "GET", "/api/v1/health", nil, nil)
		if status != http.StatusOK || !strings.Contains(string(raw), `"ok": true`) {
			t.Fatalf("health: %d %s", status, raw)
		}
	})
	t.Run("nothing was stored", func(t *testing.T) {
		var areas []store.Area
		h.mustCall(t, http.StatusOK, "GET", "/api/v1/areas", nil, &areas)
		for _, a := range areas {
			if a.Code == "450224102009" {
				t.Fatal("an area was created without a token")
			}
		}
		for _, p := range []string{"/api/v1/terminals", "/api/v1/media", "/api/v1/alerts"} {
			var list []json.RawMessage
			h.mustCall(t, http.StatusOK, "GET", p, nil, &list)
			if len(list) != 0 {
				t.Fatalf("%s holds %d items created without a token", p, len(list))
			}
		}
	})
}

// mediaFiles lists the media folder, temporary files included.
func mediaFiles(t *testing.T, h *testController) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(h.dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestMediaUpload(t *testing.T) {
	t.Parallel()
	h := startController(t, func(c *Config) { c.MaxUploadMB = 1 })
	valid := tone(500 * time.Millisecond)
	big := tone(70 * time.Second) // 1.1 MB of valid audio: only the limit refuses it
	if len(big) <= 1<<20 {
		t.Fatalf("test tone of %d bytes is not over 1 MB", len(big))
	}
	float := bytes.Clone(valid)
	float[20] = 3 // format tag: IEEE float
	bad := []struct {
		name   string
		body   []byte
		status int
		msg    string
	}{
		{"empty body", nil, http.StatusBadRequest, "empty"},
		{"garbage", []byte("this is not audio at all, just some text pretending"), http.StatusBadRequest, "not a WAV or MP3"},
		{"truncated WAV", valid[:len(valid)-1000], http.StatusBadRequest, "truncated"},
		{"WAV header only", valid[:44], http.StatusBadRequest, "WAV"},
		{"float WAV", float, http.StatusBadRequest, "WAV"},
		{"over the size limit", big, http.StatusRequestEntityTooLarge, "larger than the limit of 1 MB"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			body := c.body
			if body == nil {
				body = []byte{}
			}
			status, raw := h.officer(t).call(t, "POST", "/api/v1/media?name=bad.wav", body, nil)
			var e apiError
			if status != c.status || json.Unmarshal(raw, &e) != nil || !strings.Contains(e.Error, c.msg) {
				t.Fatalf("status %d %s, want %d with %q", status, raw, c.status, c.msg)
			}
			if files := mediaFiles(t, h); len(files) != 0 {
				t.Fatalf("media folder holds %v after a refused upload", files)
			}
			var list []store.Media
			h.mustCall(t, http.StatusOK, "GET", "/api/v1/media", nil, &list)
			if len(list) != 0 {
				t.Fatalf("media table holds %+v after a refused upload", list)
			}
		})
	}
	t.Run("valid WAV", func(t *testing.T) {
		m := h.upload(t, valid)
		if m.Format != "wav" || m.DurationMS != 500 || m.Size != int64(len(valid)) || m.Name != "tone.wav" {
			t.Fatalf("stored %+v", m)
		}
		if err := m.Media.Validate(); err != nil {
			t.Fatalf("stored description is not a valid protocol.Media: %v", err)
		}
		if files := mediaFiles(t, h); !slices.Equal(files, []string{m.SHA256}) {
			t.Fatalf("media folder holds %v, want just %s", files, m.SHA256)
		}
		data, err := os.ReadFile(filepath.Join(h.dir, "media", m.SHA256))
		if err != nil || !bytes.Equal(data, valid) {
			t.Fatalf("stored file differs from the upload (%v)", err)
		}
		again := h.upload(t, valid)
		if again.SHA256 != m.SHA256 || len(mediaFiles(t, h)) != 1 {
			t.Fatalf("second upload of the same audio: %+v, files %v", again, mediaFiles(t, h))
		}
	})
}

// activeTerminalInStore enrolls a terminal with a throwaway key, as if its
// daemon had connected once.
func activeTerminalInStore(t *testing.T, h *testController, area string) string {
	t.Helper()
	ctx := context.Background()
	res, err := h.c.Enroll(ctx, "test", EnrollRequest{AreaCode: area, Name: "喇叭"})
	if err != nil {
		t.Fatal(err)
	}
	code, _, _ := strings.Cut(res.EnrollToken, ".")
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	term, err := h.c.Store().Enroll(ctx, HashSecret(code), pub, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return term.ID
}

func TestAlertValidation(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	h.setPolicy(t, noApproval()) // the first valid alert is sent at once
	media := h.upload(t, tone(200*time.Millisecond))
	activeTerminalInStore(t, h, villageA)
	now := time.Now()
	base := func() AlertRequest {
		return AlertRequest{Title: "防汛预警", Level: 2, Areas: []string{villageA}, Media: []string{media.SHA256}}
	}
	cases := []struct {
		name  string
		edit  func(r *AlertRequest)
		raw   string // sent instead of the request when set
		field string
	}{
		{"missing title", func(r *AlertRequest) { r.Title = "" }, "", "title"},
		{"blank title", func(r *AlertRequest) { r.Title = " \t " }, "", "title"},
		{"no media", func(r *AlertRequest) { r.Media = nil }, "", "media"},
		{"unknown media hash", func(r *AlertRequest) { r.Media = []string{strings.Repeat("ab", 32)} }, "", "media"},
		{"bad area code", func(r *AlertRequest) { r.Areas = []string{"4502241020"} }, "", "areas"},
		{"bad terminal id", func(r *AlertRequest) { r.Terminals = []string{"123"} }, "", "terminals"},
		{"no target at all", func(r *AlertRequest) { r.Areas = nil }, "", "areas"},
		{"no terminals in the area", func(r *AlertRequest) { r.Areas = []string{emptyVill} }, "", "areas"},
		{"level 5", func(r *AlertRequest) { r.Level = 5 }, "", "level"},
		{"emergency at level 0", func(r *AlertRequest) { r.Level = 0 }, "", "level"},
		{"unknown class", func(r *AlertRequest) { r.Class = "urgent" }, "", "class"},
		{"msg_type 2 is a cancel", func(r *AlertRequest) { r.MsgType = protocol.MsgCancel }, "", "msg_type"},
		{"event type of 3 characters", func(r *AlertRequest) { r.EventType = "110" }, "", "event_type"},
		{"repeat 101", func(r *AlertRequest) { r.Repeat = 101 }, "", "repeat"},
		{"volume 101", func(r *AlertRequest) { r.Volume = 101 }, "", "volume"},
		{"expired window", func(r *AlertRequest) { r.Expires = now.Add(-time.Minute) }, "", "expires"},
		{"expires before not_before", func(r *AlertRequest) {
			r.NotBefore, r.Expires = now.Add(2*time.Hour), now.Add(time.Hour)
		}, "", "expires"},
		{"window longer than the command lifetime", func(r *AlertRequest) {
			r.Expires = now.Add(protocol.MaxCommandLifetime + time.Hour)
		}, "", "expires"},
		{"valid_minutes of nine days", func(r *AlertRequest) { r.ValidMinutes = 9 * 24 * 60 }, "", "valid_minutes"},
		{"negative valid_minutes", func(r *AlertRequest) { r.ValidMinutes = -5 }, "", "valid_minutes"},
		{"not_before nine days ahead", func(r *AlertRequest) { r.NotBefore = now.Add(9 * 24 * time.Hour) }, "", "not_before"},
		{"misspelt field", nil, `{"title":"x","levle":2,"areas":["` + villageA + `"],"media":["` + media.SHA256 + `"]}`, "body"},
		{"not JSON", nil, `title=x`, "body"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body any = []byte(c.raw)
			if c.raw == "" {
				req := base()
				c.edit(&req)
				body = req
			}
			status, raw := h.officer(t).call(t, "POST", "/api/v1/alerts", body, nil)
			var e apiError
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatalf("answer %s is not an error object: %v", raw, err)
			}
			if status != http.StatusBadRequest || e.Field != c.field || e.Error == "" {
				t.Fatalf("status %d field %q (%s), want 400 naming %q", status, e.Field, e.Error, c.field)
			}
			var alerts []AlertView
			h.mustCall(t, http.StatusOK, "GET", "/api/v1/alerts", nil, &alerts)
			if len(alerts) != 0 {
				t.Fatalf("a refused alert was stored: %+v", alerts)
			}
		})
	}
	// A refused request spends no EBM sequence number: the first alert that
	// passes is number 1 of the day.
	v := h.send(t, base())
	want, err := protocol.NewEBMID(h.c.cfg.PlatformEBRID, v.CreatedAt, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v.ID != want || v.Status != store.AlertActive || v.Counts[protocol.DeliveryOffline] != 1 {
		t.Fatalf("first valid alert %s (status %s, counts %v), want id %s", v.ID, v.Status, v.Counts, want)
	}
}
