package model

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/halo-cdp/halo/internal/platform/apperr"
)

// MarshalJSONValue writes any JSON-encodable value (traits, properties).
func MarshalJSONValue(v any) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		b, err := json.Marshal(v)
		if err != nil {
			// Values come from our own decoded documents, so this is a bug;
			// null is the least surprising thing to send.
			_, _ = io.WriteString(w, "null")
			return
		}
		_, _ = w.Write(b)
	})
}

// UnmarshalJSONValue accepts any JSON value from variables or literals and
// normalises numbers: variables arrive as json.Number, literals as
// int64/float64; downstream code sees int64 for integers, float64 otherwise.
func UnmarshalJSONValue(v any) (any, error) {
	return normalise(v)
}

func normalise(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, apperr.Invalid("", "invalid number %q", truncate(string(x)))
		}
		return f, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalise(e)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalise(e)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	default:
		return v, nil
	}
}

// MarshalTimeValue writes an RFC 3339 timestamp in UTC.
func MarshalTimeValue(t time.Time) graphql.Marshaler {
	return graphql.MarshalTime(t.UTC())
}

// UnmarshalTimeValue reads an RFC 3339 timestamp. A bad one is the
// client's fault, so it is a BAD_USER_INPUT error, not gqlgen's bare one.
func UnmarshalTimeValue(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, apperr.Invalid("", "a Time must be an RFC 3339 string, e.g. 2026-11-23T13:26:00Z")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, apperr.Invalid("", "%q is not an RFC 3339 time, e.g. 2026-11-23T13:26:00Z", truncate(s))
	}
	return t, nil
}

func truncate(s string) string {
	if len(s) <= 40 {
		return s
	}
	return strings.ToValidUTF8(s[:40], "") + "…"
}
