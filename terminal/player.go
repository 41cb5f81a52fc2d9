package terminal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"
)

// Player timing.
const (
	// startLead is how long before a task's start the loop hands it to a
	// playback goroutine, which then sleeps to the exact instant.
	startLead = 50 * time.Millisecond
	// maxWait bounds the loop's sleep while anything is pending, since the
	// controller-clock estimate moves as pings refine it.
	maxWait = time.Second
	forever = time.Duration(math.MaxInt64)
)

// player decides what the loudspeaker plays. Tasks (alerts and schedule
// items) wait in one list; the highest priority task that is due plays, a
// higher one preempts it at once, equal ones queue first come first served.
// The relay stays ON across back-to-back tasks: it is switched OFF only
// after the tail, when nothing is due before the tail and a warm-up would
// have passed.
//
// One loop goroutine (run) makes every decision; the current task plays in
// its own goroutine (perform), and the loop only switches the relay OFF
// while no task is current, so relay switching never overlaps.
type player struct {
	t    *Terminal
	log  *slog.Logger
	wake chan struct{}
	out  *emitter

	mu          sync.Mutex
	ctx         context.Context // Run's; parent of fetches
	seq         uint64
	tasks       []*task // waiting: queued, cut, or due later
	cur         *task   // handed to a playback goroutine
	curStop     context.CancelCauseFunc
	curCtx      context.Context
	curDone     chan struct{}
	curErr      error     // the playback goroutine's result, set before curDone closes
	powered     bool      // the player switched the relay ON and not yet OFF
	warmUntil   time.Time // warm-up ends; no audio before
	tailUntil   time.Time // after the last task, the relay stays ON until then
	last        string    // the task that sounded last while powered
	held        []held    // alert outcomes waiting for relay OFF or the next task
	prefetching int       // schedule prefetches in progress
	cancelled   map[string]time.Time
	closed      bool
	live        liveStreams // live speech sessions announced, by session id (live.go)
}

// held is an alert outcome reported once the amplifier's fate is known:
// OFF (and verified) or handed on to the next task.
type held struct {
	tk *task
	o  outcome
}

func newPlayer(t *Terminal) *player {
	return &player{t: t, log: t.log.With("subsystem", "player"), wake: make(chan struct{}, 1), out: newEmitter(), cancelled: map[string]time.Time{}}
}

func (p *player) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run is the player's loop, until ctx ends.
func (p *player) run(ctx context.Context) {
	p.mu.Lock()
	p.ctx = ctx
	p.mu.Unlock()
	for {
		wait, off := p.step()
		if off {
			p.switchOff()
			p.t.speaker.rest() // nothing plays until the relay is ON again
			continue
		}
		var timer <-chan time.Time
		if wait < forever {
			timer = p.t.clock.After(wait)
		}
		select {
		case <-p.wake:
		case <-timer:
		case <-ctx.Done():
			p.shutdown()
			return
		}
	}
}

// step makes the decisions due now. It returns how long to sleep, or that
// the relay should be switched OFF.
func (p *player) step() (wait time.Duration, off bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.t.now()
	if p.cur != nil {
		select {
		case <-p.curDone:
			p.settle(now)
		default:
		}
	}
	p.expire(now)
	best := p.best(now)
	switch {
	case p.cur != nil:
		if best != nil && best.priority > p.cur.priority && context.Cause(p.curCtx) == nil {
			p.log.Info("preempting", "task", p.cur.id, "by", best.id, "priority", p.cur.priority, "by_priority", best.priority)
			p.curStop(&preemptError{by: best.id})
		}
	case best != nil:
		p.launch(best)
		return p.nextWake(now), false
	case p.powered && !p.keepOn(now):
		return 0, true
	}
	return p.nextWake(now), false
}

// preroll is how early a task is handed to playback: the lead, the output
// latency, and the warm-up when the relay is OFF.
func (p *player) preroll() time.Duration {
	d := startLead + p.t.outputLatency()
	if !p.powered {
		d += ms(p.t.cfg.WarmupMS)
	}
	return d
}

// due reports whether tk should be handed to playback now.
func (p *player) due(tk *task, now time.Time) bool {
	return tk.at.IsZero() || tk.sounded || !now.Before(tk.at.Add(-p.preroll()))
}

// ready reports whether tk's media can be played: for an alert, fetched or
// the first chunk of the file to play verified (the rest streams in behind);
// for a program, in the cache.
func (p *player) ready(tk *task) bool {
	if tk.alert != nil {
		return tk.fetched || tk.streams != nil && tk.pos.media < len(tk.streams) && tk.streams[tk.pos.media].canStart()
	}
	for _, m := range tk.media {
		if _, ok := p.t.cache.Path(cacheKey(m)); !ok {
			return false
		}
	}
	return true
}

// best returns the task to play now: of the due and ready ones, the
// highest priority, then the one due first, then the first to arrive.
func (p *player) best(now time.Time) *task {
	var best *task
	for _, tk := range p.tasks {
		if !p.due(tk, now) || !p.ready(tk) {
			continue
		}
		if best == nil || before(tk, best) {
			best = tk
		}
	}
	return best
}

// before orders tasks for playing: priority, start, arrival.
func before(a, b *task) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	return a.seq < b.seq
}

// expire ends the waiting tasks whose time has passed. Callers hold p.mu.
func (p *player) expire(now time.Time) {
	for _, tk := range slices.Clone(p.tasks) {
		switch {
		case tk.sounded && !now.Before(tk.resumeBy):
			p.remove(tk)
			p.finish(tk, outcome{end: endPreempted, by: tk.cutBy})
		case !tk.sounded && !now.Before(tk.deadline):
			p.remove(tk)
			p.finish(tk, p.lateOutcome(tk))
		case tk.alert == nil && p.due(tk, now) && !p.ready(tk) && p.prefetching == 0:
			p.remove(tk)
			p.finish(tk, outcome{end: endFailed, reason: "media", detail: "media not in the cache at the start"})
		}
	}
}

// lateOutcome says why tk never started: it came after its latest start,
// its media never arrived, the task playing then kept it off the air, or
// (an alert) its validity ended.
func (p *player) lateOutcome(tk *task) outcome {
	if tk.alert == nil {
		switch {
		case !tk.added.Before(tk.deadline):
			return outcome{end: endExpired} // it came too late to play
		case !p.ready(tk):
			return outcome{end: endFailed, reason: "media", detail: "media not in the cache by the latest start"}
		case p.cur != nil:
			return outcome{end: endPreempted, by: p.cur.id}
		}
		return outcome{end: endExpired}
	}
	if !tk.fetched {
		return outcome{end: endExpired, detail: "validity ended while fetching its media"}
	}
	return outcome{end: endExpired, detail: "expired before it could play"}
}

// keepOn reports whether the powered relay stays ON: within the tail, or
// when a task is due before the tail plus a warm-up would have passed.
func (p *player) keepOn(now time.Time) bool {
	if now.Before(p.tailUntil) {
		return true
	}
	horizon := p.tailUntil.Add(ms(p.t.cfg.WarmupMS))
	for _, tk := range p.tasks {
		if (tk.at.IsZero() || tk.at.Before(horizon)) && (tk.alert == nil || p.ready(tk)) {
			return true
		}
	}
	return false
}

// nextWake is how long the loop may sleep before a decision falls due.
func (p *player) nextWake(now time.Time) time.Duration {
	if len(p.tasks) == 0 && !p.powered {
		return forever
	}
	w := maxWait
	consider := func(at time.Time) {
		if d := at.Sub(now); d < w {
			w = d
		}
	}
	for _, tk := range p.tasks {
		if !tk.at.IsZero() && !tk.sounded {
			consider(tk.at.Add(-p.preroll()))
		}
		consider(tk.deadline)
		if tk.sounded {
			consider(tk.resumeBy)
		}
	}
	if p.powered && p.cur == nil {
		consider(p.tailUntil)
	}
	return max(w, time.Millisecond)
}

// launch makes tk current and starts its playback goroutine. Callers hold
// p.mu.
func (p *player) launch(tk *task) {
	p.remove(tk)
	if p.powered {
		p.flushHeld(nil) // handed on: the amplifier was not switched OFF
	}
	prev := ""
	if p.powered {
		prev = p.last
	}
	ctx, stop := context.WithCancelCause(context.Background())
	p.cur, p.curCtx, p.curStop, p.curDone, p.curErr = tk, ctx, stop, make(chan struct{}), nil
	done := p.curDone
	go func() {
		err := p.play(ctx, tk, prev)
		p.mu.Lock()
		p.curErr = err
		close(done)
		p.mu.Unlock()
		p.kick()
	}()
}

// settle handles the end of the current task's playback. Callers hold p.mu.
func (p *player) settle(now time.Time) {
	tk, err, cause := p.cur, p.curErr, context.Cause(p.curCtx)
	p.curStop(nil)
	p.cur, p.curCtx, p.curStop, p.curDone = nil, nil, nil, nil
	if tk.sounded {
		p.last = tk.id
	}
	var pe *preemptError
	switch {
	case err == nil:
		p.tailUntil = now.Add(ms(p.t.cfg.TailMS))
		o := outcome{end: endPlayed}
		if tk.paused > 0 { // the officers hear of a gap in an alert
			o.detail = fmt.Sprintf("the audio paused %s in all, waiting for its media", tk.paused.Round(10*time.Millisecond))
		}
		p.finish(tk, o)
	case errors.As(cause, &pe):
		if !tk.sounded { // cut before it made a sound: it simply waits again
			p.tasks = append(p.tasks, tk)
			return
		}
		tk.cutBy = pe.by
		at := now
		p.out.add(func() { p.t.switchReport("preempt", tk.id, pe.by, at) })
		if resumeAfterPreempt[tk.source] && now.Before(tk.resumeBy) {
			p.tasks = append(p.tasks, tk)
			return
		}
		p.finish(tk, outcome{end: endPreempted, by: pe.by})
	case errors.Is(cause, errCancelled):
		p.tailUntil = now // a cancelled alert goes silent at once
		p.finish(tk, outcome{end: endCancelled, detail: "stopped by a cancel command"})
	default:
		p.tailUntil = now
		var pe *playError
		if errors.As(err, &pe) {
			p.finish(tk, outcome{end: endFailed, reason: pe.reason, detail: pe.Error()})
		} else {
			p.finish(tk, outcome{end: endFailed, reason: "internal", detail: err.Error()})
		}
	}
}
