package bench

import (
	"os"
	"testing"
	"time"
)

// used reads a group's CPU between the samples around an instant, from
// the first sample, and holds at the ends.
func TestCPUTraceUsed(t *testing.T) {
	t0 := time.Now()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tr := &cpuTrace{
		at:  []time.Time{t0, t0.Add(ms(100)), t0.Add(ms(200))},
		cpu: [][]time.Duration{{ms(1000), ms(5000)}, {ms(1100), ms(5000)}, {ms(1300), ms(5200)}},
	}
	for _, c := range []struct {
		at        time.Duration
		ctrl, sim time.Duration
	}{
		{-ms(50), 0, 0},
		{0, 0, 0},
		{ms(100), ms(100), 0},
		{ms(150), ms(200), ms(100)},
		{ms(200), ms(300), ms(200)},
		{ms(900), ms(300), ms(200)},
	} {
		got := tr.used(t0.Add(c.at))
		if got[0] != c.ctrl || got[1] != c.sim {
			t.Errorf("used at %s = %s, %s; want %s, %s", c.at, got[0], got[1], c.ctrl, c.sim)
		}
	}
}

var spin int

// A real trace of this process sees the CPU it burns.
func TestTraceCPUOfThisProcess(t *testing.T) {
	self := os.Getpid()
	tr := traceCPU(10*time.Millisecond, []int{self})
	start := cpuOf(self)
	for cpuOf(self)-start < 200*time.Millisecond {
		for i := range 1_000_000 {
			spin += i
		}
	}
	tr.end()
	if got := tr.used(time.Now())[0]; got < 150*time.Millisecond {
		t.Fatalf("the trace saw %s of CPU; this process burnt at least 200ms", got)
	}
}
