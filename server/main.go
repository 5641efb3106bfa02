// Command server runs Halo: the GraphQL API over HTTP on the embedded
// SQLite store (default) or MongoDB (MONGODB_URI). See config.go for the
// environment it reads.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if code, done := args(os.Args[1:], os.Stdout, os.Stderr); done {
		os.Exit(code)
	}
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "halo:", err)
		os.Exit(2)
	}
	logger := newLogger(cfg, os.Stderr)
	slog.SetDefault(logger)
	tuneGC(os.Getenv, logger)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// Restore default signal handling once shutdown begins, so a
		// second Ctrl-C kills a shutdown that hangs.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, cfg, logger, os.Stdout, nil); err != nil {
		logger.Error("server stopped", "err", err)
		stop()
		os.Exit(1)
	}
}
