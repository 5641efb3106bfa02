package main

import (
	"context"
	"errors"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/auth"
)

// tokenExpiry ends what a token started once the token expires. A single
// HTTP request is checked once, at its start, by the auth middleware; a
// subscription (over SSE or a websocket) and every operation sent over an
// open websocket are bound by the token's exp here:
//   - an operation started on a websocket after exp is refused with
//     UNAUTHENTICATED (the connection itself is closing with 4403: see
//     websocketTransport);
//   - a subscription stream ends at exp with one last error,
//     UNAUTHENTICATED "token expired", then completes, so an SSE client
//     knows to reconnect with a fresh token rather than think the stream
//     ran out.
type tokenExpiry struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = tokenExpiry{}

func (tokenExpiry) ExtensionName() string                   { return "HaloTokenExpiry" }
func (tokenExpiry) Validate(graphql.ExecutableSchema) error { return nil }

// expiredMessage is what an operation ended by its token's exp says.
const expiredMessage = "token expired: reconnect with a fresh token"

func (tokenExpiry) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	p, ok := auth.FromContext(ctx)
	if !ok || p.ExpiresAt.IsZero() {
		return next(ctx)
	}
	oc := graphql.GetOperationContext(ctx)
	stream := oc != nil && oc.Operation != nil && oc.Operation.Operation == ast.Subscription
	if !stream && wsConnFrom(ctx) == nil {
		return next(ctx) // one HTTP request: the middleware checked its token
	}
	if !time.Now().Before(p.ExpiresAt) {
		return operationError(expiredMessage, map[string]any{"code": string(apperr.Unauthenticated)})
	}
	if !stream {
		return next(ctx)
	}
	ctx, cancel := context.WithDeadline(ctx, p.ExpiresAt)
	responses := next(ctx)
	ended := false
	// The transport calls the handler from one goroutine, in turn.
	return func(rctx context.Context) *graphql.Response {
		if ended {
			return nil
		}
		if r := responses(rctx); r != nil {
			return r
		}
		ended = true
		defer cancel()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &graphql.Response{Errors: gqlerror.List{{
				Message:    expiredMessage,
				Extensions: map[string]any{"code": string(apperr.Unauthenticated)},
			}}}
		}
		return nil
	}
}
