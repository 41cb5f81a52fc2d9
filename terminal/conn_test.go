package terminal

import (
	"bytes"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/protocol"
)

func TestBackoff(t *testing.T) {
	cases := []struct {
		name   string
		jitter float64
		want   []time.Duration
	}{
		{"no jitter draws half", 0, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}},
		{"full jitter draws the step", 0.999999, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 60 * time.Second, 60 * time.Second}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBackoff(time.Second, 60*time.Second)
			b.jitter = func() float64 { return c.jitter }
			for i, want := range c.want {
				if got := b.delay(); got.Round(time.Millisecond) != want {
					t.Fatalf("delay %d = %v, want %v", i, got, want)
				}
			}
			b.reset()
			if got := b.delay().Round(time.Millisecond); got != c.want[0] {
				t.Fatalf("after reset %v, want %v", got, c.want[0])
			}
		})
	}
}

func TestClockOffsetMedian(t *testing.T) {
	var c clockOffset
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	c.reset(t0.Add(5*time.Second), t0)
	if got := c.get(); got != 5*time.Second {
		t.Fatalf("before samples %v, want the welcome's 5s", got)
	}
	// rtt 100ms, server 2s ahead; one outlier delayed on the way back.
	for i, off := range []time.Duration{2 * time.Second, 2 * time.Second, 9 * time.Second, 2 * time.Second} {
		sent := t0.Add(time.Duration(i) * time.Second)
		recv := sent.Add(100 * time.Millisecond)
		c.add(sent, sent.Add(50*time.Millisecond).Add(off), recv)
	}
	if got := c.get(); got != 2*time.Second {
		t.Fatalf("median %v, want 2s", got)
	}
	for i := range 20 { // only the last 16 count
		sent := t0.Add(time.Duration(i) * time.Second)
		c.add(sent, sent.Add(-time.Second), sent)
	}
	if got := c.get(); got != -time.Second {
		t.Fatalf("after 20 new samples %v, want -1s", got)
	}
}

func TestClockOffsetShortestRoundTrips(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	const truth = 35 * time.Second
	// sample returns a ping whose pong waited extra on its way back: the
	// naive estimate is off by half of that.
	type sample struct{ rtt, delayBack time.Duration }
	cases := []struct {
		name    string
		samples []sample
		within  time.Duration
	}{
		{"quiet link", []sample{{2 * time.Millisecond, 0}, {2 * time.Millisecond, 0}, {3 * time.Millisecond, 0}}, time.Millisecond},
		{"most pongs queued", []sample{
			{300 * time.Millisecond, 290 * time.Millisecond}, {2 * time.Millisecond, 0}, {250 * time.Millisecond, 240 * time.Millisecond},
			{400 * time.Millisecond, 390 * time.Millisecond}, {3 * time.Millisecond, 0}, {350 * time.Millisecond, 340 * time.Millisecond},
			{2 * time.Millisecond, 0}, {500 * time.Millisecond, 490 * time.Millisecond}, {280 * time.Millisecond, 270 * time.Millisecond},
		}, 2 * time.Millisecond},
		{"one fast liar among the best", []sample{
			{2 * time.Millisecond, 0}, {2 * time.Millisecond, 0}, {time.Millisecond, 0}, {2 * time.Millisecond, 0}, {3 * time.Millisecond, 0},
		}, 2 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var co clockOffset
			co.reset(t0.Add(truth+time.Second), t0)
			for i, s := range c.samples {
				sent := t0.Add(time.Duration(i) * time.Second)
				oneWay := (s.rtt - s.delayBack) / 2
				server := sent.Add(oneWay).Add(truth)
				if c.name == "one fast liar among the best" && i == 2 {
					server = server.Add(time.Second) // a controller clock hiccup
				}
				co.add(sent, server, sent.Add(s.rtt))
			}
			if d := co.get() - truth; d < -c.within || d > c.within {
				t.Fatalf("estimate off by %v, want within %v", d, c.within)
			}
		})
	}
}

// stepClock is a Clock whose backoff-sized waits the test releases one at
// a time; short waits pass at once and very long ones never.
type stepClock struct {
	waits chan stepWait
}

type stepWait struct {
	d    time.Duration
	fire chan time.Time
}

func (c *stepClock) Now() time.Time { return time.Now() }

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	switch {
	case d <= 100*time.Millisecond:
		ch <- time.Now()
	case d >= 30*time.Minute:
	default:
		c.waits <- stepWait{d, ch}
	}
	return ch
}

func (c *stepClock) next(t *testing.T) stepWait {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(waitLong):
		t.Fatal("terminal never waited")
	}
	return stepWait{}
}

func TestReconnectBackoff(t *testing.T) {
	ctl := newFakeController(t)
	ctl.deny = protocol.DenyPending
	r := newRig(t, ctl)
	r.cfg.HeartbeatSeconds = 3600 // keep heartbeats off the stepped clock
	clock := &stepClock{waits: make(chan stepWait, 100)}
	r.startNoWait(func(term *Terminal) { term.clock, term.pingEvery = clock, 0 })

	within := func(step string, w stepWait, lo, hi time.Duration) {
		t.Helper()
		if w.d < lo || w.d > hi {
			t.Fatalf("%s: waited %v, want %v..%v", step, w.d, lo, hi)
		}
		w.fire <- time.Now()
	}
	// Pending: the terminal waits longer each time.
	within("1st denial", clock.next(t), 500*time.Millisecond, time.Second)
	within("2nd denial", clock.next(t), time.Second, 2*time.Second)
	w := clock.next(t)
	// Approved, but the link drops at once: the backoff starts over.
	ctl.set(func(c *fakeController) { c.deny, c.dropOnWelcome = "", true })
	within("3rd denial", w, 2*time.Second, 4*time.Second)
	w = clock.next(t)
	within("after a welcome", w, 500*time.Millisecond, time.Second)
	ctl.mu.Lock()
	welcomes := ctl.welcomes
	ctl.mu.Unlock()
	if welcomes != 1 {
		t.Fatalf("%d welcomes, want 1", welcomes)
	}
}

func TestFailover(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "ws://" + ln.Addr().String() + "/v1/terminal"
	ln.Close()
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.cfg.Controllers = []string{dead, ctl.url}
	term := r.start()
	if got := term.Status().Controller; got != ctl.url {
		t.Fatalf("connected to %q, want the second controller %q", got, ctl.url)
	}
}

func TestReportsSpooledOfflineArriveAfterReconnect(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	term := r.start(func(term *Terminal) { term.backoffMin, term.backoffMax = 20*time.Millisecond, 50*time.Millisecond })
	cmd := ctl.alert([]protocol.Media{tone(ctl, time.Second)}, nil)
	ctl.send(ctl.sign(cmd))
	ctl.waitState(cmd.ID, protocol.DeliveryPlaying)

	// The link goes down while the alert plays; it finishes offline.
	ctl.set(func(c *fakeController) { c.down = true })
	ctl.dropAll()
	eventually(t, "done spooled offline", func() bool {
		st := term.Status()
		return !st.Connected && st.Playing == "" && st.PendingReports > 0
	})
	if got := ctl.states(cmd.ID); len(got) != 3 {
		t.Fatalf("controller already has %v", got)
	}
	ctl.set(func(c *fakeController) { c.down = false })
	ctl.waitState(cmd.ID, protocol.DeliveryDone)
	eventually(t, "spool drained", func() bool { return term.Status().PendingReports == 0 })
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	for i, rep := range ctl.reports {
		if rep.Seq != uint64(i+1) {
			t.Fatalf("report %d has seq %d: lost or reordered", i, rep.Seq)
		}
	}
}

func TestFetchResumesAfterReconnect(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start(func(term *Terminal) { term.backoffMin, term.backoffMax = 20*time.Millisecond, 50*time.Millisecond })
	m := tone(ctl, 500*time.Millisecond) // 16000 B in 4 KiB chunks
	ctl.set(func(c *fakeController) { c.cutAfter[m.SHA256] = 2 })
	cmd := ctl.alert([]protocol.Media{m}, nil)
	ctl.send(ctl.sign(cmd))
	ctl.waitState(cmd.ID, protocol.DeliveryDone)
	ctl.mu.Lock()
	gets := ctl.gets
	ctl.mu.Unlock()
	if len(gets) != 2 || gets[0].Offset != 0 || gets[1].Offset != 2*4096 {
		t.Fatalf("media requests %+v, want offset 0 then %d", gets, 2*4096)
	}
	if gets[0].Stream || gets[1].Stream {
		t.Fatalf("media requests %+v say they stream a file that plays only once whole", gets)
	}
}

// A fetch whose chunks stop coming asks again, on the same link, from what
// it has; chunks that keep coming, however slowly, each give it the idle
// time afresh.
func TestFetchAsksAgainWhenChunksStop(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start(func(term *Terminal) { term.chunkIdle = 400 * time.Millisecond })
	gets := func() []protocol.MediaGet {
		ctl.mu.Lock()
		defer ctl.mu.Unlock()
		return slices.Clone(ctl.gets)
	}

	slow := tone(ctl, 500*time.Millisecond) // 16000 B in 4 KiB chunks: four, 450 ms from the first to the last
	ctl.set(func(c *fakeController) { c.gap[slow.SHA256] = 150 * time.Millisecond })
	cmd := ctl.alert([]protocol.Media{slow}, nil)
	ctl.send(ctl.sign(cmd))
	ctl.waitState(cmd.ID, protocol.DeliveryDone)
	if g := gets(); len(g) != 1 {
		t.Fatalf("media requests %+v for chunks 150 ms apart, want one (the idle time is 400 ms)", g)
	}

	stalled := tone(ctl, 600*time.Millisecond)
	ctl.set(func(c *fakeController) { c.stallAfter[stalled.SHA256] = 2 })
	cmd = ctl.alert([]protocol.Media{stalled}, nil)
	began := time.Now()
	ctl.send(ctl.sign(cmd))
	ctl.waitState(cmd.ID, protocol.DeliveryDone)
	g := gets()[1:]
	if len(g) != 2 || g[0].Offset != 0 || g[1].Offset != 2*4096 {
		t.Fatalf("media requests %+v, want offset 0, then %d once the chunks stopped", g, 2*4096)
	}
	if took := time.Since(began); took < 400*time.Millisecond {
		t.Fatalf("done %s after the command: asked again before the chunks had been idle 400 ms", took)
	}
	ctl.mu.Lock()
	conns := len(ctl.conns)
	ctl.mu.Unlock()
	if conns != 1 {
		t.Fatalf("%d connections, want the one link throughout", conns)
	}
}

func TestClockSkewAndPlayAt(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.cfg.ClockOffsetMS = -3600 * 1000 // the board's clock is an hour slow
	term := r.start()
	eventually(t, "clock estimate", func() bool {
		d := term.Status().ClockOffset - time.Hour
		return d > -time.Second && d < time.Second
	})
	playAt := time.Now().Add(700 * time.Millisecond)
	cmd := ctl.alert([]protocol.Media{tone(ctl, 200*time.Millisecond)}, func(c *protocol.Command) { c.Alert.PlayAt = playAt })
	base := len(r.board.Log())
	ctl.send(ctl.sign(cmd))
	ctl.waitState(cmd.ID, protocol.DeliveryDone)
	var on time.Time
	for _, e := range r.board.Log()[base:] {
		if e.Op == "on" {
			on = e.At
		}
	}
	// The relay goes ON a warm-up ahead, so that the audio starts at play_at.
	warm := ms(r.cfg.WarmupMS)
	if d := on.Sub(playAt.Add(-warm)); d < -startLead-20*time.Millisecond || d > 100*time.Millisecond {
		t.Fatalf("relay ON %v after play_at minus the warm-up, want about 0", d)
	}
}

func TestHeartbeatAfterWelcome(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	ctl.waitFor("a heartbeat", func() bool { return len(ctl.beats) > 0 })
	ctl.mu.Lock()
	hb := ctl.beats[0]
	ctl.mu.Unlock()
	want := protocol.Heartbeat{State: protocol.StateIdle, Volume: 80, RelayOK: true, AudioOK: true, Firmware: Firmware}
	hb.UptimeSecs, hb.Pending = 0, 0
	if hb != want {
		t.Fatalf("heartbeat %+v, want %+v", hb, want)
	}
}

// TestHeartbeatCarriesPing: once the first minute's pings are over, the
// terminal samples the controller's clock with its heartbeats: each one
// every interval carries terminal_time, the pong to it is taken as a
// sample, and no ping frame goes beside it.
func TestHeartbeatCarriesPing(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.cfg.HeartbeatSeconds = 5
	term := r.start(func(term *Terminal) { term.pingEvery = 0 }) // the welcome's burst of pings, then none
	ctl.waitFor("a heartbeat that is a ping", func() bool {
		return slices.ContainsFunc(ctl.beats, func(hb protocol.Heartbeat) bool { return hb.TerminalTime != nil })
	})
	eventually(t, "the heartbeat's clock sample", func() bool {
		term.offset.mu.Lock()
		defer term.offset.mu.Unlock()
		return term.offset.acquired == pingBurst+1
	})
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	if ctl.pings != pingBurst || ctl.beats[0].TerminalTime != nil {
		t.Fatalf("%d ping frames, first heartbeat's terminal_time %v; want the %d of the burst, and none on the welcome's heartbeat",
			ctl.pings, ctl.beats[0].TerminalTime, pingBurst)
	}
}

func TestWSSWithCAFile(t *testing.T) {
	ctl := startFakeController(t, true)
	r := newRig(t, ctl)
	r.cfg.CAFile = filepath.Join(t.TempDir(), "county-ca.pem")
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ctl.srv.Certificate().Raw})
	if err := os.WriteFile(r.cfg.CAFile, pemCert, 0o644); err != nil {
		t.Fatal(err)
	}
	if term := r.start(); term.Status().Controller != ctl.url || !strings.HasPrefix(ctl.url, "wss://") {
		t.Fatalf("connected to %q", term.Status().Controller)
	}

	// A CA file that holds no certificate stops the terminal at once.
	os.WriteFile(r.cfg.CAFile, []byte("not a certificate"), 0o644)
	err := New(r.cfg, nil).Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Fatalf("Run = %v, want an error naming ca_file", err)
	}
}

// A controller that answers 503 with Retry-After is busy, not down: the
// terminal comes back about when asked, however many times it is asked,
// instead of backing off further each time; then a free controller takes
// it as usual.
func TestBusyControllerSaysWhenToComeBack(t *testing.T) {
	var mu sync.Mutex
	var attempts []time.Time
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts = append(attempts, time.Now())
		n := len(attempts)
		mu.Unlock()
		if n%2 == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many terminals coming online at once; try again later", http.StatusServiceUnavailable)
			return
		}
		// Or a close 1013, the reason saying when, after the upgrade.
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "1"), time.Now().Add(time.Second))
		ws.Close()
	}))
	defer busy.Close()
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.cfg.Controllers = []string{"ws" + strings.TrimPrefix(busy.URL, "http") + "/v1/terminal"}
	// A growing backoff from 20 ms would come back after 20, 40, 80 ms…
	r.startNoWait(func(term *Terminal) { term.backoffMin = 20 * time.Millisecond })
	eventually(t, "five attempts", func() bool { mu.Lock(); defer mu.Unlock(); return len(attempts) >= 5 })
	r.stop()
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(attempts); i++ {
		// … asked for 1 s, it comes back after 1–2 s every time.
		if gap := attempts[i].Sub(attempts[i-1]); gap < time.Second || gap > 2200*time.Millisecond {
			t.Errorf("attempt %d came %v after the one before, want 1–2 s", i+1, gap)
		}
	}
	for _, c := range []struct {
		header string
		want   time.Duration
	}{{"1", time.Second}, {"5", 5 * time.Second}, {"", 5 * time.Second}, {"soon", 5 * time.Second}, {"busy", 5 * time.Second}, {"0", 5 * time.Second}, {"3600", time.Minute}} {
		if got := busyAfter(c.header, time.Minute); got != c.want {
			t.Errorf("Retry-After %q: wait %v, want %v", c.header, got, c.want)
		}
	}
	// Asked for 20 s, it comes back after 20–25 s.
	for range 1000 {
		if got := busyWait(20 * time.Second); got < 20*time.Second || got > 25*time.Second {
			t.Fatalf("asked for 20 s, it would come back after %v, want 20–25 s", got)
		}
	}
}

// readInto reads a message whole, however its reader hands it over, and
// grows a buffer only for bytes beyond it: a media chunk that fills its
// pooled buffer exactly keeps that buffer.
func TestReadInto(t *testing.T) {
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	readers := map[string]func([]byte) io.Reader{
		"plain":          func(b []byte) io.Reader { return bytes.NewReader(b) },
		"a byte at once": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"EOF with data":  func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
		"half at a time": func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
	}
	for name, mk := range readers {
		for _, c := range []struct {
			size, capacity int
		}{{0, 0}, {0, 16}, {100, 10000}, {10000, 10000}, {10000, 9999}, {10000, 0}} {
			got, err := readInto(mk(data[:c.size]), make([]byte, 0, c.capacity))
			if err != nil || !bytes.Equal(got, data[:c.size]) {
				t.Fatalf("%s, %d bytes into %d: %d bytes (%v)", name, c.size, c.capacity, len(got), err)
			}
			if c.size <= c.capacity && cap(got) != c.capacity {
				t.Errorf("%s, %d bytes into %d: the buffer grew to %d", name, c.size, c.capacity, cap(got))
			}
		}
	}
	broken := errors.New("link broke")
	if _, err := readInto(io.MultiReader(bytes.NewReader(data[:50]), iotest.ErrReader(broken)), make([]byte, 0, 50)); !errors.Is(err, broken) {
		t.Fatalf("a reader failing after a full buffer: %v, want %v", err, broken)
	}
}
