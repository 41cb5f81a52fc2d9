package bench

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// procStat is what /proc tells about one process.
type procStat struct {
	RSS      int64         // resident bytes
	CPU      time.Duration // user + system time so far
	At       time.Time     // when CPU was read
	Switches int64         // context switches of all its threads so far
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

func readProc(pid int) (procStat, error) {
	var ps procStat
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			ps.RSS = kb << 10
		}
	}
	u, err := statUsage(pid)
	if err != nil {
		return ps, err
	}
	ps.CPU = u.CPU
	ps.At = time.Now()
	ps.Switches = switches(pid)
	return ps, nil
}

// switches sums the voluntary and involuntary context switches of every
// thread of the process: a thread woken to do little costs its process
// two, so they count the wake-ups that an idle fleet's CPU goes to.
func switches(pid int) int64 {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var sum int64
	for _, t := range tasks {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(status), "\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches" {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				sum += n
			}
		}
	}
	return sum
}

// usage is what processes have used so far.
type usage struct {
	CPU time.Duration // user + system time
	// Faults counts minor page faults: pages touched for the first time
	// since they were mapped. On this machine's hypervisor each costs
	// about 16 µs of CPU (docs/benchmarks.md), so memory a process takes
	// afresh is a cost of its own.
	Faults int64
}

func (u usage) sub(v usage) usage { return usage{u.CPU - v.CPU, u.Faults - v.Faults} }

// usageOf is what the processes have used so far.
func usageOf(pids ...int) usage {
	var sum usage
	for _, pid := range pids {
		u, _ := statUsage(pid)
		sum.CPU += u.CPU
		sum.Faults += u.Faults
	}
	return sum
}

// sampler samples a process every interval and keeps the peaks.
type sampler struct {
	stop chan struct{}
	done chan struct{}
	peak procStat      // highest RSS seen
	cpu  time.Duration // CPU used while sampling
	max  float64       // highest CPU use over one interval, in cores
}

func sample(pid int, every time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		first, _ := readProc(pid)
		last := first
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				s.cpu = last.CPU - first.CPU
				return
			case <-t.C:
			}
			ps, err := readProc(pid)
			if err != nil {
				continue
			}
			// Over the time between the two readings of the CPU time, not
			// between the samples' ends: reading every thread's switches
			// can take longer than the interval in a busy process, and a
			// peak of 7.78 cores on two was measured so. A stretch much
			// shorter than the interval is too short for the CPU time's
			// 10 ms ticks; it is left to the next sample.
			s.peak.RSS = max(s.peak.RSS, ps.RSS)
			d := ps.At.Sub(last.At)
			if d < every/2 {
				continue
			}
			s.max = max(s.max, (ps.CPU-last.CPU).Seconds()/d.Seconds())
			last = ps
		}
	}()
	return s
}

func (s *sampler) end() *sampler { close(s.stop); <-s.done; return s }

// cpuTrace samples the usage of groups of processes, so that what each
// group had used by a given instant can be read once it is known (when
// the last terminal of a fan-out played, say).
type cpuTrace struct {
	stop chan struct{}
	done chan struct{}
	at   []time.Time
	cpu  [][]usage // per sample, per group
}

// traceCPU samples the groups every interval from now until end.
func traceCPU(every time.Duration, groups ...[]int) *cpuTrace {
	tr := &cpuTrace{stop: make(chan struct{}), done: make(chan struct{})}
	read := func() {
		s := make([]usage, len(groups))
		for i, g := range groups {
			s[i] = usageOf(g...)
		}
		tr.at, tr.cpu = append(tr.at, time.Now()), append(tr.cpu, s)
	}
	read()
	go func() {
		defer close(tr.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-tr.stop:
				read()
				return
			case <-t.C:
				read()
			}
		}
	}()
	return tr
}

func (tr *cpuTrace) end() *cpuTrace { close(tr.stop); <-tr.done; return tr }

// used returns what each group used from the first sample to t, read
// between the samples around it (the kernel counts CPU in 10 ms ticks, so
// a figure is good to about that much per process).
func (tr *cpuTrace) used(t time.Time) []usage {
	i := max(sort.Search(len(tr.at), func(i int) bool { return !tr.at[i].Before(t) }), 1)
	i = min(i, len(tr.at)-1)
	a, b := tr.at[i-1], tr.at[i]
	f := 1.0
	if span := b.Sub(a); span > 0 {
		f = min(max(float64(t.Sub(a))/float64(span), 0), 1)
	}
	out := make([]usage, len(tr.cpu[0]))
	for g := range out {
		lo, hi := tr.cpu[i-1][g], tr.cpu[i][g]
		out[g] = usage{
			CPU:    lo.CPU + time.Duration(f*float64(hi.CPU-lo.CPU)) - tr.cpu[0][g].CPU,
			Faults: lo.Faults + int64(f*float64(hi.Faults-lo.Faults)) - tr.cpu[0][g].Faults,
		}
	}
	return out
}

// statUsage is the user and system time and the minor page faults of a
// process so far.
func statUsage(pid int) (usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return usage{}, err
	}
	// Fields after the command name (which may hold spaces) in parentheses,
	// from the state (proc(5)'s field 3): minflt is field 10, utime 14 and
	// stime 15.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	if len(f) <= 12 {
		return usage{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	minflt, _ := strconv.ParseInt(f[7], 10, 64)
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return usage{CPU: time.Duration(ut+st) * time.Second / clockTicks, Faults: minflt}, nil
}
