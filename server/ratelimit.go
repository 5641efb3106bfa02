package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"golang.org/x/time/rate"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/auth"
)

// rateLimiter is Halo's request limit: a token bucket per token subject
// (within its workspace) and one per workspace; a request needs a token
// from both. It runs after authentication, so every key comes from a
// verified token: nobody can grow the maps without a signing key.
type rateLimiter struct {
	subject   *keyedLimiter // nil: off
	workspace *keyedLimiter // nil: off
	now       func() time.Time
}

// newRateLimiter limits each subject to perSubject and each workspace to
// perWorkspace requests per second (0 turns that limit off), with bursts
// of twice the rate.
func newRateLimiter(perSubject, perWorkspace float64, now func() time.Time) *rateLimiter {
	return &rateLimiter{subject: newKeyedLimiter(perSubject), workspace: newKeyedLimiter(perWorkspace), now: now}
}

// allow takes a token for p's subject and workspace, or says how long until
// the request could pass. A refused request consumes nothing: whatever it
// reserved is given back.
func (l *rateLimiter) allow(p auth.Principal) (ok bool, retryAfter time.Duration) {
	now := l.now()
	// The subject key includes the workspace: subjects are only unique per
	// issuer, and tokens without sub share their workspace's "" subject.
	rs, wait := l.subject.reserve(p.Workspace+"\x00"+p.Subject, now)
	if wait > 0 {
		return false, wait
	}
	if _, wait := l.workspace.reserve(p.Workspace, now); wait > 0 {
		if rs != nil {
			rs.CancelAt(now)
		}
		return false, wait
	}
	return true, 0
}

// middleware refuses requests over the limit with 429, Retry-After and
// RATE_LIMITED, before anything is parsed or executed.
func (l *rateLimiter) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := auth.FromContext(r.Context()); ok {
			if ok, retry := l.allow(p); !ok {
				writeRateLimited(w, retry)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// retrySeconds rounds a wait up to whole seconds (what Retry-After can
// say), at least 1.
func retrySeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

func writeRateLimited(w http.ResponseWriter, retry time.Duration) {
	secs := retrySeconds(retry)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeGraphQLErrorExt(w, http.StatusTooManyRequests, apperr.RateLimited,
		fmt.Sprintf("rate limit exceeded, retry in %d s", secs), map[string]any{"retryAfter": secs})
}

// keyedLimiter is a set of token buckets created on first use and dropped
// once idle long enough to have refilled: a dropped bucket and a fresh one
// are the same, so eviction loses nothing and memory follows the callers
// active in the last few seconds.
type keyedLimiter struct {
	limit rate.Limit
	burst int
	// idle is how long a bucket takes to refill from empty.
	idle time.Duration

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

// sweepEvery bounds how often the idle buckets are looked for; between
// sweeps the map only grows by the callers seen meanwhile.
const sweepEvery = time.Minute

func newKeyedLimiter(perSecond float64) *keyedLimiter {
	if perSecond <= 0 {
		return nil
	}
	burst := max(1, int(math.Ceil(2*perSecond)))
	return &keyedLimiter{
		limit:   rate.Limit(perSecond),
		burst:   burst,
		idle:    time.Duration(float64(burst) / perSecond * float64(time.Second)),
		buckets: map[string]*bucket{},
	}
}

// reserve takes one token for key at now and returns its reservation, or
// how long until a token is there (taking nothing).
func (k *keyedLimiter) reserve(key string, now time.Time) (*rate.Reservation, time.Duration) {
	if k == nil {
		return nil, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.lastSweep) >= sweepEvery {
		k.sweep(now)
	}
	b := k.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(k.limit, k.burst)}
		k.buckets[key] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, d
	}
	return r, 0
}

func (k *keyedLimiter) sweep(now time.Time) {
	k.lastSweep = now
	for key, b := range k.buckets {
		if now.Sub(b.last) >= k.idle {
			delete(k.buckets, key)
		}
	}
}

// size is the number of live buckets (tests).
func (k *keyedLimiter) size() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}

// ---- websocket operations ----

// wsConn is per-websocket-connection state, put in the upgrade request's
// context (upgradeOr); the connection and every operation on it inherit
// that context.
type wsConn struct {
	subs  atomic.Int64 // subscriptions running
	lease *connLease   // its slot under the connection caps
	// expiresAt is its token's exp (Unix ns; 0: none yet): a close from
	// then on is for expiry, 4403.
	expiresAt atomic.Int64
	// stop releases the deadline set at connection_init (set and called
	// on the connection's own goroutine).
	stop func()
	// socket is the accepted websocket (set on the connection's own
	// goroutine), closed when the transport returns.
	socket transport.WebsocketConn
}

// end releases what the connection holds once it has closed.
func (c *wsConn) end() {
	if c.stop != nil {
		c.stop()
	}
}

type wsConnKey struct{}

func wsConnFrom(ctx context.Context) *wsConn {
	c, _ := ctx.Value(wsConnKey{}).(*wsConn)
	return c
}

// wsLimits applies the limits of HTTP requests to the operations a client
// starts over a websocket (one upgrade, many operations): each operation
// takes a rate-limit token like an HTTP request, and a connection holds at
// most maxSubs subscriptions at once. An operation over either limit gets
// one error (RATE_LIMITED; retryAfter only for the rate limit: a full
// connection frees a slot when the client completes one of its
// subscriptions, not with time) and the connection and its other
// operations carry on. Operations over HTTP and SSE are not affected: the
// HTTP middleware has limited them already.
type wsLimits struct {
	limiter *rateLimiter
	maxSubs int
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = wsLimits{}

func (wsLimits) ExtensionName() string                   { return "HaloWebsocketLimits" }
func (wsLimits) Validate(graphql.ExecutableSchema) error { return nil }

func (l wsLimits) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	conn := wsConnFrom(ctx)
	if conn == nil {
		return next(ctx)
	}
	if p, ok := auth.FromContext(ctx); ok {
		if ok, retry := l.limiter.allow(p); !ok {
			secs := retrySeconds(retry)
			return operationError(fmt.Sprintf("rate limit exceeded, retry in %d s", secs),
				map[string]any{"code": string(apperr.RateLimited), "retryAfter": secs})
		}
	}
	oc := graphql.GetOperationContext(ctx)
	if oc == nil || oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
		return next(ctx)
	}
	if n := conn.subs.Add(1); l.maxSubs > 0 && n > int64(l.maxSubs) {
		conn.subs.Add(-1)
		return operationError(fmt.Sprintf("too many subscriptions on this connection (at most %d): complete one first", l.maxSubs),
			map[string]any{"code": string(apperr.RateLimited), "limit": l.maxSubs})
	}
	// gqlgen cancels an operation's context when it ends for any reason:
	// the stream finished, the client sent complete, the socket closed.
	context.AfterFunc(ctx, func() { conn.subs.Add(-1) })
	return next(ctx)
}

// operationError is a response carrying one error, for refusing an
// operation before it runs.
func operationError(message string, ext map[string]any) graphql.ResponseHandler {
	return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{Message: message, Extensions: ext}}})
}
