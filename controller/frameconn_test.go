package controller

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/protocol"
)

// wsFrame builds one masked WebSocket frame as a terminal sends it, with
// the payload length in the given form (0 shortest, else 126 or 127).
func wsFrame(fin bool, opcode byte, payload []byte, form int) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	n := len(payload)
	switch {
	case form == 127 || n > 0xffff:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	case form == 126 || n > 125:
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, 0x80|byte(n))
	}
	out = append(out, 0, 0, 0, 0) // a zero masking key leaves the payload as it is
	return append(out, payload...)
}

// A stream of messages (some fragmented, some with control frames among
// them, lengths in every form) is read in pieces of every size: after each
// message, took says whether every byte read so far was taken, and so
// exactly when the stream read so far ends with that message and the
// read did not fill its buffer (when it did, the socket may hold more).
func TestFrameConnFindsMessageEnds(t *testing.T) {
	pay := func(n int) []byte { return bytes.Repeat([]byte{'x'}, n) }
	var stream []byte
	var ends []int // where each message ends in the stream
	msg := func(frames ...[]byte) {
		for _, f := range frames {
			stream = append(stream, f...)
		}
		ends = append(ends, len(stream))
	}
	msg(wsFrame(true, 1, pay(30), 0))                                                            // heartbeat-sized
	msg(wsFrame(true, 1, nil, 0))                                                                // empty
	msg(wsFrame(true, 1, pay(200), 0))                                                           // 16-bit length
	msg(wsFrame(true, 1, pay(5), 126))                                                           // 16-bit, not shortest
	msg(wsFrame(true, 2, pay(70000), 0))                                                         // 64-bit length
	msg(wsFrame(true, 1, pay(3), 127))                                                           // 64-bit, not shortest
	msg(wsFrame(false, 1, pay(10), 0), wsFrame(true, 9, pay(4), 0), wsFrame(true, 0, pay(7), 0)) // fragmented, a ping inside
	stream = append(stream, wsFrame(true, 10, pay(2), 0)...)                                     // a pong after: no message
	msg(wsFrame(true, 1, pay(1), 0))

	for _, r := range []struct{ piece, buf int }{
		{1, 4096}, {2, 4096}, {3, 4096}, {7, 4096}, {13, 4096}, {100, 4096}, {1024, 4096}, {len(stream), 4096},
		{ends[2], ends[2]}, // the first read fills its buffer, exactly at a message's end
	} {
		piece := r.piece
		c := &frameConn{Conn: &readOnly{r: bytes.NewReader(stream), max: piece}}
		taken := 0
		buf := make([]byte, r.buf)
		for {
			n, err := c.Read(buf)
			for len(c.ends) > 0 {
				end := c.ends[0]
				if int(end) != ends[taken] {
					t.Fatalf("piece %d: message %d ends at %d, want %d", piece, taken, end, ends[taken])
				}
				if got, want := c.took(), end == c.pos && n < len(buf); got != want {
					t.Fatalf("piece %d: after message %d (ends %d, read %d) took = %v", piece, taken, end, c.pos, got)
				}
				taken++
			}
			if err == io.EOF {
				break
			}
		}
		if taken != len(ends) || c.broken || c.nhdr != 0 || c.skip != 0 {
			t.Fatalf("piece %d: took %d of %d messages (broken %v, header %d, skip %d)", piece, taken, len(ends), c.broken, c.nhdr, c.skip)
		}
	}
}

// A 64-bit length with its top bit set is not a length: the connection
// is never reported drained, so its reader stays rather than parks.
func TestFrameConnBadLength(t *testing.T) {
	bad := []byte{0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}
	c := &frameConn{Conn: &readOnly{r: bytes.NewReader(append(wsFrame(true, 1, []byte("ok"), 0), bad...)), max: 4096}}
	c.Read(make([]byte, 4096))
	if !c.broken || c.took() {
		t.Fatalf("broken = %v, took = true after a length with its top bit set", c.broken)
	}
}

// Random streams of short frames read in random pieces agree with the
// frames' own boundaries.
func TestFrameConnRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var stream []byte
		var ends []int64
		for i := 0; i < 20; i++ {
			stream = append(stream, wsFrame(true, 1, make([]byte, r.IntN(300)), []int{0, 126, 127}[r.IntN(3)])...)
			ends = append(ends, int64(len(stream)))
		}
		c := &frameConn{Conn: &readOnly{r: bytes.NewReader(stream), max: 1 + r.IntN(600)}}
		for {
			if _, err := c.Read(make([]byte, 1024)); err == io.EOF {
				break
			}
		}
		if len(c.ends) != len(ends) {
			t.Fatalf("round %d: %d ends, want %d", round, len(c.ends), len(ends))
		}
		for i, e := range ends {
			if c.ends[i] != e {
				t.Fatalf("round %d: end %d at %d, want %d", round, i, c.ends[i], e)
			}
		}
	}
}

// readOnly is a net.Conn whose reads return at most max bytes of r.
type readOnly struct {
	net.Conn
	r   io.Reader
	max int
}

func (c *readOnly) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.max)]) }

// An idle session parks: it keeps no goroutine, yet frames that come
// later are read at once, whether two come in one write or one comes in
// two; a parked session whose terminal hangs up, or goes silent, ends and
// its terminal is recorded offline.
func TestIdleSessionParks(t *testing.T) {
	h := startController(t, nil)
	parked := func(s *session) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return !s.reading && s.pollID >= 0
	}
	const n = 40
	before := runtime.NumGoroutine()
	rts := make([]*rawTerminal, n)
	for i := range rts {
		rt, code := h.newRawTerminal(t, villageA, fmt.Sprintf("停%d", i))
		rt.connect(t, code)
		rt.nothingQueued(t)
		rts[i] = rt
	}
	for _, rt := range rts {
		waitFor(t, "the session parked", func() bool { s := h.c.hub.get(rt.id); return s != nil && parked(s) })
		if h.c.hub.get(rt.id).fc.sock.attached() {
			t.Fatal("a parked session's socket is still in Go's poller; want the idle poller's alone")
		}
	}
	if grew := runtime.NumGoroutine() - before; grew >= n/2 {
		t.Fatalf("%d idle sessions hold %d goroutines more than none", n, grew)
	}

	rt := rts[0]
	s := h.c.hub.get(rt.id)
	ping := func(at time.Time) []byte {
		msg, err := protocol.Encode(protocol.TypePing, protocol.Ping{TerminalTime: at})
		if err != nil {
			t.Fatal(err)
		}
		return wsFrame(true, 1, msg, 0)
	}
	pong := func(want time.Time) {
		t.Helper()
		var p protocol.Pong
		if f := rt.read(t); f.Type != protocol.TypePong || protocol.DecodeBody(f, &p) != nil || !p.TerminalTime.Equal(want) {
			t.Fatalf("got %s %s, want the pong for %s", f.Type, f.Body, want)
		}
	}
	t1, t2, t3 := time.Unix(1, 0).UTC(), time.Unix(2, 0).UTC(), time.Unix(3, 0).UTC()
	if _, err := rt.ws.NetConn().Write(append(ping(t1), ping(t2)...)); err != nil { // two frames, one write
		t.Fatal(err)
	}
	pong(t1)
	pong(t2)
	third := ping(t3)
	rt.ws.NetConn().Write(third[:5]) // one frame, in two writes
	time.Sleep(50 * time.Millisecond)
	rt.ws.NetConn().Write(third[5:])
	pong(t3)
	waitFor(t, "the session parked again", func() bool { return parked(s) })

	// A wake-up the poller missed (here: the socket taken off its list)
	// is made good by the hub's nudge of sessions quiet for a heartbeat
	// and a half.
	lost := rts[2]
	ls := h.c.hub.get(lost.id)
	waitFor(t, "the session parked", func() bool { return parked(ls) })
	idlePoller().remove(ls.pollID, ls.fc.sock)
	t4 := time.Unix(4, 0).UTC()
	if _, err := lost.ws.NetConn().Write(ping(t4)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	h.c.hub.nudgeQuietSince(time.Now().Add(time.Hour))
	var p protocol.Pong
	if f := lost.read(t); f.Type != protocol.TypePong || protocol.DecodeBody(f, &p) != nil || !p.TerminalTime.Equal(t4) {
		t.Fatalf("got %s %s after the nudge, want the pong for %s", f.Type, f.Body, t4)
	}

	rt.ws.Close() // hung up while parked
	h.waitOffline(t, rt.id)

	quiet := rts[1]
	h.c.hub.closeSilentSince(time.Now().Add(time.Hour)) // every session is silent since then
	h.waitOffline(t, quiet.id)
	waitFor(t, "every silent session closed", func() bool { return h.c.hub.online() == 0 })
}

// tcpPair returns both ends of a loopback TCP connection, the first
// wrapped as the controller wraps a terminal's.
func tcpPair(t *testing.T) (*frameConn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	far, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	near := <-accepted
	if near == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { near.Close(); far.Close() })
	fc := newFrameConn(near)
	if fc.sock == nil {
		t.Fatal("a TCP connection's socket was not found")
	}
	return fc, far
}

// A write larger than the socket's buffers, to a peer that starts reading
// late and reads slowly, waits for room and delivers every byte in order.
func TestFrameConnWriteWaitsForRoom(t *testing.T) {
	fc, far := tcpPair(t)
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(200 * time.Millisecond) // the socket fills first
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for b.Len() < len(data) {
			n, err := far.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		got <- b.Bytes()
	}()
	fc.SetWriteDeadline(time.Now().Add(time.Minute))
	n, err := fc.Write(data)
	if err != nil || n != len(data) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(data))
	}
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("the peer read %d bytes, not the %d written in order", len(b), len(data))
	}
}

// A write to a peer that never reads ends at the write deadline, as
// net.Conn's does, having written what fitted.
func TestFrameConnWriteDeadline(t *testing.T) {
	fc, _ := tcpPair(t)
	fc.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	data := make([]byte, 64<<20)
	n, err := fc.Write(data)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write to a peer that never reads = %d, %v; want the deadline exceeded", n, err)
	}
	if n <= 0 || n >= len(data) {
		t.Fatalf("Write wrote %d of %d bytes before its deadline; want some, not all", n, len(data))
	}
}

// A write to a peer that has gone fails with the system's error, wrapped
// as net.Conn wraps it, and never waits.
func TestFrameConnWriteToClosedPeer(t *testing.T) {
	fc, far := tcpPair(t)
	far.(*net.TCPConn).SetLinger(0) // a reset, not an orderly close
	far.Close()
	fc.SetWriteDeadline(time.Now().Add(time.Minute))
	var err error
	for i := 0; i < 100 && err == nil; i++ { // the first write may still be taken
		_, err = fc.Write([]byte("pong"))
		time.Sleep(10 * time.Millisecond)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "write" {
		t.Fatalf("Write to a reset peer = %v; want a *net.OpError of a write", err)
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write to a reset peer = %v; want ECONNRESET or EPIPE", err)
	}
}

// whole counts the messages read and not yet returned only when they are
// whole data messages: what the idle poller may answer itself.
func TestFrameConnWhole(t *testing.T) {
	msg := wsFrame(true, 1, []byte(`{"type":"ping"}`), 0)
	cases := []struct {
		name   string
		stream []byte
		want   int
	}{
		{"one message", msg, 1},
		{"three messages", bytes.Repeat(msg, 3), 3},
		{"a message and half a frame", append(slices.Clone(msg), msg[:5]...), 0},
		{"a header cut short", msg[:1], 0},
		{"a fragment without its end", wsFrame(false, 1, []byte("x"), 0), 0},
		{"a fragmented message", append(wsFrame(false, 1, []byte("x"), 0), wsFrame(true, 0, []byte("y"), 0)...), 1},
		{"a ping frame", wsFrame(true, 9, nil, 0), 0},
		{"a message and a close frame", append(slices.Clone(msg), wsFrame(true, 8, nil, 0)...), 0},
		{"a reserved opcode", wsFrame(true, 3, []byte("x"), 0), 0},
		{"a reserved bit", append([]byte{0x80 | 0x40 | 1}, msg[1:]...), 0},
		{"no mask", []byte{0x81, 1, 'x'}, 0},
	}
	for _, tc := range cases {
		c := &frameConn{Conn: &readOnly{r: bytes.NewReader(tc.stream), max: len(tc.stream)}}
		c.Read(make([]byte, 4096))
		if got := c.whole(); got != tc.want {
			t.Errorf("%s: whole = %d, want %d", tc.name, got, tc.want)
		}
	}

	// A read that filled its buffer may have left more in the socket: the
	// messages it read are not all there is.
	full := &frameConn{Conn: &readOnly{r: bytes.NewReader(bytes.Repeat(msg, 3)), max: 4096}}
	full.Read(make([]byte, 2*len(msg)))
	if got := full.whole(); got != 0 {
		t.Errorf("two messages filling the read's buffer: whole = %d, want 0", got)
	}

	// Once every byte is taken, a control frame read before no longer
	// counts against what comes next.
	stream := append(wsFrame(true, 9, nil, 0), msg...)
	c := &frameConn{Conn: &readOnly{r: bytes.NewReader(append(stream, msg...)), max: len(stream)}}
	c.Read(make([]byte, 4096))
	if c.whole() != 0 || !c.took() {
		t.Fatal("a ping and a message: want whole 0, and everything taken after the message")
	}
	c.Read(make([]byte, 4096))
	if got := c.whole(); got != 1 {
		t.Fatalf("the next message alone: whole = %d, want 1", got)
	}
}

// parkedTerminal connects a terminal named name and waits for its session
// to park.
func parkedTerminal(t *testing.T, h *testController, name string) *rawTerminal {
	t.Helper()
	rt, code := h.newRawTerminal(t, villageA, name)
	rt.connect(t, code)
	rt.nothingQueued(t)
	s := h.c.hub.get(rt.id)
	waitFor(t, "the session parked", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return !s.reading && s.pollID >= 0 })
	return rt
}

// A parked session woken by a write larger than one read reads all of
// it. The idle poller is edge-triggered: it says once that the socket has
// data, so a session that parks while the socket still holds some hears
// of it only when the terminal next sends. Here the first read (1,024
// bytes, the poller's own) ends exactly at the end of a message, the
// pings before it are answered, and the one after it must be too.
func TestParkedSessionReadsAWriteLargerThanOneRead(t *testing.T) {
	rt := parkedTerminal(t, startController(t, nil), "一次写")
	stash := stashes.Get().(*[]byte)
	first := len(*stash) // what the woken session reads first
	stashes.Put(stash)
	const pings = 4
	var write []byte
	var want []time.Time
	for i := range pings + 1 {
		at := time.Unix(int64(i+1), 0).UTC()
		msg, err := protocol.Encode(protocol.TypePing, protocol.Ping{TerminalTime: at})
		if err != nil {
			t.Fatal(err)
		}
		if i < pings { // pad the JSON so that the first pings fill the first read exactly
			const frameHead = 4 + 4 // a 16-bit length and the mask
			pad := first/pings - frameHead - len(msg)
			if pad < 0 || first%pings != 0 {
				t.Fatalf("cannot fit %d pings of %d bytes into %d", pings, len(msg), first)
			}
			msg = append([]byte("{"+strings.Repeat(" ", pad)), msg[1:]...)
		}
		write = append(write, wsFrame(true, 1, msg, 126)...)
		want = append(want, at)
	}
	if _, err := rt.ws.NetConn().Write(write); err != nil {
		t.Fatal(err)
	}
	for _, at := range want {
		var p protocol.Pong
		if f := rt.read(t); f.Type != protocol.TypePong || protocol.DecodeBody(f, &p) != nil || !p.TerminalTime.Equal(at) {
			t.Fatalf("got %s %s, want the pong for %s", f.Type, f.Body, at)
		}
	}
}

// A parked session's WebSocket ping (a control frame, answered by the
// library itself) is answered, and so are its messages after it.
func TestParkedSessionAnswersControlFrames(t *testing.T) {
	rt := parkedTerminal(t, startController(t, nil), "控制帧")
	ponged := make(chan string, 1)
	rt.ws.SetPongHandler(func(data string) error { ponged <- data; return nil })
	if err := rt.ws.WriteControl(websocket.PingMessage, []byte("在吗"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	rt.nothingQueued(t) // reads on: the library hands the pong to the handler on the way
	select {
	case data := <-ponged:
		if data != "在吗" {
			t.Fatalf("the WebSocket pong carried %q, want the ping's %q", data, "在吗")
		}
	default:
		t.Fatal("a parked session's WebSocket ping got no pong")
	}
}

// A terminal that stopped reading has no room left in its socket; the
// idle poller hands its pong to a writer goroutine rather than wait for
// room (a write waits up to 10 s), so the other terminals' pongs do not
// wait for it.
func TestTerminalThatDoesNotReadHoldsUpNoOne(t *testing.T) {
	h := startController(t, nil)
	deaf, code := h.newRawTerminal(t, villageA, "不读")
	deaf.connect(t, code)
	deaf.nothingQueued(t)
	other, code := h.newRawTerminal(t, villageA, "照常")
	other.connect(t, code)
	other.nothingQueued(t)
	ds := h.c.hub.get(deaf.id)
	parked := func() bool { ds.mu.Lock(); defer ds.mu.Unlock(); return !ds.reading && !ds.writing && ds.pollID >= 0 }
	waitFor(t, "the session parked", parked)

	// Fill the controller's end of the deaf terminal's connection, as
	// replies it never read would (it reads nothing from here on), until
	// the acknowledgements of what was taken free no more room.
	fill := func() (filled int) {
		for _, size := range []int{64 << 10, 1} { // to the last byte of room
			junk := make([]byte, size)
			for {
				n, errno := sysIO(syscall.SYS_WRITE, uintptr(ds.fc.sock.descriptor()), junk)
				if errno != 0 {
					break
				}
				filled += n
			}
		}
		return filled
	}
	stable := func() {
		for i := 0; fill() > 0; i++ {
			if i == 100 {
				t.Fatal("the socket kept taking more")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The kernel may find room for a small pong after all (the receiving
	// side collapses its queue): ping until a pong waits for room.
	waiting := func() bool { ds.mu.Lock(); defer ds.mu.Unlock(); return ds.writing && len(ds.ctrl) == 0 }
	for i := 0; !waiting(); i++ {
		if i == 50 {
			t.Fatal("the deaf terminal's pongs kept finding room")
		}
		stable()
		read := ds.lastRead.Load()
		deaf.write(t, protocol.TypePing, protocol.Ping{TerminalTime: time.Now()})
		waitFor(t, "the deaf terminal's ping read", func() bool { return ds.lastRead.Load() != read })
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	other.nothingQueued(t) // a ping, and its pong
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a pong took %s while another terminal's socket was full; want it not to wait for that socket", took)
	}
}

// A read that must wait, on a socket taken out of Go's poller, puts it
// back for the wait: it gets what comes later, and its deadline holds.
func TestFrameConnReadWaitsWhenDetached(t *testing.T) {
	fc, far := tcpPair(t)
	fc.sock.detach()
	if fc.sock.attached() {
		t.Fatal("detach left the socket in Go's poller")
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		far.Write([]byte("later"))
	}()
	fc.SetReadDeadline(time.Now().Add(time.Minute))
	buf := make([]byte, 16)
	if n, err := fc.Read(buf); err != nil || string(buf[:n]) != "later" {
		t.Fatalf("Read = %q, %v; want what the peer wrote later", buf[:n], err)
	}
	fc.sock.detach()
	fc.SetReadDeadline(time.Now().Add(100 * time.Millisecond)) // kept while detached, set on the wait
	if n, err := fc.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read of a silent peer = %d, %v; want the deadline exceeded", n, err)
	}
	far.Close()
	fc.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := fc.Read(buf); err != io.EOF {
		t.Fatalf("Read after the peer closed = %d, %v; want io.EOF", n, err)
	}
	if err := fc.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if _, err := fc.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close = %v; want net.ErrClosed", err)
	}
}

// prime notes when the kernel received what it read, not when it read it:
// a ping that waited for the idle poller is answered with the time it
// came (session.pong).
func TestFrameConnPrimeNotesReceiveTime(t *testing.T) {
	fc, far := tcpPair(t)
	sent := time.Now()
	if _, err := far.Write(wsFrame(true, 1, []byte(`{"type":"ping"}`), 0)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	read := time.Now()
	if !fc.prime() {
		t.Fatal("prime read nothing")
	}
	if got := fc.received; got.Before(sent.Add(-time.Millisecond)) || got.After(read.Add(-100*time.Millisecond)) {
		t.Fatalf("received %s: %s after the write, read %s after it; want the kernel's time of arrival, about the write's",
			got.Format(time.StampMicro), got.Sub(sent), read.Sub(sent))
	}
}

// A pong to a ping that waited says the controller's time halfway through
// the wait, so the wait cancels out of the terminal's estimate of the
// controller's clock (docs/protocol.md §7); without a time of arrival, or
// with one that makes no sense, it says the time it is written.
func TestPongTakesHalfTheWait(t *testing.T) {
	h := startController(t, nil)
	rt, code := h.newRawTerminal(t, villageA, "半")
	rt.connect(t, code)
	rt.nothingQueued(t)
	s := h.c.hub.get(rt.id)
	// pong returns the server time of the pong queued for a ping received
	// then, and the times before and after it was made.
	pong := func(received time.Time) (server, before, after time.Time) {
		t.Helper()
		before = time.Now()
		s.pong(before, received)
		after = time.Now()
		s.mu.Lock()
		msg := pop(&s.ctrl) // the session is idle: no writer takes it
		s.mu.Unlock()
		f, err := protocol.Decode(msg)
		var p protocol.Pong
		if err != nil || protocol.DecodeBody(f, &p) != nil {
			t.Fatalf("queued %s, not a pong", msg)
		}
		return p.ServerTime, before, after
	}
	received := time.Now().Add(-20 * time.Millisecond)
	server, before, after := pong(received)
	half := func(t time.Time) time.Time { return t.Add(-t.Sub(received) / 2) }
	if server.Before(half(before)) || server.After(half(after)) {
		t.Fatalf("the pong to a ping that waited %s says %s before it was made; want half the wait",
			before.Sub(received), before.Sub(server))
	}
	for _, odd := range []time.Time{{}, time.Now().Add(time.Hour), time.Now().Add(-time.Hour)} {
		if server, before, after := pong(odd); server.Before(before) || server.After(after) {
			t.Fatalf("the pong to a ping received at %s says %s; want the time it was made, %s", odd, server, before)
		}
	}
}
