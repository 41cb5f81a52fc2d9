package terminal

import (
	"context"
	"errors"
	"slices"
	"time"

	"dalaba/protocol"
)

// enqueue accepts a verified alert, queues it and starts fetching its
// media. Its "accepted" receipt is spooled by the player's emitter, ahead
// of every receipt after it, so that the fetch does not wait for the
// spool's disk sync (on a board's flash card, milliseconds); the journal
// of alerts in flight has it already (act).
func (p *player) enqueue(tk *task) {
	accepted := func() { p.t.spoolReceipt(tk.cmdID, tk.id, protocol.DeliveryAccepted, "", "") }
	p.mu.Lock()
	if p.closed { // the emitter is closed: spooled here, not under the player's lock (the journal reports it interrupted on the next start)
		p.mu.Unlock()
		accepted()
		return
	}
	defer p.mu.Unlock()
	p.out.add(accepted)
	if _, ok := p.cancelled[tk.id]; ok {
		p.sendReceipt(tk, outcome{end: endCancelled, detail: "cancelled before it arrived"})
		return
	}
	p.seq++
	tk.seq = p.seq
	tk.streams = make([]*stream, len(tk.media))
	for i, m := range tk.media {
		p.t.cache.Pin(cacheKey(m))
		tk.streams[i] = newStream(m, p.kick)
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

// fetch brings an alert's media into the cache, file by file, through
// the task's streams: the player may start it once the first chunk of the
// first file is verified, and reads on behind the fetch.
func (p *player) fetch(ctx context.Context, tk *task) {
	defer p.t.bg.Done()
	var err error
	announced := false
	for i, m := range tk.media {
		if _, ok := p.t.cache.Path(cacheKey(m)); ok {
			tk.streams[i].finish(nil)
			continue
		}
		if !announced {
			p.out.add(func() { p.t.receipt(tk.cmdID, tk.id, protocol.DeliveryFetching, "", "") })
			announced = true
			if p.t.hooks.Fetching != nil {
				p.t.hooks.Fetching(tk.id)
			}
		}
		if err = p.t.fetchStream(ctx, m, tk.streams[i]); err != nil {
			break
		}
		tk.streams[i].finish(nil)
	}
	if err != nil {
		for _, st := range tk.streams { // a playback reading one stops
			st.finish(err)
		}
	}
	var me *mediaError
	if errors.As(err, &me) && !errors.Is(context.Cause(ctx), errExpired) {
		p.t.faults.raise(protocol.FaultMedia, me.Error())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		tk.fetched = true
		p.kick()
	}
	if p.closed || err == nil || !slices.Contains(p.tasks, tk) {
		return // done, shut down, cancelled, expired, or playing: its playback ends on the stream's error
	}
	p.remove(tk)
	switch {
	case errors.Is(context.Cause(ctx), errExpired):
		p.finish(tk, outcome{end: endExpired, detail: "validity ended while fetching its media"})
	case errors.As(err, &me):
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
