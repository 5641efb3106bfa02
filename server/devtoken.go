package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/halo-cdp/halo/internal/platform/auth"
)

// secretFile is where dev mode keeps its generated JWT secret, so tokens
// survive restarts.
const (
	secretFile   = "jwt-secret"
	devTokenFile = "dev-token" // the dev token, for scripts
)

// devWorkspace is the workspace the dev token (and the demo data) use.
const devWorkspace = "demo"

// jwtSecret returns the HS256 key: HALO_JWT_SECRET, or in dev mode the one
// kept in the data dir (created on first start).
func jwtSecret(cfg Config, logger *slog.Logger) (secret []byte, devMode bool, err error) {
	if len(cfg.JWTSecret) > 0 {
		return cfg.JWTSecret, false, nil
	}
	secret, created, err := loadOrCreateSecret(filepath.Join(cfg.DataDir, secretFile))
	if err != nil {
		return nil, false, err
	}
	logger.Warn("HALO_JWT_SECRET not set: dev mode, using a generated secret",
		"file", filepath.Join(cfg.DataDir, secretFile), "created", created)
	return secret, true, nil
}

// writeFileAtomic writes b to path (mode 0600) through a temp file,
// synced, and a rename: a reader never sees half of it, nor a crash a
// truncated file.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// loadOrCreateSecret reads the secret at path, or writes a new random one.
// The file holds 64 hex characters and those characters are the key, so
// `HALO_JWT_SECRET=$(cat data/jwt-secret)` verifies the same tokens.
func loadOrCreateSecret(path string) (secret []byte, created bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		secret = bytes.TrimSpace(b)
		if len(secret) < minSecretLen {
			return nil, false, fmt.Errorf("dev JWT secret %s is shorter than %d bytes; delete it to generate a new one", path, minSecretLen)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			slog.Warn("dev JWT secret file is readable by others", "file", path, "mode", fi.Mode().Perm().String())
		}
		return secret, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("read dev JWT secret: %w", err)
	}

	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, false, fmt.Errorf("generate dev JWT secret: %w", err)
	}
	secret = []byte(hex.EncodeToString(raw))
	// Through a temp file: a crash never leaves a truncated secret that
	// would then be reused.
	if err := writeFileAtomic(path, append(secret, '\n')); err != nil {
		return nil, false, fmt.Errorf("write dev JWT secret: %w", err)
	}
	return secret, true, nil
}

// printBanner tells a human where Halo is and, in dev mode, hands them a
// token. It goes to stdout as plain text because a token buried in a JSON
// log line is easy to miss and awkward to copy.
func printBanner(w io.Writer, addr string, secret []byte, devMode bool, cfg Config) error {
	base := "http://" + browsableHost(addr) + "/"
	var b bytes.Buffer
	fmt.Fprintf(&b, "\nHalo is running.\n")
	if cfg.Dev {
		fmt.Fprintf(&b, "  Playground: %splayground\n", base)
	}
	fmt.Fprintf(&b, "  GraphQL:    %sgraphql\n", base)
	switch {
	case devMode:
		p := auth.Principal{Workspace: devWorkspace, Subject: "dev", Scopes: auth.AllScopes}
		tok, err := auth.IssueHS256(secret, p, devTokenTTL)
		if err != nil {
			return fmt.Errorf("issue dev token: %w", err)
		}
		fmt.Fprintf(&b, "\nDev token (workspace %q, all scopes, expires %s):\n\n%s\n\n",
			devWorkspace, time.Now().Add(devTokenTTL).UTC().Format(time.DateOnly), tok)
		// Also in a file, for scripts: TOKEN=$(cat data/dev-token). A
		// failure costs the file only, not the banner.
		file := filepath.Join(cfg.DataDir, devTokenFile)
		if err := writeFileAtomic(file, []byte(tok+"\n")); err != nil {
			fmt.Fprintf(&b, "(The token could not be saved in %s: %v)\n\n", file, err)
		} else {
			fmt.Fprintf(&b, "Saved in %s: export TOKEN=$(cat %s)\n\n", file, file)
		}
		fmt.Fprintf(&b, "In the playground, add the header {\"Authorization\": \"Bearer <token>\"}. Or:\n\n")
		fmt.Fprintf(&b, "  curl -s %sgraphql -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"query\":\"{ viewer { workspace scopes } }\"}'\n\n",
			base, tok)
	default:
		// Not dev mode: a token left from it would no longer verify.
		_ = os.Remove(filepath.Join(cfg.DataDir, devTokenFile))
	}
	switch {
	case devMode:
	case len(secret) > 0 && cfg.JWKSURL != "":
		fmt.Fprintf(&b, "  Send Authorization: Bearer <token>: HS256 signed with HALO_JWT_SECRET, or RS256/ES256 signed with a key from HALO_JWKS_URL\n\n")
	case cfg.JWKSURL != "":
		fmt.Fprintf(&b, "  Send Authorization: Bearer <token>: RS256/ES256 signed with a key from HALO_JWKS_URL\n\n")
	default:
		fmt.Fprintf(&b, "  Send Authorization: Bearer <token>: HS256 signed with HALO_JWT_SECRET\n\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

// browsableHost turns a listen address into one a browser can open: an
// unspecified host (":8080", "0.0.0.0", "[::]") becomes localhost.
func browsableHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
