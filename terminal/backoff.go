package terminal

import (
	"math/rand/v2"
	"time"
)

// backoff is a capped, jittered exponential delay between connection
// attempts. reset after a success starts it over.
type backoff struct {
	min, max time.Duration
	next     time.Duration
	jitter   func() float64 // in [0,1); replaced in tests
}

func newBackoff(min, max time.Duration) *backoff {
	return &backoff{min: min, max: max, next: min, jitter: rand.Float64}
}

// delay returns the wait before the next attempt, between half and all of
// the current step, and doubles the step up to max. The jitter spreads the
// reconnects of a whole county after a controller restart.
func (b *backoff) delay() time.Duration {
	d := b.next
	b.next = min(b.next*2, b.max)
	return d/2 + time.Duration(b.jitter()*float64(d/2))
}

func (b *backoff) reset() { b.next = b.min }
