package controller

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/controller/events"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// upgrader takes its write buffers from a pool: an idle terminal's
// connection then holds none (16 KB each at 15,000 terminals is 240 MB).
var upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 16 << 10, WriteBufferPool: &sync.Pool{}}

// session is one terminal's live connection. Every write goes through the
// writer goroutine: control frames through a bounded queue that never
// blocks the caller, media through its own queue that the media sender
// fills at the pace of the link.
type session struct {
	c          *Controller
	conn       *websocket.Conn
	terminalID string
	areaCode   string
	remote     string
	log        *slog.Logger
	kids       []string            // issuing keys the terminal said it trusts
	ctrl       chan []byte         // text frames
	media      chan []byte         // binary media chunks
	live       chan []byte         // binary live speech frames (live.go): never behind media
	persist    chan protocol.Frame // heartbeats and reports, stored in order by persistLoop
	done       chan struct{}
	once       sync.Once
}

const (
	persistQueue = 64
	controlQueue = 256
	mediaQueue   = 4
	writeWait    = 10 * time.Second
	helloWait    = 10 * time.Second
)

// serveTerminal is the /v1/terminal endpoint.
func (c *Controller) serveTerminal(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader already answered
	}
	c.hub.running.Add(1)
	defer c.hub.running.Done()
	conn.SetReadLimit(protocol.MaxFrameBytes)
	s := &session{c: c, conn: conn, remote: r.RemoteAddr, log: c.log.With("remote", r.RemoteAddr),
		ctrl: make(chan []byte, controlQueue), media: make(chan []byte, mediaQueue), done: make(chan struct{}),
		live: make(chan []byte, liveQueue), persist: make(chan protocol.Frame, persistQueue)}
	defer conn.Close()
	t, err := s.handshake(r.Context())
	if err != nil {
		s.log.Info("terminal refused", "err", err)
		return
	}
	s.terminalID, s.areaCode = t.ID, t.AreaCode
	s.log = s.log.With("terminal", t.ID)
	go s.writer()
	persisted := make(chan struct{})
	go func() { defer close(persisted); s.persistLoop(r.Context()) }()
	c.hub.attach(s)
	s.online(r.Context(), t)
	s.readLoop(r.Context())
	s.close()
	<-persisted // its last heartbeat is stored before the terminal is marked offline
	if c.hub.detach(s) {
		c.setOffline(t.ID)
	}
}

func (s *session) close() { s.once.Do(func() { close(s.done); s.conn.Close() }) }

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
func (s *session) send(msg []byte) bool {
	select { // a select picks at random among ready cases: check the end first
	case <-s.done:
		return false
	default:
	}
	select {
	case s.ctrl <- msg:
		return true
	case <-s.done:
		return false
	default:
		s.c.hub.slow.Add(1)
		s.log.Warn("terminal send queue full; disconnecting it")
		s.close()
		return false
	}
}

func (s *session) sendFrame(t protocol.Type, body any) bool {
	msg, err := protocol.Encode(t, body)
	if err != nil {
		s.log.Error("encode frame", "type", t, "err", err)
		return false
	}
	return s.send(msg)
}

func (s *session) writer() {
	for {
		var msg []byte
		kind := websocket.TextMessage
		select {
		case <-s.done:
			return
		case msg = <-s.ctrl:
		case msg = <-s.live:
			kind = websocket.BinaryMessage
		default:
			select {
			case <-s.done:
				return
			case msg = <-s.ctrl:
			case msg = <-s.live:
				kind = websocket.BinaryMessage
			case msg = <-s.media:
				kind = websocket.BinaryMessage
			}
		}
		s.conn.SetWriteDeadline(time.Now().Add(writeWait))
		if err := s.conn.WriteMessage(kind, msg); err != nil {
			s.close()
			return
		}
		s.c.hub.sent.Add(int64(len(msg)))
	}
}

// online records the connection and sends what the terminal missed.
func (s *session) online(ctx context.Context, t store.Terminal) {
	now := s.c.now()
	if err := s.c.store.SetStatus(ctx, t.ID, store.Status{State: protocol.StateIdle, LastSeen: now}); err != nil {
		s.log.Error("record terminal online", "err", err)
	}
	s.c.events.Publish(events.Event{Kind: events.KindTerminal, Data: map[string]any{"id": t.ID, "state": protocol.StateIdle, "online": true}})
	if err := s.c.store.SetTerminalKeys(ctx, t.ID, s.kids); err != nil {
		s.log.Error("record terminal keys", "err", err)
	}
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

func (s *session) readLoop(ctx context.Context) {
	grace := time.Duration(3*s.c.cfg.HeartbeatSeconds) * time.Second
	for {
		s.conn.SetReadDeadline(time.Now().Add(grace))
		kind, msg, err := s.conn.ReadMessage()
		if err != nil {
			return
		}
		if kind != websocket.TextMessage {
			s.log.Warn("terminal sent a binary message; closing")
			return
		}
		f, err := protocol.Decode(msg)
		if err != nil {
			s.log.Warn("bad frame from terminal; closing", "err", err)
			return
		}
		if err := s.handle(ctx, f); err != nil {
			s.log.Warn("bad message from terminal; closing", "type", f.Type, "err", err)
			return
		}
	}
}

// handle acts on one frame from the terminal. Heartbeats and reports
// wait for the database: they go to persistLoop, so that pings and media
// requests behind them are answered at once.
func (s *session) handle(ctx context.Context, f protocol.Frame) error {
	switch f.Type {
	case protocol.TypeHeartbeat, protocol.TypeReport:
		select {
		case s.persist <- f:
		case <-s.done:
		}
		return nil
	}
	return s.act(ctx, f)
}

// persistLoop stores the session's heartbeats and reports in order; a bad
// one ends the session.
func (s *session) persistLoop(ctx context.Context) {
	for {
		select {
		case f := <-s.persist:
			if err := s.act(ctx, f); err != nil {
				s.log.Warn("bad message from terminal; closing", "type", f.Type, "err", err)
				s.close()
				return
			}
		case <-s.done:
			return
		}
	}
}

func (s *session) act(ctx context.Context, f protocol.Frame) error {
	switch f.Type {
	case protocol.TypeHeartbeat:
		var hb protocol.Heartbeat
		if err := protocol.DecodeBody(f, &hb); err != nil {
			return err
		}
		return s.c.heartbeat(ctx, s.terminalID, hb, f.Body)
	case protocol.TypeReport:
		var r protocol.Report
		if err := protocol.DecodeBody(f, &r); err != nil {
			return err
		}
		if err := s.c.report(ctx, s.terminalID, r); err != nil {
			return err
		}
		s.sendFrame(protocol.TypeAck, protocol.Ack{Seq: r.Seq})
	case protocol.TypePing:
		var p protocol.Ping
		if err := protocol.DecodeBody(f, &p); err != nil {
			return err
		}
		s.sendFrame(protocol.TypePong, protocol.Pong{TerminalTime: p.TerminalTime, ServerTime: s.c.now()})
	case protocol.TypeMediaGet:
		var g protocol.MediaGet
		if err := protocol.DecodeBody(f, &g); err != nil {
			return err
		}
		go s.sendMedia(ctx, g)
	default:
		s.log.Debug("ignoring unknown message type", "type", f.Type)
	}
	return nil
}

// heartbeat records a terminal's status and announces changes.
func (c *Controller) heartbeat(ctx context.Context, id string, hb protocol.Heartbeat, raw json.RawMessage) error {
	switch hb.State {
	case protocol.StateIdle, protocol.StatePlaying, protocol.StateFault:
	default:
		return fmt.Errorf("heartbeat state %q is unknown", hb.State)
	}
	vol := hb.Volume
	relay, audio := hb.RelayOK, hb.AudioOK
	err := c.store.SetStatus(ctx, id, store.Status{State: hb.State, LastSeen: c.now(), Volume: &vol, Firmware: hb.Firmware,
		RelayOK: &relay, AudioOK: &audio, Heartbeat: raw})
	if err != nil {
		return err
	}
	c.recordHeartbeat(ctx, id, &hb)
	c.events.Publish(events.Event{Kind: events.KindTerminal, Data: map[string]any{"id": id, "state": hb.State, "online": true, "heartbeat": hb}})
	return nil
}

// report stores a spooled report once and announces what it changed.
func (c *Controller) report(ctx context.Context, id string, r protocol.Report) error {
	if r.Seq == 0 {
		return errors.New("report without a sequence number")
	}
	ap, err := c.hub.reports.apply(ctx, id, r)
	if err != nil {
		return err
	}
	if ap.Duplicate {
		return nil
	}
	if ap.Delivery != nil {
		c.publishDelivery(*ap.Delivery)
	}
	c.keysConfirmed(ctx, id, r.Receipt)
	c.playerReported(id, r)
	if ap.Fault != nil {
		c.events.Publish(events.Event{Kind: events.KindFault, Data: map[string]any{"terminal_id": id, "fault": ap.Fault}})
	}
	if r.Rejection != nil {
		c.log.Warn("terminal rejected a command", "terminal", id, "reason", r.Rejection.Reason, "kid", r.Rejection.KeyID,
			"controller", r.Rejection.Controller, "detail", r.Rejection.Detail)
		c.events.Publish(events.Event{Kind: events.KindReport, Data: map[string]any{"terminal_id": id, "report": r}})
	}
	return nil
}

func (c *Controller) setOffline(id string) {
	if err := c.store.SetStatus(context.Background(), id, store.Status{State: "offline", LastSeen: c.now()}); err != nil {
		c.log.Error("record terminal offline", "terminal", id, "err", err)
	}
	c.recordHeartbeat(context.Background(), id, nil)
	c.events.Publish(events.Event{Kind: events.KindTerminal, Data: map[string]any{"id": id, "state": "offline", "online": false}})
}

// sendMedia streams a media file from an offset in chunk-size pieces.
func (s *session) sendMedia(ctx context.Context, g protocol.MediaGet) {
	fail := func(reason string) {
		s.sendFrame(protocol.TypeMediaErr, protocol.MediaErr{SHA256: g.SHA256, Reason: reason})
	}
	if !protocol.ValidSHA256(g.SHA256) {
		fail("bad sha256")
		return
	}
	m, err := s.c.store.MediaByHash(ctx, g.SHA256)
	if err != nil {
		fail("unknown media")
		return
	}
	if g.Offset < 0 || g.Offset >= m.Size || g.Offset%int64(m.ChunkSize) != 0 {
		fail(fmt.Sprintf("offset %d is not a chunk boundary inside %d bytes", g.Offset, m.Size))
		return
	}
	frames, err := s.c.media.chunkFrames(m.Media)
	if err != nil {
		s.log.Error("read media", "sha256", g.SHA256, "err", err)
		fail("media file unreadable on the controller")
		return
	}
	// The encoded chunks are shared by every terminal fetching the file.
	for i := g.Offset / int64(m.ChunkSize); i < int64(len(frames)); i++ {
		select {
		case s.media <- frames[i]:
		case <-s.done:
			return
		}
	}
}
