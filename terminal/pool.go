package terminal

import (
	"runtime"
	"sync"
)

// A pool runs functions, taken in the order given, on as many long-lived
// goroutines as the process may run at once, shared by every terminal of
// the process. Work that goes deep (a signature check, a report encoded
// and synced to disk) then grows the stacks of those few goroutines once,
// instead of the stack of a goroutine of each terminal: in a process
// holding thousands of simulated terminals every such stack grew into
// memory the process took afresh and kept (docs/benchmarks.md, "Stacks in
// a fan-out"). On a board, with one terminal, it runs as before.
type pool struct {
	once  sync.Once
	mu    sync.Mutex
	ready sync.Cond // on mu: queue has something
	queue []func()
}

// Two pools: a check never waits behind a disk sync.
var (
	// checker opens signed commands: the signature check and the payload's
	// decode. Ed25519's check needs more stack than anything else a
	// connection's reader does.
	checker pool
	// spoolers run the terminals' report emitters (emitter).
	spoolers pool
)

// do queues f and returns at once.
func (p *pool) do(f func()) {
	p.once.Do(p.start)
	p.mu.Lock()
	p.queue = append(p.queue, f)
	p.mu.Unlock()
	p.ready.Signal()
}

// run runs f and returns when it has ended.
func (p *pool) run(f func()) {
	done := make(chan struct{})
	p.do(func() { f(); close(done) })
	<-done
}

func (p *pool) start() {
	p.ready.L = &p.mu
	for range runtime.GOMAXPROCS(0) {
		go p.work()
	}
}

func (p *pool) work() {
	for {
		p.mu.Lock()
		for len(p.queue) == 0 {
			p.ready.Wait()
		}
		f := p.queue[0]
		p.queue[0] = nil
		if p.queue = p.queue[1:]; len(p.queue) == 0 {
			p.queue = nil // lets go of its array
		}
		p.mu.Unlock()
		f()
	}
}
