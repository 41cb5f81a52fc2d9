// Command dalaba-terminal is the Dalaba terminal daemon: it runs on the board
// beside a village loudspeaker, keeps a link to the county controller, and
// plays verified alerts through the relay-switched amplifier.
//
//	dalaba-terminal -config /etc/dalaba/terminal.json
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"dalaba/terminal"
)

func main() {
	oneProcessor()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dalaba-terminal:", err)
		os.Exit(1)
	}
}

func run() error {
	configPath := flag.String("config", "", "terminal config file (JSON); DALABA_* environment variables override it")
	verbose := flag.Bool("v", false, "log debug messages")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (use -config FILE)", flag.Arg(0))
	}
	cfg, err := terminal.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return terminal.New(cfg, logger).Run(ctx)
}

// oneProcessor runs the daemon's goroutines on one processor unless the
// GOMAXPROCS environment variable asks for more. The terminal mostly waits
// on its links, and its bursts of work (a block of audio decoded every
// 20 ms, a chunk hashed, a signature checked) take well under a
// millisecond. With a processor per core, each goroutine woken by the
// audio server or the controller was handed to another thread: a futex
// wake-up, a spinning thread and the runtime's monitor woken too, about a
// third of the daemon's CPU while it plays, and more on a board with more
// cores (docs/benchmarks.md, "Terminal footprint"). It returns the number
// of processors in use.
func oneProcessor() int {
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	runtime.GOMAXPROCS(1)
	return 1
}
