package bench

import (
	"testing"
	"time"
)

// Median takes each size's median of every run's figures, the idle
// fleet's among them; the storm (run once per bench) comes from the first.
func TestMedian(t *testing.T) {
	rs := []Result{
		{N: 5, P99: 3 * time.Second, IdleCPU: 0.09, IdleRSSPerTerm: 300, IdleSwitches: 900, BytesRatio: 1.02, StormBack: time.Minute},
		{N: 5, P99: 1 * time.Second, IdleCPU: 0.05, IdleRSSPerTerm: 100, IdleSwitches: 500, BytesRatio: 1.01},
		{N: 5, P99: 2 * time.Second, IdleCPU: 0.07, IdleRSSPerTerm: 200, IdleSwitches: 700, BytesRatio: 1.03},
		{N: 9, P99: 4 * time.Second, IdleCPU: 0.11},
	}
	med := Median(rs)
	if len(med) != 2 || med[0].N != 5 || med[1].N != 9 {
		t.Fatalf("Median gave sizes %+v, want 5 and 9 in order", med)
	}
	m := med[0]
	if m.P99 != 2*time.Second || m.IdleCPU != 0.07 || m.IdleRSSPerTerm != 200 || m.IdleSwitches != 700 || m.BytesRatio != 1.02 {
		t.Errorf("medians of 5: p99 %s, idle CPU %v, idle RSS %v, switches %v, bytes %v; want 2s, 0.07, 200, 700, 1.02",
			m.P99, m.IdleCPU, m.IdleRSSPerTerm, m.IdleSwitches, m.BytesRatio)
	}
	if m.StormBack != time.Minute {
		t.Errorf("storm of 5 = %s, want the first run's 1m0s", m.StormBack)
	}
	if med[1].IdleCPU != 0.11 {
		t.Errorf("a size run once keeps its figures: idle CPU %v, want 0.11", med[1].IdleCPU)
	}
}
