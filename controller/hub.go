package controller

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"dalaba/controller/store"
	"dalaba/protocol"
)

// hub holds the live terminal sessions by terminal id.
type hub struct {
	c        *Controller
	mu       sync.RWMutex
	sessions map[string]*session
	running  sync.WaitGroup // live terminal connections, so shutdown can wait for their last writes
	replaced atomic.Uint64  // connections closed because the same terminal connected again
	slow     atomic.Uint64  // connections closed because their send queue overflowed
	reports  *reportBatcher // stores the sessions' reports in shared transactions
	sent     atomic.Int64   // bytes of WebSocket messages written to terminals
	conns    atomic.Int64   // terminal connections open, in the handshake or online
	maxConns int64          // above it a terminal is asked to come back later (connLimit)
	turned   atomic.Uint64  // connections turned away at maxConns
	closing  atomic.Bool    // the controller is stopping: no terminal comes online any more

	joining   chan struct{} // a token for each terminal between its hello and being online (admit)
	joinQueue atomic.Int64  // terminals that sent their hello and hold a token or wait for one
	busy      atomic.Uint64 // terminals turned away because too many were coming online
	joinWait  time.Duration // how long a terminal waits for its turn (joinTimeout; tests shorten it)
	joined    atomic.Uint64 // terminals given a turn, ever
	pacer     pacer         // when each terminal turned away is to come back
}

// BytesSent is how many bytes of messages the controller has written to
// terminals since it started (benchmarks: bytes per terminal per alert).
func (c *Controller) BytesSent() int64 { return c.hub.sent.Load() }

func newHub(c *Controller) *hub {
	h := &hub{c: c, sessions: map[string]*session{}, reports: newReportBatcher(c), maxConns: connLimit(),
		joining: make(chan struct{}, maxJoining), joinWait: joinTimeout, pacer: pacer{rate: firstRate}}
	return h
}

// attach registers s, closing an older session of the same terminal: the
// newest connection wins, since a terminal that lost its link reconnects
// before the controller notices the old one is dead. Once the controller
// is stopping it registers none and reports false.
func (h *hub) attach(s *session) bool {
	h.mu.Lock()
	if h.closing.Load() {
		h.mu.Unlock()
		return false
	}
	old := h.sessions[s.terminalID]
	h.sessions[s.terminalID] = s
	h.mu.Unlock()
	if old != nil {
		h.replaced.Add(1)
		h.c.log.Warn("terminal connected again; closing its older connection", "terminal", s.terminalID,
			"old_addr", old.remote, "new_addr", s.remote)
		old.close()
	}
	return true
}

// enter counts a new terminal connection in running, unless the
// controller is stopping. A stop waits on running after closeAll, so no
// connection may be counted once it waits: a WebSocket's handler runs on
// after the upgrade, which the HTTP server's Shutdown does not wait for.
func (h *hub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing.Load() {
		return false
	}
	h.running.Add(1)
	return true
}

// detach removes s if it is still the terminal's current session.
func (h *hub) detach(s *session) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.terminalID] == s {
		delete(h.sessions, s.terminalID)
		return true
	}
	return false
}

func (h *hub) get(id string) *session {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.sessions[id]
}

// online counts connected terminals.
func (h *hub) online() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.sessions)
}

// closeSilent closes, every grace/6, the sessions whose terminal has sent
// nothing for grace: a parked session has no read deadline to do it.
func (h *hub) closeSilent(ctx context.Context, grace time.Duration) {
	t := time.NewTicker(grace / 6)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.closeSilentSince(now.Add(-grace))
			h.nudgeQuietSince(now.Add(-grace / 2))
		}
	}
}

// quietSince lists the sessions that have read nothing since t.
func (h *hub) quietSince(t time.Time) []*session {
	var quiet []*session
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, s := range h.sessions {
		if s.lastRead.Load() < t.UnixNano() {
			quiet = append(quiet, s)
		}
	}
	return quiet
}

// nudgeQuietSince wakes the parked sessions that have read nothing since
// t, a heartbeat and a half ago: a reader looks at the socket without
// waiting. It should find nothing (the terminal sends every heartbeat,
// and its frames wake the session); what it finds is logged, so that a
// missed wake-up costs at most this delay and is seen.
func (h *hub) nudgeQuietSince(t time.Time) {
	for _, s := range h.quietSince(t) {
		s.mu.Lock()
		parked := !s.reading && !s.closed
		s.nudged = parked
		s.mu.Unlock()
		if parked {
			s.readable()
		}
	}
}

// closeSilentSince closes the sessions that have read nothing since t.
func (h *hub) closeSilentSince(t time.Time) {
	for _, s := range h.quietSince(t) {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if !closed {
			s.log.Info("terminal silent; closing its connection", "since", t)
			s.close()
		}
	}
}

// closeAll closes every session, and keeps any more from coming online.
func (h *hub) closeAll() {
	h.mu.Lock() // after it, enter counts no connection in running
	h.closing.Store(true)
	all := make([]*session, 0, len(h.sessions))
	for _, s := range h.sessions {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.close()
	}
}

// deliverAll sends a signed alert to each target that is connected, then
// records every delivery as sent (or offline) in one transaction: the
// frames go out first, so the last terminal does not wait for thousands of
// writes to the database before its command leaves.
func (c *Controller) deliverAll(ctx context.Context, alertID string, signed []byte, targets []string) {
	msg, err := json.Marshal(protocol.Frame{Type: protocol.TypeCommand, Body: signed})
	if err != nil {
		c.log.Error("encode alert command", "alert", alertID, "err", err)
		return
	}
	now := c.now()
	ds := make([]store.Delivery, len(targets))
	sent := 0
	for i, id := range targets {
		ds[i] = store.Delivery{AlertID: alertID, TerminalID: id, State: protocol.DeliveryOffline, UpdatedAt: now}
		if s := c.hub.get(id); s != nil && s.send(msg) {
			ds[i].State = protocol.DeliverySent
			sent++
		}
	}
	c.media.pacer.expect(sent) // they may all fetch its files at once (pacing.go)
	moved, errs := c.store.SetDeliveries(ctx, ds)
	if len(errs) > 0 && errs[0] != nil { // one transaction: all or none
		c.log.Error("record deliveries", "alert", alertID, "err", errs[0])
	}
	for i, d := range ds {
		if moved[i] {
			c.publishDelivery(d)
		}
	}
}
