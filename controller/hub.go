package controller

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"syscall"
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
	later     atomic.Int64  // the Retry-After asked of a terminal turned away, in seconds (pace)
}

// pace sets, every second, how long a terminal turned away is asked to
// stay away: the terminals still away over the rate at which the
// controller takes them, so that they come back about as fast as they can
// be taken (a terminal comes back after ½ to 1½ times what it is asked).
// Asked too little, thousands come back every few seconds to be turned
// away again, which costs the controller the time it needs to take them;
// asked too much, it sits idle while they wait. The rate is measured in
// the seconds in which some were turned away (the controller was taking
// all it could); until then it is taken as 1,000 a second (what a small
// server took in a 5,000-terminal storm), since guessing low sends the
// first wave of a storm away for a minute.
func (h *hub) pace(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	rate, fleet := 1000.0, 0
	var joined, busy uint64
	for n := 0; ; n++ {
		if n%10 == 0 {
			if f, err := h.c.store.Fleet(ctx); err == nil {
				fleet = f
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		j, b := h.joined.Load(), h.busy.Load()
		if b > busy { // saturated: what was taken is what can be
			rate = max(rate/2+float64(j-joined)/2, 10)
		}
		joined, busy = j, b
		h.later.Store(stayAway(fleet-h.online()-int(h.joinQueue.Load()), rate))
	}
}

// stayAway is how long, in seconds, to ask a terminal turned away to stay
// away when away terminals are to be taken at rate a second: at least 1 s,
// at most a minute.
func stayAway(away int, rate float64) int64 {
	return int64(min(max(math.Ceil(float64(away)/rate), 1), 60))
}

// Terminals come online a few at a time. Between its hello and being
// online a terminal costs the controller its signature check and a few
// database reads; in a reconnect storm, thousands doing that at once
// each took longer than the terminal waits for its welcome, so every one
// gave up, reconnected and started over, and the storm never settled. So
// at most maxJoining are taken at a time, at most maxJoinQueue wait for
// their turn, each at most joinTimeout (well within the terminal's 10 s wait
// for the welcome), and any more connecting are asked to come back later
// (503 before the upgrade; a close with "try again later" to one that
// waited too long). A token is taken only after the hello has come: a
// client that connects and says nothing holds none.
const (
	maxJoining   = 32
	maxJoinQueue = 512
	joinTimeout  = 5 * time.Second
)

// errBusy ends a handshake that waited too long for its turn.
var errBusy = errors.New("too many terminals coming online; asked to come back later")

// admit waits for a turn to come online, and returns what gives it back.
func (h *hub) admit(ctx context.Context) (func(), error) {
	h.joinQueue.Add(1)
	t := time.NewTimer(h.joinWait)
	defer t.Stop()
	select {
	case h.joining <- struct{}{}:
		h.joined.Add(1)
		return sync.OnceFunc(func() { <-h.joining; h.joinQueue.Add(-1) }), nil
	case <-t.C:
	case <-ctx.Done():
	}
	h.joinQueue.Add(-1)
	h.busy.Add(1)
	return func() {}, errBusy
}

// fdReserve is how many of the process's file descriptors are kept from
// terminal connections: the database's connections, media files, the API's
// clients and the log. Without it a reconnect storm near the limit left
// SQLite unable to open its files ("unable to open database file").
const fdReserve = 1024

// connLimit is how many terminal connections the process can hold: its
// open-file limit (which Go raises to the hard limit at start) less the
// reserve, and at least 64.
func connLimit() int64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<30 {
		return 1 << 30
	}
	return max(int64(l.Cur)-fdReserve, 64)
}

// BytesSent is how many bytes of messages the controller has written to
// terminals since it started (benchmarks: bytes per terminal per alert).
func (c *Controller) BytesSent() int64 { return c.hub.sent.Load() }

func newHub(c *Controller) *hub {
	h := &hub{c: c, sessions: map[string]*session{}, reports: &reportBatcher{c: c}, maxConns: connLimit(),
		joining: make(chan struct{}, maxJoining), joinWait: joinTimeout}
	h.later.Store(5)
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
	h.closing.Store(true)
	h.mu.RLock()
	all := make([]*session, 0, len(h.sessions))
	for _, s := range h.sessions {
		all = append(all, s)
	}
	h.mu.RUnlock()
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
	for i, id := range targets {
		ds[i] = store.Delivery{AlertID: alertID, TerminalID: id, State: protocol.DeliveryOffline, UpdatedAt: now}
		if s := c.hub.get(id); s != nil && s.send(msg) {
			ds[i].State = protocol.DeliverySent
		}
	}
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
