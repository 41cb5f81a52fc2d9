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
	"syscall"

	"dalaba/terminal"
)

func main() {
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
