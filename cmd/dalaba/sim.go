package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"dalaba/sim"
)

// cmdSim runs a simulated fleet against a controller (sim/).
func cmdSim(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "worker" { // started by cmdSim itself
		return sim.RunWorker(ctx, os.Stdin, os.Stdout)
	}
	fs := newFlags("sim")
	newClient := apiFlags(fs)
	n := fs.Int("n", 1000, "simulated terminals")
	county := fs.String("county", "450224000000", "county code; townships 9xx and their villages are made under it")
	townships := fs.Int("townships", 10, "generated townships (1..99)")
	villages := fs.Int("villages", 20, "villages per township (1..799)")
	perProc := fs.Int("per-process", 2500, "terminals per worker process (at most 4000: a terminal holds about four open files)")
	ramp := fs.Int("ramp", 2000, "new connections per second, per worker process")
	audioFile := fs.String("audio", "", "send one alert with this audio to the whole fleet and time it")
	alertToken := fs.String("alert-token", "", "an officer's API token for the alert (default: --token)")
	bound := fs.Duration("bound", 10*time.Minute, "the run ends, everything stopped, within this")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, err := newClient()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	o := sim.Options{API: c.base, Token: c.token, AlertToken: *alertToken, County: *county, N: *n, Townships: *townships,
		Villages: *villages, PerProcess: *perProc, RampPerSec: *ramp, Bound: *bound, Progress: os.Stderr,
		Spawn: func() *exec.Cmd { return exec.Command(exe, "sim", "worker") }}
	if *audioFile != "" {
		if o.Audio, err = os.ReadFile(*audioFile); err != nil {
			return fmt.Errorf("--audio: %w", err)
		}
		o.AudioName = *audioFile
	}
	sum, err := sim.Run(ctx, o)
	if sum != nil {
		sum.Print(os.Stdout)
	}
	return err
}
