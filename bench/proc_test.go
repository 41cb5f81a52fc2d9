package bench

import (
	"os"
	"syscall"
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
		cpu: [][]usage{{{ms(1000), 10}, {ms(5000), 0}}, {{ms(1100), 30}, {ms(5000), 0}}, {{ms(1300), 50}, {ms(5200), 4}}},
	}
	for _, c := range []struct {
		at        time.Duration
		ctrl, sim usage
	}{
		{-ms(50), usage{0, 0}, usage{0, 0}},
		{0, usage{0, 0}, usage{0, 0}},
		{ms(100), usage{ms(100), 20}, usage{0, 0}},
		{ms(150), usage{ms(200), 30}, usage{ms(100), 2}},
		{ms(200), usage{ms(300), 40}, usage{ms(200), 4}},
		{ms(900), usage{ms(300), 40}, usage{ms(200), 4}},
	} {
		got := tr.used(t0.Add(c.at))
		if got[0] != c.ctrl || got[1] != c.sim {
			t.Errorf("used at %s = %+v, %+v; want %+v, %+v", c.at, got[0], got[1], c.ctrl, c.sim)
		}
	}
}

var spin int

// A real trace of this process sees the CPU it burns.
func TestTraceCPUOfThisProcess(t *testing.T) {
	self := os.Getpid()
	tr := traceCPU(10*time.Millisecond, []int{self})
	start := usageOf(self).CPU
	for usageOf(self).CPU-start < 200*time.Millisecond {
		for i := range 1_000_000 {
			spin += i
		}
	}
	tr.end()
	if got := tr.used(time.Now())[0].CPU; got < 150*time.Millisecond {
		t.Fatalf("the trace saw %s of CPU; this process burnt at least 200ms", got)
	}
}

// Memory touched for the first time shows as minor page faults.
func TestUsageCountsFaults(t *testing.T) {
	const size = 8 << 20
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(b)
	before := usageOf(os.Getpid()).Faults
	for i := 0; i < size; i += os.Getpagesize() {
		b[i] = 1
	}
	// 2,048 faults of 4 KB pages; with transparent huge pages always on,
	// as few as four of 2 MB.
	if got := usageOf(os.Getpid()).Faults - before; got < 4 {
		t.Fatalf("touching %d MB afresh counted %d minor faults", size>>20, got)
	}
}
