package controller

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/controller/store"
	"dalaba/protocol"
)

// idleSessions is how many terminals BenchmarkIdleSessions connects.
const idleSessions = 2000

// idleClientEnv, when set, makes BenchmarkIdleSessions the client side: a
// child process that opens the connections, so that their memory is not
// counted in the controller's.
const idleClientEnv = "DALABA_IDLE_CLIENT"

// BenchmarkIdleSessions measures what one connected, idle terminal costs
// the controller: a real controller, 2,000 real WebSocket terminal
// connections that complete the handshake (enrolling with a one-time code),
// opened by a child process; then heap and goroutine stacks in use per
// session, after a GC, over the controller alone (docs/benchmarks.md,
// "Idle sessions"). Run it with -benchtime 1x.
func BenchmarkIdleSessions(b *testing.B) {
	if arg := os.Getenv(idleClientEnv); arg != "" {
		idleClient(arg)
		return
	}
	h := startBenchController(b)
	codes := h.bulkCodes(b, idleSessions)
	list := filepath.Join(b.TempDir(), "codes")
	if err := os.WriteFile(list, []byte(strings.Join(codes, "\n")), 0o600); err != nil {
		b.Fatal(err)
	}
	time.Sleep(readerLinger + time.Second) // an earlier run's readers end
	before := inUse()

	child := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkIdleSessions$", "-test.benchtime=1x")
	child.Env = append(os.Environ(), idleClientEnv+"="+h.ws+" "+list)
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer child.Wait()
	defer stdin.Close() // the child closes its connections and exits
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		b.Fatalf("client process: %q, %v", line, err)
	}
	deadline := time.Now().Add(time.Minute)
	for h.c.hub.online() < idleSessions {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d terminals online after a minute", h.c.hub.online(), idleSessions)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Idle means after the burst: the readers that woke the sessions wait
	// readerLinger for more work before they end.
	time.Sleep(readerLinger + time.Second)
	b.ResetTimer()
	var after usage
	for range b.N {
		after = inUse()
	}
	b.StopTimer()
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / idleSessions }
	b.ReportMetric(per(after.heap+after.stack, before.heap+before.stack), "B/session")
	b.ReportMetric(per(after.heap, before.heap), "heap-B/session")
	b.ReportMetric(per(after.stack, before.stack), "stack-B/session")
	b.ReportMetric(per(after.goroutines, before.goroutines), "goroutines/session")
	b.ReportMetric(per(after.rss, before.rss), "rss-B/session")
}

type usage struct{ heap, stack, goroutines, rss uint64 }

// inUse is the heap and goroutine stack memory in use after a GC, the
// number of goroutines and the process's resident memory (which also
// counts the heap's headroom and memory not yet returned to the system).
func inUse() usage {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return usage{m.HeapInuse, m.StackInuse, uint64(runtime.NumGoroutine()), rss()}
}

// rss reads VmRSS from /proc/self/status, in bytes.
func rss() uint64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		panic(fmt.Sprintf("read /proc/self/status: %v", err))
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb uint64
			fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb << 10
		}
	}
	panic("no VmRSS in /proc/self/status")
}

type benchController struct {
	c     *Controller
	base  string
	ws    string
	token string
}

// startBenchController starts a real controller as startController does,
// without its test logs; the heartbeat is long so that idle sessions stay.
func startBenchController(b *testing.B) *benchController {
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "controller")
	res, err := Init(ctx, InitOptions{DataDir: dir, CountyCode: county, CountyName: "融安县", Listen: "127.0.0.1:0"}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := LoadConfig(res.ConfigPath)
	if err != nil {
		b.Fatal(err)
	}
	cfg.HeartbeatSeconds = 3600
	c, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	for _, a := range []store.Area{{Code: township, Name: "长安镇", Parent: county}, {Code: villageA, Name: "大巷村", Parent: township}} {
		if err := c.Store().PutArea(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("controller Run: %v", err)
		}
	})
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	defer acancel()
	addr, err := c.Addr(actx)
	if err != nil {
		b.Fatalf("controller never listened: %v", err)
	}
	return &benchController{c: c, base: "http://" + addr.String(), ws: "ws://" + addr.String() + "/v1/terminal", token: res.AdminToken}
}

// bulkCodes creates n terminals through the bulk API and returns their
// one-time enrollment codes.
func (h *benchController) bulkCodes(b *testing.B, n int) []string {
	var codes []string
	for len(codes) < n {
		req := BulkEnrollRequest{}
		for i := len(codes); i < n && len(req.Terminals) < maxBulkEnroll; i++ {
			req.Terminals = append(req.Terminals, EnrollRequest{AreaCode: villageA, Name: fmt.Sprintf("idle-%d", i)})
		}
		body, err := json.Marshal(req)
		if err != nil {
			b.Fatal(err)
		}
		hreq, err := http.NewRequest("POST", h.base+"/api/v1/terminals/bulk", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		hreq.Header.Set("Authorization", "Bearer "+h.token)
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var res []EnrollResult
		if resp.StatusCode != http.StatusCreated || json.Unmarshal(raw, &res) != nil {
			b.Fatalf("bulk enroll: %d %s", resp.StatusCode, raw)
		}
		for _, r := range res {
			code, _, _ := strings.Cut(r.EnrollToken, ".")
			codes = append(codes, code)
		}
	}
	return codes
}

// idleClient is the child process: "<url> <codes file>". It connects one
// terminal per code, enrolls it, says "ready" and holds the connections
// until its stdin closes.
func idleClient(arg string) {
	url, list, _ := strings.Cut(arg, " ")
	raw, err := os.ReadFile(list)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idle client:", err)
		os.Exit(1)
	}
	codes := strings.Split(string(raw), "\n")
	conns := make([]*websocket.Conn, len(codes))
	errs := make(chan error, len(codes))
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				ws, err := idleHello(url, codes[i])
				conns[i] = ws
				if err != nil {
					errs <- fmt.Errorf("terminal %d: %w", i, err)
				}
			}
		})
	}
	for i := range codes {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		fmt.Fprintln(os.Stderr, "idle client:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n') // until the benchmark closes it
	for _, ws := range conns {
		ws.Close()
	}
	os.Exit(0)
}

// idleHello answers the challenge with a new key and the code and reads
// the welcome.
func idleHello(url, code string) (*websocket.Conn, error) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadDeadline(time.Now().Add(time.Minute))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		return ws, fmt.Errorf("read challenge: %w", err)
	}
	f, err := protocol.Decode(msg)
	var ch protocol.Challenge
	if err != nil || f.Type != protocol.TypeChallenge || protocol.DecodeBody(f, &ch) != nil {
		return ws, fmt.Errorf("first frame %q (%v), want a challenge", f.Type, err)
	}
	pub := key.Public().(ed25519.PublicKey)
	hello, err := protocol.Encode(protocol.TypeHello, protocol.Hello{Version: protocol.Version, PublicKey: pub,
		Proof: ed25519.Sign(key, protocol.HelloProof(ch.Nonce, pub)), EnrollCode: code, Firmware: "bench", Hostname: "idle"})
	if err != nil {
		return ws, err
	}
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		return ws, err
	}
	if _, msg, err = ws.ReadMessage(); err != nil {
		return ws, fmt.Errorf("read welcome: %w", err)
	}
	if f, err = protocol.Decode(msg); err != nil || f.Type != protocol.TypeWelcome {
		return ws, fmt.Errorf("controller answered %q (%v), want a welcome", f.Type, err)
	}
	return ws, nil
}

// BenchmarkHeartbeat measures what one idle terminal's heartbeat costs the
// controller: the session is parked, the idle poller wakes it, it reads the
// heartbeat (which is also a ping), writes the pong and queues the status
// (unchanged, so the store writes nothing). The client writes a ready-made
// frame and reads the pong off the socket itself, so the allocations
// reported are the controller's (docs/benchmarks.md, "Idle CPU"). The
// time per heartbeat is mostly the idle poller's wait for its next batch
// (pollEvery): the allocations are the measure.
func BenchmarkHeartbeat(b *testing.B) {
	h := startBenchController(b)
	ws, err := idleHello(h.ws, h.bulkCodes(b, 1)[0])
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	now := time.Now()
	body, err := protocol.Encode(protocol.TypeHeartbeat, protocol.Heartbeat{State: protocol.StateIdle, Volume: 5,
		RelayOK: true, AudioOK: true, Firmware: "bench", TerminalTime: &now})
	if err != nil {
		b.Fatal(err)
	}
	if len(body) >= 1<<16 {
		b.Fatalf("heartbeat of %d bytes", len(body))
	}
	// A text frame masked with a zero key, its length in 16 bits.
	frame := append([]byte{0x81, 0x80 | 126, byte(len(body) >> 8), byte(len(body)), 0, 0, 0, 0}, body...)
	conn := ws.UnderlyingConn()
	buf := make([]byte, 64<<10)
	// beat sends the heartbeat and reads frames until its pong.
	beat := func() {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // a pong that never comes fails
		if _, err := conn.Write(frame); err != nil {
			b.Fatal(err)
		}
		for have := 0; ; {
			head, size := frameSize(buf[:have])
			for size < 0 || have < size {
				n, err := conn.Read(buf[have:])
				if err != nil {
					b.Fatal(err)
				}
				have += n
				head, size = frameSize(buf[:have])
			}
			pong := bytes.HasPrefix(buf[head:size], []byte(`{"type":"pong"`))
			have = copy(buf, buf[size:have])
			if pong && have == 0 {
				return
			}
		}
	}
	for range 20 { // past the clock pings of a new connection, the status first stored
		beat()
	}
	time.Sleep(readerLinger + time.Second) // the handshake's reader ends: the session is parked
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		beat()
	}
}

// frameSize returns the header length and whole length of the unmasked
// WebSocket frame that b starts with, or -1 while b is too short to say.
func frameSize(b []byte) (head, size int) {
	if len(b) < 2 {
		return 0, -1
	}
	switch n := int(b[1] & 0x7f); {
	case n < 126:
		return 2, 2 + n
	case n == 126 && len(b) >= 4:
		return 4, 4 + (int(b[2])<<8 | int(b[3]))
	case n == 127 && len(b) >= 10:
		return 10, 10 + int(binary.BigEndian.Uint64(b[2:10]))
	}
	return 0, -1
}
