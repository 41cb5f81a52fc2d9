package controller

import (
	"context"
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

// reportBatcher applies the reports, and records the heartbeats, of many
// sessions in shared transactions (group commit): a session queues its
// report and waits; when no flush is running, it runs one for everything
// queued. Each session still acknowledges its report only once it is
// stored, and with thousands of terminals reporting at once a transaction
// carries hundreds of reports instead of one (docs/benchmarks.md,
// "Receipts").
type reportBatcher struct {
	c *Controller

	reports    groupCommit[store.ReportIn, store.Applied]
	heartbeats groupCommit[store.HeartbeatIn, bool]
	deliveries groupCommit[store.Delivery, bool]
	keys       groupCommit[store.TerminalKeys, bool]
}

// trusts queues the key ids a terminal said it trusts, to be recorded with
// others' in one transaction (store.SetTerminalKeys) in the order queued,
// and returns at once.
func (b *reportBatcher) trusts(ctx context.Context, id string, kids []string) {
	b.keys.submit(ctx, store.TerminalKeys{TerminalID: id, KeyIDs: kids}, 0, b.c.store.SetTerminalKeys, func(_ bool, err error) {
		if err != nil {
			b.c.log.Error("record terminal keys", "terminal", id, "err", err)
		}
	})
}

// delivered queues a delivery's move, as store.SetDelivery makes it, and
// returns at once; then runs with whether it moved once it is stored.
func (b *reportBatcher) delivered(ctx context.Context, d store.Delivery, then func(bool, error)) {
	b.deliveries.submit(ctx, d, 0, b.c.store.SetDeliveries, then)
}

// apply stores rs, reports of terminal id in sequence order, as
// store.ApplyReport does, in the same transaction.
func (b *reportBatcher) apply(ctx context.Context, id string, rs []protocol.Report) ([]store.Applied, []error) {
	ins := make([]store.ReportIn, len(rs))
	for i, r := range rs {
		ins[i] = store.ReportIn{TerminalID: id, Report: r}
	}
	return b.reports.doAll(ctx, ins, 0, func(ctx context.Context, ins []store.ReportIn) ([]store.Applied, []error) {
		return b.c.store.ApplyReports(ctx, ins, b.c.now())
	})
}

// heartbeat queues a terminal's status and a point of its history, to be
// recorded as store.SetStatus and store.AddHeartbeat do, and returns at
// once; done runs when they are stored, with whether the point was
// written. Heartbeats are stored in the order they are queued, so a
// terminal's later status (offline among them, see Controller.setOffline)
// is never overwritten by an earlier one.
func (b *reportBatcher) heartbeat(ctx context.Context, id string, st store.Status, p store.HeartbeatPoint, done func(wrote bool, err error)) {
	b.heartbeats.submit(ctx, store.HeartbeatIn{TerminalID: id, Status: st, Point: p}, heartbeatGather, b.c.store.ApplyHeartbeats, done)
}

// groupCommit runs the items of concurrent callers through one store
// call, in the order they came.
type groupCommit[In, Out any] struct {
	mu       sync.Mutex
	queue    []*queued[In, Out]
	flushing bool
}

type queued[In, Out any] struct {
	in   In
	out  Out
	err  error
	done chan struct{}    // closed once stored; nil for submit's, which nobody waits on
	then func(Out, error) // submit's callback, run by the flush
}

// submit queues in and returns; then runs with its result once store has
// handled it. When no flush is running, one is started: it waits gather
// for others, then stores everything queued.
func (g *groupCommit[In, Out]) submit(ctx context.Context, in In, gather time.Duration, store func(context.Context, []In) ([]Out, []error), then func(Out, error)) {
	g.mu.Lock()
	g.queue = append(g.queue, &queued[In, Out]{in: in, then: then})
	lead := !g.flushing
	g.flushing = true
	g.mu.Unlock()
	if lead {
		go func() {
			time.Sleep(gather)
			g.flushAll(context.WithoutCancel(ctx), store)
		}()
	}
}

// doAll queues ins together, in order, waits until store has handled them
// and returns their results. The caller that finds no flush running leads
// one: it waits gather for others, then stores everything queued.
func (g *groupCommit[In, Out]) doAll(ctx context.Context, ins []In, gather time.Duration, store func(context.Context, []In) ([]Out, []error)) ([]Out, []error) {
	qs := make([]queued[In, Out], len(ins))
	g.mu.Lock()
	for i := range qs {
		qs[i] = queued[In, Out]{in: ins[i], done: make(chan struct{})}
		g.queue = append(g.queue, &qs[i])
	}
	lead := !g.flushing
	g.flushing = true
	g.mu.Unlock()
	if lead {
		time.Sleep(gather)
		// Flush what is queued, ours included; whoever queued meanwhile
		// is served by a goroutine, so this session goes back to its
		// terminal.
		if g.flushOnce(ctx, store) {
			go g.flushAll(context.WithoutCancel(ctx), store)
		}
	}
	outs, errs := make([]Out, len(qs)), make([]error, len(qs))
	for i := range qs {
		<-qs[i].done
		outs[i], errs[i] = qs[i].out, qs[i].err
	}
	return outs, errs
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
	outs, errs := store(context.WithoutCancel(ctx), ins)
	for i, q := range batch {
		q.out, q.err = outs[i], errs[i]
		if q.done != nil {
			close(q.done)
		}
		if q.then != nil {
			q.then(q.out, q.err)
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

func (g *groupCommit[In, Out]) flushAll(ctx context.Context, store func(context.Context, []In) ([]Out, []error)) {
	for g.flushOnce(ctx, store) {
	}
}
