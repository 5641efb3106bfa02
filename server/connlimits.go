package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/auth"
)

// Long-lived connections (websockets and SSE streams) hold a file
// descriptor, a goroutine or two and a hub subscription each for as long
// as the client likes. Without a cap, one valid token could open sockets
// until the process runs out of file descriptors, and then /readyz and
// every other tenant fail with it. connLimits caps them per token subject
// (within its workspace), per workspace and per process, and keeps a
// separate, smaller cap on sockets that have not authenticated yet, so
// clients without any token can hold only a bounded share of the process
// for at most the init timeout each.

// Defaults (HALO_MAX_CONNECTIONS_PER_SUBJECT, …_PER_WORKSPACE,
// HALO_MAX_CONNECTIONS). A browser tab usually holds one websocket;
// a subject is one user or one service key, so 100 leaves room for many
// tabs and workers. The process cap follows the open-file limit (see
// defaultMaxConnections).
const (
	defaultMaxConnsPerSubject   = 100
	defaultMaxConnsPerWorkspace = 2000
	// maxConnsCeiling bounds the process default whatever the file limit:
	// beyond it, memory per connection (buffers, goroutines, hub queues)
	// matters more than descriptors.
	maxConnsCeiling = 10000
	// defaultWSInitTimeout (HALO_WS_INIT_TIMEOUT) is how long a new socket
	// may stay unauthenticated: graphql-ws's own server default. Clients
	// send connection_init as soon as the socket opens.
	defaultWSInitTimeout = 3 * time.Second
)

// defaultMaxConnections is half the process's open-file limit (Go raises
// the soft limit to the hard one at start), at most maxConnsCeiling: the
// other half stays for ordinary requests, the store and the log, so the
// process keeps answering when the long-lived connections are full.
func defaultMaxConnections() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1000
	}
	return int(min(uint64(maxConnsCeiling), max(rl.Cur/2, 16)))
}

// connLimits counts open long-lived connections. A websocket is counted
// from its upgrade (pending) and moves to its subject and workspace when
// connection_init authenticates it; an SSE stream is authenticated from
// the start.
type connLimits struct {
	perSubject, perWorkspace, perProcess, maxPending int

	mu         sync.Mutex
	total      int // open connections, pending ones included
	pending    int // websockets not yet authenticated
	subjects   map[string]int
	workspaces map[string]int
}

func newConnLimits(perSubject, perWorkspace, perProcess int) *connLimits {
	return &connLimits{
		perSubject: perSubject, perWorkspace: perWorkspace, perProcess: perProcess,
		// Unauthenticated sockets may take a quarter of the process: a
		// flood of them delays authenticated clients only at the margin.
		maxPending: max(1, perProcess/4),
		subjects:   map[string]int{}, workspaces: map[string]int{},
	}
}

// A connLease is one counted connection; release it exactly once when the
// connection ends.
type connLease struct {
	l       *connLimits
	mu      sync.Mutex
	pending bool
	keys    *[2]string // subject key, workspace; nil until admitted
	done    bool
}

// limitError says which cap refused a connection.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

// processFullLocked refuses a connection when the process cap is reached.
func (l *connLimits) processFullLocked() error {
	if l.total >= l.perProcess {
		return &limitError{fmt.Sprintf("the server is at its connection limit (%d): retry later", l.perProcess)}
	}
	return nil
}

// openPending counts a new, not yet authenticated websocket.
func (l *connLimits) openPending() (*connLease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.processFullLocked(); err != nil {
		return nil, err
	}
	if l.pending >= l.maxPending {
		return nil, &limitError{fmt.Sprintf("too many connections waiting to authenticate (%d): retry later", l.maxPending)}
	}
	l.total++
	l.pending++
	return &connLease{l: l, pending: true}, nil
}

// openStream counts an SSE stream of p.
func (l *connLimits) openStream(p auth.Principal) (*connLease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.processFullLocked(); err != nil {
		return nil, err
	}
	c := &connLease{l: l}
	if err := l.admitLocked(c, p); err != nil {
		return nil, err
	}
	l.total++
	return c, nil
}

// admit moves a pending websocket to p's subject and workspace.
func (c *connLease) admit(p auth.Principal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || c.keys != nil {
		return nil
	}
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if err := c.l.admitLocked(c, p); err != nil {
		return err
	}
	c.l.pending--
	c.pending = false
	return nil
}

func (l *connLimits) admitLocked(c *connLease, p auth.Principal) error {
	subject := p.Workspace + "\x00" + p.Subject // as the rate limiter keys it
	if l.subjects[subject] >= l.perSubject {
		return &limitError{fmt.Sprintf("too many open connections for this token subject (at most %d): close one first", l.perSubject)}
	}
	if l.workspaces[p.Workspace] >= l.perWorkspace {
		return &limitError{fmt.Sprintf("too many open connections for this workspace (at most %d): close one first", l.perWorkspace)}
	}
	l.subjects[subject]++
	l.workspaces[p.Workspace]++
	c.keys = &[2]string{subject, p.Workspace}
	return nil
}

// release uncounts the connection; later calls do nothing.
func (c *connLease) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.done = true
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if c.pending {
		l.pending--
	}
	if c.keys != nil {
		decr(l.subjects, c.keys[0])
		decr(l.workspaces, c.keys[1])
	}
}

func decr(m map[string]int, k string) {
	if m[k] <= 1 {
		delete(m, k) // the maps hold only keys with open connections
		return
	}
	m[k]--
}

// counts returns (open, pending) connections (tests and metrics).
func (l *connLimits) counts() (total, pending int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.pending
}

// isSSE reports whether r asks for graphql-sse, as gqlgen's SSE transport
// decides it.
func isSSE(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// streams counts SSE streams against the caps (after authentication and
// the rate limiter, which has already taken this attempt's token): a
// stream over a cap gets 429 RATE_LIMITED before anything runs.
func (l *connLimits) streams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		if !ok || !isSSE(r) {
			next.ServeHTTP(w, r)
			return
		}
		lease, err := l.openStream(p)
		if err != nil {
			refuseConnection(w, err)
			return
		}
		defer lease.release()
		next.ServeHTTP(w, r)
	})
}

// refuseConnection answers an HTTP request (an SSE stream or a websocket
// upgrade) over a connection cap: 429 with RATE_LIMITED, like the rate
// limit, and Retry-After. The cap frees when connections close, not with
// time, so the retry hint is a short back-off.
func refuseConnection(w http.ResponseWriter, err error) {
	w.Header().Set("Retry-After", strconv.Itoa(connRetryAfter))
	writeGraphQLErrorExt(w, http.StatusTooManyRequests, apperr.RateLimited, err.Error(),
		map[string]any{"retryAfter": connRetryAfter})
}

// connRetryAfter is the back-off, in seconds, suggested to a client
// refused by a connection cap.
const connRetryAfter = 5
