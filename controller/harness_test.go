package controller

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/audio"
	"dalaba/controller/events"
	"dalaba/controller/store"
	"dalaba/protocol"
	"dalaba/terminal"
)

// The area tree every test controller starts with: Rong'an county, one
// township, two villages with terminals and one village without.
const (
	county     = "450224000000"
	township   = "450224102000"
	villageA   = "450224102003"
	villageB   = "450224102004"
	emptyVill  = "450224102005"
	waitLimit  = 15 * time.Second
	pollPeriod = 10 * time.Millisecond
)

// syncBuffer collects logs from many goroutines; a failed test prints it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger(t *testing.T, name string) (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s log ---\n%s", name, buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// testController is a real controller: a fresh installation in a temporary
// folder, SQLite, HTTP and WebSocket on 127.0.0.1.
type testController struct {
	c     *Controller
	dir   string // data folder
	base  string // http://host:port
	ws    string // the terminals' endpoint
	token string // admin API token
	fp    string // issuing key fingerprint, for enroll tokens
	clock *testClock
	admin *client // the admin Init made, by its API token
	stop  func()  // stops the controller (Run returns); once, and at the test's end

	mu    sync.Mutex
	users map[string]*client // operators made on demand, by name
}

func startController(t *testing.T, tweak func(*Config)) *testController {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "controller")
	res, err := Init(ctx, InitOptions{DataDir: dir, CountyCode: county, CountyName: "融安县", Listen: "127.0.0.1:0"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(res.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(&cfg)
	}
	log, _ := newLogger(t, "controller")
	c, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	// The clock is replaced before Run starts any goroutine that reads it.
	clock := &testClock{}
	c.now = clock.now
	for _, a := range []store.Area{
		{Code: township, Name: "长安镇", Parent: county},
		{Code: villageA, Name: "大巷村", Parent: township},
		{Code: villageB, Name: "大将村", Parent: township},
		{Code: emptyVill, Name: "空村", Parent: township},
	} {
		if err := c.Store().PutArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("controller Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("controller did not stop within 10 s")
		}
	})
	t.Cleanup(stop)
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	defer acancel()
	addr, err := c.Addr(actx)
	if err != nil {
		t.Fatalf("controller never listened: %v", err)
	}
	h := &testController{c: c, dir: dir, base: "http://" + addr.String(), ws: "ws://" + addr.String() + "/v1/terminal",
		token: res.AdminToken, fp: res.Fingerprint, clock: clock, users: map[string]*client{}, stop: stop}
	h.admin = &client{h: h, name: res.AdminName, hc: apiClient, bearer: res.AdminToken}
	return h
}

// apiClient bounds every non-streaming request, so that a route that
// wrongly starts streaming fails the test instead of hanging it.
var apiClient = &http.Client{Timeout: 5 * time.Second}

// call makes an API request with the admin token. body is sent as is when
// it is []byte, as JSON otherwise; out, when not nil, receives a 2xx answer.
func (h *testController) call(t *testing.T, method, path string, body, out any) (int, []byte) {
	t.Helper()
	return h.callAs(t, "Bearer "+h.token, method, path, body, out)
}

func (h *testController) callAs(t *testing.T, auth, method, path string, body, out any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, raw
}

// mustCall is call that fails the test unless the status is want.
func (h *testController) mustCall(t *testing.T, want int, method, path string, body, out any) {
	t.Helper()
	if status, raw := h.call(t, method, path, body, out); status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, raw)
	}
}

// upload stores audio as the county officer (the admin may not).
func (h *testController) upload(t *testing.T, wav []byte) store.Media {
	t.Helper()
	var m store.Media
	h.officer(t).mustCall(t, http.StatusCreated, "POST", "/api/v1/media?name=tone.wav", wav, &m)
	return m
}

// tone is a WAV of a 1 kHz tone lasting d, at a low rate to stay small.
func tone(d time.Duration) []byte { return audio.ToneWAV(1000, d, 8000, 0.5) }

func (h *testController) view(t *testing.T, id string) AlertView {
	t.Helper()
	var v AlertView
	h.mustCall(t, http.StatusOK, "GET", "/api/v1/alerts/"+id, nil, &v)
	return v
}

func (h *testController) terminalRow(t *testing.T, id string) store.Terminal {
	t.Helper()
	var term store.Terminal
	h.mustCall(t, http.StatusOK, "GET", "/api/v1/terminals/"+id, nil, &term)
	return term
}

func deliveryOf(v AlertView, terminalID string) (store.Delivery, bool) {
	for _, d := range v.Deliveries {
		if d.TerminalID == terminalID {
			return d, true
		}
	}
	return store.Delivery{}, false
}

// waitDelivery polls the API until the delivery of alert to terminal is in
// state. It fails at once if the delivery ends in another final state.
func (h *testController) waitDelivery(t *testing.T, alertID, terminalID, state string) store.Delivery {
	t.Helper()
	var last store.Delivery
	waitFor(t, fmt.Sprintf("delivery of %s to %s in state %s", alertID, terminalID, state), func() bool {
		d, ok := deliveryOf(h.view(t, alertID), terminalID)
		if !ok {
			t.Fatalf("alert %s has no delivery to %s", alertID, terminalID)
		}
		last = d
		if d.State != state && protocol.DeliveryFinal(d.State) {
			t.Fatalf("delivery ended %s (%s: %s), want %s", d.State, d.Reason, d.Detail, state)
		}
		return d.State == state
	})
	return last
}

// reports returns the receipts a terminal sent, oldest first.
func (h *testController) receipts(t *testing.T, terminalID string) []protocol.Receipt {
	t.Helper()
	var rs []store.StoredReport
	h.mustCall(t, http.StatusOK, "GET", "/api/v1/terminals/"+terminalID+"/reports?kind=receipt", nil, &rs)
	var out []protocol.Receipt
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Report.Receipt != nil {
			out = append(out, *rs[i].Report.Receipt)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitLimit, what)
		}
		time.Sleep(pollPeriod)
	}
}

// testTerminal is a real terminal daemon running in-process with a
// simulated relay board and silent audio.
type testTerminal struct {
	*terminal.Terminal
	cfg  terminal.Config
	logs *syncBuffer
	stop func()
}

// terminalConfig returns a config for a terminal with its own data folder.
func (h *testController) terminalConfig(t *testing.T, name string) terminal.Config {
	cfg := terminal.DefaultConfig()
	cfg.Controllers = []string{h.ws}
	cfg.DataDir = filepath.Join(t.TempDir(), "terminal")
	cfg.Name = name
	cfg.Relay.Protocol = "sim"
	cfg.Audio.Output = "silent"
	cfg.Audio.Rate = 8000
	cfg.WarmupMS, cfg.TailMS = 20, 20
	cfg.HeartbeatSeconds = 5
	return cfg
}

// runTerminal starts a terminal daemon; stop (also run at cleanup) ends it
// and waits for it.
func runTerminal(t *testing.T, cfg terminal.Config) *testTerminal {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log, buf := newLogger(t, "terminal "+cfg.Name)
	term := terminal.New(cfg, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- term.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("terminal %s Run: %v", cfg.Name, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("terminal %s did not stop within 10 s", cfg.Name)
			}
		})
	}
	t.Cleanup(stop)
	return &testTerminal{Terminal: term, cfg: cfg, logs: buf, stop: stop}
}

// enrolledTerminal creates a terminal in area through the API, starts its
// daemon with the enrollment token and waits until the controller sees it
// online.
func (h *testController) enrolledTerminal(t *testing.T, area, name string) (*testTerminal, string) {
	t.Helper()
	var res EnrollResult
	h.mustCall(t, http.StatusCreated, "POST", "/api/v1/terminals", EnrollRequest{AreaCode: area, Name: name}, &res)
	cfg := h.terminalConfig(t, name)
	cfg.EnrollToken = res.EnrollToken
	tt := runTerminal(t, cfg)
	h.waitOnline(t, tt, res.Terminal.ID)
	return tt, res.Terminal.ID
}

// waitOnline waits until the controller has the terminal's first heartbeat
// (volume known) and the terminal says it is connected.
//
// The controller is asked first: terminal.Status races with Run's opening
// of the data folder, and only a connection (which takes the terminal's
// lock after that) orders the two for the race detector.
func (h *testController) waitOnline(t *testing.T, tt *testTerminal, id string) {
	t.Helper()
	waitFor(t, "terminal "+id+" online", func() bool {
		row := h.terminalRow(t, id)
		if row.State == "offline" || row.Volume == nil {
			return false
		}
		st := tt.Status()
		return st.Connected && st.TerminalID == id
	})
}

func (h *testController) waitOffline(t *testing.T, id string) {
	t.Helper()
	waitFor(t, "terminal "+id+" offline", func() bool { return h.c.hub.get(id) == nil && h.terminalRow(t, id).State == "offline" })
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// terminalKey reads the key a terminal daemon generated in its data folder.
func terminalKey(t *testing.T, cfg terminal.Config) ed25519.PrivateKey {
	t.Helper()
	seed, err := os.ReadFile(filepath.Join(cfg.DataDir, "terminal.key"))
	if err != nil || len(seed) != ed25519.SeedSize {
		t.Fatalf("terminal key: %d bytes, %v", len(seed), err)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// rawHello connects to the terminal endpoint as a terminal holding key,
// answers the challenge and returns the connection and the controller's
// answer (welcome or denied).
func rawHello(t *testing.T, url string, key ed25519.PrivateKey, code string) (*websocket.Conn, protocol.Frame) {
	t.Helper()
	ws := sayHello(t, url, key, code)
	return ws, readFrame(t, ws)
}

// sayHello connects to the terminal endpoint as a terminal holding key and
// answers the challenge.
func sayHello(t *testing.T, url string, key ed25519.PrivateKey, code string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	f := readFrame(t, ws)
	var ch protocol.Challenge
	if f.Type != protocol.TypeChallenge || protocol.DecodeBody(f, &ch) != nil {
		t.Fatalf("first frame %s, want a challenge", f.Type)
	}
	pub := key.Public().(ed25519.PublicKey)
	hello, err := protocol.Encode(protocol.TypeHello, protocol.Hello{Version: protocol.Version, PublicKey: pub,
		Proof: ed25519.Sign(key, protocol.HelloProof(ch.Nonce, pub)), EnrollCode: code, Firmware: "test", Hostname: "raw"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		t.Fatal(err)
	}
	return ws
}

// readFrame reads the controller's next frame.
func readFrame(t *testing.T, ws *websocket.Conn) protocol.Frame {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(waitLimit))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read from controller: %v", err)
	}
	f, err := protocol.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func deniedReason(t *testing.T, f protocol.Frame) string {
	t.Helper()
	if f.Type != protocol.TypeDenied {
		t.Fatalf("controller answered %s, want denied", f.Type)
	}
	var d protocol.Denied
	if err := protocol.DecodeBody(f, &d); err != nil {
		t.Fatal(err)
	}
	return d.Reason
}

// eventStream reads GET /api/v1/events?query as parsed events, as the admin.
func (h *testController) eventStream(t *testing.T, query string) <-chan events.Event {
	t.Helper()
	return h.eventStreamAs(t, h.admin, query)
}

// eventStreamAs reads GET /api/v1/events?query as cl (an API token client).
func (h *testController) eventStreamAs(t *testing.T, cl *client, query string) <-chan events.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", h.base+"/api/v1/events?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+cl.bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		t.Fatalf("events: status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan events.Event, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		kind := ""
		for sc.Scan() {
			line := sc.Text()
			if k, ok := strings.CutPrefix(line, "event: "); ok {
				kind = k
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var e events.Event
				var raw struct {
					Data json.RawMessage `json:"data"`
				}
				if json.Unmarshal([]byte(data), &e) != nil || json.Unmarshal([]byte(data), &raw) != nil || e.Kind != kind {
					e.Kind = "malformed: " + data
				}
				e.Data = raw.Data
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return out
}
