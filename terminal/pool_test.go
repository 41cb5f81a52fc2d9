package terminal

import (
	"crypto/ed25519"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dalaba/protocol"
)

func TestPoolRunsEverythingOnFewGoroutines(t *testing.T) {
	var p pool
	var ran, now, most atomic.Int64
	var wg sync.WaitGroup
	const n = 2000
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / 20 {
				p.run(func() {
					c := now.Add(1)
					for m := most.Load(); c > m && !most.CompareAndSwap(m, c); m = most.Load() {
					}
					runtime.Gosched()
					ran.Add(1)
					now.Add(-1)
				})
			}
		}()
	}
	wg.Wait()
	if ran.Load() != n {
		t.Fatalf("ran %d of %d", ran.Load(), n)
	}
	if m, procs := most.Load(), int64(runtime.GOMAXPROCS(0)); m > procs {
		t.Fatalf("%d ran at once on a pool of %d goroutines", m, procs)
	}
}

func TestEmitterKeepsOrderAndCloseWaits(t *testing.T) {
	for range 50 {
		e := newEmitter()
		var mu sync.Mutex // orders the adds: next is each add's place
		next := 0
		var got []int // touched only by the work, which runs one at a time
		var ran sync.WaitGroup
		ran.Add(110)
		var add func(nested bool)
		add = func(nested bool) {
			mu.Lock()
			defer mu.Unlock()
			n := next
			next++
			e.add(func() {
				got = append(got, n)
				if nested {
					add(false) // added while draining: runs after what was added before it
				}
				ran.Done()
			})
		}
		for i := range 100 {
			add(i%10 == 0)
		}
		ran.Wait()
		e.add(func() { got = append(got, -2) }) // the last before close: close waits for it
		e.close()
		mu.Lock()
		added := next
		mu.Unlock()
		e.add(func() { got = append(got, -1) }) // after close: dropped
		if len(got) != added+1 || got[added] != -2 {
			t.Fatalf("ran %v: want the %d added, then the one added just before close, and not the one after", got, added)
		}
		if got = got[:added]; !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != added {
			t.Fatalf("ran %v: want each of the %d added once, in the order added", got, added)
		}
	}
}

// BenchmarkOpenOnIdleReaders opens a signed alert on b.N goroutines that
// stay alive afterwards, as the readers of a process's connections do:
// "reader" opens it on the goroutine itself, "checker" through checker.
// The difference is the stack each reader grows for the signature check,
// in memory taken afresh because every grown stack stays in use.
func BenchmarkOpenOnIdleReaders(b *testing.B) {
	ctl := newFakeController(b)
	ring := protocol.Keyring{}
	ring.Add(ctl.issuer.Public().(ed25519.PublicKey))
	sc := ctl.sign(ctl.alert([]protocol.Media{tone(ctl, 100*time.Millisecond)}, nil))
	to := protocol.Recipient{TerminalID: testTerminalID, AreaCode: testArea}
	for _, on := range []string{"reader", "checker"} {
		b.Run(on, func(b *testing.B) {
			release := make(chan struct{})
			var opened, ended sync.WaitGroup
			var failed error
			var mu sync.Mutex
			for range b.N {
				opened.Add(1)
				ended.Add(1)
				go func() {
					defer ended.Done()
					var err error
					open := func() { _, err = ring.Open(sc, to, time.Now()) }
					if on == "checker" {
						checker.run(open)
					} else {
						open()
					}
					if err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
					}
					opened.Done()
					<-release // idle, holding its stack, like a connection's reader
				}()
			}
			opened.Wait()
			b.StopTimer()
			close(release)
			ended.Wait()
			if failed != nil {
				b.Fatal(failed)
			}
		})
	}
}
