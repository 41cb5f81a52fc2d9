package controller

// What a session does with the frames its terminal sends: the reader
// queues them, handleLoop decodes and acts on them in order; reports go
// to the report store and heartbeats to the heartbeat batch
// (reportbatch.go).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/controller/events"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// readFrames reads the terminal's frames into the inbox, for handleLoop.
// Once the WebSocket library has returned every byte read from the
// socket, and the socket held no more than was read (frameConn.took),
// the reader parks: it handles the inbox itself and ends, and the
// idle poller has the session read again when the terminal sends
// (idlepoll, wakeRead). A session that is not polled (TLS, or no epoll)
// keeps its reader. A full inbox holds the reader back. A read that fails
// ends the session.
func (s *session) readFrames() {
	grace := time.Duration(3*s.c.cfg.HeartbeatSeconds) * time.Second
	for {
		s.conn.SetReadDeadline(time.Now().Add(grace))
		kind, msg, err := s.conn.ReadMessage()
		if err != nil {
			s.end()
			return
		}
		s.lastRead.Store(time.Now().UnixNano())
		drained := s.fc.took()
		if kind != websocket.TextMessage {
			s.log.Warn("terminal sent a binary message; closing")
			s.end()
			return
		}
		s.mu.Lock()
		for len(s.inbox) >= inboxQueue && !s.closed {
			s.wake.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			s.end()
			return
		}
		s.inbox = append(s.inbox, msg)
		park := drained && s.pollID >= 0 // nothing read and not taken
		handle := !s.handling
		s.handling = true
		s.mu.Unlock()
		switch {
		case park && handle: // on this goroutine, which is ending anyway
			s.handleLoop(s.ctx, true, time.Time{})
		case handle:
			go s.handleLoop(s.ctx, true, time.Time{})
		}
		if park {
			s.conn.SetReadDeadline(time.Time{}) // a parked session has none: its timer would wake a thread
			s.park()
			return
		}
	}
}

// wakeRead reads what a woken session's socket holds, without waiting, on
// the caller's goroutine (the idle poller's, or the hub's when it nudges).
// The news may be of bytes taken already: then the session parks again
// at once. Whole messages that nothing else of the session is busy with
// are answered here (answer); otherwise a reader goes on from what was
// read.
func (s *session) wakeRead() {
	ready := s.fc.prime()
	s.mu.Lock()
	nudged := s.nudged
	s.nudged = false
	s.mu.Unlock()
	if nudged && ready {
		s.log.Warn("a parked session had data that woke no reader; read now")
	}
	switch {
	case !ready:
		s.park()
	case !s.answer():
		readers.take(s)
	}
}

// answer reads and acts on the messages prime read, on the calling
// goroutine, when nothing of it can wait: what was read is whole data
// messages (no control frame, whose handler writes), and no handler or
// report store of the session runs, so no queue they go to is full.
// Replies are written here only while the socket has room (writeSome).
// This is how an idle fleet's heartbeats are answered: by the poller's
// goroutine, without waking another thread for a reader
// (docs/benchmarks.md, "Idle CPU: the runtime's monitor"). It reports
// false, having taken nothing, when a reader must go on instead.
func (s *session) answer() bool {
	n := s.fc.whole()
	if n == 0 || n > inboxQueue {
		return false
	}
	s.mu.Lock()
	quiet := !s.closed && !s.handling && !s.persisting && len(s.inbox) == 0
	s.handling = s.handling || quiet
	s.mu.Unlock()
	if !quiet {
		return false
	}
	var err error
	for range n {
		var kind int
		var msg []byte
		kind, msg, err = s.conn.ReadMessage() // from what prime read: it does not wait
		if err == nil && kind != websocket.TextMessage {
			s.log.Warn("terminal sent a binary message; closing")
			err = errors.New("binary message")
		}
		if err != nil {
			break
		}
		s.lastRead.Store(time.Now().UnixNano())
		s.fc.took()
		s.mu.Lock()
		s.inbox = append(s.inbox, msg)
		s.mu.Unlock()
	}
	s.handleLoop(s.ctx, false, s.fc.received)
	if err != nil {
		go s.end()
	} else {
		s.park()
	}
	return true
}

// park ends the reader until the idle poller has news; the session ends
// if it was closed meanwhile. News that came while the reader ran may be
// of what it read, or of what came after its last read: the session reads
// again to see.
func (s *session) park() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		go s.end() // it waits for the session's handlers; the caller may be the poller
		return
	}
	again := s.pending
	s.reading, s.pending = false, false
	s.mu.Unlock()
	if s.fc.sock != nil {
		s.fc.sock.detach() // out of Go's poller: the idle poller alone watches it now
	}
	if again {
		s.readable()
	}
}

// readable is the idle poller's news that the socket has data (or was
// hung up): a parked session reads (wakeRead), and a reading one is told.
func (s *session) readable() {
	s.mu.Lock()
	if s.reading {
		s.pending = true
		s.mu.Unlock()
		return
	}
	s.reading = true
	s.mu.Unlock()
	s.wakeRead()
}

// readers read woken sessions. A reader outlives the sessions it reads: a
// goroutine started for each wake-up grew its stack anew each time to
// decode and act on the frame, a tenth of an idle fleet's CPU
// (docs/benchmarks.md, "Idle fleet"). The reader that went idle last is
// given the next session, so that as many stay as the wake-ups keep busy;
// the others end readerLinger after their last session.
var readers readerPool

const readerLinger = 10 * time.Second

type readerPool struct {
	mu   sync.Mutex
	idle []chan *session // each idle reader's, the latest idle last
}

// take gives s to the reader that went idle last, or to a new one.
func (p *readerPool) take(s *session) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		next := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		next <- s // buffered: never waits
		return
	}
	p.mu.Unlock()
	go p.read(s)
}

func (p *readerPool) read(s *session) {
	next := make(chan *session, 1)
	linger := time.NewTimer(readerLinger)
	defer linger.Stop()
	for {
		s.readFrames()
		p.mu.Lock()
		p.idle = append(p.idle, next)
		p.mu.Unlock()
		linger.Reset(readerLinger)
		select {
		case s = <-next:
			continue
		case <-linger.C:
		}
		p.mu.Lock()
		if i := slices.Index(p.idle, next); i >= 0 { // not taken meanwhile: end
			p.idle = slices.Delete(p.idle, i, i+1)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		s = <-next // taken as the timer fired: its session is on its way
	}
}

// handleLoop decodes and acts on the inbox's frames in order, and ends
// when none is left; a bad frame ends the session. Then it writes the
// replies queued, if no writer runs, on this goroutine, which has nothing
// else to do: all of them if it may wait, else what writeSome writes.
func (s *session) handleLoop(ctx context.Context, mayWait bool, received time.Time) {
	for {
		s.mu.Lock()
		if s.closed || len(s.inbox) == 0 {
			s.handling = false
			s.wake.Broadcast()
			write := !s.closed && !s.writing && len(s.ctrl) > 0 // replies queued
			s.writing = s.writing || write
			s.mu.Unlock()
			switch {
			case write && mayWait:
				s.writer()
			case write:
				s.writeSome()
			}
			return
		}
		msg := pop(&s.inbox)
		s.wake.Broadcast() // room for the reader
		s.mu.Unlock()
		f, err := protocol.Decode(msg)
		if err == nil {
			err = s.handle(ctx, f, received)
		}
		if err != nil {
			s.log.Warn("bad message from terminal; closing", "type", f.Type, "err", err)
			s.close()
		}
	}
}

// handle acts on one frame from the terminal. Reports wait for the
// database: they are queued for the report store (reportbatch.go), so that
// pings and media requests behind them are answered at once. A full report
// queue holds the inbox back.
func (s *session) handle(ctx context.Context, f protocol.Frame, received time.Time) error {
	if f.Type != protocol.TypeReport {
		return s.act(ctx, f, received)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.reports) >= reportQueue && !s.closed {
		s.c.hub.reports.queueFull()
		s.wake.Wait()
	}
	if !s.closed {
		s.reports = append(s.reports, f)
		if !s.persisting {
			s.persisting = true
			s.c.hub.reports.queue(s)
		}
	}
	return nil
}

func (s *session) act(ctx context.Context, f protocol.Frame, received time.Time) error {
	switch f.Type {
	case protocol.TypeHeartbeat:
		hb, err := protocol.DecodeHeartbeat(f)
		if err != nil {
			return err
		}
		if hb.TerminalTime != nil { // a ping too: answered before anything else is done
			s.pong(*hb.TerminalTime, received)
		}
		return s.c.heartbeat(ctx, s.terminalID, hb, f.Body)
	case protocol.TypePing:
		var p protocol.Ping
		if err := protocol.DecodeBody(f, &p); err != nil {
			return err
		}
		s.pong(p.TerminalTime, received)
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

// heartbeat queues a terminal's status and history point for storing and
// announces them once stored. The session does not wait: a heartbeat is not
// acknowledged, and what follows it from the terminal (its reports among
// them) need not wait half a second for the next batch of heartbeats.
func (c *Controller) heartbeat(ctx context.Context, id string, hb protocol.Heartbeat, raw json.RawMessage) error {
	switch hb.State {
	case protocol.StateIdle, protocol.StatePlaying, protocol.StateFault:
	default:
		return fmt.Errorf("heartbeat state %q is unknown", hb.State)
	}
	v := &struct { // the status's three pointers, in one allocation
		volume       int
		relay, audio bool
	}{hb.Volume, hb.RelayOK, hb.AudioOK}
	c.hub.reports.heartbeat(ctx, id, store.Status{State: hb.State, LastSeen: c.now(), Volume: &v.volume, Firmware: hb.Firmware,
		RelayOK: &v.relay, AudioOK: &v.audio, Heartbeat: raw}, heartbeatPoint(c.now(), &hb), func(_ bool, err error) {
		if err != nil {
			c.log.Error("record heartbeat", "terminal", id, "err", err)
			return
		}
		if c.events.Listening() { // the event is built only for someone (an idle fleet's every heartbeat)
			c.events.Publish(events.Event{Kind: events.KindTerminal, Data: map[string]any{"id": id, "state": hb.State, "online": true, "heartbeat": hb}})
		}
	})
	return nil
}

// reported announces what a stored report changed.
func (c *Controller) reported(ctx context.Context, id string, r protocol.Report, ap store.Applied) {
	if ap.Duplicate {
		return
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
		level := slog.LevelWarn
		if r.Rejection.Reason == protocol.RejectReplay { // a copy of one it has: resent on reconnecting
			level = slog.LevelInfo
		}
		c.log.Log(context.Background(), level, "terminal rejected a command", "terminal", id, "reason", r.Rejection.Reason, "kid", r.Rejection.KeyID,
			"controller", r.Rejection.Controller, "detail", r.Rejection.Detail)
		c.events.Publish(events.Event{Kind: events.KindReport, Data: map[string]any{"terminal_id": id, "report": r}})
	}
}

// setOffline records the terminal offline, its status and the offline
// point of its history together, after every heartbeat it sent (they are
// queued in order), and waits for it.
func (c *Controller) setOffline(id string) {
	done := make(chan error, 1)
	c.hub.reports.heartbeat(context.Background(), id, store.Status{State: "offline", LastSeen: c.now()}, heartbeatPoint(c.now(), nil),
		func(_ bool, err error) { done <- err })
	if err := <-done; err != nil {
		c.log.Error("record terminal offline", "terminal", id, "err", err)
	}
	c.events.Publish(events.Event{Kind: events.KindTerminal, Data: map[string]any{"id": id, "state": "offline", "online": false}})
}
