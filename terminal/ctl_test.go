package terminal

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/audio"
	"dalaba/protocol"
)

// The terminal every test enrolls: a village of Rong'an county.
const (
	testTerminalID = "64502241020030000000001"
	testArea       = "450224102003"
	testPlatform   = "44502240000000000000001"
	waitLong       = 10 * time.Second
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubKey(k ed25519.PrivateKey) protocol.PublicKey {
	pub := k.Public().(ed25519.PublicKey)
	return protocol.PublicKey{KeyID: protocol.KeyID(pub), PublicKey: pub}
}

// fakeController is a real WebSocket server on 127.0.0.1 speaking the
// controller's side of the protocol, with a test issuing key.
type fakeController struct {
	t      testing.TB
	issuer ed25519.PrivateKey
	srv    *httptest.Server
	url    string

	mu            sync.Mutex
	changed       chan struct{} // closed and replaced on every event
	offer         []protocol.PublicKey
	media         map[string][]byte
	chunk         map[string]int
	corrupt       map[string]int           // sha → index of a chunk sent damaged
	cutAfter      map[string]int           // sha → close the link after this many chunks, once
	stallAfter    map[string]int           // sha → send this many chunks, then no more for that request, once
	gap           map[string]time.Duration // sha → a pause before each chunk but the first
	gate          map[string]gate          // sha → hold a chunk back until a channel closes
	gets          []protocol.MediaGet
	deny          string // deny every hello with this reason
	down          bool   // refuse WebSocket upgrades
	dropOnWelcome bool   // close each connection right after the welcome
	conns         []*ctlConn
	hellos        []protocol.Hello
	reports       []protocol.Report // stored once per Seq, in arrival order
	stored        map[uint64]bool
	maxSeq        uint64
	beats         []protocol.Heartbeat
	pings         int // ping frames
	welcomes      int
}

type ctlConn struct {
	ws *websocket.Conn
	mu sync.Mutex // one writer
}

func (c *ctlConn) write(mt int, b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteMessage(mt, b)
}

func (c *ctlConn) send(typ protocol.Type, body any) error {
	b, err := protocol.Encode(typ, body)
	if err != nil {
		return err
	}
	return c.write(websocket.TextMessage, b)
}

func newFakeController(t testing.TB) *fakeController { return startFakeController(t, false) }

// startFakeController starts the server, with a self-signed certificate
// (wss://) when tls is set.
func startFakeController(t testing.TB, tls bool) *fakeController {
	c := &fakeController{
		t: t, issuer: newKey(t), changed: make(chan struct{}),
		media: map[string][]byte{}, chunk: map[string]int{}, corrupt: map[string]int{}, cutAfter: map[string]int{}, stallAfter: map[string]int{}, gap: map[string]time.Duration{}, gate: map[string]gate{}, stored: map[uint64]bool{},
	}
	c.offer = []protocol.PublicKey{pubKey(c.issuer)}
	if tls {
		c.srv = httptest.NewTLSServer(http.HandlerFunc(c.serve))
		c.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	} else {
		c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	}
	c.url = "ws" + strings.TrimPrefix(c.srv.URL, "http") + "/v1/terminal"
	t.Cleanup(c.close)
	return c
}

func (c *fakeController) close() {
	c.dropAll()
	c.srv.Close()
}

func (c *fakeController) fingerprint() string {
	return protocol.Fingerprint(c.issuer.Public().(ed25519.PublicKey))
}

// event wakes waiters. Callers hold c.mu.
func (c *fakeController) event() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// waitFor waits until cond holds (checked under c.mu).
func (c *fakeController) waitFor(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.After(waitLong)
	for {
		c.mu.Lock()
		ok, ch := cond(), c.changed
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			c.t.Fatalf("timed out waiting for %s; reports: %s", what, c.dump())
		}
	}
}

func (c *fakeController) set(f func(c *fakeController)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

func (c *fakeController) addMedia(data []byte, chunkSize int) protocol.Media {
	sum := sha256.Sum256(data)
	m := protocol.Media{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), Format: "wav", DurationMS: 1, ChunkSize: chunkSize}
	if s, rate, err := audio.ReadWAV(data); err == nil && rate > 0 {
		m.DurationMS = max(1, int64(len(s))*1000/int64(rate))
	}
	for off := 0; off < len(data); off += chunkSize {
		h := sha256.Sum256(data[off:min(off+chunkSize, len(data))])
		m.Chunks = append(m.Chunks, hex.EncodeToString(h[:]))
	}
	c.set(func(c *fakeController) { c.media[m.SHA256] = data; c.chunk[m.SHA256] = chunkSize })
	return m
}

func (c *fakeController) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	down := c.down
	c.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	ws.SetReadLimit(protocol.MaxFrameBytes)
	conn := &ctlConn{ws: ws}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	if conn.send(protocol.TypeChallenge, protocol.Challenge{Version: protocol.Version, Nonce: nonce, ServerTime: time.Now()}) != nil {
		return
	}
	var hello protocol.Hello
	if err := readBody(ws, protocol.TypeHello, &hello); err != nil {
		c.t.Logf("controller: %v", err)
		return
	}
	if err := protocol.VerifyHello(hello, nonce); err != nil {
		c.t.Errorf("controller: bad hello: %v", err)
		return
	}
	c.mu.Lock()
	c.hellos = append(c.hellos, hello)
	deny, drop := c.deny, c.dropOnWelcome
	welcome := protocol.Welcome{
		TerminalID: testTerminalID, AreaCode: testArea, Name: "融安县大将镇某村",
		ServerTime: time.Now(), HeartbeatSeconds: 30, AckedSeq: c.maxSeq, Keys: c.offer,
	}
	c.event()
	c.mu.Unlock()
	if deny != "" {
		conn.send(protocol.TypeDenied, protocol.Denied{Reason: deny, Detail: "test"})
		return
	}
	if conn.send(protocol.TypeWelcome, welcome) != nil {
		return
	}
	c.mu.Lock()
	c.welcomes++
	c.conns = append(c.conns, conn)
	c.event()
	c.mu.Unlock()
	if drop {
		return
	}
	for {
		mt, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if mt != websocket.TextMessage {
			c.t.Errorf("controller: terminal sent a binary message")
			return
		}
		f, err := protocol.Decode(msg)
		if err != nil {
			c.t.Errorf("controller: %v", err)
			return
		}
		c.handle(conn, f)
	}
}

func readBody(ws *websocket.Conn, want protocol.Type, v any) error {
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		return err
	}
	ws.SetReadDeadline(time.Time{})
	f, err := protocol.Decode(msg)
	if err != nil {
		return err
	}
	if f.Type != want {
		return fmt.Errorf("got %s, want %s", f.Type, want)
	}
	return protocol.DecodeBody(f, v)
}

func (c *fakeController) handle(conn *ctlConn, f protocol.Frame) {
	switch f.Type {
	case protocol.TypeReport:
		var r protocol.Report
		if err := protocol.DecodeBody(f, &r); err != nil {
			c.t.Errorf("controller: %v", err)
			return
		}
		c.mu.Lock()
		if !c.stored[r.Seq] {
			c.stored[r.Seq] = true
			c.reports = append(c.reports, r)
			c.maxSeq = max(c.maxSeq, r.Seq)
		}
		c.event()
		c.mu.Unlock()
		conn.send(protocol.TypeAck, protocol.Ack{Seq: r.Seq})
	case protocol.TypePing:
		var p protocol.Ping
		protocol.DecodeBody(f, &p)
		c.mu.Lock()
		c.pings++
		c.mu.Unlock()
		conn.send(protocol.TypePong, protocol.Pong{TerminalTime: p.TerminalTime, ServerTime: time.Now()})
	case protocol.TypeHeartbeat:
		var hb protocol.Heartbeat
		protocol.DecodeBody(f, &hb)
		if hb.TerminalTime != nil { // a ping too
			conn.send(protocol.TypePong, protocol.Pong{TerminalTime: *hb.TerminalTime, ServerTime: time.Now()})
		}
		c.mu.Lock()
		c.beats = append(c.beats, hb)
		c.event()
		c.mu.Unlock()
	case protocol.TypeMediaGet:
		var g protocol.MediaGet
		protocol.DecodeBody(f, &g)
		c.sendMedia(conn, g)
	}
}

func (c *fakeController) sendMedia(conn *ctlConn, g protocol.MediaGet) {
	c.mu.Lock()
	data, ok := c.media[g.SHA256]
	size, bad := c.chunk[g.SHA256], -1
	if i, ok := c.corrupt[g.SHA256]; ok {
		bad = i
	}
	gt, gated := c.gate[g.SHA256]
	delete(c.gate, g.SHA256)
	cut, hasCut := c.cutAfter[g.SHA256]
	delete(c.cutAfter, g.SHA256)
	stall, hasStall := c.stallAfter[g.SHA256]
	delete(c.stallAfter, g.SHA256)
	gap := c.gap[g.SHA256]
	c.gets = append(c.gets, g)
	c.mu.Unlock()
	if !ok {
		conn.send(protocol.TypeMediaErr, protocol.MediaErr{SHA256: g.SHA256, Reason: "unknown media"})
		return
	}
	var sum [32]byte
	hex.Decode(sum[:], []byte(g.SHA256))
	if gap > 0 { // paced, without blocking this connection's reads
		go func() {
			for off := int(g.Offset); off < len(data); off += size {
				if off > int(g.Offset) {
					time.Sleep(gap)
				}
				if conn.write(websocket.BinaryMessage, protocol.EncodeMediaChunk(sum, uint64(off), data[off:min(off+size, len(data))])) != nil {
					return
				}
			}
		}()
		return
	}
	for off := int(g.Offset); off < len(data); off += size {
		piece := append([]byte(nil), data[off:min(off+size, len(data))]...)
		if off/size == bad {
			piece[len(piece)/2] ^= 0xff
		}
		if gated && off/size == gt.chunk { // the rest later, not blocking this connection's reads
			go func() {
				<-gt.open
				c.sendMedia(conn, protocol.MediaGet{SHA256: g.SHA256, Offset: int64(off)})
			}()
			return
		}
		if hasStall && (off-int(g.Offset))/size == stall {
			return // the link stays up, silent
		}
		if hasCut && (off-int(g.Offset))/size == cut {
			// A clean close: the chunks before it are delivered.
			conn.mu.Lock()
			conn.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "cut"), time.Now().Add(time.Second))
			conn.mu.Unlock()
			return
		}
		if conn.write(websocket.BinaryMessage, protocol.EncodeMediaChunk(sum, uint64(off), piece)) != nil {
			return
		}
	}
}

// send pushes a signed command to every open connection.
func (c *fakeController) send(sc protocol.SignedCommand) {
	c.t.Helper()
	c.mu.Lock()
	conns := c.conns
	c.mu.Unlock()
	sent := false
	for _, conn := range conns {
		if conn.send(protocol.TypeCommand, sc) == nil {
			sent = true
		}
	}
	if !sent {
		c.t.Fatal("controller: no terminal connection to send the command on")
	}
}

// dropAll closes every terminal connection.
func (c *fakeController) dropAll() {
	c.mu.Lock()
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	for _, conn := range conns {
		conn.ws.Close()
	}
}

func (c *fakeController) dump() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, r := range c.reports {
		fmt.Fprintf(&b, "\n  #%d %s", r.Seq, r.Kind)
		switch {
		case r.Receipt != nil:
			fmt.Fprintf(&b, " %s %s %s %s", r.Receipt.CommandID, r.Receipt.State, r.Receipt.Reason, r.Receipt.Detail)
		case r.Fault != nil:
			fmt.Fprintf(&b, " %s active=%v %s", r.Fault.Code, r.Fault.Active, r.Fault.Message)
		case r.Rejection != nil:
			fmt.Fprintf(&b, " %s %s %s", r.Rejection.CommandID, r.Rejection.Reason, r.Rejection.Detail)
		case r.Occurrence != nil:
			fmt.Fprintf(&b, " %s %s %s by=%s played=%dms", r.Occurrence.ItemID, r.Occurrence.State, r.Occurrence.Reason, r.Occurrence.PreemptedBy, r.Occurrence.PlayedMS)
		case r.Switch != nil:
			fmt.Fprintf(&b, " %s %s→%s", r.Switch.Action, r.Switch.From, r.Switch.To)
		}
	}
	return b.String()
}

// states returns the receipt states of a command, in Seq order. Callers
// hold c.mu.
func (c *fakeController) statesLocked(cmdID string) []string {
	var out []string
	for _, r := range c.reports {
		if r.Receipt != nil && r.Receipt.CommandID == cmdID {
			out = append(out, r.Receipt.State)
		}
	}
	return out
}

func (c *fakeController) states(cmdID string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statesLocked(cmdID)
}

// waitState waits for a receipt of cmdID in state and returns it.
func (c *fakeController) waitState(cmdID, state string) protocol.Receipt {
	c.t.Helper()
	var got protocol.Receipt
	c.waitFor("receipt "+state+" for "+cmdID, func() bool {
		for _, r := range c.reports {
			if r.Receipt != nil && r.Receipt.CommandID == cmdID && r.Receipt.State == state {
				got = *r.Receipt
				return true
			}
		}
		return false
	})
	return got
}

// waitRejection waits for a rejection report matching payload's hash.
func (c *fakeController) waitRejection(sc protocol.SignedCommand) protocol.Rejection {
	c.t.Helper()
	sum := sha256.Sum256(sc.Payload)
	var got protocol.Rejection
	c.waitFor("rejection", func() bool {
		for _, r := range c.reports {
			if r.Rejection != nil && r.Rejection.PayloadSHA == hex.EncodeToString(sum[:]) {
				got = *r.Rejection
				return true
			}
		}
		return false
	})
	return got
}

// faults returns the fault reports with code, in order.
func (c *fakeController) faults(code string) []protocol.Fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []protocol.Fault
	for _, r := range c.reports {
		if r.Fault != nil && r.Fault.Code == code {
			out = append(out, *r.Fault)
		}
	}
	return out
}

var ebmSeq atomic.Int32

// command builds a valid command for the test terminal; mutate adjusts it.
func (c *fakeController) command(kind string, mutate func(*protocol.Command)) *protocol.Command {
	id := make([]byte, 16)
	rand.Read(id)
	now := time.Now()
	cmd := &protocol.Command{
		ID: hex.EncodeToString(id), Kind: kind,
		IssuedAt: now.Add(-time.Minute), NotBefore: now.Add(-time.Minute), Expires: now.Add(10 * time.Minute),
		Targets: protocol.Targets{Terminals: []string{testTerminalID}},
	}
	if mutate != nil {
		mutate(cmd)
	}
	return cmd
}

func newEBMID() string {
	return fmt.Sprintf("%s20261126%04d", testPlatform, ebmSeq.Add(1))
}

func (c *fakeController) alert(media []protocol.Media, mutate func(*protocol.Command)) *protocol.Command {
	return c.command(protocol.KindAlert, func(cmd *protocol.Command) {
		cmd.Alert = &protocol.Alert{
			EBMID: newEBMID(), Class: protocol.ClassEmergency, MsgType: protocol.MsgActual, Level: 2,
			EventType: "11B01", Title: "防汛预警", Repeat: 1, Volume: 80, Media: media,
		}
		if mutate != nil {
			mutate(cmd)
		}
	})
}

func (c *fakeController) sign(cmd *protocol.Command) protocol.SignedCommand {
	c.t.Helper()
	sc, err := protocol.Sign(cmd, c.issuer)
	if err != nil {
		c.t.Fatal(err)
	}
	return sc
}

// gate holds chunk back until open is closed.
type gate struct {
	chunk int
	open  chan struct{}
}
