package resolvers

import (
	"context"
	"errors"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/halo-cdp/halo/apperr"
)

// ErrorPresenter turns any resolver error into a GraphQL error with a
// stable extensions.code:
//   - client-facing errors (apperr, also raised by our scalars while
//     coercing input) keep their message and code;
//   - errors gqlgen itself raised (parse, validation) keep gqlgen's code,
//     or get BAD_USER_INPUT when they carry none;
//   - anything else is logged with its detail and shown as INTERNAL with a
//     generic message, so driver messages and stacks never leak.
func ErrorPresenter(ctx context.Context, err error) *gqlerror.Error {
	out := graphql.DefaultErrorPresenter(ctx, err)
	if e, ok := apperr.As(err); ok {
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
		slog.WarnContext(ctx, "request cancelled", "path", out.Path.String(), "err", err)
	} else {
		slog.ErrorContext(ctx, "resolver failed", "path", out.Path.String(), "err", err)
	}
	out.Message = "internal error"
	out.Extensions = map[string]any{"code": string(apperr.Internal)}
	return out
}

// Recover turns a resolver panic into an INTERNAL error (logged).
func Recover(ctx context.Context, p any) error {
	slog.ErrorContext(ctx, "resolver panic", "panic", p)
	return apperr.New(apperr.Internal, "internal error")
}
