// Command dalaba-controller runs the county platform: the HTTP API and the
// terminals' WebSocket endpoint, on the data folder `dalaba init` made.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"dalaba/controller"
	"dalaba/controller/store"
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
	if flag.NArg() > 0 {
		if err := command(*config, flag.Args()); err != nil {
			fmt.Fprintln(os.Stderr, "dalaba-controller:", err)
			os.Exit(1)
		}
		return
	}
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

// command runs a maintenance subcommand on the data folder of config.
//
//	dalaba-controller [-config FILE] backup FILE
func command(config string, args []string) error {
	switch args[0] {
	case "backup":
		if len(args) != 2 {
			return errors.New("usage: dalaba-controller [-config FILE] backup FILE (a new file for the copy of the database)")
		}
		cfg, err := controller.LoadConfig(config)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := store.Backup(ctx, filepath.Join(cfg.DataDir, controller.DatabaseFile), args[1]); err != nil {
			return err
		}
		fmt.Printf("database backed up to %s\n", args[1])
		return nil
	}
	return fmt.Errorf("unknown command %q; the only command is backup (dalaba-controller [-config FILE] backup FILE)", args[0])
}
