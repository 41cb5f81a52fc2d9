package controller

import (
	"context"
	"sync"

	"dalaba/controller/store"
	"dalaba/protocol"
)

// maxReportBatch bounds the reports applied in one transaction.
const maxReportBatch = 1000

// reportBatcher applies the reports of many sessions in shared
// transactions (group commit): a session queues its report and waits; when
// no flush is running, it runs one for everything queued. Each session
// still acknowledges its report only once it is stored, and with
// thousands of terminals reporting at once a transaction carries hundreds
// of reports instead of one (docs/benchmarks.md, "Receipts").
type reportBatcher struct {
	c *Controller

	mu       sync.Mutex
	queue    []*queuedReport
	flushing bool
}

type queuedReport struct {
	in   store.ReportIn
	ap   store.Applied
	err  error
	done chan struct{}
}

// apply stores r from terminal id, as store.ApplyReport does.
func (b *reportBatcher) apply(ctx context.Context, id string, r protocol.Report) (store.Applied, error) {
	q := &queuedReport{in: store.ReportIn{TerminalID: id, Report: r}, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, q)
	lead := !b.flushing
	b.flushing = true
	b.mu.Unlock()
	if lead {
		// Flush what is queued, ours included; whoever queued meanwhile
		// is served by a goroutine, so this session goes back to its
		// terminal.
		if b.flushOnce(ctx) {
			go b.flushAll(context.WithoutCancel(ctx))
		}
	}
	<-q.done
	return q.ap, q.err
}

// flushOnce applies one batch. It reports whether more is queued; when not,
// flushing has ended.
func (b *reportBatcher) flushOnce(ctx context.Context) (more bool) {
	b.mu.Lock()
	n := min(len(b.queue), maxReportBatch)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	b.mu.Unlock()
	ins := make([]store.ReportIn, len(batch))
	for i, q := range batch {
		ins[i] = q.in
	}
	aps, errs := b.c.store.ApplyReports(context.WithoutCancel(ctx), ins, b.c.now())
	for i, q := range batch {
		q.ap, q.err = aps[i], errs[i]
		close(q.done)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.flushing = false
		return false
	}
	return true
}

func (b *reportBatcher) flushAll(ctx context.Context) {
	for b.flushOnce(ctx) {
	}
}
