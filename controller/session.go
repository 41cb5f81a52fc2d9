package controller

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/controller/events"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// upgrader takes its write buffers from a pool: an idle terminal's
// connection then holds none (16 KB each at 15,000 terminals is 240 MB).
// Its read buffer is small: terminals send short JSON frames, and a longer
// one is read through it in pieces.
var upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 16 << 10, WriteBufferPool: &sync.Pool{}}

// session is one terminal's live connection. An idle session costs no
// goroutine and no queue (docs/benchmarks.md, "Idle sessions"): its reader
// parks between frames (the idle poller starts another when the terminal
// sends), each queue is a slice that exists while it holds something, and
// the goroutines that drain them run only while there is work. The reader
// only reads: decoding and acting on a frame go to handleLoop. Every write
// goes through the one writer: control frames through a bounded queue that
// never blocks the caller, media through its own queue that the media
// sender fills at the pace of the link.
type session struct {
	c          *Controller
	conn       *websocket.Conn
	ctx        context.Context // outlives the HTTP request that upgraded
	terminalID string
	areaCode   string
	remote     string
	log        *slog.Logger
	kids       []string // issuing keys the terminal said it trusts
	fc         *frameConn
	lastRead   atomic.Int64 // when a frame last came, Unix nanoseconds; the far future until the session reads

	mu         sync.Mutex
	wake       sync.Cond        // on mu: a queue has room, persisting ended, or the session ended
	closed     bool             // the session has ended; queues are empty and stay so
	ctrl       [][]byte         // text frames, at most controlQueue
	live       [][]byte         // binary live speech frames (live.go): never behind media
	media      [][]byte         // binary media chunks, at most mediaQueue
	inbox      [][]byte         // frames read from the terminal, handled in order by handleLoop
	reports    []protocol.Frame // reports, stored in order by the report store (reportbatch.go)
	writing    bool             // writer is running
	handling   bool             // handleLoop is running
	persisting bool             // the report store has the session queued, or stores its reports
	reading    bool             // a reader runs (readFrames or the handshake); false while parked
	pending    bool             // the idle poller had news while a reader ran
	nudged     bool             // woken by the hub, not the poller (nudgeQuietSince)
	pollID     int32            // the idle poller's number for the socket, while it watches it; else -1
	admitted   func()           // gives back the session's place among those coming online (hub.admit)
	once       sync.Once
}

const (
	inboxQueue   = 64
	reportQueue  = 64
	controlQueue = 256
	mediaQueue   = 4
	writeWait    = 10 * time.Second
	helloWait    = 10 * time.Second
)

// serveTerminal is the /v1/terminal endpoint. It returns once the terminal
// is online, leaving the connection to the session's reader, so that the
// HTTP server's goroutine and buffers do not stay with every idle terminal.
func (c *Controller) serveTerminal(w http.ResponseWriter, r *http.Request) {
	if c.hub.closing.Load() {
		c.hub.askLater(w, "the controller is stopping; try again later")
		return
	}
	if c.hub.joinQueue.Load() >= maxJoinQueue {
		if c.hub.busy.Add(1)%1000 == 1 {
			c.log.Warn("terminals coming online faster than they can be taken; asking the others to come back later",
				"queued", maxJoinQueue, "turned_away", c.hub.busy.Load())
		}
		c.hub.askLater(w, "too many terminals coming online at once; try again later")
		return
	}
	if c.hub.conns.Add(1) > c.hub.maxConns {
		c.hub.conns.Add(-1)
		if c.hub.turned.Add(1)%1000 == 1 {
			c.log.Warn("terminal connections at the process's limit; asking terminals to come back later",
				"limit", c.hub.maxConns, "turned_away", c.hub.turned.Load())
		}
		c.hub.askLater(w, "too many terminal connections; try again later")
		return
	}
	fw := &frameWriter{ResponseWriter: w}
	conn, err := upgrader.Upgrade(fw, r, nil)
	if err != nil {
		c.hub.conns.Add(-1)
		return // the upgrader already answered
	}
	if !c.hub.enter() {
		conn.Close() // the terminal comes back to the next start
		c.hub.conns.Add(-1)
		return
	}
	conn.SetReadLimit(protocol.MaxFrameBytes)
	s := &session{c: c, conn: conn, fc: fw.fc, ctx: context.WithoutCancel(r.Context()), remote: r.RemoteAddr,
		log: c.log.With("remote", r.RemoteAddr), reading: true, pollID: -1, admitted: func() {}}
	s.wake.L = &s.mu
	s.lastRead.Store(math.MaxInt64) // not silent while it handshakes and comes online, however long that takes
	t, err := s.handshake(s.ctx)
	defer s.admitted() // once online, or refused
	if err == nil {
		s.terminalID, s.areaCode = t.ID, t.AreaCode
		s.log = s.log.With("terminal", t.ID)
		if !c.hub.attach(s) {
			err = errors.New("the controller is stopping") // the terminal comes back to the next start
		}
	}
	if err != nil {
		s.log.Info("terminal refused", "err", err)
		conn.Close()
		c.hub.conns.Add(-1)
		c.hub.running.Done()
		return
	}
	s.online(s.ctx, t)
	s.startReading()
}

// startReading hands the connection to the idle poller, if it can watch
// it, and starts the session's reader.
func (s *session) startReading() {
	s.lastRead.Store(time.Now().UnixNano())
	if p := idlePoller(); p != nil {
		if s.fc.sock != nil {
			s.mu.Lock()
			if !s.closed {
				s.pollID = p.add(s.fc.sock, s)
			}
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	polled := s.pollID >= 0
	s.mu.Unlock()
	if polled {
		s.wakeRead() // parks at once if the terminal has not sent yet
	} else {
		go s.readFrames()
	}
}

// end is the session's last act, once its reader has stopped for good:
// it records the terminal offline once its last report is stored and its
// heartbeats queued.
func (s *session) end() {
	defer s.c.hub.running.Done()
	defer s.c.hub.conns.Add(-1)
	s.close()
	s.mu.Lock()
	for s.handling || s.persisting {
		s.wake.Wait()
	}
	s.mu.Unlock()
	if s.c.hub.detach(s) && !s.c.hub.closing.Load() { // a stopping controller records them all at once
		s.c.setOffline(s.terminalID)
	}
}

// close ends the session: queued frames are dropped, and whoever waits
// for room in a queue gives up. A reader that runs ends the session when
// its read fails; a parked session is ended here.
func (s *session) close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.ctrl, s.live, s.media, s.inbox, s.reports = nil, nil, nil, nil, nil
		parked, id := !s.reading, s.pollID
		s.reading, s.pollID = true, -1
		s.wake.Broadcast()
		s.mu.Unlock()
		if id >= 0 {
			idlePoller().remove(id, s.fc.sock)
		}
		s.conn.Close()
		if parked {
			go s.end()
		}
	})
}

// handshake runs challenge → hello → welcome or denied. Writes here happen
// before the writer goroutine starts.
func (s *session) handshake(ctx context.Context) (store.Terminal, error) {
	nonce := make([]byte, 32)
	rand.Read(nonce)
	if err := s.writeNow(protocol.TypeChallenge, protocol.Challenge{Version: protocol.Version, Nonce: nonce, ServerTime: s.c.now()}); err != nil {
		return store.Terminal{}, err
	}
	s.conn.SetReadDeadline(time.Now().Add(helloWait))
	_, msg, err := s.conn.ReadMessage()
	if err != nil {
		return store.Terminal{}, fmt.Errorf("read hello: %w", err)
	}
	s.fc.took()
	if s.admitted, err = s.c.hub.admit(ctx); err != nil {
		// The reason is when to come back, in seconds, as a Retry-After.
		later := strconv.FormatInt(s.c.hub.pacer.comeBack(time.Now()), 10)
		s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, later), time.Now().Add(time.Second))
		return store.Terminal{}, err
	}
	f, err := protocol.Decode(msg)
	if err != nil || f.Type != protocol.TypeHello {
		return store.Terminal{}, fmt.Errorf("expected hello, got %q (%v)", f.Type, err)
	}
	var h protocol.Hello
	if err := protocol.DecodeBody(f, &h); err != nil {
		return store.Terminal{}, err
	}
	s.kids = h.KeyIDs
	if err := protocol.VerifyHello(h, nonce); err != nil {
		reason := protocol.DenyProof
		if errors.Is(err, protocol.ErrVersion) {
			reason = protocol.DenyVersion
		}
		return store.Terminal{}, s.deny(reason, err.Error())
	}
	t, err := s.c.store.TerminalByKey(ctx, h.PublicKey)
	switch {
	case err == nil && t.Status == store.TerminalRevoked:
		return t, s.deny(protocol.DenyRevoked, "this terminal was revoked by a technician")
	case err == nil:
	case errors.Is(err, store.ErrNotFound) && h.EnrollCode != "":
		t, err = s.c.store.Enroll(ctx, HashSecret(h.EnrollCode), h.PublicKey, s.c.now())
		if err != nil {
			return t, s.deny(protocol.DenyBadCode, "the enrollment code is wrong, used or expired; ask a technician for a new one")
		}
		s.c.log.Info("terminal enrolled", "terminal", t.ID, "area", t.AreaCode, "kid", protocol.KeyID(h.PublicKey))
		s.c.audit(ctx, "terminal:"+t.ID, s.remote, "terminal.enroll", t.ID, "", protocol.KeyID(h.PublicKey), "bound its key with a one-time code")
	case errors.Is(err, store.ErrNotFound):
		now := s.c.now()
		if err := s.c.store.NotePending(ctx, store.Pending{PublicKey: h.PublicKey, FirstSeen: now, LastSeen: now,
			RemoteAddr: s.remote, Hostname: h.Hostname, Firmware: h.Firmware}); err != nil {
			return t, err
		}
		return t, s.deny(protocol.DenyPending, "unknown terminal key "+protocol.KeyID(h.PublicKey)+"; waiting for a technician to approve it")
	default:
		return t, err
	}
	s.conn.SetReadDeadline(time.Time{})
	return t, s.writeNow(protocol.TypeWelcome, protocol.Welcome{
		TerminalID: t.ID, AreaCode: t.AreaCode, Name: t.Name, ServerTime: s.c.now(),
		HeartbeatSeconds: s.c.cfg.HeartbeatSeconds, AckedSeq: t.AckedSeq, Keys: s.c.publicKeys(),
	})
}

func (s *session) deny(reason, detail string) error {
	s.writeNow(protocol.TypeDenied, protocol.Denied{Reason: reason, Detail: detail})
	s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, reason), time.Now().Add(time.Second))
	return fmt.Errorf("denied: %s: %s", reason, detail)
}

func (s *session) writeNow(t protocol.Type, body any) error {
	msg, err := protocol.Encode(t, body)
	if err != nil {
		return err
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeWait))
	return s.conn.WriteMessage(websocket.TextMessage, msg)
}

// send queues a text frame without blocking. A terminal too slow to take
// its control frames is disconnected; it gets what it missed on reconnect.
func (s *session) send(msg []byte) bool { return s.queue(msg, true) }

// queue queues a text frame and, with start, starts the writer unless it
// runs.
func (s *session) queue(msg []byte, start bool) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	if len(s.ctrl) >= controlQueue {
		s.mu.Unlock()
		s.c.hub.slow.Add(1)
		s.log.Warn("terminal send queue full; disconnecting it")
		s.close()
		return false
	}
	s.ctrl = append(s.ctrl, msg)
	if start {
		s.startWriter()
	}
	s.mu.Unlock()
	return true
}

// pong queues the answer to a ping (or a heartbeat that is one), for
// handleLoop to write once its inbox is empty if no writer runs then:
// answering a heartbeat takes no goroutine of its own.
//
// Its server time is halfway between the ping's arrival and now, when the
// kernel said when the ping arrived (received): the terminal takes the
// controller's clock at the middle of the round trip, so the time the
// ping waited for the idle poller (up to pollEvery) then cancels out
// (docs/protocol.md §7).
func (s *session) pong(terminalTime, received time.Time) {
	now := s.c.now()
	if held := now.Sub(received); !received.IsZero() && held > 0 && held < time.Second {
		now = now.Add(-held / 2)
	}
	msg, err := protocol.EncodePong(protocol.Pong{TerminalTime: terminalTime, ServerTime: now})
	if err != nil {
		s.log.Error("encode frame", "type", protocol.TypePong, "err", err)
		return
	}
	s.queue(msg, false)
}

// sendFrame encodes and sends a frame (send).
func (s *session) sendFrame(t protocol.Type, body any) bool {
	msg, err := protocol.Encode(t, body)
	if err != nil {
		s.log.Error("encode frame", "type", t, "err", err)
		return false
	}
	return s.send(msg)
}

// startWriter starts the writer unless it is running; s.mu is held.
func (s *session) startWriter() {
	if !s.writing {
		s.writing = true
		go s.writer()
	}
}

// writer writes queued frames, control and live speech before media, and
// ends when the queues are empty.
func (s *session) writer() {
	for {
		s.mu.Lock()
		msg, kind := s.next()
		if msg == nil {
			s.stopWriting()
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.write(kind, msg) // a failed write closes the session, and next finds it closed
	}
}

// write writes one frame within writeWait; a failed write closes the
// session.
func (s *session) write(kind int, msg []byte) {
	s.conn.SetWriteDeadline(time.Now().Add(writeWait))
	if err := s.conn.WriteMessage(kind, msg); err != nil {
		s.close()
		return
	}
	s.c.hub.sent.Add(int64(len(msg)))
}

// stopWriting ends a writer's turn; s.mu is held. The socket's write
// deadline is cleared: left set, its timer would wake a thread of an idle
// controller writeWait after every pong (docs/benchmarks.md, "Idle CPU:
// the runtime's monitor").
func (s *session) stopWriting() {
	s.fc.SetWriteDeadline(time.Time{})
	s.writing = false
}

// writeSome writes queued control frames (pongs, mostly) while the
// socket has room for them, for a caller that must not wait: the idle
// poller's goroutine. Whatever is left goes to a writer goroutine. s.writing
// is set.
func (s *session) writeSome() {
	for {
		s.mu.Lock()
		if s.closed || len(s.ctrl) == 0 && len(s.live) == 0 && len(s.media) == 0 {
			s.stopWriting()
			s.mu.Unlock()
			return
		}
		if len(s.ctrl) == 0 || !s.fc.writable() {
			s.mu.Unlock()
			go s.writer()
			return
		}
		msg := pop(&s.ctrl)
		s.mu.Unlock()
		s.write(websocket.TextMessage, msg)
	}
}

// next takes the frame to write next, nil when there is none; s.mu is held.
func (s *session) next() ([]byte, int) {
	switch {
	case s.closed:
		return nil, 0
	case len(s.ctrl) > 0:
		return pop(&s.ctrl), websocket.TextMessage
	case len(s.live) > 0:
		return pop(&s.live), websocket.BinaryMessage
	case len(s.media) > 0:
		s.wake.Broadcast() // room for the media sender
		return pop(&s.media), websocket.BinaryMessage
	}
	return nil, 0
}

// pop takes the first item of a queue; an emptied queue lets go of its array.
func pop[T any](q *[]T) T {
	v := (*q)[0]
	if len(*q) == 1 {
		*q = nil
	} else {
		var zero T
		(*q)[0] = zero
		*q = (*q)[1:]
	}
	return v
}

// online records the connection and sends what the terminal missed. What
// it writes goes through the shared batches (reportBatcher) without
// waiting: in a reconnect storm, thousands of terminals each waiting for
// transactions of their own made coming online the storm's bottleneck.
func (s *session) online(ctx context.Context, t store.Terminal) {
	now := s.c.now()
	s.c.hub.reports.heartbeat(ctx, t.ID, store.Status{State: protocol.StateIdle, LastSeen: now},
		store.HeartbeatPoint{}, func(_ bool, err error) { // the history starts with its first heartbeat
			if err != nil {
				s.log.Error("record terminal online", "err", err)
			}
		})
	s.c.events.Publish(events.Event{Kind: events.KindTerminal, Data: map[string]any{"id": t.ID, "state": protocol.StateIdle, "online": true}})
	s.c.hub.reports.trusts(ctx, t.ID, s.kids)
	if msg := s.c.keysFor(t.ID, s.kids); msg != nil && len(s.kids) > 0 {
		s.send(msg) // before anything signed by a key it may not trust yet
	}
	out, err := s.c.store.OutstandingFor(ctx, t.ID, now)
	if err != nil {
		s.log.Error("list outstanding commands", "err", err)
	}
	for _, o := range out {
		s.c.deliver(ctx, s, t.ID, o.AlertID, o.Signed, o.State)
	}
	s.c.scheduleOnline(ctx, s) // after any alert: those are urgent, this is days ahead
}

// sendMedia streams a media file from an offset in its pieces (chunks), the
// pieces after the first at the pace of the audio when the terminal plays
// it as it comes and others are starting too (pacing.go).
func (s *session) sendMedia(ctx context.Context, g protocol.MediaGet) {
	fail := func(reason string) {
		s.sendFrame(protocol.TypeMediaErr, protocol.MediaErr{SHA256: g.SHA256, Reason: reason})
	}
	if !protocol.ValidSHA256(g.SHA256) {
		fail("bad sha256")
		return
	}
	f, ok := s.c.media.cached(g.SHA256)
	if !ok {
		m, err := s.c.store.MediaByHash(ctx, g.SHA256)
		if err != nil {
			fail("unknown media")
			return
		}
		f.m = m.Media
		if f.chunks, err = s.c.media.chunkFrames(m.Media); err != nil {
			s.log.Error("read media", "sha256", g.SHA256, "err", err)
			fail("media file unreadable on the controller")
			return
		}
	}
	m, frames := f.m, f.chunks
	first, firstLen, ok := m.ChunkAt(g.Offset)
	if !ok {
		fail(fmt.Sprintf("offset %d is not where a chunk starts inside %d bytes", g.Offset, m.Size))
		return
	}
	// The encoded chunks are shared by every terminal fetching the file.
	var began time.Time
	var lead time.Duration
	for i, ahead := first, int64(0); i < len(frames); ahead, i = ahead+int64(len(frames[i])-protocol.MediaChunkHeader), i+1 {
		if g.Stream && i > first { // pacing.go
			s.c.media.pacer.wait(began.Add(paceAfter(m, ahead, lead)), nil)
		}
		s.mu.Lock()
		for len(s.media) >= mediaQueue && !s.closed {
			s.wake.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return
		}
		s.media = append(s.media, frames[i])
		s.startWriter()
		s.mu.Unlock()
		if g.Stream && i == first {
			began = time.Now()
			s.c.media.pacer.started()
			lead = s.c.media.pacer.leadFor(m, firstLen)
		}
	}
}
