package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"

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
// bad one closes the connection with 4403. Browsers may connect from the
// same origin or from localhost (dev); clients that send no Origin (servers,
// tests) are not restricted, since they carry a token anyway.
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
			principal, err := v.Verify(token)
			if err != nil {
				reason := "invalid token"
				var ae *auth.Error
				if errors.As(err, &ae) {
					reason = ae.Reason
				}
				return refuse(ctx, reason)
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
// connection_init, and everything else to next.
func upgradeOr(ws, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			ws.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
