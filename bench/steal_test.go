package bench

import "testing"

// The share of CPU time stolen between two readings of /proc/stat: user,
// nice, system, idle, iowait, irq, softirq and steal count; guest time
// (already in user) does not.
func TestSteal(t *testing.T) {
	a := parseSteal([]byte("cpu  100 0 50 800 10 0 10 30 7 0\ncpu0 1 2 3\n"))
	b := parseSteal([]byte("cpu  160 0 70 900 10 0 20 90 99 0\n"))
	if a != (steal{total: 1000, stolen: 30}) {
		t.Fatalf("parsed %+v, want 1000 ticks, 30 stolen", a)
	}
	if got := b.since(a); got != 0.24 {
		t.Fatalf("stolen share %v, want 0.24 (60 of 250 ticks)", got)
	}
	if got := a.since(a); got != 0 {
		t.Fatalf("no time passed: share %v, want 0", got)
	}
}
