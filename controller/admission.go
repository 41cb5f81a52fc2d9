package controller

// Admission: how many terminals the controller takes at once, and when it
// asks the others to come back (docs/architecture.md, "Terminals come
// online a few at a time").

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Terminals come online a few at a time. Between its hello and being
// online a terminal costs the controller its signature check and a few
// database reads; in a reconnect storm, thousands doing that at once
// each took longer than the terminal waits for its welcome, so every one
// gave up, reconnected and started over, and the storm never settled. So
// at most maxJoining are taken at a time, at most maxJoinQueue wait for
// their turn, each at most joinTimeout (well within the terminal's 10 s wait
// for the welcome), and any more connecting are asked to come back later
// (503 before the upgrade; a close with "try again later" to one that
// waited too long), each at its own time (pacer). A token is taken only
// after the hello has come: a client that connects and says nothing holds
// none.
const (
	maxJoining   = 128
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

// askLater answers a terminal's connection 503, with a Retry-After of its
// own (pacer).
func (h *hub) askLater(w http.ResponseWriter, why string) {
	w.Header().Set("Retry-After", strconv.FormatInt(h.pacer.comeBack(time.Now()), 10))
	http.Error(w, why, http.StatusServiceUnavailable)
}

// pacer gives each terminal turned away its own time to come back: the
// next free slot, slots 1/rate apart, rate being how many terminals a
// second the controller takes. Turned away together, in a storm, they then
// come back as fast as they can be taken and no faster. Asked the same
// time, the whole wave came back together to be turned away again: the
// 2,000–3,000 refusals a second of a new fleet's first minute cut the
// terminals taken to 10–60 a second, and with a wait sized for the whole
// fleet the controller then sat idle for a minute while they stayed away
// (docs/benchmarks.md, "The storm's tail, explained").
type pacer struct {
	mu   sync.Mutex
	rate float64   // terminals a second the controller takes, as last measured
	next time.Time // the last slot given
}

const (
	// firstRate is the rate until one is measured: what a small server
	// took in a 15,000-terminal storm. Guessed high, the terminals that
	// come too early are turned away once more, to a later slot; guessed
	// low, the controller idles while they wait.
	firstRate = 700.0
	// leastRate bounds the measured rate from below.
	leastRate = 10.0
	// mostAway is the longest a terminal is asked to stay away. One that
	// finds every slot within it given is asked to come back then, to be
	// given a slot of the schedule as it is by that time. Slots far ahead
	// keep the rate measured when they were given, and a new fleet's first
	// seconds measure a low one: with a minute, four 15,000 first
	// enrolments took 112–133 s, with 20 s 91–93 s; the storms alike
	// (docs/benchmarks.md, "The storm's tail, explained").
	mostAway = 20 * time.Second
)

// comeBack gives the terminal turned away at now its slot, and returns
// how long it is to stay away, in whole seconds (at least 1).
func (p *pacer) comeBack(now time.Time) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.next
	if at.Before(now) {
		at = now
	}
	at = at.Add(time.Duration(float64(time.Second) / p.rate))
	if at.Sub(now) > mostAway {
		return int64(mostAway / time.Second)
	}
	p.next = at
	return max(int64(math.Ceil(at.Sub(now).Seconds())), 1)
}

// measure takes the terminals taken in the last second: when some were
// turned away in it (the controller was taking all it could), they are
// what it can take; otherwise it could take at least as many.
func (p *pacer) measure(taken uint64, saturated bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if saturated {
		p.rate = max(p.rate/2+float64(taken)/2, leastRate)
	} else {
		p.rate = max(p.rate, float64(taken))
	}
}

// pace measures, every second, the rate at which the controller takes
// terminals (pacer.measure).
func (h *hub) pace(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	joined, busy := h.joined.Load(), h.busy.Load()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		j, b := h.joined.Load(), h.busy.Load()
		h.pacer.measure(j-joined, b > busy)
		joined, busy = j, b
	}
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
