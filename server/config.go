package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
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

	// JWKSURL (HALO_JWKS_URL) turns on RS256/ES256 tokens verified with
	// the keys published there (fetched, cached and refreshed). It can be
	// set together with HALO_JWT_SECRET (both kinds accepted, each with its
	// own pinned algorithms) or alone (production: no shared secret).
	JWKSURL string
	// JWTIssuer (HALO_JWT_ISSUER) and JWTAudience (HALO_JWT_AUDIENCE), when
	// set, must match a token's iss and aud.
	JWTIssuer   string
	JWTAudience string

	// CORSOrigins (HALO_CORS_ORIGINS, comma-separated) are the exact
	// browser origins allowed to call the API, e.g.
	// https://crm.example.com. Empty: no cross-origin browser access. "*"
	// is refused: the API takes credentials.
	CORSOrigins []string

	// Dev (HALO_DEV, true/false/1/0) turns on introspection and the
	// GraphiQL playground. Default: true in dev mode (no HALO_JWT_SECRET
	// and no HALO_JWKS_URL, the fresh-clone case), false otherwise.
	Dev bool

	// RateLimit (HALO_RATE_LIMIT, requests per second per token subject,
	// default 50; 0 turns it off) and WorkspaceRateLimit
	// (HALO_WORKSPACE_RATE_LIMIT, per workspace, default 500; 0 off):
	// token buckets whose burst is twice the rate.
	RateLimit          float64
	WorkspaceRateLimit float64

	// MaxSubscriptions (HALO_MAX_SUBSCRIPTIONS, default 20) caps the
	// subscriptions one websocket connection may hold at once.
	MaxSubscriptions int

	// Caps on long-lived connections (websockets and SSE streams), so one
	// token cannot exhaust the process's file descriptors:
	// MaxConnsPerSubject (HALO_MAX_CONNECTIONS_PER_SUBJECT, default 100)
	// per token subject, MaxConnsPerWorkspace
	// (HALO_MAX_CONNECTIONS_PER_WORKSPACE, default 2000) per workspace,
	// MaxConns (HALO_MAX_CONNECTIONS, default half the open-file limit, at
	// most 10000) per process. WSInitTimeout (HALO_WS_INIT_TIMEOUT,
	// default 3s) is how long a websocket may stay without a valid
	// connection_init.
	MaxConnsPerSubject   int
	MaxConnsPerWorkspace int
	MaxConns             int
	WSInitTimeout        time.Duration

	// LogLevel (HALO_LOG_LEVEL: debug, info, warn, error; default info).
	LogLevel slog.Level

	// LogFormat (HALO_LOG_FORMAT: json or text; default json) of the
	// structured log on stderr.
	LogFormat string

	// SegmentLimits caps the segments of each workspace (see
	// segment.Limits for the defaults and why): active segments
	// (HALO_MAX_SEGMENTS, default 500), distinct event features their rules
	// count together (HALO_MAX_EVENT_FEATURES, default 200) and event and
	// lastEvent nodes per rule (HALO_MAX_RULE_EVENTS, default 20).
	SegmentLimits segment.Limits

	// SegmentBuildWait (HALO_SEGMENT_BUILD_WAIT, default 100ms, at most
	// 1m) is how long createSegment and updateSegment wait for the
	// segment's build before answering with it still BUILDING.
	SegmentBuildWait time.Duration

	// OutboxRetention (HALO_OUTBOX_RETENTION, default 15m, 1m to 168h)
	// is how long the changes outbox keeps a change: how long after a
	// disconnect a subscription can resume with `after`.
	OutboxRetention time.Duration

	// DebugAddr (HALO_DEBUG_ADDR, host:port, default off) serves Go's
	// profiler (/debug/pprof/) on a listener of its own, never on the
	// API's: it has no authentication, so bind it to loopback or a
	// private network.
	DebugAddr string

	// segmentBuildSettle, when set, replaces the segment builds' settle
	// (tests: one engine, no wait).
	segmentBuildSettle *time.Duration

	// now, when set, is the clock of the domain services (createdAt,
	// occurredAt checks, segment windows) and of the segment sweeper. Not
	// configurable from the environment: e2e tests set it to a
	// app.ManualClock to move segment windows. Nil means time.Now.
	now func() time.Time

	// bodyReadTimeout, when set, replaces bodyReadTimeout (tests).
	bodyReadTimeout time.Duration
}

// bodyTimeout is how long an admitted request's body may take to arrive.
func (cfg Config) bodyTimeout() time.Duration {
	if cfg.bodyReadTimeout > 0 {
		return cfg.bodyReadTimeout
	}
	return bodyReadTimeout
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
		Addr:                 ":8080",
		DataDir:              "./data",
		LogLevel:             slog.LevelInfo,
		LogFormat:            "json",
		RateLimit:            50,
		WorkspaceRateLimit:   500,
		MaxSubscriptions:     20,
		MaxConnsPerSubject:   defaultMaxConnsPerSubject,
		MaxConnsPerWorkspace: defaultMaxConnsPerWorkspace,
		MaxConns:             defaultMaxConnections(),
		WSInitTimeout:        defaultWSInitTimeout,
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
	if v := getenv("HALO_DEBUG_ADDR"); v != "" {
		if err := checkAddr(v); err != nil {
			bad("HALO_DEBUG_ADDR", "%v (want host:port, e.g. 127.0.0.1:6060)", err)
		}
		cfg.DebugAddr = v
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
	if v := getenv("HALO_JWKS_URL"); v != "" {
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			bad("HALO_JWKS_URL", "must be an http(s) URL")
		}
		cfg.JWKSURL = v
	}
	cfg.JWTIssuer = strings.TrimSpace(getenv("HALO_JWT_ISSUER"))
	cfg.JWTAudience = strings.TrimSpace(getenv("HALO_JWT_AUDIENCE"))
	if v := getenv("HALO_CORS_ORIGINS"); v != "" {
		for _, o := range strings.Split(v, ",") {
			o = strings.TrimRight(strings.TrimSpace(o), "/")
			if o == "" {
				continue
			}
			u, err := url.Parse(o)
			if o == "*" || err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.Path != "" {
				bad("HALO_CORS_ORIGINS", "%q is not an exact origin such as https://crm.example.com (no wildcard: the API takes credentials)", o)
				continue
			}
			cfg.CORSOrigins = append(cfg.CORSOrigins, o)
		}
	}
	cfg.Dev = len(cfg.JWTSecret) == 0 && cfg.JWKSURL == ""
	if v := getenv("HALO_DEV"); v != "" {
		b, err := parseBool(v)
		if err != nil {
			bad("HALO_DEV", "%v", err)
		}
		cfg.Dev = b
	}
	for _, lim := range []struct {
		name string
		dst  *float64
	}{{"HALO_RATE_LIMIT", &cfg.RateLimit}, {"HALO_WORKSPACE_RATE_LIMIT", &cfg.WorkspaceRateLimit}} {
		if v := getenv(lim.name); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1e6 {
				bad(lim.name, "%q is not a rate between 0 (off) and 1000000 requests per second", v)
			}
			*lim.dst = f
		}
	}
	if v := getenv("HALO_MAX_SUBSCRIPTIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			bad("HALO_MAX_SUBSCRIPTIONS", "%q is not a number between 1 and 1000", v)
		}
		cfg.MaxSubscriptions = n
	}
	for _, lim := range []struct {
		name string
		dst  *int
	}{
		{"HALO_MAX_CONNECTIONS_PER_SUBJECT", &cfg.MaxConnsPerSubject},
		{"HALO_MAX_CONNECTIONS_PER_WORKSPACE", &cfg.MaxConnsPerWorkspace},
		{"HALO_MAX_CONNECTIONS", &cfg.MaxConns},
	} {
		if v := getenv(lim.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1_000_000 {
				bad(lim.name, "%q is not a number between 1 and 1000000", v)
			}
			*lim.dst = n
		}
	}
	if v := getenv("HALO_WS_INIT_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond || d > time.Minute {
			bad("HALO_WS_INIT_TIMEOUT", "%q is not a duration between 100ms and 1m, e.g. 3s", v)
		}
		cfg.WSInitTimeout = d
	}
	cfg.SegmentBuildWait = segment.DefaultBuildWait
	if v := getenv("HALO_SEGMENT_BUILD_WAIT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > time.Minute {
			bad("HALO_SEGMENT_BUILD_WAIT", "%q is not a duration between 0s and 1m, e.g. 100ms", v)
		}
		cfg.SegmentBuildWait = d
	}
	cfg.OutboxRetention = realtime.DefaultRetention
	if v := getenv("HALO_OUTBOX_RETENTION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 168*time.Hour {
			bad("HALO_OUTBOX_RETENTION", "%q is not a duration between 1m and 168h, e.g. 15m", v)
		}
		cfg.OutboxRetention = d
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
	cfg.SegmentLimits = segment.DefaultLimits
	for _, lim := range []struct {
		name string
		dst  *int
		max  int
	}{
		{"HALO_MAX_SEGMENTS", &cfg.SegmentLimits.Segments, 100_000},
		{"HALO_MAX_EVENT_FEATURES", &cfg.SegmentLimits.EventFeatures, 10_000},
		{"HALO_MAX_RULE_EVENTS", &cfg.SegmentLimits.RuleEvents, rule.MaxNodes},
	} {
		if v := getenv(lim.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > lim.max {
				bad(lim.name, "%q is not a number between 1 and %d", v, lim.max)
			}
			*lim.dst = n
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
