package controller

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/controller/store"
	"dalaba/protocol"
)

// A session that has ended must refuse every frame: a caller that is told
// "sent" records the delivery as sent to a terminal that is gone.
func TestSendOnEndedSessionFails(t *testing.T) {
	s := &session{closed: true}
	for i := 0; i < 200; i++ {
		if s.send([]byte(`{"type":"ack"}`)) {
			t.Fatalf("send %d on an ended session reported success", i+1)
		}
	}
	if n := len(s.ctrl); n != 0 {
		t.Fatalf("%d frames queued on an ended session", n)
	}
}

// A terminal that stops reading is disconnected once its control queue is
// full, and the sends meanwhile never block.
func TestSlowTerminalIsDisconnected(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	var res EnrollResult
	h.mustCall(t, http.StatusCreated, "POST", "/api/v1/terminals", EnrollRequest{AreaCode: villageA, Name: "慢"}, &res)
	code, _, _ := strings.Cut(res.EnrollToken, ".")
	_, f := rawHello(t, h.ws, newKey(t), code) // and never read again
	if f.Type != protocol.TypeWelcome {
		t.Fatalf("controller answered %s, want welcome", f.Type)
	}
	var s *session
	waitFor(t, "the session", func() bool { s = h.c.hub.get(res.Terminal.ID); return s != nil })
	big, err := protocol.Encode(protocol.TypePong, protocol.Pong{ServerTime: time.Now(), TerminalTime: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	big = append(big[:len(big)-1:len(big)-1], []byte(`,"pad":"`+strings.Repeat("x", 64<<10)+`"}`)...)
	sent := 0
	for sent < 100000 && s.send(big) {
		sent++
	}
	if sent == 100000 || h.c.hub.slow.Load() != 1 {
		t.Fatalf("%d frames of 64 KB queued to a terminal that reads nothing, %d slow disconnects; want a disconnect", sent, h.c.hub.slow.Load())
	}
	if s.send(big) || s.sendLive(big) {
		t.Fatal("a disconnected session took another frame")
	}
	h.waitOffline(t, res.Terminal.ID)
}

// Above its connection limit the controller turns a terminal away with
// 503 and Retry-After, before the upgrade; the terminal keeps trying and
// is taken once there is room again. The file descriptors kept for the
// database stay free.
func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	h.c.hub.maxConns = 1
	first, firstID := h.enrolledTerminal(t, villageA, "一号")

	comeBackLater(t, h, "a connection over the limit")

	var res EnrollResult
	h.mustCall(t, http.StatusCreated, "POST", "/api/v1/terminals", EnrollRequest{AreaCode: villageB, Name: "二号"}, &res)
	cfg := h.terminalConfig(t, "二号")
	cfg.EnrollToken = res.EnrollToken
	second := runTerminal(t, cfg)
	waitFor(t, "the second terminal turned away", func() bool { return h.c.hub.turned.Load() >= 2 })
	if n := h.c.hub.conns.Load(); n != 1 {
		t.Fatalf("%d terminal connections open at a limit of 1", n)
	}
	first.stop()
	h.waitOffline(t, firstID)
	h.waitOnline(t, second, res.Terminal.ID)
}

// A heartbeat that carries terminal_time is a ping too: it is answered
// with a pong for that time and stored all the same; one without it gets
// no pong.
func TestHeartbeatIsAPing(t *testing.T) {
	h := startController(t, nil)
	rt, code := h.newRawTerminal(t, villageA, "心跳即测时")
	rt.connect(t, code)
	rt.nothingQueued(t)

	pong := func(want time.Time) {
		t.Helper()
		f := rt.read(t)
		var p protocol.Pong
		if f.Type != protocol.TypePong || protocol.DecodeBody(f, &p) != nil || !p.TerminalTime.Equal(want) {
			t.Fatalf("got %s %s, want a pong for %s", f.Type, f.Body, want)
		}
		if p.ServerTime.IsZero() {
			t.Fatalf("pong %s has no server time", f.Body)
		}
	}
	beat := func(volume int, at *time.Time) {
		rt.write(t, protocol.TypeHeartbeat, protocol.Heartbeat{State: protocol.StateIdle, Volume: volume, RelayOK: true,
			AudioOK: true, Firmware: "test", TerminalTime: at})
		waitFor(t, "the heartbeat stored", func() bool {
			v := h.terminalRow(t, rt.id).Volume
			return v != nil && *v == volume
		})
	}
	sent := time.Date(2026, 11, 27, 3, 0, 0, 123e6, time.UTC)
	beat(7, &sent)
	pong(sent)

	beat(8, nil)
	ping := sent.Add(time.Second)
	rt.write(t, protocol.TypePing, protocol.Ping{TerminalTime: ping})
	pong(ping) // the next frame: the plain heartbeat was not answered
}

// A stopping controller closes its sessions and takes no terminal online
// again: a new connection is answered 503 with Retry-After, so the
// terminal backs off and comes to the next start, and nothing is written
// to a store that is about to close.
func TestStoppingTakesNoTerminal(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	_, id := h.enrolledTerminal(t, villageA, "停机")
	h.c.hub.closeAll()
	waitFor(t, "the session ended", func() bool { return h.c.hub.get(id) == nil }) // recorded offline by Run as it ends
	comeBackLater(t, h, "a connection to a stopping controller")
	s := &session{c: h.c, terminalID: id}
	if h.c.hub.attach(s) || h.c.hub.online() != 0 {
		t.Fatalf("a stopping controller registered a session (%d online)", h.c.hub.online())
	}
}

// comeBackLater checks that a terminal connecting now is told 503 with
// Retry-After, before the WebSocket upgrade.
func comeBackLater(t *testing.T, h *testController, what string) {
	t.Helper()
	resp, err := http.Get(strings.Replace(h.ws, "ws://", "http://", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusServiceUnavailable || err != nil || secs < 1 {
		t.Fatalf("%s got %d (Retry-After %q), want 503 with Retry-After in seconds", what, resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// A session still coming online is not silent, however long the database
// keeps it waiting: the hub's sweep of silent sessions once closed every
// session of a reconnect storm that waited its turn at the database, and
// the storm took minutes instead of seconds (docs/benchmarks.md,
// "Reconnect storm").
func TestComingOnlineIsNotSilent(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	rt, code := h.newRawTerminal(t, villageA, "排队")
	rt.connect(t, code) // the enrolment, which writes in the handshake
	rt.ws.Close()
	h.waitOffline(t, rt.id)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(h.dir, DatabaseFile)+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hold, err := db.Begin() // the write lock: online() waits for it
	if err != nil {
		t.Fatal(err)
	}
	swept := time.Now()
	rt.connect(t, "")
	var s *session
	waitFor(t, "the session attached", func() bool { s = h.c.hub.get(rt.id); return s != nil })
	h.c.hub.closeSilentSince(swept) // the session began after this, and reads nothing until it is online
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	hold.Rollback()
	if closed {
		t.Fatal("the sweep closed a session still coming online")
	}
	waitFor(t, "the session parked", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return !s.reading && s.pollID >= 0
	})
	waitFor(t, "the terminal recorded online", func() bool { return h.terminalRow(t, rt.id).State == protocol.StateIdle })
}

// Terminals come online a few at a time: one whose hello finds every turn
// taken waits for one, and is told to try again later if none comes in
// time; with too many waiting, a connection is answered 503 before the
// upgrade. A turn is given back once the terminal is online.
func TestComingOnlineInTurns(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	h.c.hub.joinWait = 300 * time.Millisecond
	rt, code := h.newRawTerminal(t, villageA, "轮候")
	for range maxJoining { // every turn taken
		h.c.hub.joining <- struct{}{}
	}

	ws := sayHello(t, h.ws, rt.key, code)
	ws.SetReadDeadline(time.Now().Add(waitLimit))
	_, _, err := ws.ReadMessage()
	ce := (*websocket.CloseError)(nil)
	if !errors.As(err, &ce) || ce.Code != websocket.CloseTryAgainLater {
		t.Fatalf("a hello that found no turn got %v, want a close with %d (try again later)", err, websocket.CloseTryAgainLater)
	}
	if secs, err := strconv.Atoi(ce.Text); err != nil || secs < 1 {
		t.Fatalf("the close asks to come back after %q, want seconds, as a Retry-After", ce.Text)
	}
	ws.Close()
	if q := h.c.hub.joinQueue.Load(); q != 0 {
		t.Fatalf("%d terminals still queued after the only one gave up", q)
	}

	h.c.hub.joinQueue.Store(maxJoinQueue) // as many waiting as may wait
	comeBackLater(t, h, "a connection with the queue full")
	h.c.hub.joinQueue.Store(0)

	h.c.hub.joinWait = waitLimit
	go func() {
		time.Sleep(200 * time.Millisecond)
		<-h.c.hub.joining // a turn comes free while the terminal waits
	}()
	rt.connect(t, code)
	waitFor(t, "the terminal online and its turn given back", func() bool {
		return h.c.hub.get(rt.id) != nil && len(h.c.hub.joining) == maxJoining-1 && h.c.hub.joinQueue.Load() == 0
	})
	waitFor(t, "the terminal recorded online", func() bool { return h.terminalRow(t, rt.id).State == protocol.StateIdle })
}

// A stopping controller records every connected terminal offline, and
// ends each one's heartbeat history, before it closes its store: at once,
// not one by one (15,000 one by one outlasted the stop).
func TestStopRecordsEveryTerminalOffline(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	var ids []string
	for i := range 3 {
		rt, code := h.newRawTerminal(t, villageA, fmt.Sprintf("停%d", i))
		rt.connect(t, code)
		rt.write(t, protocol.TypeHeartbeat, protocol.Heartbeat{State: protocol.StateIdle, Volume: 5, RelayOK: true, AudioOK: true})
		ids = append(ids, rt.id)
	}
	for _, id := range ids {
		waitFor(t, "the terminal's heartbeat in its history", func() bool {
			pts, err := h.c.Store().Heartbeats(context.Background(), id, time.Time{})
			return err == nil && len(pts) > 0 && pts[len(pts)-1].State == protocol.StateIdle
		})
	}
	h.stop()

	st, err := store.Open(filepath.Join(h.dir, DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, id := range ids {
		tr, err := st.Terminal(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		pts, err := st.Heartbeats(context.Background(), id, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if tr.State != "offline" || len(pts) == 0 || pts[len(pts)-1].State != "offline" {
			t.Errorf("terminal %s after the stop: state %q, history %+v; want offline, ending offline", id, tr.State, pts)
		}
	}
}

// Terminals turned away are given slots rate a second apart: those turned
// away together come back spread out, as fast as they can be taken; none
// is asked to stay away longer than mostAway, and a slot is never given
// twice.
func TestPacer(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := pacer{rate: 100}
	asked := map[int64]int{}
	for range 250 {
		asked[p.comeBack(now)]++
	}
	if want := map[int64]int{1: 100, 2: 100, 3: 50}; !maps.Equal(asked, want) {
		t.Errorf("250 turned away at once at 100 a second were asked to stay away %v (seconds: terminals), want %v", asked, want)
	}
	// Later turns come after the slots given.
	if got := p.comeBack(now.Add(time.Second)); got != 2 {
		t.Errorf("one more a second later: %d s, want 2 (its slot is at 2.51 s)", got)
	}
	// Once mostAway's slots are given, the rest come back after mostAway,
	// without taking slots.
	p = pacer{rate: 10}
	most := int64(mostAway / time.Second)
	for i := range 10*most + 100 {
		got := p.comeBack(now)
		if want := min(int64(i/10+1), most); got != want {
			t.Fatalf("turned away number %d at 10 a second: %d s, want %d", i+1, got, want)
		}
	}
	if got := p.comeBack(now.Add(mostAway / 2)); got != most/2+1 {
		t.Errorf("one more %v later: %d s, want %d (the slot after the last given)", mostAway/2, got, most/2+1)
	}
	// The rate: what was taken in a second with some turned away; at least
	// as much as was taken in one without.
	p = pacer{rate: 700}
	for _, c := range []struct {
		taken     uint64
		saturated bool
		want      float64
	}{{300, true, 500}, {900, false, 900}, {100, false, 900}, {0, true, 450}, {0, true, 225}, {0, true, 112.5}, {0, true, 56.25}, {0, true, 28.125}, {0, true, 14.0625}, {0, true, leastRate}} {
		p.measure(c.taken, c.saturated)
		if p.rate != c.want {
			t.Errorf("after %d taken (saturated %v): rate %v, want %v", c.taken, c.saturated, p.rate, c.want)
		}
	}
}

// Once a stop has closed the hub, no new connection is counted among the
// running ones that the stop waits for: a WebSocket handler runs on after
// its upgrade, which the HTTP server's Shutdown does not wait for, and a
// count added while the stop waits was a data race (sync.WaitGroup).
func TestNoConnectionCountedOnceStopping(t *testing.T) {
	h := startController(t, nil)
	if !h.c.hub.enter() {
		t.Fatal("a running controller refused to count a connection")
	}
	h.c.hub.running.Done()
	h.c.hub.closeAll()
	if h.c.hub.enter() {
		h.c.hub.running.Done()
		t.Fatal("a stopping controller counted a new connection")
	}
}
