package controller

import (
	"encoding/binary"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/controller/access"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// TestTestTone checks POST /api/v1/terminals/{id}/test-tone: a technician
// makes one real terminal (WAV output) play the 1 kHz tone through a signed
// alert of class test that needs no approval, its delivery reaches done,
// the recording is 3 s of 1 kHz, and the action is audited. Nobody without
// terminals.manage, or outside the terminal's area, may; an offline
// terminal is refused with a conflict.
func TestTestTone(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	// Every daily notice needs approval here: a test tone still does not.
	h.setPolicy(t, access.Policy{Approval: map[string][]int{protocol.ClassDaily: {0, 1, 2, 3, 4}}})
	cfg := h.terminalConfig(t, "大巷村1号")
	cfg.Audio.Output, cfg.Audio.Dir = "wav", t.TempDir()
	var res EnrollResult
	h.mustCall(t, http.StatusCreated, "POST", "/api/v1/terminals", EnrollRequest{AreaCode: villageA, Name: "大巷村1号"}, &res)
	cfg.EnrollToken = res.EnrollToken
	tt := runTerminal(t, cfg)
	id := res.Terminal.ID
	h.waitOnline(t, tt, id)
	_, other := h.enrolledTerminal(t, villageB, "大将村1号")

	tech := h.user(t, "chen", []string{access.Technician}, villageA)
	var a store.Alert
	tech.mustCall(t, http.StatusCreated, "POST", "/api/v1/terminals/"+id+"/test-tone", nil, &a)
	if a.Class != protocol.ClassTest || a.Level != 0 || a.Status != store.AlertActive || len(a.Targets.Terminals) != 1 || a.Targets.Terminals[0] != id {
		t.Fatalf("test tone alert %+v: want an active class test, level 0 alert to %s only", a, id)
	}
	h.waitDelivery(t, a.ID, id, "done")
	v := h.view(t, a.ID)
	if len(v.Deliveries) != 1 {
		t.Errorf("deliveries %+v: want the one terminal", v.Deliveries)
	}
	if !hasAudit(h.auditEntries(t, ""), "terminal.test", "chen", id) {
		t.Errorf("no terminal.test audit entry by chen on %s", id)
	}
	// What the terminal played: 3 s of 1 kHz.
	files, _ := filepath.Glob(filepath.Join(cfg.Audio.Dir, "*.wav"))
	if len(files) != 1 {
		t.Fatalf("terminal wrote %v, want one recording", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	info, err := audio.Probe(data)
	if err != nil {
		t.Fatal(err)
	}
	if d := info.Duration; d < 2900*time.Millisecond || d > 3100*time.Millisecond {
		t.Errorf("played %s, want 3 s", d)
	}
	if hz := crossings(data[44:]) / 2 / info.Duration.Seconds(); hz < 950 || hz > 1050 {
		t.Errorf("played a tone of %.0f Hz, want 1000", hz)
	}

	// Not for other roles, not outside the technician's areas.
	h.user(t, "wang", []string{access.Cadre}, villageA).refused(t, http.StatusForbidden, "", "POST", "/api/v1/terminals/"+id+"/test-tone", nil)
	tech.refused(t, http.StatusNotFound, "", "POST", "/api/v1/terminals/"+other+"/test-tone", nil)
	tt.stop()
	h.waitOffline(t, id)
	tech.refused(t, http.StatusConflict, "", "POST", "/api/v1/terminals/"+id+"/test-tone", nil)
}

// crossings counts sign changes of 16-bit mono little-endian samples.
func crossings(pcm []byte) float64 {
	n, prev := 0, int16(0)
	for i := 0; i+1 < len(pcm); i += 2 {
		s := int16(binary.LittleEndian.Uint16(pcm[i:]))
		if (s >= 0) != (prev >= 0) {
			n++
		}
		prev = s
	}
	return float64(n)
}
