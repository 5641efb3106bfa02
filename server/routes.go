package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/halo-cdp/halo/graph"
	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/resolvers"
	"github.com/halo-cdp/halo/store"
)

const (
	// maxBodyBytes caps a GraphQL request body (issue 4: bodies over 1 MiB
	// are refused). trackBatch's 500 events fit comfortably.
	maxBodyBytes = 1 << 20
	// Operation limits (resolvers.Limits), checked before any resolver
	// runs. Measured (resolvers.TestLimits and the e2e suites): the
	// operations of the README and the e2e tests nest at most 6 levels,
	// select under 40 fields and use no aliases; the costliest legitimate
	// screens cost 1,193 (the 360 view with consent, segments, merges and
	// 100 timeline items), 1,227 (a segment page of 100 members with
	// traits and identifiers) and 1,301 (a list of 100 profiles). The
	// limits leave about 4x headroom and refuse what multiplies lists:
	// 100 profiles with 100 events each costs 30,201.
	maxDepth      = 10
	maxAliases    = 50
	maxFields     = 1000
	maxComplexity = 5000
	// apqCacheSize bounds the persisted queries kept (per process; a
	// client whose hash was evicted is told PersistedQueryNotFound and
	// sends the query again).
	apqCacheSize = 1000
	// readyTimeout bounds /readyz so a hung store reads as "not ready"
	// before the orchestrator's probe gives up.
	readyTimeout = 2 * time.Second
)

// handlerDeps is what the HTTP layer needs from the rest of the process.
type handlerDeps struct {
	store    *store.Store
	hub      *realtime.Hub
	verifier *auth.Verifier
	// services are the process's domain services, wired with cfg's clock
	// and publishing to hub; nil: the resolvers build their own (tests).
	services *app.Services
	logger   *slog.Logger
	// cfg is the whole configuration (security settings: CORS, rate
	// limits, dev mode, subscriptions per connection).
	cfg Config
	// limiter and conns are the request rate limiter and the caps on
	// long-lived connections, shared by the HTTP routes and the websocket
	// transport; nil: newGraphQLServer makes them from cfg (tests that
	// build the GraphQL server alone).
	limiter *rateLimiter
	conns   *connLimits
	// devSecret, in dev mode, signs the dev token the playground page
	// gives a browser on this machine (nil: none).
	devSecret []byte
}

// newHandler builds the routes:
//
//	POST|GET /graphql   GraphQL over HTTP (bearer token required); POST with
//	                    Accept: text/event-stream is graphql-sse
//	GET /graphql        websocket upgrade: graphql-transport-ws (token in
//	                    connection_init)
//	OPTIONS  /graphql   allowed methods (no token: preflights carry none)
//	GET      /playground GraphiQL from embedded files, only when cfg.Dev
//	                    (else 404); / leads to it until the console
//	                    takes that place
//	GET      /healthz   process is up
//	GET      /readyz    store is reachable
//
// Every response gets the security headers; browsers on cfg.CORSOrigins
// may call the API. GraphQL requests are authenticated, then rate limited
// (per subject and per workspace), then checked (JSON, size, UTF-8) before
// gqlgen sees them; operations sent over a websocket are rate limited and
// capped per connection by the wsLimits extension.
func newHandler(d handlerDeps) http.Handler {
	d.limiter, d.conns = limitsOf(d)
	gql := newGraphQLServer(d)
	authn := auth.Middleware(d.verifier)
	// A request refused before its body is read (no token, rate limit,
	// content type, declared size) is answered at once and its connection
	// closed, instead of the server reading the rest of a body nobody
	// wants (a slow client could hold it until ReadTimeout).
	guarded := func(h http.Handler) http.Handler {
		return closeUnreadOnAnswer(authn(d.limiter.middleware(d.conns.streams(h))))
	}

	mux := http.NewServeMux()
	mux.Handle("POST /graphql", guarded(requireJSON(limitBody(maxBodyBytes, d.cfg.bodyTimeout(), codedErrors(gql)))))
	// A websocket upgrade carries its token in connection_init, not in a
	// header: the websocket transport authenticates it (InitFunc).
	mux.Handle("GET /graphql", upgradeOr(d.cfg, d.conns, gql, guarded(requireUTF8Query(codedErrors(gql)))))
	mux.Handle("OPTIONS /graphql", gql)
	if d.cfg.Dev {
		pg := playgroundHandler(d.devSecret, d.devSecret != nil)
		mux.Handle("GET /playground", pg)
		mux.Handle("GET /playground/assets/", pg)
		mux.Handle("GET /{$}", http.RedirectHandler("/playground", http.StatusFound))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := d.store.Ping(ctx); err != nil {
			// The reason (host names, driver text) goes to the log only.
			d.logger.WarnContext(r.Context(), "readiness check failed", "err", err)
			plain(w, http.StatusServiceUnavailable, "not ready")
			return
		}
		plain(w, http.StatusOK, "ready")
	})
	return withRequestLog(d.logger, securityHeaders(withCORS(d.cfg.CORSOrigins, mux)))
}

// newGraphQLServer assembles gqlgen's handler: the HTTP transports (GET,
// POST with application/json or application/graphql-response+json
// responses, chosen from Accept), the subscription transports (websocket,
// SSE), Halo's error presenter (INTERNAL errors carry the request id) and
// panic recovery, a parsed-query cache, automatic persisted queries, the
// scope check of mutations and subscriptions, and the operation limits.
// Introspection is allowed in dev mode only.
func newGraphQLServer(d handlerDeps) *handler.Server {
	if d.limiter == nil || d.conns == nil {
		d.limiter, d.conns = limitsOf(d)
	}
	opts := []resolvers.Option{resolvers.WithHub(d.hub), resolvers.WithClock(d.cfg.clock())}
	if d.services != nil {
		opts = append(opts, resolvers.WithServices(d.services))
	}
	r := resolvers.New(d.store, opts...)
	srv := handler.New(graph.NewExecutableSchema(r.Config()))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(websocketTransport(d.verifier, d.limiter, d.cfg.WSInitTimeout))
	srv.AddTransport(transport.SSE{KeepAlivePingInterval: sseKeepAlive}) // before POST: both take POST application/json
	srv.AddTransport(graphqlGET{})
	srv.AddTransport(graphqlPOST{})
	srv.SetErrorPresenter(resolvers.NewErrorPresenter(d.logger, requestID))
	srv.SetRecoverFunc(resolvers.NewRecover(d.logger))
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](apqCacheSize)})
	// Limits before the scope check: the check walks the operation, and
	// the limits bound the walk.
	srv.Use(&resolvers.Limits{
		MaxDepth: maxDepth, MaxAliases: maxAliases, MaxFields: maxFields,
		MaxComplexity: maxComplexity, Introspection: d.cfg.Dev,
	})
	srv.Use(resolvers.ScopeCheck{})
	srv.Use(tokenExpiry{})
	srv.Use(wsLimits{limiter: d.limiter, maxSubs: d.cfg.MaxSubscriptions})
	srv.Use(resolvers.ProfileMemo{})
	return srv
}

// limitsOf builds the rate limiter and the connection caps of d.cfg
// (a zero cap takes its default).
func limitsOf(d handlerDeps) (*rateLimiter, *connLimits) {
	c := d.cfg
	perSubject, perWorkspace, perProcess := c.MaxConnsPerSubject, c.MaxConnsPerWorkspace, c.MaxConns
	if perSubject <= 0 {
		perSubject = defaultMaxConnsPerSubject
	}
	if perWorkspace <= 0 {
		perWorkspace = defaultMaxConnsPerWorkspace
	}
	if perProcess <= 0 {
		perProcess = defaultMaxConnections()
	}
	return newRateLimiter(c.RateLimit, c.WorkspaceRateLimit, time.Now),
		newConnLimits(perSubject, perWorkspace, perProcess)
}

func plain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body + "\n"))
}
