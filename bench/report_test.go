package bench

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
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

// The ratio to the floor is given two ways: of the medians, and as the
// median of the runs' own ratios, which can differ a lot when the floor
// moves between runs (2026-11-29 at 15,000: 1.47 against 1.15).
func TestRatioOfMediansAndOfRuns(t *testing.T) {
	run := func(p99, floor time.Duration) Result {
		return Result{N: 15000, P99: p99, FloorP99: floor, Ratio: float64(p99) / float64(floor)}
	}
	rs := []Result{run(7636*time.Millisecond, 3305*time.Millisecond), run(5987*time.Millisecond, 5200*time.Millisecond), run(4539*time.Millisecond, 4078*time.Millisecond)}
	med := Median(rs)
	if got := med[0].Ratio; got < 1.14 || got > 1.16 {
		t.Fatalf("median of the runs' ratios = %.3f, want 1.15 (5.987 s ÷ 5.200 s)", got)
	}
	var out bytes.Buffer
	Print(&out, med, len(rs))
	var row string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "15000") {
			row = l
			break
		}
	}
	if !strings.Contains(row, "1.47") || !strings.Contains(row, "1.15") {
		t.Errorf("table row %q: want the ratio of the medians (1.47) and the median of the runs' (1.15)", row)
	}
	path := filepath.Join(t.TempDir(), "results.csv")
	if err := WriteCSV(path, rs); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	last := len(rows[0]) - 1
	if rows[0][last] != "p99_floor_ratio" || rows[1][last] != "2.310" || rows[2][last] != "1.151" {
		t.Errorf("CSV's last column: %q, %q, %q; want p99_floor_ratio, 2.310, 1.151", rows[0][last], rows[1][last], rows[2][last])
	}
}
