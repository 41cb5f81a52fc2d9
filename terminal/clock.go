package terminal

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Clock is the terminal's source of time. Tests replace it so that waits
// (reconnect backoff, heartbeats) need not pass on the real clock.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// The controller-clock estimate: of the last offsetWindow ping samples, the
// offsetBest with the shortest round trip vote, by their median.
const (
	offsetWindow = 16
	offsetBest   = 5
)

// clockSample is one ping's estimate of the offset and its round trip.
type clockSample struct {
	offset, rtt time.Duration
}

// clockOffset estimates the controller's clock minus the terminal's, or
// uses the Welcome's server time before any ping sample arrived.
//
// A sample's error is at most half the asymmetry of its round trip, so
// samples whose pong (or ping) waited in a queue have a long round trip and
// are the ones to distrust: the estimate keeps the recent samples with the
// shortest round trips and takes their median, which also ignores a single
// bad one among them (as NTP's clock filter and Snapcast do).
type clockOffset struct {
	mu      sync.Mutex
	base    time.Duration // from the Welcome
	samples []clockSample
}

// reset starts over from a Welcome received at local time recv.
func (c *clockOffset) reset(serverTime, recv time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples = c.samples[:0]
	c.base = 0
	if !serverTime.IsZero() {
		c.base = serverTime.Sub(recv)
	}
}

// add records a ping sample: the ping left at sent, the pong carrying
// server came back at recv (all but server on the local clock).
func (c *clockOffset) add(sent, server, recv time.Time) {
	rtt := recv.Sub(sent)
	if rtt < 0 || server.IsZero() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.samples) == offsetWindow {
		c.samples = append(c.samples[:0], c.samples[1:]...)
	}
	c.samples = append(c.samples, clockSample{offset: server.Add(rtt / 2).Sub(recv), rtt: rtt})
}

// get returns the current estimate.
func (c *clockOffset) get() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.samples) == 0 {
		return c.base
	}
	s := slices.Clone(c.samples)
	slices.SortStableFunc(s, func(a, b clockSample) int { return cmp.Compare(a.rtt, b.rtt) })
	s = s[:min(len(s), offsetBest)]
	offs := make([]time.Duration, len(s))
	for i, x := range s {
		offs[i] = x.offset
	}
	slices.Sort(offs)
	if len(offs)%2 == 1 {
		return offs[len(offs)/2]
	}
	return (offs[len(offs)/2-1] + offs[len(offs)/2]) / 2
}

// localNow is the terminal's own clock, shifted by clock_offset_ms.
func (t *Terminal) localNow() time.Time {
	return t.clock.Now().Add(time.Duration(t.cfg.ClockOffsetMS) * time.Millisecond)
}

// now is the terminal's best estimate of the controller's clock: command
// validity, play_at and report times are all judged by it.
func (t *Terminal) now() time.Time { return t.localNow().Add(t.offset.get()) }

// sleep waits d on the terminal's clock, or until done closes; it reports
// whether the whole wait passed.
func (t *Terminal) sleep(done <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	select {
	case <-t.clock.After(d):
		return true
	case <-done:
		return false
	}
}
