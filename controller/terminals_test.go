package controller

import (
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"dalaba/controller/store"
	"dalaba/protocol"
)

func TestEnrollWithWrongCode(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	var res EnrollResult
	h.mustCall(t, http.StatusCreated, "POST", "/api/v1/terminals", EnrollRequest{AreaCode: villageA, Name: "大巷村1号"}, &res)
	cfg := h.terminalConfig(t, "大巷村1号")
	cfg.EnrollToken = "not-the-code." + h.fp
	tt := runTerminal(t, cfg)
	waitFor(t, "the terminal to be denied", func() bool { return strings.Contains(tt.logs.String(), protocol.DenyBadCode) })
	if st := tt.Status(); st.Connected || st.Enrolled {
		t.Fatalf("terminal with a wrong code: %+v", st)
	}
	if row := h.terminalRow(t, res.Terminal.ID); row.Status != store.TerminalEnrolling || row.PublicKey != nil {
		t.Fatalf("terminal row after a wrong code: %+v", row)
	}
	var pending []store.Pending
	h.mustCall(t, http.StatusOK, "GET", "/api/v1/terminals/pending", nil, &pending)
	if len(pending) != 0 {
		t.Fatalf("a terminal with a wrong code went to the pending list: %+v", pending)
	}
	// The same daemon with the right code enrolls: the wrong try did not
	// spend the code.
	tt.stop()
	cfg.EnrollToken = res.EnrollToken
	h.waitOnline(t, runTerminal(t, cfg), res.Terminal.ID)
	// The code is now spent: another key cannot use it.
	code, _, _ := strings.Cut(res.EnrollToken, ".")
	_, f := rawHello(t, h.ws, newKey(t), code)
	if r := deniedReason(t, f); r != protocol.DenyBadCode {
		t.Fatalf("second use of the code: denied %s, want %s", r, protocol.DenyBadCode)
	}
}

func TestPendingTerminalApproved(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	cfg := h.terminalConfig(t, "新喇叭")
	cfg.ControllerFingerprint = h.fp
	tt := runTerminal(t, cfg)

	var pending []store.Pending
	waitFor(t, "the terminal on the pending list", func() bool {
		h.mustCall(t, http.StatusOK, "GET", "/api/v1/terminals/pending", nil, &pending)
		return len(pending) == 1
	})
	key := terminalKey(t, cfg)
	p := pending[0]
	if p.KeyID != protocol.KeyID(key.Public().(ed25519.PublicKey)) || p.Hostname != "新喇叭" || !strings.HasPrefix(p.RemoteAddr, "127.0.0.1:") {
		t.Fatalf("pending entry %+v", p)
	}
	if st := tt.Status(); st.Connected || st.Enrolled {
		t.Fatalf("pending terminal: %+v", st)
	}
	status, raw := h.call(t, "POST", "/api/v1/terminals/pending/"+p.KeyID+"/approve", EnrollRequest{AreaCode: emptyVill + "0"}, nil)
	if status != http.StatusBadRequest {
		t.Fatalf("approve with a bad area: %d %s", status, raw)
	}
	var term store.Terminal
	h.mustCall(t, http.StatusOK, "POST", "/api/v1/terminals/pending/"+p.KeyID+"/approve", EnrollRequest{AreaCode: villageB, Name: "大将村2号"}, &term)
	if term.Status != store.TerminalActive || term.AreaCode != villageB || !strings.HasPrefix(term.ID, "6"+villageB) {
		t.Fatalf("approved terminal %+v", term)
	}
	h.waitOnline(t, tt, term.ID)
	if st := tt.Status(); !st.Enrolled || st.AreaCode != villageB {
		t.Fatalf("approved terminal status %+v", st)
	}
	h.mustCall(t, http.StatusOK, "GET", "/api/v1/terminals/pending", nil, &pending)
	if len(pending) != 0 {
		t.Fatalf("pending list after approval: %+v", pending)
	}
	status, _ = h.call(t, "POST", "/api/v1/terminals/pending/"+p.KeyID+"/approve", EnrollRequest{AreaCode: villageB, Name: "again"}, nil)
	if status != http.StatusNotFound {
		t.Fatalf("approving twice: %d, want 404", status)
	}
}

func TestRevokedTerminalIsCutOff(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	media := h.upload(t, tone(100*time.Millisecond))
	tt, id := h.enrolledTerminal(t, villageA, "大巷村1号")
	key := terminalKey(t, tt.cfg)

	h.mustCall(t, http.StatusOK, "POST", "/api/v1/terminals/"+id+"/revoke", nil, nil)
	waitFor(t, "the revoked terminal's link to drop", func() bool { return !tt.Status().Connected })
	if row := h.terminalRow(t, id); row.Status != store.TerminalRevoked || row.State != "offline" {
		t.Fatalf("revoked terminal row %+v", row)
	}
	_, f := rawHello(t, h.ws, key, "")
	if r := deniedReason(t, f); r != protocol.DenyRevoked {
		t.Fatalf("revoked key: denied %s, want %s", r, protocol.DenyRevoked)
	}
	// Its own daemon keeps trying and keeps being refused.
	waitFor(t, "the daemon to be refused", func() bool { return strings.Contains(tt.logs.String(), protocol.DenyRevoked) })
	if tt.Status().Connected {
		t.Fatal("revoked terminal connected again")
	}
	status, raw := h.officer(t).call(t, "POST", "/api/v1/alerts", AlertRequest{Title: "x", Level: 2, Areas: []string{villageA}, Media: []string{media.SHA256}}, nil)
	var e apiError
	if json.Unmarshal(raw, &e); status != http.StatusBadRequest || e.Field != "areas" {
		t.Fatalf("alert to a revoked terminal's village: %d %s", status, raw)
	}
	status, _ = h.call(t, "POST", "/api/v1/terminals/64502241020039999999999/revoke", nil, nil)
	if status != http.StatusNotFound {
		t.Fatalf("revoking an unknown terminal: %d", status)
	}
}

func TestSecondConnectionReplacesFirst(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	tt, id := h.enrolledTerminal(t, villageA, "大巷村1号")
	key := terminalKey(t, tt.cfg)

	ws, f := rawHello(t, h.ws, key, "")
	var w protocol.Welcome
	if f.Type != protocol.TypeWelcome || protocol.DecodeBody(f, &w) != nil || w.TerminalID != id {
		t.Fatalf("second connection got %s %s, want a welcome for %s", f.Type, f.Body, id)
	}
	waitFor(t, "the first connection to close", func() bool { return !tt.Status().Connected })
	// The daemon reconnects and in turn replaces the raw connection.
	ws.SetReadDeadline(time.Now().Add(waitLimit))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
	h.waitOnline(t, tt, id)
	var health struct {
		Online int `json:"online"`
	}
	h.mustCall(t, http.StatusOK, "GET", "/api/v1/health", nil, &health)
	if health.Online != 1 {
		t.Fatalf("%d sessions online, want 1", health.Online)
	}
	if got := h.c.hub.replaced.Load(); got != 2 {
		t.Fatalf("%d connections replaced, want 2", got)
	}
}

func TestConfigureTerminal(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	tt, id := h.enrolledTerminal(t, villageA, "大巷村1号")
	var idle EnrollResult // created, never connected
	h.mustCall(t, http.StatusCreated, "POST", "/api/v1/terminals", EnrollRequest{AreaCode: villageB, Name: "未上线"}, &idle)

	refused := []struct {
		name, id, body string
		status         int
		field          string
	}{
		{"volume above 100", id, `{"volume":101}`, http.StatusBadRequest, "config"},
		{"nothing to change", id, `{}`, http.StatusBadRequest, "config"},
		{"heartbeat of 1 s", id, `{"heartbeat_seconds":1}`, http.StatusBadRequest, "config"},
		{"unknown key", id, `{"volumen":30}`, http.StatusBadRequest, "body"},
		{"unknown terminal", "64502241020039999999999", `{"volume":30}`, http.StatusNotFound, ""},
		{"terminal not connected", idle.Terminal.ID, `{"volume":30}`, http.StatusConflict, ""},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			status, raw := h.call(t, "POST", "/api/v1/terminals/"+c.id+"/config", []byte(c.body), nil)
			var e apiError
			if json.Unmarshal(raw, &e); status != c.status || e.Field != c.field || e.Error == "" {
				t.Fatalf("status %d %s, want %d naming %q", status, raw, c.status, c.field)
			}
		})
	}
	if v := h.terminalRow(t, id).Volume; v == nil || *v != 80 {
		t.Fatalf("volume before the config command: %v, want the default 80", v)
	}
	h.mustCall(t, http.StatusAccepted, "POST", "/api/v1/terminals/"+id+"/config", map[string]int{"volume": 30}, nil)
	waitFor(t, "the heartbeat to report volume 30", func() bool {
		v := h.terminalRow(t, id).Volume
		return v != nil && *v == 30
	})
	if st := tt.Status(); st.Volume != 30 {
		t.Fatalf("terminal volume %d", st.Volume)
	}
}

func TestApproveValidation(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	key := newKey(t)
	_, f := rawHello(t, h.ws, key, "")
	if r := deniedReason(t, f); r != protocol.DenyPending {
		t.Fatalf("unknown key without a code: denied %s, want %s", r, protocol.DenyPending)
	}
	kid := protocol.KeyID(key.Public().(ed25519.PublicKey))
	cases := []struct {
		name, kid string
		req       EnrollRequest
		status    int
		field     string
	}{
		{"malformed area code", kid, EnrollRequest{AreaCode: "45022410200", Name: "x"}, http.StatusBadRequest, "area_code"},
		{"area not in the tree", kid, EnrollRequest{AreaCode: "450224102099", Name: "x"}, http.StatusBadRequest, "area_code"},
		{"blank name", kid, EnrollRequest{AreaCode: villageA, Name: " "}, http.StatusBadRequest, "name"},
		{"unknown key id", "0123456789abcdef", EnrollRequest{AreaCode: villageA, Name: "x"}, http.StatusNotFound, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, raw := h.call(t, "POST", "/api/v1/terminals/pending/"+c.kid+"/approve", c.req, nil)
			var e apiError
			if json.Unmarshal(raw, &e); status != c.status || e.Field != c.field || e.Error == "" {
				t.Fatalf("status %d %s, want %d naming %q", status, raw, c.status, c.field)
			}
			var ts []store.Terminal
			h.mustCall(t, http.StatusOK, "GET", "/api/v1/terminals", nil, &ts)
			if len(ts) != 0 {
				t.Fatalf("a refused approval stored %+v", ts)
			}
		})
	}
	var term store.Terminal
	h.mustCall(t, http.StatusOK, "POST", "/api/v1/terminals/pending/"+kid+"/approve", EnrollRequest{AreaCode: villageA, Name: "大巷村3号"}, &term)
	_, f = rawHello(t, h.ws, key, "")
	var w protocol.Welcome
	if f.Type != protocol.TypeWelcome || protocol.DecodeBody(f, &w) != nil || w.TerminalID != term.ID || w.AreaCode != villageA {
		t.Fatalf("approved key got %s %s", f.Type, f.Body)
	}
}
