// Command dalaba-bench measures a controller against a simulated fleet on
// this machine and prints a table, writing results.csv and fanout.svg
// (docs/benchmarks.md). `make bench` runs it.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"dalaba/bench"
	"dalaba/sim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dalaba-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 { // the children it starts
		switch os.Args[1] {
		case "worker":
			return sim.RunWorker(ctx, os.Stdin, os.Stdout)
		case "controller":
			return bench.RunController(os.Args[2])
		case "floor-server":
			return bench.ServeFloor(os.Args[2])
		}
	}
	sizes := flag.String("sizes", "1000,5000,15000", "fleet sizes, comma-separated")
	runs := flag.Int("runs", 3, "runs per size (medians are reported)")
	idle := flag.Duration("idle", 30*time.Second, "idle window for RSS and heartbeat CPU, in every run (0: skip)")
	storm := flag.Bool("storm", true, "restart the controller under the largest fleet")
	audioFile := flag.String("audio", "", "the alert's MP3 (default: a 20.9 s MP3 built from audio/testdata)")
	out := flag.String("out", "bench-results", "folder for results.csv and fanout.svg")
	perProcess := flag.Int("per-process", 2500, fmt.Sprintf("simulated terminals per worker process (1..%d)", sim.MaxPerProcess))
	flag.Parse()
	o := bench.Options{Runs: *runs, Idle: *idle, Storm: *storm, PerProcess: *perProcess, Out: *out, Log: os.Stderr}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > sim.MaxTerminals {
			return fmt.Errorf("-sizes: %q is not a fleet size (1..%d)", s, sim.MaxTerminals)
		}
		o.Sizes = append(o.Sizes, n)
	}
	if o.PerProcess < 1 || o.PerProcess > sim.MaxPerProcess {
		return fmt.Errorf("-per-process: %d is outside 1..%d", o.PerProcess, sim.MaxPerProcess)
	}
	if o.Runs < 1 || o.Runs > 20 {
		return fmt.Errorf("-runs: %d is outside 1..20", o.Runs)
	}
	var err error
	if *audioFile != "" {
		o.Audio, err = os.ReadFile(*audioFile)
	} else {
		o.Audio, err = twentySeconds()
	}
	if err != nil {
		return fmt.Errorf("-audio: %w", err)
	}
	if o.Self, err = os.Executable(); err != nil {
		return err
	}
	rs, err := bench.Run(ctx, o)
	if len(rs) == 0 {
		return err
	}
	med := bench.Median(rs)
	fmt.Printf("\nalert audio: %d bytes; machine: %s\n", len(o.Audio), cpus())
	bench.Print(os.Stdout, med, o.Runs)
	if werr := errors.Join(bench.WriteCSV(filepath.Join(*out, "results.csv"), rs), bench.WriteSVG(filepath.Join(*out, "fanout.svg"), med)); werr != nil {
		return errors.Join(err, werr)
	}
	fmt.Printf("\nwrote %s and %s\n", filepath.Join(*out, "results.csv"), filepath.Join(*out, "fanout.svg"))
	return err
}

// twentySeconds is the alert of the benchmark: a tagless 1.045 s MP3 of
// the test fixtures twenty times over (64 kbit/s, 20.9 s, 167 KB).
func twentySeconds() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join("audio", "testdata", "tone1k_mono_44k1_notag.mp3"))
	if err != nil {
		return nil, fmt.Errorf("%w (run from the repository root, or give -audio)", err)
	}
	return bytes.Repeat(b, 20), nil
}

func cpus() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return fmt.Sprintf("%d CPUs", bytes.Count(b, []byte("processor\t:")))
}
