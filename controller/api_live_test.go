package controller

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/audio"
	"dalaba/controller/access"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// wavTerminal enrolls a terminal whose loudspeaker is a folder of WAV files.
func (h *testController) wavTerminal(t *testing.T, area, name string) (*testTerminal, string, string) {
	t.Helper()
	var res EnrollResult
	h.mustCall(t, http.StatusCreated, "POST", "/api/v1/terminals", EnrollRequest{AreaCode: area, Name: name}, &res)
	cfg := h.terminalConfig(t, name)
	cfg.EnrollToken = res.EnrollToken
	cfg.Audio.Output, cfg.Audio.Dir, cfg.Audio.Rate = "wav", filepath.Join(t.TempDir(), "out"), 16000
	tt := runTerminal(t, cfg)
	h.waitOnline(t, tt, res.Terminal.ID)
	return tt, res.Terminal.ID, cfg.Audio.Dir
}

// liveConn opens the live WebSocket as cl with hdr added.
func (h *testController) liveConn(t *testing.T, cl *client, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	if cl.bearer != "" {
		hdr.Set("Authorization", "Bearer "+cl.bearer)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Jar: cl.hc.Jar}
	return d.Dial("ws"+strings.TrimPrefix(h.base, "http")+"/api/v1/live", hdr)
}

// goLive opens a live session and returns the connection and its start message.
func (h *testController) goLive(t *testing.T, cl *client, req LiveRequest) (*websocket.Conn, LiveMessage) {
	t.Helper()
	conn, _, err := h.liveConn(t, cl, nil)
	if err != nil {
		t.Fatalf("dial live: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.WriteJSON(req); err != nil {
		t.Fatal(err)
	}
	return conn, readLive(t, conn)
}

func readLive(t *testing.T, conn *websocket.Conn) LiveMessage {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m LiveMessage
	if err := conn.ReadJSON(&m); err != nil {
		t.Fatalf("read live message: %v", err)
	}
	return m
}

// tonePCM is d of a sine at freq as s16le mono 16 kHz, starting at sample from.
func tonePCM(freq float64, from, n int) []byte {
	b := make([]byte, 0, 2*n)
	for i := from; i < from+n; i++ {
		v := int16(0.5 * 32767 * math.Sin(2*math.Pi*freq*float64(i)/protocol.LiveRate))
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

// speak sends d of a tone in 20 ms frames at real-time pace.
func speak(t *testing.T, conn *websocket.Conn, freq float64, d time.Duration) {
	t.Helper()
	if err := speakTone(conn, freq, d); err != nil {
		t.Fatal(err)
	}
}

func speakTone(conn *websocket.Conn, freq float64, d time.Duration) error {
	return speakUntil(conn, freq, d, nil)
}

// speakUntil is speakTone that stops early when stop closes.
func speakUntil(conn *websocket.Conn, freq float64, d time.Duration, stop <-chan struct{}) error {
	const n = protocol.LiveFrameBytes / 2
	tick := time.NewTicker(protocol.LiveFrameMS * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < int(d/(protocol.LiveFrameMS*time.Millisecond)); i++ {
		if err := conn.WriteMessage(websocket.BinaryMessage, tonePCM(freq, i*n, n)); err != nil {
			return fmt.Errorf("send frame %d: %w", i, err)
		}
		select {
		case <-tick.C:
		case <-stop:
			return nil
		}
	}
	return nil
}

// liveSessionOf reads the session id and stream key from the stored command.
func (h *testController) liveCommand(t *testing.T, alertID string) *protocol.Live {
	t.Helper()
	var sc protocol.SignedCommand
	h.mustCall(t, http.StatusOK, "GET", "/api/v1/alerts/"+alertID+"/command", nil, &sc)
	var cmd protocol.Command
	if err := json.Unmarshal(sc.Payload, &cmd); err != nil || cmd.Kind != protocol.KindLive || cmd.Live == nil {
		t.Fatalf("stored command of %s: %s (%v)", alertID, sc.Payload, err)
	}
	return cmd.Live
}

// toneIn returns the total length of freq in the WAV files of dir.
func toneIn(t *testing.T, dir string, freq float64) time.Duration {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.wav"))
	var total time.Duration
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		samples, rate, err := audio.ReadWAV(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, s := range audio.ToneSegments(samples, rate, freq) {
			total += s.End - s.Start
		}
	}
	return total
}

func TestLiveSpeechReachesTwoTerminalsAndNothingInjectedPlays(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	ta, idA, dirA := h.wavTerminal(t, villageA, "大巷村1号")
	tb, idB, dirB := h.wavTerminal(t, villageA, "大巷村2号")
	_, idC, dirC := h.wavTerminal(t, villageB, "大将村1号")
	td, idD, dirD := h.wavTerminal(t, villageA, "大巷村3号")
	td.stop()
	h.waitOffline(t, idD)
	cadre := h.user(t, "wang", []string{access.Cadre}, villageA)

	conn, start := h.goLive(t, cadre, LiveRequest{Areas: []string{villageA}, Title: "村委会通知"})
	if start.Type != "started" || start.Terminals != 3 || start.Online != 2 || protocol.ValidEBMID(start.AlertID) != nil {
		t.Fatalf("start answer %+v, want started to 3 terminals, 2 online", start)
	}
	live := h.liveCommand(t, start.AlertID)
	if live.Class != protocol.ClassDaily || live.Format != protocol.LiveFormat || live.MaxSeconds != liveDefaultSeconds {
		t.Fatalf("live command %+v", live)
	}
	speak(t, conn, 1000, 400*time.Millisecond)
	// Frames of this session with a wrong key, straight into A's link: a
	// 3 kHz tone that must never sound.
	var session [32]byte
	hex.Decode(session[:], []byte(live.SessionID))
	forged := make([]byte, 32)
	for i := range 25 {
		s := h.c.hub.get(idA)
		if s == nil || !s.sendLive(protocol.EncodeLiveFrame(session, forged, uint64(1000+i), tonePCM(3000, i*320, 320))) {
			t.Fatal("could not inject a frame into terminal A's link")
		}
	}
	speak(t, conn, 1000, 600*time.Millisecond)
	if err := conn.WriteJSON(LiveMessage{Type: "end"}); err != nil {
		t.Fatal(err)
	}
	if end := readLive(t, conn); end.Type != "ended" || end.Reason != "end" || end.Frames != 50 {
		t.Fatalf("end answer %+v, want ended after 50 frames", end)
	}
	for _, id := range []string{idA, idB} {
		h.waitDelivery(t, start.AlertID, id, protocol.DeliveryDone)
	}
	waitFor(t, "relays OFF after the end", func() bool { return !ta.Status().RelayOn && !tb.Status().RelayOn })
	for name, dir := range map[string]string{"A": dirA, "B": dirB} {
		if got := toneIn(t, dir, 1000); got < 800*time.Millisecond || got > 1100*time.Millisecond {
			t.Errorf("terminal %s played %v of the 1 s spoken tone", name, got)
		}
		if got := toneIn(t, dir, 3000); got > 0 {
			t.Errorf("terminal %s played %v of the injected tone", name, got)
		}
	}
	if names, _ := filepath.Glob(filepath.Join(dirC, "*.wav")); len(names) != 0 {
		t.Errorf("terminal outside the area played %v", names)
	}
	if _, ok := deliveryOf(h.view(t, start.AlertID), idC); ok {
		t.Error("terminal outside the area has a delivery")
	}
	// The terminal that was offline is not sent the session once it is
	// over: its delivery expired at the end, and it stays silent when it
	// connects.
	if d, _ := deliveryOf(h.view(t, start.AlertID), idD); d.State != protocol.DeliveryExpired {
		t.Errorf("offline terminal's delivery %+v, want expired at the end of the session", d)
	}
	if v := h.view(t, start.AlertID); v.Status != store.AlertExpired || v.Comment != "live speech ended" {
		t.Errorf("the session's alert after its end is %s (%q), want expired: live speech ended", v.Status, v.Comment)
	}
	td = runTerminal(t, td.cfg)
	h.waitOnline(t, td, idD)
	time.Sleep(500 * time.Millisecond) // what the controller sends on connect has arrived
	if rs := receiptStates(h.receipts(t, idD), start.AlertID); len(rs) != 0 || td.Status().RelayOn {
		t.Errorf("the terminal connecting after the session reported %v, relay on %v", rs, td.Status().RelayOn)
	}
	if names, _ := filepath.Glob(filepath.Join(dirD, "*.wav")); len(names) != 0 {
		t.Errorf("the terminal connecting after the session played %v", names)
	}
	// The injected frames were reported once, naming the live session.
	waitFor(t, "the rejection of the forged frames", func() bool {
		rs, err := h.c.store.Reports(context.Background(), idA, protocol.ReportRejection, 10)
		return err == nil && len(rs) == 1 && rs[0].Report.Rejection.Reason == protocol.RejectLiveFrame
	})
	es := h.auditEntries(t, "actor=wang")
	if !hasAudit(es, "live.start", "wang", start.AlertID) || !hasAudit(es, "live.end", "wang", start.AlertID) {
		t.Fatalf("live session not audited: %+v", es)
	}
}

func TestLiveIsScopedAndAuthorisedLikeAnAlert(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	h.enrolledTerminal(t, villageA, "大巷村1号")
	h.enrolledTerminal(t, villageB, "大将村1号")
	cadre := h.user(t, "wang", []string{access.Cadre}, villageA)
	before := h.alertCount(t)
	cases := []struct {
		name  string
		cl    *client
		req   LiveRequest
		field string
		want  string
	}{
		{"another village", cadre, LiveRequest{Areas: []string{villageB}}, "", "outside your areas"},
		{"the whole township", cadre, LiveRequest{Areas: []string{township}}, "", "outside your areas"},
		{"an emergency by a cadre", cadre, LiveRequest{Class: protocol.ClassEmergency, Level: 4, Areas: []string{villageA}}, "", "daily notices only"},
		{"an emergency needing approval", h.officer(t), LiveRequest{Class: protocol.ClassEmergency, Level: 2, Areas: []string{villageA}}, "class", "approve"},
		{"no target", cadre, LiveRequest{}, "areas", "no area"},
		{"no terminal there", h.officer(t), LiveRequest{Areas: []string{emptyVill}}, "areas", "no enrolled terminal"},
		{"too long", cadre, LiveRequest{Areas: []string{villageA}, MaxSeconds: 7200}, "max_seconds", "1..3600"},
	}
	for _, c := range cases {
		_, m := h.goLive(t, c.cl, c.req)
		if m.Type != "error" || m.Field != c.field || !strings.Contains(m.Error, c.want) {
			t.Errorf("%s: answer %+v, want an error on %q saying %q", c.name, m, c.field, c.want)
		}
	}
	if n := h.alertCount(t); n != before {
		t.Fatalf("%d alerts after refused live requests, want %d", n, before)
	}
	// A browser session must come from the console's own origin.
	h.user(t, "li", []string{access.Cadre}, villageA)
	sess := h.session(t, "li", testPassword)
	_, resp, err := h.liveConn(t, sess, http.Header{"Origin": {"http://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin live WebSocket: %v %v, want 403", resp, err)
	}
	conn, _, err := h.liveConn(t, sess, http.Header{"Origin": {h.base}})
	if err != nil {
		t.Fatalf("same-origin live WebSocket: %v", err)
	}
	conn.Close()
	// No identity, no WebSocket.
	if _, resp, err := h.liveConn(t, &client{h: h, hc: apiClient}, nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous live WebSocket: %v, want 401", err)
	}
}

func TestLiveRelayOffAfterIdleAndLinkDrop(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	ta, idA, _ := h.wavTerminal(t, villageA, "大巷村1号")
	officer := h.officer(t)

	// Frames stop but the operator stays connected: the terminal ends the
	// session after liveIdle, before the controller's own idle limit.
	conn, start := h.goLive(t, officer, LiveRequest{Areas: []string{villageA}})
	speak(t, conn, 1000, 300*time.Millisecond)
	waitFor(t, "relay ON", func() bool { return ta.Status().RelayOn })
	h.waitDelivery(t, start.AlertID, idA, protocol.DeliveryDone)
	waitFor(t, "relay OFF after the idle timeout", func() bool { return !ta.Status().RelayOn })
	conn.Close()

	// The link drops while speaking: the relay goes OFF and the delivery fails.
	conn, start = h.goLive(t, officer, LiveRequest{Areas: []string{villageA}})
	spoke, stop := make(chan error, 1), make(chan struct{})
	go func() { spoke <- speakUntil(conn, 1000, time.Minute, stop) }()
	waitFor(t, "playing", func() bool { return ta.Status().Playing == start.AlertID })
	h.c.hub.get(idA).close()
	waitFor(t, "relay OFF after the link dropped", func() bool { return !ta.Status().RelayOn })
	if d := h.waitDelivery(t, start.AlertID, idA, protocol.DeliveryFailed); d.Reason != "link" {
		t.Fatalf("delivery after a link drop %+v, want failed for the link", d)
	}
	close(stop)
	if err := <-spoke; err != nil {
		t.Fatalf("the operator's side suffered from a terminal's link drop: %v", err)
	}
}

// TestLiveIsPreemptedByAnEmergency: an emergency alert cuts live speech at
// once; the live session is dropped (failed, preempted), not resumed, and
// the emergency plays to the end. Where the county's policy lets an
// emergency level go without approval, an officer may speak at that level,
// and it then outranks a daily notice.
func TestLiveIsPreemptedByAnEmergency(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	ta, idA, dir := h.wavTerminal(t, villageA, "大巷村1号")
	h.setPolicy(t, noApproval())
	conn, start := h.goLive(t, h.role(t, access.Cadre), LiveRequest{Areas: []string{villageA}})
	spoke := make(chan error, 1)
	go func() { spoke <- speakTone(conn, 1000, 6*time.Second) }()
	waitFor(t, "live speech playing", func() bool { return ta.Status().Playing == start.AlertID })
	alarm := h.upload(t, audio.ToneWAV(2000, 500*time.Millisecond, 16000, 0.5))
	v := h.send(t, AlertRequest{Title: "山洪预警", Level: 2, Areas: []string{villageA}, Media: []string{alarm.SHA256}})
	if d := h.waitDelivery(t, start.AlertID, idA, protocol.DeliveryFailed); d.Reason != "preempted" {
		t.Fatalf("live delivery after the emergency %+v, want failed, preempted", d)
	}
	h.waitDelivery(t, v.ID, idA, protocol.DeliveryDone)
	if err := <-spoke; err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if got := toneIn(t, dir, 2000); got < 400*time.Millisecond {
		t.Fatalf("the emergency played %v of its 0.5 s", got)
	}
	if got := toneIn(t, dir, 1000); got > 5*time.Second {
		t.Fatalf("live speech played %v: it was not cut", got)
	}

	h.setPolicy(t, access.Policy{Approval: map[string][]int{protocol.ClassEmergency: {1, 2, 3}}, DrillRoles: []string{access.Officer}})
	conn, start = h.goLive(t, h.officer(t), LiveRequest{Class: protocol.ClassEmergency, Level: 4, Areas: []string{villageA}})
	if start.Type != "started" {
		t.Fatalf("emergency level 4 live speech without approval: %+v", start)
	}
	if l := h.liveCommand(t, start.AlertID); protocol.LivePriority(l) != protocol.PriorityEmergency4 {
		t.Fatalf("emergency live speech at priority %d", protocol.LivePriority(l))
	}
	conn.WriteJSON(LiveMessage{Type: "end"})
	if end := readLive(t, conn); end.Type != "ended" {
		t.Fatalf("end answer %+v", end)
	}
}
