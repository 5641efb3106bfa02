package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config is everything the server reads from its environment.
type Config struct {
	// Addr (HALO_ADDR, default ":8080") is the listen address, host:port.
	// Port 0 picks a free port (tests); the real address is printed.
	Addr string

	// DataDir (HALO_DATA_DIR, default "./data") holds the embedded SQLite
	// database, the generated dev JWT secret and the demo-data marker. It is
	// used for the secret even when MongoDB is the store.
	DataDir string

	// MongoURI (MONGODB_URI) selects the MongoDB engine when set; otherwise
	// the embedded SQLite store in DataDir is used. Never logged: it may
	// carry credentials.
	MongoURI string

	// JWTSecret (HALO_JWT_SECRET) is the HS256 key tokens are verified
	// with, at least 32 bytes. When empty the server runs in dev mode: it
	// generates a secret, keeps it in DataDir/jwt-secret and prints a token.
	JWTSecret []byte

	// DemoData (HALO_DEMO_DATA, true/false/1/0) loads the demo workspace on
	// first start. Default true on the embedded store, false on MongoDB,
	// where a shared production database must never get fake customers by
	// accident.
	DemoData bool

	// LogLevel (HALO_LOG_LEVEL: debug, info, warn, error; default info).
	LogLevel slog.Level

	// LogFormat (HALO_LOG_FORMAT: json or text; default json) of the
	// structured log on stderr.
	LogFormat string

	// now, when set, is the clock of the domain services (createdAt,
	// occurredAt checks, segment windows) and of the segment sweeper. Not
	// configurable from the environment: e2e tests set it to a
	// services.ManualClock to move segment windows. Nil means time.Now.
	now func() time.Time
}

// clock is cfg.now, or time.Now.
func (cfg Config) clock() func() time.Time {
	if cfg.now != nil {
		return cfg.now
	}
	return time.Now
}

// minSecretLen is the HS256 key size RFC 7518 §3.2 asks for (256 bits).
const minSecretLen = 32

// loadConfig reads the configuration through getenv (os.Getenv in main, a
// map in tests). All problems are reported together so an operator fixes
// them in one go.
func loadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{
		Addr:      ":8080",
		DataDir:   "./data",
		LogLevel:  slog.LevelInfo,
		LogFormat: "json",
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}

	if v := getenv("HALO_ADDR"); v != "" {
		if err := checkAddr(v); err != nil {
			bad("HALO_ADDR", "%v (want host:port, e.g. :8080 or 127.0.0.1:8080)", err)
		}
		cfg.Addr = v
	}
	if v := getenv("HALO_DATA_DIR"); v != "" {
		cfg.DataDir = v
	}
	if v := getenv("MONGODB_URI"); v != "" {
		// Only the scheme is checked here; the driver validates the rest
		// and the URI is never echoed (it may hold a password).
		if !strings.HasPrefix(v, "mongodb://") && !strings.HasPrefix(v, "mongodb+srv://") {
			bad("MONGODB_URI", "must start with mongodb:// or mongodb+srv://")
		}
		cfg.MongoURI = v
	}
	if v := getenv("HALO_JWT_SECRET"); v != "" {
		if len(v) < minSecretLen {
			bad("HALO_JWT_SECRET", "must be at least %d bytes, got %d", minSecretLen, len(v))
		}
		cfg.JWTSecret = []byte(v)
	}
	cfg.DemoData = cfg.MongoURI == ""
	if v := getenv("HALO_DEMO_DATA"); v != "" {
		b, err := parseBool(v)
		if err != nil {
			bad("HALO_DEMO_DATA", "%v", err)
		}
		cfg.DemoData = b
	}
	if v := getenv("HALO_LOG_LEVEL"); v != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(v)); err != nil {
			bad("HALO_LOG_LEVEL", "%q is not one of debug, info, warn, error", v)
		}
	}
	if v := getenv("HALO_LOG_FORMAT"); v != "" {
		switch v {
		case "json", "text":
			cfg.LogFormat = v
		default:
			bad("HALO_LOG_FORMAT", "%q is not json or text", v)
		}
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
	}
	return cfg, nil
}

// Embedded reports whether the server runs on the embedded SQLite store.
func (c Config) Embedded() bool { return c.MongoURI == "" }

// parseBool accepts only true/false/1/0 (any case): a typo such as "ture"
// or "off" must fail loudly, not silently pick a default.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true, false, 1, 0)", s)
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("invalid port %q", port)
	}
	return nil
}
