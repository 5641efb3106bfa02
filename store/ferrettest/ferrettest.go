// Package ferrettest runs an embedded FerretDB (MongoDB wire protocol over
// SQLite) in-process so the MongoDB engine can be tested without a server.
// It is a normal package only so tests in other packages can import it.
package ferrettest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Start runs FerretDB in a temporary directory for the duration of the test
// and returns its MongoDB URI (with no database in the path).
func Start(t testing.TB) (uri string) {
	t.Helper()
	uri, stop, err := start(t.TempDir())
	if err != nil {
		t.Fatalf("ferrettest: %v", err)
	}
	t.Cleanup(stop)
	return uri
}

// StartForMain runs FerretDB in a fresh temporary directory, for TestMain
// or other code without a testing.TB. stop shuts it down and removes the
// directory; it must be called once.
func StartForMain() (uri string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "ferrettest-")
	if err != nil {
		return "", nil, fmt.Errorf("ferrettest: %w", err)
	}
	uri, stopDB, err := start(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("ferrettest: %w", err)
	}
	return uri, func() {
		stopDB()
		os.RemoveAll(dir)
	}, nil
}

func start(dir string) (uri string, stop func(), err error) {
	// FerretDB logs every connection at info level; only errors help when a
	// test fails.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	if err != nil {
		return "", nil, fmt.Errorf("new FerretDB: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	// MongoDBURI blocks until Run has bound the listener.
	uri = f.MongoDBURI()
	if err := waitListening(uri, 10*time.Second); err != nil {
		stop()
		return "", nil, err
	}
	return uri, stop, nil
}

func waitListening(uri string, timeout time.Duration) error {
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("parse FerretDB URI %q: %w", uri, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("FerretDB at %s not accepting connections after %v", u.Host, timeout), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
