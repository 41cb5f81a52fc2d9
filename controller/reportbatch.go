package controller

import (
	"context"
	"errors"
	"sync"
	"time"

	"dalaba/controller/store"
	"dalaba/protocol"
)

// maxReportBatch bounds the reports (and heartbeats) applied in one
// transaction.
const maxReportBatch = 1000

// heartbeatGather is how long a heartbeat waits for others to share its
// transaction. Heartbeats come steadily (15,000 terminals every 30 s is
// 500 a second) rather than all at once as receipts do: without the wait
// each would have a transaction of its own, and with a short one a few
// (docs/benchmarks.md, "Heartbeat history"). Nobody waits for a heartbeat
// to be stored (the terminal gets no acknowledgement; see heartbeat), so
// the wait delays only when the console hears of the change.
const heartbeatGather = 500 * time.Millisecond

// reportBatcher stores the reports, and records the heartbeats, of many
// sessions in shared transactions (group commit), so that with thousands
// of terminals reporting at once a transaction carries hundreds of reports
// instead of one (docs/benchmarks.md, "Receipts").
//
// Reports: a session queues its report frames and, when it is not queued
// already, itself, and goes on. One goroutine, started when a session
// queues itself and none runs, takes every queued session's reports,
// stores them and acknowledges each session's last: a report is
// acknowledged only once stored. During a fan-out it first waits for the
// fan-out to end, at most reportHold, or until a session's queue is full
// (pacing.go). One goroutine for every session: a goroutine of each
// session's own grew its stack anew to decode its reports, in every
// fan-out (docs/benchmarks.md, "One report store").
//
// Heartbeats, key lists and deliveries: the caller queues one and goes
// on; a flush started when none runs stores everything queued.
type reportBatcher struct {
	c *Controller

	mu       sync.Mutex
	sessions []*session    // queued, each once, in the order they queued
	storing  bool          // storeQueued runs
	full     chan struct{} // a session's report queue is full

	heartbeats groupCommit[store.HeartbeatIn, bool]
	deliveries groupCommit[store.Delivery, bool]
	keys       groupCommit[store.TerminalKeys, bool]
}

func newReportBatcher(c *Controller) *reportBatcher {
	return &reportBatcher{c: c, full: make(chan struct{}, 1)}
}

// queue has the reports s has queued stored, and any it queues until they
// are taken. Callers hold s.mu and have set s.persisting, which stays set
// until nothing of s's is left to store (session.stored).
func (b *reportBatcher) queue(s *session) {
	b.mu.Lock()
	b.sessions = append(b.sessions, s)
	start := !b.storing
	b.storing = true
	b.mu.Unlock()
	if start {
		go b.storeQueued()
	}
}

// queueFull cuts a fan-out's hold short: a session's report queue is full,
// and the media requests queued behind its reports are not to be held too.
func (b *reportBatcher) queueFull() {
	select {
	case b.full <- struct{}{}:
	default:
	}
}

// storeQueued stores the queued sessions' reports, round after round,
// and ends when none is queued.
func (b *reportBatcher) storeQueued() {
	for {
		b.c.media.pacer.holdReports(b.full)
		b.mu.Lock()
		ss := b.sessions
		b.sessions = nil
		if len(ss) == 0 {
			b.storing = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		select {
		case <-b.full: // the sessions taken include the full one
		default:
		}
		for len(ss) > 0 {
			ss = b.storeSome(ss)
		}
	}
}

// heldReports are a session's reports taken for storing.
type heldReports struct {
	s   *session
	ins []store.ReportIn // in order; up to a bad one
	bad error            // the report after ins could not be read
}

// storeSome stores the reports of the first sessions of ss, about
// maxReportBatch of them in one transaction (a session's all in it), and
// returns the sessions left.
func (b *reportBatcher) storeSome(ss []*session) []*session {
	var held []heldReports
	var ins []store.ReportIn
	for len(ss) > 0 && (len(ins) < maxReportBatch || len(held) == 0) {
		h := take(ss[0])
		ss = ss[1:]
		held = append(held, h)
		ins = append(ins, h.ins...)
	}
	var aps []store.Applied
	var errs []error
	if len(ins) > 0 {
		aps, errs = b.c.store.ApplyReports(context.Background(), ins, b.c.now())
	}
	for _, h := range held {
		n := len(h.ins)
		h.s.stored(h, aps[:n], errs[:n])
		aps, errs = aps[n:], errs[n:]
	}
	return ss
}

// take takes the reports s has queued, decoded up to the first bad one.
func take(s *session) heldReports {
	s.mu.Lock()
	fs := s.reports
	s.reports = nil
	s.wake.Broadcast() // room for the inbox
	s.mu.Unlock()
	h := heldReports{s: s, ins: make([]store.ReportIn, 0, len(fs))}
	for _, f := range fs {
		r, err := protocol.DecodeReport(f)
		if err == nil && r.Seq == 0 {
			err = errors.New("report without a sequence number")
		}
		if err != nil {
			h.bad = err
			break
		}
		h.ins = append(h.ins, store.ReportIn{TerminalID: s.terminalID, Report: r})
	}
	return h
}

// stored announces what the session's reports changed, acknowledges the
// last one stored (an acknowledgement covers every report up to its
// sequence number: docs/protocol.md), and queues the session again if it
// has queued more meanwhile. A report that is bad, or could not be
// stored, ends the session; those after it go unacknowledged, and the
// terminal sends them again.
func (s *session) stored(h heldReports, aps []store.Applied, errs []error) {
	bad, last := h.bad, uint64(0)
	for i, in := range h.ins {
		if errs[i] != nil {
			bad = errs[i]
			break
		}
		s.c.reported(s.ctx, s.terminalID, in.Report, aps[i])
		last = in.Report.Seq
	}
	if last > 0 {
		s.sendFrame(protocol.TypeAck, protocol.Ack{Seq: last})
	}
	if bad != nil {
		s.log.Warn("bad report from terminal; closing", "err", bad)
		s.close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reports) > 0 && !s.closed {
		s.c.hub.reports.queue(s)
		return
	}
	s.persisting = false
	s.wake.Broadcast()
}

// trusts queues the key ids a terminal said it trusts, to be recorded with
// others' in one transaction (store.SetTerminalKeys) in the order queued,
// and returns at once.
func (b *reportBatcher) trusts(ctx context.Context, id string, kids []string) {
	b.keys.submit(ctx, store.TerminalKeys{TerminalID: id, KeyIDs: kids}, nil, b.c.store.SetTerminalKeys, func(_ bool, err error) {
		if err != nil {
			b.c.log.Error("record terminal keys", "terminal", id, "err", err)
		}
	})
}

// delivered queues a delivery's move, as store.SetDelivery makes it, and
// returns at once; then runs with whether it moved once it is stored.
func (b *reportBatcher) delivered(ctx context.Context, d store.Delivery, then func(bool, error)) {
	b.deliveries.submit(ctx, d, nil, b.c.store.SetDeliveries, then)
}

// gatherHeartbeats waits heartbeatGather for more heartbeats to come, and
// then, during a fan-out, for it to end, at most reportHold more, as
// reports do (pacing.go): a terminal's heartbeat on starting to play is
// one more write per terminal inside the fan-out, and the console shows
// the fan-out's progress from the receipts.
func (b *reportBatcher) gatherHeartbeats() {
	time.Sleep(heartbeatGather)
	b.c.media.pacer.holdReports(nil)
}

// heartbeat queues a terminal's status and a point of its history, to be
// recorded as store.SetStatus and store.AddHeartbeat do, and returns at
// once; done runs when they are stored, with whether the point was
// written. Heartbeats are stored in the order they are queued, so a
// terminal's later status (offline among them, see Controller.setOffline)
// is never overwritten by an earlier one.
func (b *reportBatcher) heartbeat(ctx context.Context, id string, st store.Status, p store.HeartbeatPoint, done func(wrote bool, err error)) {
	b.heartbeats.submit(ctx, store.HeartbeatIn{TerminalID: id, Status: st, Point: p}, b.gatherHeartbeats, b.c.store.ApplyHeartbeats, done)
}

// groupCommit runs the items of concurrent callers through one store
// call, in the order they came.
type groupCommit[In, Out any] struct {
	mu       sync.Mutex
	queue    []queued[In, Out]
	flushing bool
}

type queued[In, Out any] struct {
	in   In
	then func(Out, error) // run by the flush with in's result
}

// submit queues in and returns; then runs with its result once store has
// handled it. When no flush is running, one is started: it first runs
// gather (if not nil), waiting for others, then stores everything queued,
// at most maxReportBatch in one call, until nothing is left.
func (g *groupCommit[In, Out]) submit(ctx context.Context, in In, gather func(), store func(context.Context, []In) ([]Out, []error), then func(Out, error)) {
	g.mu.Lock()
	g.queue = append(g.queue, queued[In, Out]{in: in, then: then})
	lead := !g.flushing
	g.flushing = true
	g.mu.Unlock()
	if !lead {
		return
	}
	go func() {
		if gather != nil {
			gather()
		}
		for g.flushOnce(context.WithoutCancel(ctx), store) {
		}
	}()
}

// flushOnce stores one batch. It reports whether more is queued; when not,
// flushing has ended.
func (g *groupCommit[In, Out]) flushOnce(ctx context.Context, store func(context.Context, []In) ([]Out, []error)) (more bool) {
	g.mu.Lock()
	n := min(len(g.queue), maxReportBatch)
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()
	ins := make([]In, len(batch))
	for i, q := range batch {
		ins[i] = q.in
	}
	outs, errs := store(ctx, ins)
	for i, q := range batch {
		if q.then != nil {
			q.then(outs[i], errs[i])
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) == 0 {
		g.flushing = false
		return false
	}
	return true
}
