package terminal

import (
	"testing"
	"time"
)

// acquiredClock is an estimate that took a full window of samples saying
// the controller is truth ahead, with 2 ms round trips, from t0 on; it
// returns the local time of the next sample.
func acquiredClock(t *testing.T, c *clockOffset, t0 time.Time, truth time.Duration) time.Time {
	t.Helper()
	c.reset(t0.Add(truth), t0)
	at := t0
	for range offsetWindow {
		at = at.Add(time.Second)
		if !c.add(at, at.Add(time.Millisecond+truth), at.Add(2*time.Millisecond)) {
			t.Fatal("an honest sample was dropped")
		}
	}
	if got := c.get(); got != truth {
		t.Fatalf("acquired %v, want %v", got, truth)
	}
	return at.Add(time.Second)
}

// TestClockPongsAnswerPings: a pong counts only if it answers a ping the
// terminal sent and still awaits, once.
func TestClockPongsAnswerPings(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var c clockOffset
	c.reset(t0, t0)
	sent := c.pinged(t0.Add(time.Second))
	server, recv := sent.Add(time.Millisecond+3*time.Second), sent.Add(2*time.Millisecond)
	if c.pong(sent.Add(time.Nanosecond), server, recv) {
		t.Fatal("a pong for a ping never sent was taken")
	}
	if !c.pong(sent, server, recv) || c.get() != 3*time.Second {
		t.Fatalf("the answer to a ping was not taken: estimate %v", c.get())
	}
	if c.pong(sent, server.Add(time.Hour), recv) {
		t.Fatal("a second pong for the same ping was taken")
	}
	for i := range maxPending + 1 { // the oldest awaited ping is forgotten
		c.pinged(t0.Add(time.Duration(10+i) * time.Second))
	}
	if c.pong(t0.Add(10*time.Second), t0.Add(10*time.Second), t0.Add(10*time.Second)) {
		t.Fatal("a pong for a forgotten ping was taken")
	}
}

// TestClockCapsEachSample: once a window of samples is in, one sample
// moves the estimate at most maxClockStep, a sample further than
// maxSampleJump or with a round trip over maxSampleRTT is dropped, and a
// steady disagreement is followed slowly.
func TestClockCapsEachSample(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	const truth = 35 * time.Second
	cases := []struct {
		name    string
		shift   time.Duration // what the pongs claim, beyond truth
		rtt     time.Duration
		n       int
		taken   bool
		movedBy time.Duration
	}{
		// The new samples have the shortest round trips: from the third on,
		// they are the median of the best five.
		{"a clock stepped 3 s is followed slowly", 3 * time.Second, time.Millisecond, offsetWindow, true, (offsetWindow - 2) * maxClockStep},
		{"a step back too", -3 * time.Second, time.Millisecond, 5, true, -3 * maxClockStep},
		{"a small drift at once", 5 * time.Millisecond, time.Millisecond, offsetWindow, true, 5 * time.Millisecond},
		{"an hour off is dropped", time.Hour, 2 * time.Millisecond, offsetWindow, false, 0},
		{"a 6 s round trip is dropped", 0, 6 * time.Second, 1, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c clockOffset
			at := acquiredClock(t, &c, t0, truth)
			for i := range tc.n {
				taken := c.add(at, at.Add(tc.rtt/2+truth+tc.shift), at.Add(tc.rtt))
				if taken != tc.taken {
					t.Fatalf("sample %d taken %v, want %v", i, taken, tc.taken)
				}
				if moved := (c.get() - truth).Abs(); moved > time.Duration(i+1)*maxClockStep {
					t.Fatalf("after %d samples the estimate moved %v, more than %v", i+1, moved, time.Duration(i+1)*maxClockStep)
				}
				at = at.Add(time.Second)
			}
			if got := c.get() - truth; got != tc.movedBy {
				t.Fatalf("estimate moved %v, want %v", got, tc.movedBy)
			}
		})
	}
}

// TestClockFollowsLocalSteps: when the board's own clock is stepped while
// the daemon runs (NTP on a board without a real-time clock), the monotonic
// clock shows the step, and the controller time the terminal reads does not
// move with it; the samples that follow are taken, not dropped as jumps. A
// step within maxUnnoticedStep is left to the samples.
func TestClockFollowsLocalSteps(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	const truth = 35 * time.Second
	var mono, stepped time.Duration // real time passed; steps of the local clock
	local := func() time.Time { return t0.Add(mono + stepped) }
	controller := func() time.Time { return t0.Add(truth + mono) }
	c := clockOffset{mono: func() time.Duration { return mono }}
	sample := func() bool { // an honest ping: 2 ms round trip
		sent := local()
		mono += time.Millisecond
		server := controller()
		mono += time.Millisecond
		return c.add(sent, server, local())
	}
	c.reset(controller(), local())
	for range offsetWindow {
		mono += time.Second
		if !sample() {
			t.Fatal("an honest sample was dropped")
		}
	}
	for _, step := range []time.Duration{time.Hour, -2 * time.Hour, 2 * time.Second, 300 * time.Millisecond} {
		mono += 10 * time.Second
		stepped += step
		got, steps := c.at(local())
		if step.Abs() > maxUnnoticedStep {
			if len(steps) != 1 || steps[0] != step {
				t.Fatalf("step %v: steps followed %v", step, steps)
			}
			if off := got.Sub(controller()); off.Abs() > time.Millisecond {
				t.Fatalf("step %v: controller time read %v off", step, off)
			}
		} else if len(steps) != 0 {
			t.Fatalf("step %v: followed %v, want it left to the samples", step, steps)
		}
		mono += time.Second
		if !sample() {
			t.Fatalf("step %v: the next honest sample was dropped", step)
		}
	}
	// The 300 ms step is followed by the samples, at maxClockStep each once
	// the window holds only samples taken after it.
	for range offsetWindow + 20 {
		mono += time.Second
		sample()
	}
	if off := c.get() - (truth - stepped); off.Abs() > time.Millisecond {
		t.Fatalf("estimate %v, want %v", c.get(), truth-stepped)
	}
}
