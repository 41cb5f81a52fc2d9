package terminal

import (
	"cmp"
	"errors"
	"os"
	"path/filepath"
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

// Limits on what one pong may do to the estimate. Time is not signed (a
// pong is as trusted as the connection it came on), so after the first
// window of samples since a welcome, each sample may move the offset by at
// most maxClockStep, and a sample further than maxSampleJump from the
// estimate, or with a round trip over maxSampleRTT, is dropped. A clock
// that drifts a few ppm moves far less; a controller clock that was really
// stepped is followed slowly, or at once after a reconnection.
const (
	maxClockStep  = 20 * time.Millisecond
	maxSampleJump = 5 * time.Second
	maxSampleRTT  = 5 * time.Second
	maxPending    = 8 // pings awaiting their pong
)

// maxUnnoticedStep is the largest step of the local clock that the
// estimate does not follow at once. A board's clock is stepped while the
// daemon runs (NTP setting a board without a real-time clock, someone's
// date command); the estimate is an offset from that clock, so it would be
// off by the step, and every later sample would be dropped as a jump. The
// monotonic clock never steps: where the local clock moved further than it
// since the last look, the difference is a step, and the estimate and its
// samples move by it the other way.
const maxUnnoticedStep = 500 * time.Millisecond

// clockSaveStep is how far the estimate moves before it is saved again.
const clockSaveStep = 10 * time.Millisecond

// clockFile keeps the last estimate, so that a terminal that restarts
// while it cannot reach the controller still plays its schedule on time.
const clockFile = "clock.json"

// storedClock is clock.json.
type storedClock struct {
	OffsetNS int64     `json:"offset_ns"` // controller clock minus this terminal's (clock_offset_ms included)
	SavedAt  time.Time `json:"saved_at"`  // this terminal's clock
}

// clockSample is one ping's estimate of the offset and its round trip.
type clockSample struct {
	offset, rtt time.Duration
}

// clockOffset estimates the controller's clock minus the terminal's, or
// uses the Welcome's server time before any ping sample arrived (and the
// saved estimate before any Welcome).
//
// A sample's error is at most half the asymmetry of its round trip, so
// samples whose pong (or ping) waited in a queue have a long round trip and
// are the ones to distrust: the estimate keeps the recent samples with the
// shortest round trips and takes their median, which also ignores a single
// bad one among them (as NTP's clock filter and Snapcast do).
type clockOffset struct {
	mu       sync.Mutex
	est      time.Duration // the estimate in use
	samples  []clockSample
	acquired int         // samples since the Welcome, up to offsetWindow
	pending  []time.Time // pings sent, awaiting their pong
	dropped  uint64      // samples refused

	save  func(storedClock) // nil: not kept
	saved time.Duration

	mono     func() time.Duration // a monotonic clock; nil: local steps are not followed
	seenWall time.Time            // the local clock at the last look (no monotonic reading)
	seenMono time.Duration        // mono at the last look
	steps    []time.Duration      // steps followed, for the caller to log
}

// follow notices a step of the local clock, now local, since the last
// look, and moves the estimate and its samples against it. Callers hold
// c.mu.
func (c *clockOffset) follow(local time.Time) {
	if c.mono == nil {
		return
	}
	wall, m := local.Round(0), c.mono()
	if !c.seenWall.IsZero() {
		if step := wall.Sub(c.seenWall) - (m - c.seenMono); step.Abs() > maxUnnoticedStep {
			c.est -= step
			for i := range c.samples {
				c.samples[i].offset -= step
			}
			c.steps = append(c.steps, step)
		}
	}
	c.seenWall, c.seenMono = wall, m
}

// at is controller time at local time local, following any step of the
// local clock first. It returns the steps followed since the last call.
func (c *clockOffset) at(local time.Time) (time.Time, []time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.follow(local)
	steps := c.steps
	c.steps = nil
	return local.Add(c.est), steps
}

// reset starts over from a Welcome received at local time recv.
func (c *clockOffset) reset(serverTime, recv time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.follow(recv)
	c.samples, c.acquired, c.pending = c.samples[:0], 0, c.pending[:0]
	if !serverTime.IsZero() {
		c.est = serverTime.Sub(recv)
	}
}

// pinged notes a ping sent at local time sent, and returns it.
func (c *clockOffset) pinged(sent time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == maxPending {
		c.pending = append(c.pending[:0], c.pending[1:]...)
	}
	c.pending = append(c.pending, sent)
	return sent
}

// pong takes the sample of a pong if it answers a ping still awaited (each
// ping once), and reports whether it did.
func (c *clockOffset) pong(sent, server, recv time.Time) bool {
	c.mu.Lock()
	i := slices.IndexFunc(c.pending, sent.Equal)
	if i >= 0 {
		c.pending = slices.Delete(c.pending, i, i+1)
	}
	c.mu.Unlock()
	return i >= 0 && c.add(sent, server, recv)
}

// add records a ping sample: the ping left at sent, the pong carrying
// server came back at recv (all but server on the local clock). It reports
// whether the sample was taken.
func (c *clockOffset) add(sent, server, recv time.Time) bool {
	c.mu.Lock()
	c.follow(recv)
	rtt := recv.Sub(sent)
	off := server.Add(rtt / 2).Sub(recv)
	if rtt < 0 || rtt > maxSampleRTT || server.IsZero() || c.acquired >= offsetWindow && (off-c.est).Abs() > maxSampleJump {
		c.dropped++
		c.mu.Unlock()
		return false
	}
	if len(c.samples) == offsetWindow {
		c.samples = append(c.samples[:0], c.samples[1:]...)
	}
	c.samples = append(c.samples, clockSample{offset: off, rtt: rtt})
	want := c.filtered()
	if c.acquired < offsetWindow {
		c.acquired++
		c.est = want
	} else {
		c.est += max(-maxClockStep, min(maxClockStep, want-c.est))
	}
	var keep *storedClock
	if c.save != nil && (c.est-c.saved).Abs() >= clockSaveStep {
		c.saved = c.est
		keep = &storedClock{OffsetNS: int64(c.est), SavedAt: recv}
	}
	save := c.save
	c.mu.Unlock()
	if keep != nil {
		save(*keep)
	}
	return true
}

// filtered is the median offset of the samples with the shortest round
// trips. Callers hold c.mu and have at least one sample.
func (c *clockOffset) filtered() time.Duration {
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

// get returns the current estimate.
func (c *clockOffset) get() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.est
}

// loadClock starts the estimate from clock.json, if any, and keeps it
// there from now on. A saved estimate is not used when the local clock is
// now earlier than when it was saved (a board without a real-time clock
// that restarted): the Welcome then sets it.
func (t *Terminal) loadClock(dir string) {
	path := filepath.Join(dir, clockFile)
	var sc storedClock
	switch err := readJSON(path, &sc); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		t.log.Error("stored clock offset unusable; waiting for the controller's time", "err", err)
	case t.localNow().Before(sc.SavedAt):
		t.log.Warn("local clock is earlier than when the clock offset was saved; not using it", "saved_at", sc.SavedAt, "offset", time.Duration(sc.OffsetNS))
	default:
		t.offset.mu.Lock()
		t.offset.est, t.offset.saved = time.Duration(sc.OffsetNS), time.Duration(sc.OffsetNS)
		t.offset.mu.Unlock()
		t.log.Info("clock offset restored", "offset", time.Duration(sc.OffsetNS), "saved_at", sc.SavedAt)
	}
	t.offset.mu.Lock()
	t.offset.save = func(sc storedClock) {
		if err := writeJSONAtomic(path, sc, 0o600); err != nil {
			t.log.Error("save clock offset", "err", err)
		}
	}
	t.offset.mu.Unlock()
}

// localNow is the terminal's own clock, shifted by clock_offset_ms.
func (t *Terminal) localNow() time.Time {
	return t.clock.Now().Add(time.Duration(t.cfg.ClockOffsetMS) * time.Millisecond)
}

// now is the terminal's best estimate of the controller's clock: command
// validity, play_at and report times are all judged by it.
func (t *Terminal) now() time.Time {
	now, steps := t.offset.at(t.localNow())
	for _, s := range steps {
		t.log.Warn("local clock stepped; the controller-clock estimate follows", "step", s)
	}
	return now
}

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
