package resolvers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/halo-cdp/halo/internal/platform/apperr"
)

// internalMessage is all a client learns of an unexpected failure.
const internalMessage = "internal error"

// NewErrorPresenter returns the presenter that turns any resolver error
// into a GraphQL error with a stable extensions.code:
//   - client-facing errors (apperr, also raised by our scalars while
//     coercing input) keep their message and code;
//   - errors gqlgen itself raised (parse, validation, limits) keep gqlgen's
//     code, or get BAD_USER_INPUT when they carry none;
//   - anything else is logged on log with its detail and shown as INTERNAL
//     with a generic message, so driver messages and stacks never leak.
//
// Every INTERNAL error carries extensions.requestId, the id requestID
// reads from the context: the same id the log line carries (log's handler
// adds it), so support can find the detail from what a client reports.
func NewErrorPresenter(log *slog.Logger, requestID func(context.Context) string) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		out := graphql.DefaultErrorPresenter(ctx, err)
		if e, ok := apperr.As(err); ok {
			if e.Code == apperr.Internal {
				if e.Message != internalMessage { // NewRecover logged its own
					log.ErrorContext(ctx, "resolver failed", "path", out.Path.String(), "err", err)
				}
				return internal(ctx, out, requestID)
			}
			out.Message = e.Error()
			out.Extensions = map[string]any{"code": string(e.Code)}
			if e.Field != "" {
				out.Extensions["field"] = e.Field
			}
			return out
		}
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) && gqlErr.Err == nil {
			if out.Extensions == nil {
				out.Extensions = map[string]any{}
			}
			if _, ok := out.Extensions["code"]; !ok {
				out.Extensions["code"] = string(apperr.BadUserInput)
			}
			return out
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			log.WarnContext(ctx, "request cancelled", "path", out.Path.String(), "err", err)
		} else {
			log.ErrorContext(ctx, "resolver failed", "path", out.Path.String(), "err", err)
		}
		return internal(ctx, out, requestID)
	}
}

// internal replaces out's message and extensions with the generic ones.
func internal(ctx context.Context, out *gqlerror.Error, requestID func(context.Context) string) *gqlerror.Error {
	out.Message = internalMessage
	out.Extensions = map[string]any{"code": string(apperr.Internal)}
	if id := requestID(ctx); id != "" {
		out.Extensions["requestId"] = id
	}
	return out
}

// NewRecover returns the panic handler: a resolver panic is logged on log
// (with the request id, through log's handler) and becomes an INTERNAL
// error, presented like any other.
func NewRecover(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "resolver panic", "panic", fmt.Sprint(p))
		return apperr.New(apperr.Internal, internalMessage)
	}
}
