package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

// introspectionQuery is GraphiQL's, trimmed: its type references nest
// eight levels, deeper than the depth limit, which does not count
// introspection when it is allowed.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

func TestSecurityIntrospectionInDevOnly(t *testing.T) {
	t.Parallel()
	prod := startServer(t, serverOptions{Env: map[string]string{"HALO_DEV": "0"}})
	r := prod.gql(t, prod.token(t, "acme"), introspectionQuery, nil)
	r.requireError(t, http.StatusOK, "GRAPHQL_VALIDATION_FAILED") // application/json: 200, as GraphQL over HTTP asks
	if r.Data != nil && string(r.Data) != "null" {
		t.Fatalf("introspection data outside dev mode: %s", r.Data)
	}
	// __typename is not introspection: clients add it everywhere.
	prod.gql(t, prod.token(t, "acme"), `{ __typename viewer { __typename workspace } }`, nil).requireOK(t)

	dev := startServer(t, serverOptions{Env: map[string]string{"HALO_DEV": "1"}})
	r = dev.gql(t, dev.token(t, "acme"), introspectionQuery, nil)
	r.requireOK(t)
	var out struct {
		Schema struct {
			Types      []struct{ Name string }
			Directives []struct{ Name string }
		} `json:"__schema"`
	}
	r.decode(t, &out)
	if len(out.Schema.Types) < 50 || !strings.Contains(string(r.Data), `"name":"hasScope"`) {
		t.Fatalf("dev introspection: %d types: %.300s", len(out.Schema.Types), r.Data)
	}
}

// syncWriter is a log sink safe for the handler goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// An unexpected store failure reaches the client as INTERNAL with a
// generic message and the request id, and the log has the detail under
// the same id.
func TestSecurityInternalErrorIsMasked(t *testing.T) {
	t.Parallel()
	backend, err := sqlitestore.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), backend, app.Collections)
	if err != nil {
		t.Fatal(err)
	}
	// Closed under the server: every store call fails with the driver's
	// own error text.
	if err := st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var logs syncWriter
	logger := slog.New(requestIDHandler{slog.NewJSONHandler(&logs, nil)})
	gql := newGraphQLServer(handlerDeps{store: st, logger: logger, cfg: Config{}})
	asAcme := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := auth.WithPrincipal(r.Context(), auth.Principal{Workspace: "acme", Subject: "test", Scopes: auth.AllScopes})
		gql.ServeHTTP(w, r.WithContext(ctx))
	})
	srv := httptest.NewServer(withRequestLog(logger, asAcme))
	defer srv.Close()

	for _, q := range []string{
		`{ profiles { nodes { id } } }`,
		`mutation { identify(input: {identifiers: [{type: "email", value: "x@acme.test"}]}) { profile { id } } }`,
	} {
		body, _ := json.Marshal(map[string]any{"query": q})
		res, err := http.Post(srv.URL+"/graphql", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var resp struct{ Errors []gqlError }
		raw := new(bytes.Buffer)
		_, _ = raw.ReadFrom(res.Body)
		res.Body.Close()
		if err := json.Unmarshal(raw.Bytes(), &resp); err != nil || len(resp.Errors) == 0 {
			t.Fatalf("%s: %s", q, raw)
		}
		e := resp.Errors[0]
		id := res.Header.Get("X-Request-Id")
		if e.Code() != "INTERNAL" || e.Message != "internal error" || e.Extensions["requestId"] != id || id == "" {
			t.Fatalf("%s: want INTERNAL, \"internal error\" and requestId %q: %s", q, id, raw)
		}
		for _, leak := range []string{"sql", "closed", "database", "store", ".go"} {
			if strings.Contains(strings.ToLower(raw.String()), leak) {
				t.Errorf("%s: the response shows %q: %s", q, leak, raw)
			}
		}
		var found bool
		for line := range strings.SplitSeq(logs.String(), "\n") {
			if strings.Contains(line, `"msg":"resolver failed"`) && strings.Contains(line, `"request_id":"`+id+`"`) && strings.Contains(line, "closed") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no log line with request_id %s and the detail:\n%s", q, id, logs.String())
		}
	}
}
