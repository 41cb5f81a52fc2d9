// Command dalaba-controller runs the county platform: the HTTP API and the
// terminals' WebSocket endpoint, on the data folder `dalaba init` made.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"dalaba/controller"
)

func main() {
	config := flag.String("config", filepath.Join("dalaba-data", controller.ConfigFile), "config file written by `dalaba init`")
	debug := flag.Bool("debug", false, "log debug messages")
	flag.Parse()
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(*config, log); err != nil {
		fmt.Fprintln(os.Stderr, "dalaba-controller:", err)
		os.Exit(1)
	}
}

func run(config string, log *slog.Logger) error {
	cfg, err := controller.LoadConfig(config)
	if err != nil {
		return err
	}
	c, err := controller.New(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return c.Run(ctx)
}
