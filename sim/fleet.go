// Package sim runs a simulated fleet of terminals against a real controller:
// the real terminal package (protocol, signatures, media fetch and hash
// checks, spool, replay guard) with no relay and a silent sink that holds
// each item for its duration. The fleet is enrolled in bulk through the
// API into a generated area tree and spread over worker processes, each
// dialing from its own loopback address (docs/benchmarks.md, "Fleet").
package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"dalaba/protocol"
)

// Limits of one run.
const (
	MaxTerminals = 50000
	// MaxPerProcess bounds the terminals of one worker process: a process
	// holds at most 20,000 open files here, and a terminal holds about
	// four (its connection, spool, replay guard and alerts in flight).
	MaxPerProcess = 4000
	enrollBatch   = 1000
)

// Options describe a fleet run.
type Options struct {
	API        string // http(s):// address of the controller
	Token      string // enrolls the terminals: an admin or technician token
	AlertToken string // sends the test alert: an officer's token (default Token)
	Terminal   string // ws(s):// terminal endpoint (default: from API)
	County     string // 12-digit county code the area tree is made under

	N          int // terminals
	Townships  int // generated townships (1..99), each with Villages villages
	Villages   int // 1..799
	PerProcess int // terminals per worker process
	RampPerSec int // new connections per second, per worker
	DataRoot   string

	Audio     []byte // the test alert's audio; nil sends no alert
	AudioName string
	// Bound is the longest the whole run may take; everything it started
	// is stopped by then.
	Bound time.Duration
	// Spawn returns a command that runs RunWorker (stdin: job, stdout:
	// events); nil runs the workers in this process.
	Spawn func() *exec.Cmd
	// Progress receives a line a second while the fleet ramps up.
	Progress io.Writer
}

// Validate checks the options, naming the flag at fault.
func (o *Options) Validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if u, err := url.Parse(o.API); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("--url: %q must be the controller's http:// or https:// address", o.API)
	}
	if o.Token == "" {
		bad("--token: an admin or technician API token is required to enroll the fleet")
	}
	if protocol.ValidAreaCode(o.County) != nil || protocol.AreaLevelPrefix(o.County) != o.County[:6] {
		bad("--county: %q must be a county code (6 digits then 000000, e.g. 450224000000)", o.County)
	}
	if o.N < 1 || o.N > MaxTerminals {
		bad("-n: %d terminals is outside 1..%d", o.N, MaxTerminals)
	}
	if o.Townships < 1 || o.Townships > 99 {
		bad("--townships: %d is outside 1..99", o.Townships)
	}
	if o.Villages < 1 || o.Villages > 799 {
		bad("--villages: %d is outside 1..799", o.Villages)
	}
	if o.PerProcess < 1 || o.PerProcess > MaxPerProcess {
		bad("--per-process: %d is outside 1..%d (a process holds at most 20,000 open files, a terminal about four)", o.PerProcess, MaxPerProcess)
	}
	if o.RampPerSec < 1 || o.RampPerSec > 100000 {
		bad("--ramp: %d connections per second is outside 1..100000", o.RampPerSec)
	}
	if o.Bound < 10*time.Second || o.Bound > 24*time.Hour {
		bad("--bound: %s is outside 10s..24h", o.Bound)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// terminalURL is the terminal endpoint beside the API address.
func (o *Options) terminalURL() string {
	if o.Terminal != "" {
		return o.Terminal
	}
	u, _ := url.Parse(o.API)
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.Path = "/v1/terminal"
	return u.String()
}

// Summary is what a run found.
type Summary struct {
	Terminals int           // asked for
	Processes int           // worker processes
	Online    int           // connected at the end of the ramp-up
	Failed    []string      // terminals that stopped with an error
	RampUp    time.Duration // until every terminal was online
	Enroll    time.Duration // bulk enrollment through the API

	AlertID  string
	Accepted time.Time       // the API accepted the alert
	Playing  []time.Duration // per terminal, accept → first sound, sorted
	Paused   []time.Duration // per terminal whose audio paused waiting for its media, how long in all, sorted
	Counts   map[string]int  // the controller's deliveries by state
	Done     time.Duration   // accept → every delivery done
}

// Run enrolls and runs the fleet, sends the test alert if there is one,
// and stops everything it started before returning.
func Run(ctx context.Context, o Options) (*Summary, error) {
	fl, err := Start(ctx, o)
	if fl == nil {
		return nil, err
	}
	defer fl.Stop()
	sum := fl.Summary()
	if err != nil || o.Audio == nil {
		return sum, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Bound)
	defer cancel()
	a, err := fl.Alert(ctx, o.Audio, o.AudioName)
	if a != nil {
		sum.AlertID, sum.Accepted, sum.Playing, sum.Paused, sum.Counts, sum.Done = a.ID, a.Accepted, a.Playing, a.Paused, a.Counts, a.Done
	}
	return sum, err
}

// Fleet is a running simulated fleet. Everything it started stops on
// Stop, or by itself once Options.Bound has passed.
type Fleet struct {
	o         Options
	f         *fleet
	townships []string
	sum       Summary
	timer     *time.Timer
	cleanup   func()
	once      sync.Once
}

// Start enrolls the fleet, starts its workers and waits until every
// terminal is online (or the bound passes: then it returns the fleet, to
// be stopped, with an error).
func Start(ctx context.Context, o Options) (*Fleet, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.AlertToken == "" {
		o.AlertToken = o.Token
	}
	fl := &Fleet{o: o, cleanup: func() {}}
	fl.sum.Terminals = o.N
	if o.DataRoot == "" {
		root, err := os.MkdirTemp(tmpfs(), "dalaba-sim-")
		if err != nil {
			return nil, fmt.Errorf("data folder: %w", err)
		}
		fl.o.DataRoot, fl.cleanup = root, func() { os.RemoveAll(root) }
	}
	fl.f = newFleet(fl.o)
	fl.timer = time.AfterFunc(o.Bound, fl.Stop)
	ctx, cancel := context.WithTimeout(ctx, o.Bound)
	defer cancel()
	api := newAPI(o.API, o.Token)
	townships, villages, err := makeAreas(ctx, api, o)
	if err != nil {
		return fl, err
	}
	fl.townships = townships
	begin := time.Now()
	members, err := enroll(ctx, api, villages, o.N)
	if err != nil {
		return fl, err
	}
	fl.sum.Enroll = time.Since(begin)
	fmt.Fprintf(o.Progress, "enrolled %d terminals in %d villages of %d townships (%s)\n", o.N, len(villages), len(townships), fl.sum.Enroll.Round(time.Millisecond))
	if err := fl.f.start(ctx, members); err != nil {
		return fl, err
	}
	fl.sum.Processes = len(fl.f.procs)
	begin = time.Now()
	fl.sum.Online = fl.f.waitOnline(ctx, o.N, o.Progress)
	fl.sum.RampUp = time.Since(begin)
	fl.sum.Failed = fl.f.failures()
	if fl.sum.Online < o.N {
		return fl, fmt.Errorf("only %d of %d terminals came online within the bound (%s)", fl.sum.Online, o.N, o.Bound)
	}
	return fl, nil
}

// Summary returns what the start-up found.
func (fl *Fleet) Summary() *Summary { s := fl.sum; return &s }

// Online counts the terminals connected now.
func (fl *Fleet) Online() int {
	fl.f.mu.Lock()
	defer fl.f.mu.Unlock()
	return len(fl.f.up)
}

// WaitOnline waits until n terminals are connected or ctx ends.
func (fl *Fleet) WaitOnline(ctx context.Context, n int) int {
	return fl.f.waitOnline(ctx, n, fl.o.Progress)
}

// WaitPlays waits until the fleet's terminals have begun playing n times
// in all, counting each terminal once per alert, or ctx ends.
func (fl *Fleet) WaitPlays(ctx context.Context, n int) {
	for {
		fl.f.mu.Lock()
		plays, ch := 0, fl.f.changed
		for _, m := range fl.f.plays {
			plays += len(m)
		}
		fl.f.mu.Unlock()
		if plays >= n {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// Pids lists the worker processes (none when workers run in this process).
func (fl *Fleet) Pids() []int {
	var out []int
	for _, p := range fl.f.procs {
		if p.cmd != nil && p.cmd.Process != nil {
			out = append(out, p.cmd.Process.Pid)
		}
	}
	return out
}

// Stop stops every worker and removes the fleet's data folder.
func (fl *Fleet) Stop() {
	fl.once.Do(func() {
		fl.timer.Stop()
		fl.f.stop()
		fl.cleanup()
	})
}

// tmpfs is where terminals' data folders go by default: a memory file
// system, so that thousands of spools and replay guards cost no disk
// writes (an fsync there returns at once).
func tmpfs() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// makeAreas puts townships 9xx and their villages under the county, so
// that simulated terminals stay apart from real ones.
func makeAreas(ctx context.Context, a *api, o Options) (townships, villages []string, err error) {
	var have []struct {
		Code string `json:"code"`
	}
	if err := a.do(ctx, "GET", "/api/v1/areas", nil, &have); err != nil {
		return nil, nil, err
	}
	exists := map[string]bool{}
	for _, h := range have {
		exists[h.Code] = true
	}
	if !exists[o.County] {
		return nil, nil, fmt.Errorf("--county: %s is not in the controller's area tree", o.County)
	}
	put := func(code, name, parent string) error {
		if exists[code] {
			return nil
		}
		return a.do(ctx, "POST", "/api/v1/areas", map[string]string{"code": code, "name": name, "parent": parent}, nil)
	}
	for t := range o.Townships {
		tc := fmt.Sprintf("%s%03d000", o.County[:6], 900+t)
		if err := put(tc, fmt.Sprintf("模拟镇%d", t+1), o.County); err != nil {
			return nil, nil, err
		}
		townships = append(townships, tc)
		for v := range o.Villages {
			vc := fmt.Sprintf("%s%03d", tc[:9], 201+v)
			if err := put(vc, fmt.Sprintf("模拟%d镇%d村", t+1, v+1), tc); err != nil {
				return nil, nil, err
			}
			villages = append(villages, vc)
		}
	}
	return townships, villages, nil
}

// enroll creates n terminals spread over the villages, in bulk.
func enroll(ctx context.Context, a *api, villages []string, n int) ([]Member, error) {
	type item struct {
		AreaCode string `json:"area_code"`
		Name     string `json:"name"`
	}
	var out []Member
	for start := 0; start < n; start += enrollBatch {
		var req struct {
			Terminals []item `json:"terminals"`
		}
		for i := start; i < min(start+enrollBatch, n); i++ {
			req.Terminals = append(req.Terminals, item{AreaCode: villages[i%len(villages)], Name: fmt.Sprintf("模拟终端%d", i+1)})
		}
		var res []struct {
			EnrollToken string `json:"enroll_token"`
		}
		if err := a.do(ctx, "POST", "/api/v1/terminals/bulk", req, &res); err != nil {
			return nil, fmt.Errorf("enroll terminals %d..%d: %w", start+1, start+len(req.Terminals), err)
		}
		for i, r := range res {
			out = append(out, Member{Index: start + i, Name: req.Terminals[i].Name, Token: r.EnrollToken})
		}
	}
	return out, nil
}

// fleet is the running worker processes and what they reported.
type fleet struct {
	o     Options
	procs []*proc

	mu      sync.Mutex
	up      map[int]bool
	plays   map[string]map[int]time.Time     // EBM id → terminal → first sound
	fetches map[string]map[int]time.Time     // EBM id → terminal → its media fetch began
	pauses  map[string]map[int]time.Duration // EBM id → terminal → how long its audio waited for media
	exits   map[int]string
	changed chan struct{} // closed and replaced on every event
}

// proc is one worker: a child process, or goroutines of this one.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

func newFleet(o Options) *fleet {
	return &fleet{o: o, up: map[int]bool{}, plays: map[string]map[int]time.Time{}, fetches: map[string]map[int]time.Time{}, pauses: map[string]map[int]time.Duration{}, exits: map[int]string{}, changed: make(chan struct{})}
}

// start runs one worker per PerProcess terminals, each dialing from its
// own loopback address (127.0.0.2..127.0.0.9).
func (f *fleet) start(ctx context.Context, members []Member) error {
	for k := 0; k*f.o.PerProcess < len(members); k++ {
		share := members[k*f.o.PerProcess : min((k+1)*f.o.PerProcess, len(members))]
		job := Job{Controller: f.o.terminalURL(), DataRoot: f.o.DataRoot, RampPerSec: f.o.RampPerSec, Members: share}
		if h, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(job.Controller, "ws://"), "wss://"), ":"); strings.HasPrefix(h, "127.") || h == "localhost" {
			job.SourceAddr = fmt.Sprintf("127.0.0.%d", 2+k%8)
		}
		p, err := f.spawn(ctx, job)
		if err != nil {
			return fmt.Errorf("start worker %d: %w", k+1, err)
		}
		f.procs = append(f.procs, p)
	}
	return nil
}

func (f *fleet) spawn(ctx context.Context, job Job) (*proc, error) {
	p := &proc{done: make(chan error, 1)}
	jobR, jobW := io.Pipe()
	evR, evW := io.Pipe()
	if f.o.Spawn == nil {
		go func() {
			err := RunWorker(context.WithoutCancel(ctx), jobR, evW)
			evW.Close()
			p.done <- err
		}()
		p.stdin = jobW
	} else {
		p.cmd = f.o.Spawn()
		p.cmd.Stdin, p.cmd.Stdout = jobR, evW
		if p.cmd.Stderr == nil {
			p.cmd.Stderr = os.Stderr
		}
		if err := p.cmd.Start(); err != nil {
			return nil, err
		}
		p.stdin = jobW
		go func() {
			err := p.cmd.Wait()
			jobR.Close()
			evW.Close()
			p.done <- err
		}()
	}
	go func() {
		if err := json.NewEncoder(jobW).Encode(job); err != nil {
			jobW.CloseWithError(err)
		}
	}()
	go f.read(evR)
	return p, nil
}

// read takes a worker's events until it ends.
func (f *fleet) read(r io.Reader) {
	dec := json.NewDecoder(r)
	for {
		var e event
		if err := dec.Decode(&e); err != nil {
			io.Copy(io.Discard, r)
			return
		}
		f.mu.Lock()
		switch e.Kind {
		case "up":
			f.up[e.Index] = true
		case "down":
			delete(f.up, e.Index)
		case "play":
			firstTime(f.plays, e)
		case "fetch":
			firstTime(f.fetches, e)
		case "pause":
			if f.pauses[e.ID] == nil {
				f.pauses[e.ID] = map[int]time.Duration{}
			}
			f.pauses[e.ID][e.Index] += time.Duration(e.At)
		case "exit":
			f.exits[e.Index] = e.Err
		}
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
	}
}

// waitOnline waits until n terminals are connected or ctx ends, printing
// progress each second, and returns how many are.
func (f *fleet) waitOnline(ctx context.Context, n int, progress io.Writer) int {
	begin := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		f.mu.Lock()
		online, failed, ch := len(f.up), len(f.exits), f.changed
		f.mu.Unlock()
		if online >= n || online+failed >= n && failed > 0 {
			fmt.Fprintf(progress, "online %d/%d after %s\n", online, n, time.Since(begin).Round(time.Millisecond))
			return online
		}
		select {
		case <-ch:
		case <-tick.C:
			fmt.Fprintf(progress, "ramping up: %d/%d online, %d failed (%s)\n", online, n, failed, time.Since(begin).Round(time.Second))
		case <-ctx.Done():
			return online
		}
	}
}

// firstTime records the first time of e's kind for its terminal and alert.
func firstTime(m map[string]map[int]time.Time, e event) {
	if m[e.ID] == nil {
		m[e.ID] = map[int]time.Time{}
	}
	if _, ok := m[e.ID][e.Index]; !ok {
		m[e.ID][e.Index] = time.Unix(0, e.At)
	}
}

// played returns, for alert id, when each terminal began to fetch its
// media, when each first sounded it, and how long the audio of those whose
// audio paused for its media waited.
func (f *fleet) played(id string) (fetches, plays map[int]time.Time, pauses map[int]time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.fetches[id]), maps.Clone(f.plays[id]), maps.Clone(f.pauses[id])
}

func (f *fleet) failures() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for i, err := range f.exits {
		out = append(out, fmt.Sprintf("terminal %d: %s", i, err))
	}
	slices.Sort(out)
	return out
}

// stop closes every worker's input, which stops it, and waits a bounded
// time; a worker still running then is killed.
func (f *fleet) stop() {
	for _, p := range f.procs {
		p.stdin.Close()
	}
	deadline := time.After(stopWait + 5*time.Second)
	for _, p := range f.procs {
		select {
		case <-p.done:
		case <-deadline:
			if p.cmd != nil && p.cmd.Process != nil {
				p.cmd.Process.Kill()
				<-p.done
			}
		}
	}
}
