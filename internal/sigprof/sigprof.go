// Package sigprof lets a benchmark profile a child process for exactly the
// stretch it is measuring: the first SIGUSR2 starts a CPU profile, the next
// one stops it, and so on; each profile is written to its own file
// (prefix.<pid>.<n>), to be read with `go tool pprof`. Each stop also
// writes a heap profile (prefix.<pid>.<n>.heap), the goroutines by where
// they wait (prefix.<pid>.<n>.goroutines, text) and the runtime's memory
// figures on standard error: after the stretch, because the collection it
// forces takes seconds in a simulator holding thousands of terminals.
package sigprof

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
)

// writeHeap writes a heap profile and, on standard error, where the
// process's memory is by the Go runtime's count (the rest of its RSS is
// memory the runtime does not manage, such as SQLite's page cache).
func writeHeap(path string) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Fprintf(os.Stderr, "sigprof: heap in use %d MB (live objects %d MB), heap idle %d MB (%d MB returned), stacks %d MB, runtime total %d MB, goroutines %d\n",
		m.HeapInuse>>20, m.HeapAlloc>>20, m.HeapIdle>>20, m.HeapReleased>>20, m.StackInuse>>20, (m.Sys-m.HeapReleased)>>20, runtime.NumGoroutine())
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigprof:", err)
		return
	}
	defer f.Close()
	pprof.WriteHeapProfile(f)
	g, err := os.Create(strings.TrimSuffix(path, ".heap") + ".goroutines")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigprof:", err)
		return
	}
	defer g.Close()
	pprof.Lookup("goroutine").WriteTo(g, 1)
}

// Listen starts the signal handler when prefix is not empty.
func Listen(prefix string) {
	if prefix == "" {
		return
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR2)
	go func() {
		var f *os.File
		for n := 1; ; n++ {
			<-ch
			if f != nil {
				pprof.StopCPUProfile()
				f.Close()
				f = nil
				writeHeap(fmt.Sprintf("%s.%d.%d.heap", prefix, os.Getpid(), n-1))
				continue
			}
			var err error
			if f, err = os.Create(fmt.Sprintf("%s.%d.%d", prefix, os.Getpid(), n)); err != nil {
				fmt.Fprintln(os.Stderr, "sigprof:", err)
				continue
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintln(os.Stderr, "sigprof:", err)
				f.Close()
				f = nil
			}
		}
	}()
}
