package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":8080" || cfg.DataDir != "./data" || !cfg.Embedded() || !cfg.DemoData ||
		cfg.JWTSecret != nil || cfg.LogLevel != slog.LevelInfo || cfg.LogFormat != "json" ||
		cfg.OutboxRetention != 15*time.Minute {
		t.Fatalf("defaults %+v", cfg)
	}

	cfg, err = loadConfig(env(map[string]string{"MONGODB_URI": "mongodb://db:27017/halo"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Embedded() || cfg.DemoData {
		t.Fatalf("MongoDB must default demo data off: %+v", cfg)
	}
}

func TestLoadConfigValues(t *testing.T) {
	cfg, err := loadConfig(env(map[string]string{
		"HALO_ADDR":       "127.0.0.1:0",
		"HALO_DATA_DIR":   "/var/lib/halo",
		"HALO_JWT_SECRET": strings.Repeat("s", 32),
		"HALO_DEMO_DATA":  "FALSE",
		"HALO_LOG_LEVEL":  "debug",
		"HALO_LOG_FORMAT": "text",

		"HALO_OUTBOX_RETENTION": "2h",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OutboxRetention != 2*time.Hour {
		t.Errorf("outbox retention %s, want 2h", cfg.OutboxRetention)
	}
	if cfg.Addr != "127.0.0.1:0" || cfg.DataDir != "/var/lib/halo" || string(cfg.JWTSecret) != strings.Repeat("s", 32) ||
		cfg.DemoData || cfg.LogLevel != slog.LevelDebug || cfg.LogFormat != "text" {
		t.Fatalf("got %+v", cfg)
	}
	cfg, err = loadConfig(env(map[string]string{"MONGODB_URI": "mongodb+srv://u:p@c.example.net/", "HALO_DEMO_DATA": "1"}))
	if err != nil || !cfg.DemoData {
		t.Fatalf("explicit demo data on MongoDB: %+v %v", cfg, err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, key, value, want string }{
		{"addr without port", "HALO_ADDR", "localhost", "HALO_ADDR"},
		{"addr bad port", "HALO_ADDR", ":http", "HALO_ADDR"},
		{"demo yes", "HALO_DEMO_DATA", "yes", "HALO_DEMO_DATA"},
		{"demo typo", "HALO_DEMO_DATA", "ture", "HALO_DEMO_DATA"},
		{"short secret", "HALO_JWT_SECRET", "secret", "at least 32 bytes"},
		{"mongo scheme", "MONGODB_URI", "postgres://x", "MONGODB_URI"},
		{"log level", "HALO_LOG_LEVEL", "verbose", "HALO_LOG_LEVEL"},
		{"log format", "HALO_LOG_FORMAT", "xml", "HALO_LOG_FORMAT"},
		{"jwks not a url", "HALO_JWKS_URL", "keys.example.com/jwks", "HALO_JWKS_URL"},
		{"jwks scheme", "HALO_JWKS_URL", "ftp://keys.example.com/jwks", "HALO_JWKS_URL"},
		{"cors wildcard", "HALO_CORS_ORIGINS", "*", "no wildcard"},
		{"cors path", "HALO_CORS_ORIGINS", "https://crm.example.com/app", "HALO_CORS_ORIGINS"},
		{"cors no scheme", "HALO_CORS_ORIGINS", "crm.example.com", "HALO_CORS_ORIGINS"},
		{"dev typo", "HALO_DEV", "on", "HALO_DEV"},
		{"rate negative", "HALO_RATE_LIMIT", "-1", "HALO_RATE_LIMIT"},
		{"rate text", "HALO_WORKSPACE_RATE_LIMIT", "fast", "HALO_WORKSPACE_RATE_LIMIT"},
		{"subscriptions zero", "HALO_MAX_SUBSCRIPTIONS", "0", "HALO_MAX_SUBSCRIPTIONS"},
		{"connections zero", "HALO_MAX_CONNECTIONS", "0", "HALO_MAX_CONNECTIONS"},
		{"connections per subject text", "HALO_MAX_CONNECTIONS_PER_SUBJECT", "many", "HALO_MAX_CONNECTIONS_PER_SUBJECT"},
		{"connections per workspace negative", "HALO_MAX_CONNECTIONS_PER_WORKSPACE", "-5", "HALO_MAX_CONNECTIONS_PER_WORKSPACE"},
		{"init timeout unitless", "HALO_WS_INIT_TIMEOUT", "3", "HALO_WS_INIT_TIMEOUT"},
		{"init timeout too long", "HALO_WS_INIT_TIMEOUT", "2m", "between 100ms and 1m"},
		{"build wait unitless", "HALO_SEGMENT_BUILD_WAIT", "150", "HALO_SEGMENT_BUILD_WAIT"},
		{"build wait too long", "HALO_SEGMENT_BUILD_WAIT", "5m", "between 0s and 1m"},
		{"retention unitless", "HALO_OUTBOX_RETENTION", "15", "HALO_OUTBOX_RETENTION"},
		{"retention too short", "HALO_OUTBOX_RETENTION", "10s", "between 1m and 168h"},
		{"retention not a duration", "HALO_OUTBOX_RETENTION", "30d", "HALO_OUTBOX_RETENTION"},
		{"retention too long", "HALO_OUTBOX_RETENTION", "169h", "between 1m and 168h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(env(map[string]string{tc.key: tc.value}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want mention of %q", err, tc.want)
			}
		})
	}
	// A password in a bad MongoDB URI is never echoed.
	_, err := loadConfig(env(map[string]string{"MONGODB_URI": "mongo://user:hunter2@db"}))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err %v", err)
	}
}

func TestBrowsableHost(t *testing.T) {
	for in, want := range map[string]string{
		":8080":          "localhost:8080",
		"0.0.0.0:8080":   "localhost:8080",
		"[::]:8080":      "localhost:8080",
		"127.0.0.1:9000": "127.0.0.1:9000",
		"[::1]:9000":     "[::1]:9000",
	} {
		if got := browsableHost(in); got != want {
			t.Errorf("browsableHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfigSecurity(t *testing.T) {
	cfg, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	// A fresh clone is dev mode: playground and introspection on.
	if !cfg.Dev || cfg.RateLimit != 50 || cfg.WorkspaceRateLimit != 500 || cfg.MaxSubscriptions != 20 || len(cfg.CORSOrigins) != 0 ||
		cfg.MaxConnsPerSubject != 100 || cfg.MaxConnsPerWorkspace != 2000 || cfg.WSInitTimeout != 3*time.Second ||
		cfg.MaxConns < 16 || cfg.MaxConns > 10000 {
		t.Fatalf("defaults %+v", cfg)
	}
	cfg, err = loadConfig(env(map[string]string{
		"HALO_JWKS_URL":             "https://idp.example.com/.well-known/jwks.json",
		"HALO_JWT_ISSUER":           "https://idp.example.com/",
		"HALO_JWT_AUDIENCE":         "halo",
		"HALO_CORS_ORIGINS":         "https://crm.example.com, https://dash.example.com/ ,",
		"HALO_RATE_LIMIT":           "0",
		"HALO_WORKSPACE_RATE_LIMIT": "12.5",
		"HALO_MAX_SUBSCRIPTIONS":    "5",
		"HALO_MAX_CONNECTIONS":      "300",
		"HALO_WS_INIT_TIMEOUT":      "1500ms",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dev || cfg.JWKSURL == "" || cfg.JWTIssuer != "https://idp.example.com/" || cfg.JWTAudience != "halo" ||
		strings.Join(cfg.CORSOrigins, " ") != "https://crm.example.com https://dash.example.com" ||
		cfg.RateLimit != 0 || cfg.WorkspaceRateLimit != 12.5 || cfg.MaxSubscriptions != 5 ||
		cfg.MaxConns != 300 || cfg.WSInitTimeout != 1500*time.Millisecond {
		t.Fatalf("got %+v", cfg)
	}
	// A configured secret is production unless HALO_DEV says otherwise.
	cfg, _ = loadConfig(env(map[string]string{"HALO_JWT_SECRET": strings.Repeat("s", 32)}))
	if cfg.Dev {
		t.Fatal("dev with a configured secret")
	}
	cfg, _ = loadConfig(env(map[string]string{"HALO_JWT_SECRET": strings.Repeat("s", 32), "HALO_DEV": "1"}))
	if !cfg.Dev {
		t.Fatal("HALO_DEV=1 ignored")
	}
}

// The banner names the playground only when it is served, and tells which
// tokens the server takes.
func TestBannerVariants(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	for _, tc := range []struct {
		name        string
		secret      []byte
		devMode     bool
		cfg         Config
		want, avoid []string
	}{
		{"dev", secret, true, Config{Dev: true}, []string{"Playground: http://localhost:8080/playground", "Dev token", "curl"}, nil},
		{"secret", secret, false, Config{}, []string{"HS256 signed with HALO_JWT_SECRET"}, []string{"Playground", "Dev token", "JWKS"}},
		{"jwks", nil, false, Config{JWKSURL: "https://idp.example.com/jwks"}, []string{"RS256/ES256", "HALO_JWKS_URL"}, []string{"HS256", "Playground"}},
		{"both, dev on", secret, false, Config{JWKSURL: "https://idp.example.com/jwks", Dev: true}, []string{"Playground", "HS256", "RS256/ES256"}, []string{"Dev token"}},
	} {
		var b strings.Builder
		tc.cfg.DataDir = t.TempDir()
		if err := printBanner(&b, ":8080", tc.secret, tc.devMode, tc.cfg); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		// The dev token is saved for scripts, in dev mode only.
		saved, err := os.ReadFile(filepath.Join(tc.cfg.DataDir, devTokenFile))
		if tc.devMode != (err == nil) || tc.devMode && !strings.Contains(b.String(), strings.TrimSpace(string(saved))) {
			t.Errorf("%s: dev token file %q (%v)", tc.name, saved, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: banner lacks %q:\n%s", tc.name, w, b.String())
			}
		}
		for _, a := range tc.avoid {
			if strings.Contains(b.String(), a) {
				t.Errorf("%s: banner has %q:\n%s", tc.name, a, b.String())
			}
		}
	}
}
