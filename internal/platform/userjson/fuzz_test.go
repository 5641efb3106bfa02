package userjson

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzObject feeds arbitrary JSON through the trait/property check. It
// must never panic, and what it accepts must hold no key that MongoDB
// would read as an operator or a path ($-prefixed, dotted, empty), no
// deeper nesting than the limit, and fit the byte limit.
//
//	go test ./userjson -run '^$' -fuzz FuzzObject -fuzztime 30s
func FuzzObject(f *testing.F) {
	for _, seed := range []string{
		`{"plan":"pro","address":{"city":"Lisbon","tags":["a",1,true,null]}}`,
		`{"$where":"sleep(1000)"}`, `{"a":{"$gt":1}}`, `{"a.b":1}`, `{"__proto__":{"admin":true}}`,
		`{"":1}`, `{"a":[[[[[[1]]]]]]}`, `[1,2]`, `"text"`, `null`, `{"x":"\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	lim := Limits{MaxDepth: 5, MaxBytes: 4 << 10}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		m, err := Object(v, lim)
		if err != nil {
			return
		}
		var walk func(v any, depth int)
		walk = func(v any, depth int) {
			switch x := v.(type) {
			case map[string]any:
				if depth > lim.MaxDepth {
					t.Fatalf("accepted nesting of %d levels", depth)
				}
				for k, e := range x {
					if k == "" || strings.HasPrefix(k, "$") || strings.Contains(k, ".") {
						t.Fatalf("accepted key %q", k)
					}
					walk(e, depth+1)
				}
			case []any:
				if depth > lim.MaxDepth {
					t.Fatalf("accepted nesting of %d levels", depth)
				}
				for _, e := range x {
					walk(e, depth+1)
				}
			}
		}
		walk(m, 1)
		if Size(m) > lim.MaxBytes {
			t.Fatalf("accepted %d bytes", Size(m))
		}
		// What is stored comes back as the same plain JSON.
		if _, err := json.Marshal(Plain(m)); err != nil {
			t.Fatalf("accepted value does not encode: %v", err)
		}
	})
}
