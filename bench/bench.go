// Package bench measures a Dalaba controller against a simulated fleet
// (sim/) on this machine: fan-out time against a static file server's,
// bytes per terminal, the idle fleet's memory and CPU, and a reconnect
// storm. cmd/dalaba-bench runs it; results and how to reproduce them are
// in docs/benchmarks.md.
package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"dalaba/protocol"
	"dalaba/sim"
)

// Options choose what to run.
type Options struct {
	Sizes      []int         // fleet sizes
	Runs       int           // runs per size; medians are reported
	Idle       time.Duration // idle window for RSS and heartbeat CPU (0: skip)
	Storm      bool          // a reconnect storm at the largest size
	PerProcess int           // simulated terminals per worker process
	Audio      []byte        // the alert's MP3
	Out        string        // folder for results.csv and fanout.svg
	Self       string        // this program (runs workers, the controller, the floor server)
	Log        io.Writer
}

// Result is one run at one size.
type Result struct {
	N                  int
	Load               string // uptime's load averages when the run began
	RampUp             time.Duration
	P50, P99, Max      time.Duration // accept → playing
	CmdP50, CmdP99     time.Duration // accept → the command verified and the fetch begun
	Paused             int           // terminals whose audio paused waiting for its media
	PausedMax          time.Duration // the longest such pause, in all, of one terminal
	AlertCPUCtrl       time.Duration // CPU the controller used from sending the alert to every delivery done
	AlertCPUSim        time.Duration // CPU the simulator's workers used in that time
	PlayCPUCtrl        time.Duration // CPU the controller used from sending the alert to the last terminal playing
	PlayCPUSim         time.Duration // CPU the simulator's workers used in that time
	FloorCPUServer     time.Duration // CPU the floor's file server used until the last client had the file
	FloorCPUClients    time.Duration // CPU its clients used in that time
	PlayFaultsCtrl     int64         // the controller's minor page faults from sending the alert to the last terminal playing
	PlayFaultsSim      int64         // the simulator's workers' in that time
	FloorFaultsServer  int64         // the floor's file server's until the last client had the file
	FloorFaultsClients int64         // its clients' in that time
	FloorP50, FloorP99 time.Duration // the same file from http.FileServer
	FloorMax           time.Duration
	// Ratio is P99 ÷ FloorP99 of this run, both measured on the machine
	// as it was then; in a size's medians (Median), the median of its
	// runs' ratios.
	Ratio              float64
	BytesRatio         float64 // bytes of messages to terminals per terminal / media size
	RepeatFetched      int     // terminals that fetched the media of the repeated alert
	RepeatBytesPerTerm float64
	IdleRSSPerTerm     float64       // bytes
	IdleCPU            float64       // share of one core
	IdleSwitches       float64       // the controller's context switches per second
	StormBack          time.Duration // restart → every terminal connected again
	StormResumed       time.Duration // restart → every terminal playing the alert issued during the storm
	StormPending       int           // deliveries of that alert done
	StormPeakCPU       float64
	StormPeakRSS       int64
}

// Run runs every size Runs times and returns the results.
func Run(ctx context.Context, o Options) ([]Result, error) {
	var out []Result
	largest := slices.Max(o.Sizes)
	for _, n := range o.Sizes {
		for r := range o.Runs {
			fmt.Fprintf(o.Log, "== %d terminals, run %d of %d (load %s)\n", n, r+1, o.Runs, loadavg())
			res, err := runOne(ctx, o, n, o.Idle > 0, r == 0 && o.Storm && n == largest)
			if err != nil {
				return out, fmt.Errorf("%d terminals, run %d: %w", n, r+1, err)
			}
			fmt.Fprintf(o.Log, "   %+v\n", res) // everything, in case a later run fails
			out = append(out, res)
		}
	}
	return out, nil
}

func runOne(ctx context.Context, o Options, n int, idle, storm bool) (Result, error) {
	res := Result{N: n, Load: loadavg()}
	dir, err := os.MkdirTemp("", "dalaba-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	ctrl, err := newController(ctx, o.Self, filepath.Join(dir, "controller"))
	if err != nil {
		return res, err
	}
	if err := ctrl.start(ctx); err != nil {
		return res, err
	}
	defer func() { ctrl.stop() }()
	before, _ := readProc(ctrl.pid())
	fl, err := sim.Start(ctx, sim.Options{API: ctrl.base, Token: ctrl.admin, AlertToken: ctrl.officer, County: County,
		N: n, Townships: 10, Villages: 20, PerProcess: o.PerProcess, RampPerSec: 2000, Bound: 30 * time.Minute,
		Spawn: func() *exec.Cmd { return exec.Command(o.Self, "worker") }, Progress: io.Discard})
	if fl != nil {
		defer fl.Stop()
	}
	if err != nil {
		return res, err
	}
	res.RampUp = fl.Summary().RampUp
	// Pings come every 2 s in a connection's first minute, while its clock
	// estimate settles: measure after that, the idle fleet and the alert
	// alike (a fleet in the field has been connected for longer).
	fmt.Fprintf(o.Log, "   settling %s\n", settle)
	sleep(ctx, settle)
	profile := os.Getenv("DALABA_BENCH_PROFILE") != "" // sigprof: CPU profiles of the idle window and the alert
	if idle {
		fmt.Fprintf(o.Log, "   idle: measuring %s\n", o.Idle)
		a, _ := readProc(ctrl.pid())
		if profile { // the controller's alone: the first profile of its process
			signalAll(syscall.SIGUSR2, ctrl.pid())
		}
		sleep(ctx, o.Idle)
		if profile {
			signalAll(syscall.SIGUSR2, ctrl.pid())
		}
		b, _ := readProc(ctrl.pid())
		res.IdleRSSPerTerm = float64(b.RSS-before.RSS) / float64(n)
		res.IdleCPU = (b.CPU - a.CPU).Seconds() / o.Idle.Seconds()
		res.IdleSwitches = float64(b.Switches-a.Switches) / o.Idle.Seconds()
	}
	w0, _ := ctrl.sent()
	c0, s0 := usageOf(ctrl.pid()).CPU, usageOf(fl.Pids()...).CPU
	if profile {
		signalAll(syscall.SIGUSR2, append(fl.Pids(), ctrl.pid())...)
	}
	fmt.Fprintf(o.Log, "   alert at %s\n", time.Now().Format("15:04:05.000"))
	steal0 := readSteal()
	trace := traceCPU(50*time.Millisecond, []int{ctrl.pid()}, fl.Pids())
	actx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	if profile { // until the last terminal plays: the stretch the fan-out's times measure
		go func() {
			fl.WaitPlays(actx, n)
			signalAll(syscall.SIGUSR2, append(fl.Pids(), ctrl.pid())...)
		}()
	}
	a, err := fl.Alert(actx, o.Audio, "bench.mp3")
	cancel()
	trace.end()
	res.Load += fmt.Sprintf(", steal %.0f%%", 100*readSteal().since(steal0))
	if err != nil {
		return res, err
	}
	res.AlertCPUCtrl, res.AlertCPUSim = usageOf(ctrl.pid()).CPU-c0, usageOf(fl.Pids()...).CPU-s0
	w1, _ := ctrl.sent()
	res.P50, res.P99, res.Max = sim.Quantile(a.Playing, 0.5), sim.Quantile(a.Playing, 0.99), sim.Quantile(a.Playing, 1)
	res.CmdP50, res.CmdP99 = sim.Quantile(a.Fetching, 0.5), sim.Quantile(a.Fetching, 0.99)
	fmt.Fprintf(o.Log, "   fetching and playing at p10 p50 p90 p95 p98 p99 max: %s; %s\n", quantiles(a.Fetching), quantiles(a.Playing))
	res.BytesRatio = float64(w1-w0) / float64(n) / float64(len(o.Audio))
	res.Paused, res.PausedMax = len(a.Paused), sim.Quantile(a.Paused, 1)
	if len(a.Playing) != n {
		return res, fmt.Errorf("%d of %d terminals reported playing", len(a.Playing), n)
	}
	used := trace.used(a.Accepted.Add(a.Playing[n-1]))
	res.PlayCPUCtrl, res.PlayCPUSim = used[0].CPU, used[1].CPU
	res.PlayFaultsCtrl, res.PlayFaultsSim = used[0].Faults, used[1].Faults
	actx, cancel = context.WithTimeout(ctx, 5*time.Minute)
	again, err := fl.Alert(actx, o.Audio, "bench.mp3")
	cancel()
	if err != nil {
		return res, fmt.Errorf("repeated alert: %w", err)
	}
	w2, _ := ctrl.sent()
	res.RepeatFetched = again.Fetched
	res.RepeatBytesPerTerm = float64(w2-w1) / float64(n)
	fmt.Fprintf(o.Log, "   fan-out: %+v\n", res) // in case the storm fails
	if storm {
		fmt.Fprintf(o.Log, "   reconnect storm: restarting the controller under %d terminals, with an alert for all of them\n", n)
		stopping := time.Now()
		ctrl.stop()
		fmt.Fprintf(o.Log, "   the controller stopped in %s\n", time.Since(stopping).Round(time.Millisecond))
		begin := time.Now()
		if err := ctrl.start(ctx); err != nil {
			return res, err
		}
		s := sample(ctrl.pid(), 100*time.Millisecond)
		sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		// An alert issued as soon as the controller answers, while the
		// terminals are still away: each must get it when it is back.
		pending := make(chan error, 1)
		var pa *sim.AlertResult
		go func() {
			var err error
			pa, err = fl.AlertMedia(sctx, again.Media)
			pending <- err
		}()
		// The fleet's count drops as terminals notice, then climbs back.
		for fl.Online() == n && time.Since(begin) < 30*time.Second && sctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		allBack := make(chan struct{})
		go stormProgress(o.Log, fl, n, begin, allBack)
		back := fl.WaitOnline(sctx, n)
		close(allBack)
		res.StormBack = time.Since(begin)
		s.end()
		res.StormPeakCPU, res.StormPeakRSS = s.max, s.peak.RSS
		if back < n {
			return res, fmt.Errorf("reconnect storm: %d of %d back", back, n)
		}
		if err := <-pending; err != nil {
			return res, fmt.Errorf("reconnect storm: the alert issued during it: %w", err)
		}
		if len(pa.Playing) != n {
			return res, fmt.Errorf("reconnect storm: %d of %d terminals played the alert issued during it", len(pa.Playing), n)
		}
		res.StormResumed = pa.Accepted.Add(pa.Playing[n-1]).Sub(begin)
		res.StormPending = pa.Counts[protocol.DeliveryDone] // every one done, or Alert failed
		fmt.Fprintf(o.Log, "   storm: back %s, all playing %s, peak %.2f cores, %d MB\n", res.StormBack, res.StormResumed, res.StormPeakCPU, res.StormPeakRSS>>20)
	}
	fl.Stop()
	ctrl.stop()
	fr, err := floor(ctx, o.Self, n, o.Audio)
	if err != nil {
		return res, err
	}
	res.FloorP50, res.FloorP99, res.FloorMax = sim.Quantile(fr.times, 0.5), sim.Quantile(fr.times, 0.99), sim.Quantile(fr.times, 1)
	res.FloorCPUServer, res.FloorCPUClients = fr.server.CPU, fr.clients.CPU
	res.FloorFaultsServer, res.FloorFaultsClients = fr.server.Faults, fr.clients.Faults
	res.Ratio = res.floorRatio()
	return res, nil
}

// floorRatio is r's P99 ÷ FloorP99.
func (r Result) floorRatio() float64 { return float64(r.P99) / float64(max(r.FloorP99, 1)) }

func signalAll(sig syscall.Signal, pids ...int) {
	for _, pid := range pids {
		syscall.Kill(pid, sig)
	}
}

// settle is how long a fleet stays up before anything is measured: the
// last terminal's first minute, in which it pings every 2 s.
const settle = 62 * time.Second

// stormProgress says every 10 s how many of the n terminals are back since
// the restart at begin, until done: the shape of a slow storm (a first half
// at one pace, a tail at another) shows without a build of its own.
func stormProgress(w io.Writer, fl *sim.Fleet, n int, begin time.Time, done <-chan struct{}) {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			fmt.Fprintf(w, "   storm +%s: %d of %d back\n", time.Since(begin).Round(time.Second), fl.Online(), n)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// steal is the machine's CPU time, and the part of it the hypervisor gave
// to other guests (/proc/stat, in clock ticks): on a shared virtual
// machine every figure moves with it.
type steal struct{ total, stolen int64 }

func readSteal() steal {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return steal{}
	}
	return parseSteal(b)
}

// parseSteal reads the machine's line of /proc/stat.
func parseSteal(b []byte) steal {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	var s steal
	for i, f := range bytes.Fields(line)[1:] {
		v, _ := strconv.ParseInt(string(f), 10, 64)
		if i < 8 { // user … steal; guest time is counted in user already
			s.total += v
		}
		if i == 7 {
			s.stolen = v
		}
	}
	return s
}

// since is the share of the machine's CPU time stolen since b.
func (s steal) since(b steal) float64 {
	if s.total <= b.total {
		return 0
	}
	return float64(s.stolen-b.stolen) / float64(s.total-b.total)
}

// loadavg is the machine's 1, 5 and 15 minute load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := bytes.Fields(b)
	return string(bytes.Join(f[:3], []byte(" ")))
}

// quantiles is the tail of sorted, for the log: a fan-out's slowest
// terminals may be a wave of their own rather than the end of one spread.
func quantiles(sorted []time.Duration) string {
	var b strings.Builder
	for i, q := range []float64{0.1, 0.5, 0.9, 0.95, 0.98, 0.99, 1} {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(sim.Quantile(sorted, q).Round(10 * time.Millisecond).String())
	}
	return b.String()
}
