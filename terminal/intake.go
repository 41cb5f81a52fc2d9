package terminal

import (
	"context"
	"errors"
	"slices"
	"time"

	"dalaba/protocol"
)

// enqueue adds a verified alert and starts fetching its media.
func (p *player) enqueue(tk *task) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.cancelled[tk.id]; ok || p.closed {
		p.sendReceipt(tk, outcome{end: endCancelled, detail: "cancelled before it arrived"})
		return
	}
	p.seq++
	tk.seq = p.seq
	for _, m := range tk.media {
		p.t.cache.Pin(m.SHA256)
	}
	p.tasks = append(p.tasks, tk)
	ctx := p.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	fctx, stop := context.WithTimeoutCause(ctx, tk.deadline.Sub(p.t.now()), errExpired)
	tk.stopFetch = stop
	p.t.bg.Add(1)
	go p.fetch(fctx, tk)
	p.kick()
}

// fetch brings an alert's media into the cache, then marks it ready.
func (p *player) fetch(ctx context.Context, tk *task) {
	defer p.t.bg.Done()
	var err error
	announced := false
	for _, m := range tk.media {
		if _, ok := p.t.cache.Path(m.SHA256); ok {
			continue
		}
		if !announced {
			p.out.add(func() { p.t.receipt(tk.cmdID, tk.id, protocol.DeliveryFetching, "", "") })
			announced = true
		}
		if err = p.t.fetchMedia(ctx, m); err != nil {
			break
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !slices.Contains(p.tasks, tk) {
		return // shut down, cancelled or expired meanwhile
	}
	if err == nil {
		tk.fetched = true
		p.kick()
		return
	}
	p.remove(tk)
	var me *mediaError
	switch {
	case errors.Is(context.Cause(ctx), errExpired):
		p.finish(tk, outcome{end: endExpired, detail: "validity ended while fetching its media"})
	case errors.As(err, &me):
		p.t.faults.raise(protocol.FaultMedia, me.Error())
		p.finish(tk, outcome{end: endFailed, reason: "media", detail: me.Error()})
	default:
		p.finish(tk, outcome{end: endFailed, reason: "internal", detail: err.Error()})
	}
}

// cancel stops the alert with this EBM id if it plays, drops it if it
// waits, and remembers the id until the cancel command expires. It reports
// whether the alert was found.
func (p *player) cancel(ebmID string, until time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	found := false
	if p.cur != nil && p.cur.alert != nil && p.cur.id == ebmID {
		p.curStop(errCancelled)
		found = true
	}
	for _, tk := range slices.Clone(p.tasks) {
		if tk.alert != nil && tk.id == ebmID {
			p.remove(tk)
			p.finish(tk, outcome{end: endCancelled, detail: "cancelled while queued"})
			found = true
		}
	}
	p.cancelled[ebmID] = until
	p.kick()
	return found
}

func (p *player) pruneCancelled(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, until := range p.cancelled {
		if now.After(until) {
			delete(p.cancelled, id)
		}
	}
}

// snapshot returns the task the amplifier is on for, and how many wait.
func (p *player) snapshot() (playing string, queued int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil && p.powered {
		playing = p.cur.id
	}
	return playing, len(p.tasks)
}

// remove takes tk out of the waiting list. Callers hold p.mu.
func (p *player) remove(tk *task) {
	if i := slices.Index(p.tasks, tk); i >= 0 {
		p.tasks = slices.Delete(p.tasks, i, i+1)
	}
}
