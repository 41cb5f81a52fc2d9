package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"dalaba/internal/sigprof"
	"dalaba/terminal"
)

// Job is what one worker process runs: its share of the fleet.
type Job struct {
	Controller string   `json:"controller"`  // ws:// URL of the terminal endpoint
	DataRoot   string   `json:"data_root"`   // each terminal's data folder is DataRoot/<index>
	SourceAddr string   `json:"source_addr"` // local address to dial from, e.g. 127.0.0.3
	RampPerSec int      `json:"ramp_per_sec"`
	Output     string   `json:"output"` // audio output: hold (default), or silent to decode in real time
	Members    []Member `json:"members"`
}

// Member is one simulated terminal.
type Member struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	Token string `json:"token"` // enroll token; empty when already enrolled in its data folder
}

// event is one line a worker writes: a terminal's link went up or down, it
// started playing an alert, or it stopped with an error.
type event struct {
	Kind  string `json:"e"`            // up, down, fetch, play, pause, exit, started
	Index int    `json:"i"`            // the member's index
	ID    string `json:"id,omitempty"` // play: the EBM id
	At    int64  `json:"t,omitempty"`  // play, fetch: Unix nanoseconds; pause: nanoseconds paused
	Err   string `json:"err,omitempty"`
}

// stopWait bounds how long a worker waits for its terminals to stop.
const stopWait = 10 * time.Second

// RunWorker reads a Job from in, runs its terminals and writes events to
// out as JSON lines, until ctx ends or in is closed (the parent went away).
func RunWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	raiseFileLimit()
	sigprof.Listen(os.Getenv("DALABA_BENCH_PROFILE")) // a profile of the alert (bench/)
	// A worker is thousands of terminals in one heap, each of which on a
	// board has its own small one: collect less often than Go's default,
	// so the simulator's garbage collection does not take the processor
	// time that the controller under test and the terminal code need.
	debug.SetGCPercent(400)
	dec := json.NewDecoder(in)
	var job Job
	if err := dec.Decode(&job); err != nil {
		return fmt.Errorf("read job: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // the parent closes our stdin to stop us, or dies
		io.Copy(io.Discard, in)
		cancel()
	}()
	w := newEventWriter(out)
	defer w.close()
	// Once every member is up, collect: the ramp-up's garbage (thousands
	// of enrolments and handshakes at once) left the heap just short of
	// its goal, so that the fleet's first alert paid a collection of the
	// whole worker, every run. A fleet that has been up a while, as in the
	// field, is anywhere in its cycle.
	up := newFirstUps(len(job.Members), runtime.GC)
	var wg sync.WaitGroup
	pace := time.NewTicker(time.Second / time.Duration(max(job.RampPerSec, 1)))
	defer pace.Stop()
	for _, m := range job.Members {
		t, err := newMember(job, m, w, up)
		if err != nil {
			w.put(event{Kind: "exit", Index: m.Index, Err: err.Error()})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.Run(ctx); err != nil {
				w.put(event{Kind: "exit", Index: m.Index, Err: err.Error()})
			}
		}()
		select {
		case <-pace.C:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	w.put(event{Kind: "started", Index: -1})
	<-ctx.Done()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(stopWait):
		return fmt.Errorf("terminals did not stop within %s", stopWait)
	}
}

// newMember makes the terminal of m: no relay, the hold sink, no warm-up,
// its own key and data folder, dialing from the job's source address.
func newMember(job Job, m Member, w *eventWriter, up *firstUps) (*terminal.Terminal, error) {
	cfg := terminal.DefaultConfig()
	cfg.Controllers = []string{job.Controller}
	cfg.DataDir = filepath.Join(job.DataRoot, fmt.Sprint(m.Index))
	cfg.EnrollToken = m.Token
	cfg.Name = m.Name
	cfg.SourceAddr = job.SourceAddr
	cfg.Relay.Protocol = "none"
	cfg.Audio.Output = "hold"
	cfg.Audio.Rate = 8000
	if job.Output == "silent" { // decodes for real: the footprint benchmark
		cfg.Audio.Output, cfg.Audio.Rate = "silent", 48000
	}
	cfg.WarmupMS, cfg.TailMS = 0, 0
	cfg.CacheMaxMB = 64
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "trust.json")); err == nil {
		cfg.EnrollToken = "" // enrolled already: the pinned key is in the folder
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("terminal %d: %w", m.Index, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})).With("sim_terminal", m.Index)
	t := terminal.New(cfg, log)
	t.SetHooks(terminal.Hooks{
		Link: func(linked bool) {
			kind := "down"
			if linked {
				kind = "up"
				up.saw(m.Index)
			}
			w.put(event{Kind: kind, Index: m.Index})
		},
		Playing:  func(id string) { w.put(event{Kind: "play", Index: m.Index, ID: id, At: time.Now().UnixNano()}) },
		Fetching: func(id string) { w.put(event{Kind: "fetch", Index: m.Index, ID: id, At: time.Now().UnixNano()}) },
		Paused:   func(id string, d time.Duration) { w.put(event{Kind: "pause", Index: m.Index, ID: id, At: int64(d)}) },
	})
	return t, nil
}

// firstUps calls done once every one of n members has been up.
type firstUps struct {
	mu   sync.Mutex
	seen map[int]bool
	n    int
	done func()
}

func newFirstUps(n int, done func()) *firstUps {
	return &firstUps{seen: map[int]bool{}, n: n, done: done}
}

func (f *firstUps) saw(index int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil || f.seen[index] {
		return
	}
	f.seen[index] = true
	if len(f.seen) == f.n {
		f.seen = nil // once
		go f.done()
	}
}

// raiseFileLimit lifts the soft open-file limit to the hard one: a worker
// holds one socket and a few files per terminal.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// eventWriter writes events as JSON lines from many goroutines, flushing
// every few milliseconds so that thousands of events cost few writes.
type eventWriter struct {
	mu   sync.Mutex
	bw   *bufio.Writer
	enc  *json.Encoder
	stop chan struct{}
	done chan struct{}
}

func newEventWriter(out io.Writer) *eventWriter {
	bw := bufio.NewWriterSize(out, 64<<10)
	w := &eventWriter{bw: bw, enc: json.NewEncoder(bw), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				w.flush()
			case <-w.stop:
				w.flush()
				return
			}
		}
	}()
	return w
}

func (w *eventWriter) put(e event) {
	w.mu.Lock()
	w.enc.Encode(e)
	w.mu.Unlock()
}

func (w *eventWriter) flush() {
	w.mu.Lock()
	w.bw.Flush()
	w.mu.Unlock()
}

func (w *eventWriter) close() {
	close(w.stop)
	<-w.done
}
