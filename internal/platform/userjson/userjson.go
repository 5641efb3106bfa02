// Package userjson checks and converts the JSON objects clients send
// (traits, event properties) before they become stored documents, and
// converts stored BSON values back to plain JSON values.
//
// Keys starting with "$" or containing "." are refused: in MongoDB they are
// operators and path separators, the classic NoSQL-injection route.
package userjson

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Limits bound a document.
type Limits struct {
	MaxDepth int // objects and arrays nested deeper than this are refused
	MaxBytes int // JSON-encoded size
}

// Error describes why a document was refused; Path locates the culprit.
type Error struct {
	Path   string
	Reason string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Reason)
}

// Object checks that v is a JSON object within lim, and returns it.
// nil is an empty object. allowNull keeps null values (they mean "remove"
// in a trait patch).
func Object(v any, lim Limits) (map[string]any, error) {
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &Error{Reason: "must be a JSON object"}
	}
	if err := check(m, "", 1, lim); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, &Error{Reason: "not encodable as JSON"}
	}
	if len(b) > lim.MaxBytes {
		return nil, &Error{Reason: fmt.Sprintf("is %d bytes, more than the %d allowed", len(b), lim.MaxBytes)}
	}
	return m, nil
}

// Size is the JSON-encoded size of v.
func Size(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return math.MaxInt
	}
	return len(b)
}

func check(v any, path string, depth int, lim Limits) error {
	switch x := v.(type) {
	case map[string]any:
		if depth > lim.MaxDepth {
			return &Error{Path: path, Reason: fmt.Sprintf("nested deeper than %d levels", lim.MaxDepth)}
		}
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if err := checkKey(k); err != nil {
				return &Error{Path: p, Reason: err.Error()}
			}
			if err := check(e, p, depth+1, lim); err != nil {
				return err
			}
		}
	case []any:
		if depth > lim.MaxDepth {
			return &Error{Path: path, Reason: fmt.Sprintf("nested deeper than %d levels", lim.MaxDepth)}
		}
		for i, e := range x {
			if err := check(e, fmt.Sprintf("%s[%d]", path, i), depth+1, lim); err != nil {
				return err
			}
		}
	case string:
		if !utf8.ValidString(x) {
			return &Error{Path: path, Reason: "string is not valid UTF-8"}
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return &Error{Path: path, Reason: "number is not finite"}
		}
	case nil, bool, int64, int, int32, json.Number:
	default:
		return &Error{Path: path, Reason: fmt.Sprintf("unsupported value of type %T", v)}
	}
	return nil
}

func checkKey(k string) error {
	switch {
	case k == "":
		return fmt.Errorf("empty key")
	case strings.HasPrefix(k, "$"):
		return fmt.Errorf("keys must not start with '$'")
	case strings.Contains(k, "."):
		return fmt.Errorf("keys must not contain '.'")
	case strings.ContainsRune(k, 0):
		return fmt.Errorf("keys must not contain NUL")
	case len(k) > 256:
		return fmt.Errorf("key longer than 256 bytes")
	case !utf8.ValidString(k):
		return fmt.Errorf("key is not valid UTF-8")
	}
	return nil
}

// Patch applies patch to base (both may be nil): null values delete keys,
// others replace them. base is not modified.
func Patch(base, patch map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(patch))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range patch {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// WithoutNulls returns m with null-valued keys removed (for documents where
// null has no "remove" meaning, such as event properties).
func WithoutNulls(m map[string]any) map[string]any {
	return Patch(nil, m)
}

// Plain converts a value decoded from BSON (bson.D, bson.A, bson.DateTime,
// int32, ...) to plain JSON-friendly Go values: map[string]any, []any,
// int64, float64, string, bool, nil, and RFC 3339 strings for times.
func Plain(v any) any {
	switch x := v.(type) {
	case bson.D:
		m := make(map[string]any, len(x))
		for _, e := range x {
			m[e.Key] = Plain(e.Value)
		}
		return m
	case bson.M:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = Plain(e)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = Plain(e)
		}
		return m
	case bson.A:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Plain(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Plain(e)
		}
		return out
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case bson.DateTime:
		return x.Time().UTC().Format(time.RFC3339Nano)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	default:
		return v
	}
}

// PlainObject is Plain for a document, never nil.
func PlainObject(v any) map[string]any {
	if m, ok := Plain(v).(map[string]any); ok {
		return m
	}
	return map[string]any{}
}
