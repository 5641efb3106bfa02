package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/store/mongostore"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

const (
	// shutdownTimeout bounds how long in-flight requests may finish after
	// SIGTERM; orchestrators usually kill after 30s, so stay well inside.
	shutdownTimeout = 15 * time.Second
	// storeOpenTimeout keeps an unreachable MongoDB from hanging startup
	// for the driver's default server-selection time and longer.
	storeOpenTimeout = 30 * time.Second
	// devTokenTTL is long enough that a developer is not interrupted.
	devTokenTTL = 30 * 24 * time.Hour
)

// run starts Halo with cfg and serves until ctx is cancelled, then shuts
// down gracefully. It prints the start-up banner (playground URL, dev
// token) to stdout and calls ready, if not nil, with the bound address once
// requests are being served. Tests call it in-process.
func run(ctx context.Context, cfg Config, logger *slog.Logger, stdout io.Writer, ready func(addr string)) (err error) {
	started := time.Now()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// A JWKS URL alone is production without a shared secret: no secret
	// is generated and HS256 tokens are refused.
	var secret []byte
	devMode := false
	if len(cfg.JWTSecret) > 0 || cfg.JWKSURL == "" {
		if secret, devMode, err = jwtSecret(cfg, logger); err != nil {
			return err
		}
	}
	// The key-set refresh goroutine lives until run returns.
	keysCtx, stopKeys := context.WithCancel(context.WithoutCancel(ctx))
	defer stopKeys()
	verifier, err := auth.NewVerifier(keysCtx, auth.Options{
		Secret:   secret,
		JWKSURL:  cfg.JWKSURL,
		Issuer:   cfg.JWTIssuer,
		Audience: cfg.JWTAudience,
		Logger:   logger,
	})
	if err != nil {
		return err
	}

	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		// Shutdown may have been caused by ctx; closing still needs time.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if cerr := st.Close(cctx); cerr != nil {
			logger.Error("close store", "err", cerr)
			err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
		}
	}()

	// Bind first so a busy port fails in milliseconds, not after recovery
	// or the demo seed; connections wait in the backlog meanwhile.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	if cfg.DebugAddr != "" {
		_, stopDebug, err := startDebug(cfg.DebugAddr, logger)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	// One set of domain services for recovery, the background work and
	// the API: their caches (segments, computed traits, purposes) and the
	// score summary's once-per-process refresh are per set. Start finishes
	// interrupted merges, loads the demo data, then starts the background
	// work (realtime hub, segment sweeper, backfill resume); Close stops it.
	opts := []app.Option{app.WithSegmentLimits(cfg.SegmentLimits), app.WithSegmentBuildWait(cfg.SegmentBuildWait), app.WithOutboxRetention(cfg.OutboxRetention), app.WithStore(st), app.WithLogger(logger)}
	if cfg.segmentBuildSettle != nil {
		opts = append(opts, app.WithSegmentBuildSettle(*cfg.segmentBuildSettle))
	}
	if cfg.DemoData {
		opts = append(opts, app.WithStartup(demoData(st, cfg.DataDir, logger)))
	}
	svc := app.New(cfg.clock(), opts...)
	defer svc.Close()
	if err := svc.Start(ctx); errors.Is(err, errStoppedSeeding) {
		return nil
	} else if err != nil {
		return err
	}

	srv := &http.Server{
		Handler: newHandler(handlerDeps{
			store:    st,
			hub:      svc.Hub(),
			verifier: verifier,
			logger:   logger,
			cfg:      cfg,
			services: svc,
			devSecret: func() []byte {
				if devMode {
					return secret
				}
				return nil
			}(),
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		// No WriteTimeout: it would cut the long-lived subscription
		// streams (SSE, websocket) coming next; the complexity limit and
		// request contexts bound ordinary requests.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	addr := ln.Addr().String()
	logger.Info("halo started", "addr", addr, "store", engineName(cfg), "dev_mode", devMode,
		"startup_ms", time.Since(started).Milliseconds())
	if err := printBanner(stdout, addr, secret, devMode, cfg); err != nil {
		logger.Warn("print banner", "err", err)
	}
	if ready != nil {
		ready(addr)
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", shutdownTimeout.String())
	// Ends every subscription (SSE streams would hold Shutdown otherwise).
	svc.StopRealtime()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// openStore opens the configured engine and declares Halo's collections.
func openStore(ctx context.Context, cfg Config) (*store.Store, error) {
	octx, cancel := context.WithTimeout(ctx, storeOpenTimeout)
	defer cancel()
	var backend store.Backend
	if cfg.Embedded() {
		b, err := sqlitestore.Open(octx, cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("open embedded store in %s: %w", cfg.DataDir, err)
		}
		backend = b
	} else {
		b, err := mongostore.Open(octx, cfg.MongoURI, "")
		if err != nil {
			return nil, fmt.Errorf("open MongoDB store: %w", err)
		}
		backend = b
	}
	st, err := store.Open(octx, backend, app.Collections)
	if err != nil {
		_ = backend.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("open store (%s): %w", engineName(cfg), err)
	}
	return st, nil
}

func engineName(cfg Config) string {
	if cfg.Embedded() {
		return "sqlite"
	}
	return "mongodb"
}

// newLogger builds the process logger: structured, on w (stderr), so
// stdout stays free for the human-readable banner.
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(requestIDHandler{h})
}
