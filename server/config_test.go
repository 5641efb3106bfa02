package main

import (
	"log/slog"
	"strings"
	"testing"
)

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":8080" || cfg.DataDir != "./data" || !cfg.Embedded() || !cfg.DemoData ||
		cfg.JWTSecret != nil || cfg.LogLevel != slog.LevelInfo || cfg.LogFormat != "json" {
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
	}))
	if err != nil {
		t.Fatal(err)
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
