package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/auth"
)

// Subscription transports.
const (
	// wsKeepAlive is how often the websocket transport pings idle clients.
	wsKeepAlive = 15 * time.Second
	// sseKeepAlive is how often an idle SSE stream gets a comment line, so
	// proxies do not time it out.
	sseKeepAlive = 15 * time.Second
	// closeForbidden is graphql-transport-ws's close code for a refused
	// connection_init, and Halo's for a token that expired on an open
	// connection (graphql-ws clients retry it, calling connectionParams
	// again: that is how they renew).
	closeForbidden = 4403
	// closeTooMany is graphql-transport-ws's "too many requests" close
	// code; Halo uses it for a connection_init over the rate limit or a
	// connection cap. graphql-ws clients do not retry it by themselves.
	closeTooMany = 4429
)

// websocketTransport is graphql-transport-ws (and the legacy graphql-ws)
// over github.com/coder/websocket. The token comes in connection_init's
// payload, as {"Authorization": "Bearer <jwt>"} or {"token": "<jwt>"}: a
// bad one closes the connection with 4403. An accepted connection_init
// takes a rate-limit token like a request and a slot under the
// connection caps (4429 when either is out), and the connection lives
// until the token's exp: then every operation on it ends and it closes
// with 4403 "Forbidden: token expired". Scopes are the token's, so a
// client that renews gets the new token's scopes. Which browser pages may
// connect is decided before the upgrade (upgradeOr); the patterns below
// are a second line for any route that skips it.
func websocketTransport(v *auth.Verifier, limiter *rateLimiter, initTimeout time.Duration) transport.Websocket {
	if initTimeout <= 0 {
		initTimeout = defaultWSInitTimeout // zero would mean no timeout at all
	}
	return transport.Websocket{
		Implementation: expiringSockets{transport.CoderWebsocketImplementation{AcceptOptions: coderws.AcceptOptions{
			OriginPatterns: []string{"localhost:*", "127.0.0.1:*", "[::1]:*"},
		}}},
		InitTimeout:           initTimeout,
		KeepAlivePingInterval: wsKeepAlive,
		InitFunc: func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			token := p.GetString("token")
			if h := p.Authorization(); h != "" {
				scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
				if !ok || !strings.EqualFold(scheme, "Bearer") {
					return refuse(ctx, auth.ReasonMalformedHeader)
				}
				token = strings.TrimSpace(tok)
			}
			if token == "" {
				return refuse(ctx, auth.ReasonMissing)
			}
			principal, err := v.Verify(ctx, token)
			if err != nil {
				return refuse(ctx, auth.Reason(err))
			}
			// The verifier's leeway lets a request through a little after
			// exp (clock skew); a connection that would start already past
			// it would only be closed at once.
			if !principal.ExpiresAt.IsZero() && !time.Now().Before(principal.ExpiresAt) {
				return refuse(ctx, auth.ReasonExpired)
			}
			if ok, retry := limiter.allow(principal); !ok {
				return refuseWith(ctx, closeTooMany, fmt.Sprintf("rate limit exceeded, retry in %d s", retrySeconds(retry)))
			}
			conn := wsConnFrom(ctx)
			if conn != nil && conn.lease != nil {
				if err := conn.lease.admit(principal); err != nil {
					return refuseWith(ctx, closeTooMany, err.Error())
				}
			}
			ctx = auth.WithPrincipal(ctx, principal)
			if !principal.ExpiresAt.IsZero() && conn != nil {
				// Every operation of the connection derives from this
				// context, and the transport closes the socket when it
				// ends.
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, principal.ExpiresAt)
				conn.expiresAt.Store(principal.ExpiresAt.UnixNano())
				conn.stop = cancel
			}
			return ctx, nil, nil
		},
	}
}

func refuse(ctx context.Context, reason string) (context.Context, *transport.InitPayload, error) {
	return refuseWith(ctx, closeForbidden, "Forbidden: "+reason)
}

// refuseWith closes the socket during connection_init with code and
// reason (at most 123 bytes: a close frame's limit).
func refuseWith(ctx context.Context, code int, reason string) (context.Context, *transport.InitPayload, error) {
	ctx = transport.WithWebsocketCloseCode(ctx, code)
	ctx = transport.AppendCloseReason(ctx, reason)
	return ctx, nil, errors.New(reason)
}

// expiringSockets wraps the websocket implementation so that a
// connection whose token expired closes with 4403 and says why: the
// transport closes a connection whose context ended with 1000
// "terminated", which a client would take for a normal end and not renew.
type expiringSockets struct {
	impl transport.WebsocketImplementation
}

func (e expiringSockets) Accept(w http.ResponseWriter, r *http.Request, o transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	c, err := e.impl.Accept(w, r, o)
	if err != nil {
		return nil, err
	}
	state := wsConnFrom(r.Context())
	if state == nil {
		return c, nil
	}
	state.socket = c // on the connection's goroutine, as upgradeOr reads it
	return &expiringConn{WebsocketConn: c, state: state}, nil
}

type expiringConn struct {
	transport.WebsocketConn
	state *wsConn
}

func (c *expiringConn) WriteClose(code int, message string) error {
	if exp := c.state.expiresAt.Load(); exp != 0 && time.Now().UnixNano() >= exp {
		code, message = closeForbidden, "Forbidden: "+auth.ReasonExpired
	}
	return c.WebsocketConn.WriteClose(code, message)
}

// The transport finds these optional interfaces by type assertion, so the
// wrapper passes them on.
func (c *expiringConn) SetReadLimit(n int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(n)
	}
}

func (c *expiringConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

// upgradeOr sends websocket upgrades to ws, which authenticates in
// connection_init, and everything else to next. Browsers do not apply
// CORS to websockets, so the page's Origin is checked here, against the
// same list as CORS (plus the server's own origin, and localhost in dev):
// a page elsewhere gets 403 FORBIDDEN before the upgrade. Clients that
// send no Origin (servers, scripts) are not restricted: they must present
// a token anyway. An accepted Origin is removed before the transport sees
// it, because the transport's own check knows only same-origin and
// localhost. Each upgrade is counted under the connection caps (429
// RATE_LIMITED before the upgrade when the process or its unauthenticated
// share is full) and gets its per-connection state (wsConn: its slot, the
// subscription count wsLimits caps, whether its token expired).
func upgradeOr(cfg Config, conns *connLimits, ws, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Any Upgrade header is an upgrade attempt: the transport and the
		// websocket library accept "Upgrade: foo, websocket" too, and such
		// a request must not reach them around the caps and the checks.
		if len(r.Header.Values("Upgrade")) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			if !originAllowed(origin, r.Host, cfg.CORSOrigins, cfg.Dev) {
				writeGraphQLError(w, http.StatusForbidden, apperr.Forbidden,
					"websocket connections from this origin are not allowed (HALO_CORS_ORIGINS)")
				return
			}
			r = r.Clone(r.Context())
			r.Header.Del("Origin")
		}
		lease, err := conns.openPending()
		if err != nil {
			refuseConnection(w, err)
			return
		}
		// The transport returns when the connection has ended.
		defer lease.release()
		conn := &wsConn{lease: lease}
		defer conn.end()
		ws.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), wsConnKey{}, conn)))
		// The transport can return with the socket still open (a
		// connection_init whose payload is not an object): its slot is
		// released, so the socket goes too.
		if conn.socket != nil {
			_ = conn.socket.Close()
		}
	})
}
