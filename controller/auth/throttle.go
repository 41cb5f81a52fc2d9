package auth

import (
	"sync"
	"time"
)

// Throttle counts failed sign-ins per key (an account, or a source address)
// and locks a key out for a while after too many. It is kept in memory: a
// controller restart forgets it, which costs an attacker a restart they
// cannot cause.
type Throttle struct {
	mu      sync.Mutex
	max     int           // failures allowed within window
	window  time.Duration // how long a failure counts
	lockout time.Duration
	state   map[string]*record
}

type record struct {
	fails  []time.Time
	locked time.Time // locked until
}

// NewThrottle allows max failures per window, then locks for lockout.
func NewThrottle(max int, window, lockout time.Duration) *Throttle {
	return &Throttle{max: max, window: window, lockout: lockout, state: map[string]*record{}}
}

// Locked reports whether key is locked out at now, and until when.
func (t *Throttle) Locked(key string, now time.Time) (bool, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.state[key]
	if r == nil || !now.Before(r.locked) {
		return false, time.Time{}
	}
	return true, r.locked
}

// Fail records a failure; it reports whether key is now locked.
func (t *Throttle) Fail(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.state[key]
	if r == nil {
		r = &record{}
		t.state[key] = r
	}
	keep := r.fails[:0]
	for _, f := range r.fails {
		if now.Sub(f) < t.window {
			keep = append(keep, f)
		}
	}
	r.fails = append(keep, now)
	if len(r.fails) >= t.max {
		r.locked = now.Add(t.lockout)
		r.fails = r.fails[:0]
		return true
	}
	return false
}

// Succeed clears key's failures.
func (t *Throttle) Succeed(key string) {
	t.mu.Lock()
	delete(t.state, key)
	t.mu.Unlock()
}
