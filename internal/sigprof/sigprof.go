// Package sigprof lets a benchmark profile a child process for exactly the
// stretch it is measuring: the first SIGUSR2 starts a CPU profile, the next
// one stops it, and so on; each profile is written to its own file
// (prefix.<pid>.<n>), to be read with `go tool pprof`.
package sigprof

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

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
