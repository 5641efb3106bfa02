package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"

	"github.com/halo-cdp/halo/apperr"
	"github.com/halo-cdp/halo/auth"
)

// Subscription transports.
const (
	// wsKeepAlive is how often the websocket transport pings idle clients.
	wsKeepAlive = 15 * time.Second
	// wsInitTimeout is how long a client has to send connection_init.
	wsInitTimeout = 10 * time.Second
	// sseKeepAlive is how often an idle SSE stream gets a comment line, so
	// proxies do not time it out.
	sseKeepAlive = 15 * time.Second
	// closeForbidden is graphql-transport-ws's close code for a refused
	// connection_init.
	closeForbidden = 4403
)

// websocketTransport is graphql-transport-ws (and the legacy graphql-ws)
// over github.com/coder/websocket. The token comes in connection_init's
// payload, as {"Authorization": "Bearer <jwt>"} or {"token": "<jwt>"}: a
// bad one closes the connection with 4403. Which browser pages may connect
// is decided before the upgrade (upgradeOr); the patterns below are a
// second line for any route that skips it.
func websocketTransport(v *auth.Verifier) transport.Websocket {
	return transport.Websocket{
		Implementation: transport.CoderWebsocketImplementation{AcceptOptions: coderws.AcceptOptions{
			OriginPatterns: []string{"localhost:*", "127.0.0.1:*", "[::1]:*"},
		}},
		InitTimeout:           wsInitTimeout,
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
			return auth.WithPrincipal(ctx, principal), nil, nil
		},
	}
}

func refuse(ctx context.Context, reason string) (context.Context, *transport.InitPayload, error) {
	ctx = transport.WithWebsocketCloseCode(ctx, closeForbidden)
	ctx = transport.AppendCloseReason(ctx, "Forbidden: "+reason)
	return ctx, nil, errors.New("unauthenticated: " + reason)
}

// upgradeOr sends websocket upgrades to ws, which authenticates in
// connection_init, and everything else to next. Browsers do not apply
// CORS to websockets, so the page's Origin is checked here, against the
// same list as CORS (plus the server's own origin, and localhost in dev):
// a page elsewhere gets 403 FORBIDDEN before the upgrade. Clients that
// send no Origin (servers, scripts) are not restricted: they must present
// a token anyway. An accepted Origin is removed before the transport sees
// it, because the transport's own check knows only same-origin and
// localhost. Each upgrade gets its per-connection state (wsConn: the
// subscription count wsLimits caps).
func upgradeOr(cfg Config, ws, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
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
		ws.ServeHTTP(w, r.WithContext(withWSConn(r.Context())))
	})
}
