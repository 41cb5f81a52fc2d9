package terminal

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/protocol"
)

// Link timing.
const (
	handshakeWait = 10 * time.Second // dial, challenge and welcome each
	writeWait     = 10 * time.Second // one frame write
	// readLimit bounds a message: a text frame or a media chunk of the
	// largest chunk size a command may declare.
	readLimit = protocol.MaxFrameBytes + protocol.MediaChunkHeader + 1<<20
)

// errLinkDown is returned when sending on a connection that has ended.
var errLinkDown = errors.New("controller link is down")

// session is one welcomed connection. Only its writer goroutine writes to
// the WebSocket (gorilla allows one writer); everyone else queues frames.
type session struct {
	url   string
	ws    *websocket.Conn
	out   chan []byte
	batch *batchConn    // under ws; nil: frames are written one by one
	kick  chan struct{} // new reports spooled
	done  chan struct{}
	once  sync.Once
	rbuf  []byte // readLoop's buffer for text messages, kept from one to the next
}

func newSession(url string, ws *websocket.Conn) *session {
	return &session{url: url, ws: ws, batch: batchConnOf(ws), out: make(chan []byte, 64), kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// send queues a text frame; it fails once the session has ended.
func (s *session) send(frame []byte) error {
	select {
	case s.out <- frame:
		return nil
	case <-s.done:
		return errLinkDown
	}
}

func (s *session) kickReports() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *session) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *session) close() {
	s.once.Do(func() {
		close(s.done)
		s.ws.Close()
	})
}

func (s *session) writeLoop() {
	for {
		select {
		case b := <-s.out:
			if err := s.write(b); err != nil {
				s.close()
				return
			}
		case <-s.done:
			return
		}
	}
}

// write writes frame b and, held together with it (batchConn), the frames
// queued behind it, up to maxBatch bytes.
func (s *session) write(b []byte) error {
	s.ws.SetWriteDeadline(time.Now().Add(writeWait))
	bc := s.batch
	if bc == nil || len(s.out) == 0 {
		return s.ws.WriteMessage(websocket.TextMessage, b)
	}
	bc.hold()
	err := s.ws.WriteMessage(websocket.TextMessage, b)
	for more := true; more && err == nil && bc.heldLen() < maxBatch; {
		select {
		case b = <-s.out:
			err = s.ws.WriteMessage(websocket.TextMessage, b)
		default:
			more = false
		}
	}
	if serr := bc.send(); err == nil {
		err = serr
	}
	return err
}

// deniedError is a controller's refusal.
type deniedError struct{ d protocol.Denied }

func (e *deniedError) Error() string {
	switch e.d.Reason {
	case protocol.DenyPending:
		return "waiting for a technician to approve this terminal (pending)"
	case protocol.DenyBusy:
		return "another connection holds this terminal's identity (duplicate_connection)"
	}
	if e.d.Detail != "" {
		return fmt.Sprintf("controller denied this terminal: %s: %s", e.d.Reason, e.d.Detail)
	}
	return "controller denied this terminal: " + e.d.Reason
}

// connectLoop keeps one welcomed connection, trying the controllers in
// order and waiting a capped, jittered backoff after a round that failed.
func (t *Terminal) connectLoop(ctx context.Context) {
	log := t.log.With("subsystem", "link")
	dialer := t.ws
	bo := newBackoff(t.backoffMin, t.backoffMax)
	for ctx.Err() == nil {
		var later time.Duration // the longest a busy controller asked for; -1: one failed otherwise
		for _, url := range t.cfg.Controllers {
			welcomed, err := t.runSession(ctx, dialer, url)
			if ctx.Err() != nil {
				return
			}
			if welcomed {
				bo.reset()
				log.Warn("controller link lost", "controller", url, "err", err)
				later = 0
				break
			}
			var denied *deniedError
			var busy *busyError
			switch {
			case errors.As(err, &denied) && denied.d.Reason == protocol.DenyPending:
				log.Info(err.Error(), "controller", url)
			case errors.As(err, &busy):
				log.Info(err.Error(), "controller", url)
				if later >= 0 {
					later = max(later, busy.after)
				}
				continue
			default:
				log.Warn("cannot connect to controller", "controller", url, "err", err)
			}
			later = -1 // a failure that is not "busy": the usual backoff
		}
		wait := bo.delay()
		if later > 0 { // every controller busy: come back when asked, not later and later
			wait = busyWait(later)
			bo.reset()
		}
		if !t.sleep(ctx.Done(), wait) {
			return
		}
	}
}

// busyError is a controller asking the terminal to come back later: 503
// before the upgrade, or a close 1013 ("try again later") instead of a
// welcome (docs/protocol.md, section 3). It is not a failure of the link,
// so the terminal comes back about when asked (after, jittered), however
// many times it is asked, instead of backing off further each time: in a
// reconnect storm a growing backoff left the controller idle while the last
// terminals slept a minute.
type busyError struct{ after time.Duration }

func (e *busyError) Error() string {
	return fmt.Sprintf("the controller is busy; coming back in about %s", e.after)
}

// busyWait is how long to stay away when a busy controller asks for
// after: after, and up to a quarter more (at least a second more), at
// random. A controller gives each terminal it turns away its own time, so
// those turned away in one second come back spread over a second; the
// jitter spreads those asked the same time by a controller that gives all
// one.
func busyWait(after time.Duration) time.Duration {
	return after + time.Duration(rand.Float64()*float64(max(after/4, time.Second)))
}

// busyAfter is the wait a busy controller asks for: its Retry-After (or
// the reason of its close 1013) in seconds, within [1 s, backoffMax]; 5 s
// when it names none.
func busyAfter(retryAfter string, most time.Duration) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(retryAfter))
	if err != nil || secs <= 0 {
		secs = 5
	}
	return min(max(time.Duration(secs)*time.Second, time.Second), most)
}

// dialer builds the WebSocket dialer, trusting ca_file for wss:// when set.
// Its connections are batchConns, so that frames queued together are
// written together (session.write).
//
// Its read buffer is small on purpose. A read at least as long as the
// buffer bypasses it (bufio), so a media chunk's bytes go from the socket
// straight into the chunk's own buffer (readMessage), copied once. With a
// buffer as long as a chunk, the whole chunk was read into it first and then
// copied, and its 64 KiB were held for the connection's life. In a
// simulated fleet of 5,000 the first touch of every connection's buffer was
// a third of the page faults of a fan-out, and the change took a third off
// the terminals' CPU for an alert (docs/benchmarks.md, "A chunk read
// once").
func (t *Terminal) dialer() (*websocket.Dialer, error) {
	nd := &net.Dialer{Timeout: handshakeWait}
	if t.cfg.SourceAddr != "" {
		nd.LocalAddr = &net.TCPAddr{IP: net.ParseIP(t.cfg.SourceAddr)}
	}
	d := &websocket.Dialer{HandshakeTimeout: handshakeWait, ReadBufferSize: 4 << 10,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &batchConn{Conn: c}, nil
		}}
	if t.cfg.CAFile != "" {
		pem, err := os.ReadFile(t.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", t.cfg.CAFile)
		}
		d.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return d, nil
}

// runSession dials url, does the handshake and serves the connection until
// it ends. welcomed says whether the controller accepted the terminal.
func (t *Terminal) runSession(ctx context.Context, d *websocket.Dialer, url string) (welcomed bool, err error) {
	dctx, cancel := context.WithTimeout(ctx, handshakeWait)
	ws, resp, err := d.DialContext(dctx, url, nil)
	cancel()
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusServiceUnavailable {
			return false, &busyError{busyAfter(resp.Header.Get("Retry-After"), t.backoffMax)}
		}
		return false, fmt.Errorf("dial: %w", err)
	}
	defer ws.Close()
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	ws.SetReadLimit(readLimit)

	w, err := t.handshake(ws)
	if ce := (*websocket.CloseError)(nil); errors.As(err, &ce) && ce.Code == websocket.CloseTryAgainLater {
		return false, &busyError{busyAfter(ce.Text, t.backoffMax)}
	}
	if err != nil {
		return false, err
	}
	if err := t.acceptWelcome(w); err != nil {
		return false, err
	}
	t.offset.reset(w.ServerTime, t.localNow())
	t.ack(w.AckedSeq)
	t.log.Info("connected to controller", "controller", url, "terminal_id", w.TerminalID, "acked_seq", w.AckedSeq)

	s := newSession(url, ws)
	// Published first, so a report spooled from now on kicks this
	// session's sender, whose first pass then sends everything pending.
	t.setSession(s)
	var wg sync.WaitGroup
	for _, f := range []func(*session){(*session).writeLoop, t.pumpReports, t.heartbeatLoop} {
		wg.Add(1)
		go func() { defer wg.Done(); f(s) }()
	}
	err = t.readLoop(s)
	t.setSession(nil)
	s.close()
	wg.Wait()
	return true, err
}

// setSession publishes the current connection (nil when offline).
func (t *Terminal) setSession(s *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sess = s
	close(t.sessCh)
	t.sessCh = make(chan struct{})
	if t.hooks.Link != nil {
		t.hooks.Link(s != nil)
	}
}

// waitSession returns the welcomed connection, waiting for one until ctx ends.
func (t *Terminal) waitSession(ctx context.Context) (*session, error) {
	for {
		t.mu.Lock()
		s, changed := t.sess, t.sessCh
		t.mu.Unlock()
		if s != nil && !s.ended() {
			return s, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// readLoop handles incoming messages until the connection fails.
func (t *Terminal) readLoop(s *session) error {
	for {
		st, _ := t.currentSettings()
		s.ws.SetReadDeadline(time.Now().Add(2*st.heartbeat() + handshakeWait))
		mt, msg, err := s.readMessage()
		if err != nil {
			return err
		}
		if mt == websocket.BinaryMessage {
			t.deliverChunk(msg)
			continue
		}
		f, err := protocol.Decode(msg)
		if err != nil {
			return err // a peer that breaks framing is not worth talking to
		}
		t.handleFrame(s, f)
	}
}

// readMessage reads the next message. A binary one (a media chunk or live
// speech frame) is read into a buffer of chunkBufs, which whoever consumes
// a media chunk gives back (recycleChunk); a text one through the
// session's buffer, returned as a copy of its size. Either way a 64 KiB
// chunk costs no doubling buffers (io.ReadAll) and, after the first ones,
// no allocation. The connection's read limit bounds the buffers.
func (s *session) readMessage() (int, []byte, error) {
	mt, r, err := s.ws.NextReader()
	if err != nil {
		return 0, nil, err
	}
	if mt == websocket.BinaryMessage {
		buf := (*chunkBufs.Get().(*[]byte))[:0]
		buf, err := readInto(r, buf)
		return mt, buf, err
	}
	s.rbuf, err = readInto(r, s.rbuf[:0])
	return mt, bytes.Clone(s.rbuf), err
}

// chunkBufs holds buffers the size of a whole media chunk frame.
var chunkBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, protocol.MediaChunkHeader+protocol.DefaultChunkSize)
	return &b
}}

// recycleChunk gives a media chunk's buffer back once it has been used.
func recycleChunk(b []byte) {
	if cap(b) >= protocol.MediaChunkHeader+protocol.DefaultChunkSize {
		b = b[:0]
		chunkBufs.Put(&b)
	}
}

// readInto appends what r has to buf until EOF, growing it when full. A
// full buffer is grown only if a byte more comes: a media chunk fills a
// buffer of chunkBufs exactly, and growing it to read the end of the
// message doubled every new buffer.
func readInto(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			var one [1]byte
			m, err := r.Read(one[:])
			if m == 0 && err == io.EOF {
				return buf, nil
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			buf = append(slices.Grow(buf, max(4096, cap(buf))), one[:m]...)
			if err == io.EOF {
				return buf, nil
			}
			continue
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (t *Terminal) handleFrame(s *session, f protocol.Frame) {
	switch f.Type {
	case protocol.TypeCommand:
		t.handleCommand(s, f.Body)
	case protocol.TypeAck:
		var a protocol.Ack
		if err := protocol.DecodeBody(f, &a); err == nil {
			t.ack(a.Seq)
		}
	case protocol.TypePong:
		var p protocol.Pong
		if err := protocol.DecodeBody(f, &p); err == nil {
			recv := t.localNow()
			if !t.offset.pong(p.TerminalTime, p.ServerTime, recv) {
				t.log.Debug("clock sample dropped", "terminal_time", p.TerminalTime, "server_time", p.ServerTime)
				break
			}
			t.log.Debug("clock sample", "rtt", recv.Sub(p.TerminalTime), "sample", p.ServerTime.Add(recv.Sub(p.TerminalTime)/2).Sub(recv), "estimate", t.offset.get())
		}
	case protocol.TypeMediaErr:
		var m protocol.MediaErr
		if err := protocol.DecodeBody(f, &m); err == nil {
			t.deliverMediaErr(m)
		}
	default:
		t.log.Debug("ignored frame", "type", f.Type)
	}
}
