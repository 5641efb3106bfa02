package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/halo-cdp/halo/internal/platform/apperr"
)

// graphqlPOST and graphqlGET are the HTTP transports, as GraphQL over
// HTTP asks (the graphql-http package's server audit checks them;
// httpaudit_test.go runs it). They differ from gqlgen's transport.POST
// and transport.GET in what a request that cannot run gets:
//   - malformed parameters (a body that is not a JSON object, a query
//     that is not a string, variables or extensions that are not
//     objects, no query at all): 400, with a message naming the
//     parameter and never echoing the body or Go's type names;
//   - a document that does not parse or validate, or variables that do
//     not coerce: 200 with application/json, 400 with
//     application/graphql-response+json;
//   - a mutation over GET: 405;
//   - in each case the answer has no data entry: nothing was executed.
type graphqlPOST struct{}

type graphqlGET struct{}

const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
)

var (
	_ graphql.Transport = graphqlPOST{}
	_ graphql.Transport = graphqlGET{}
)

func (graphqlPOST) Supports(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && r.Method == http.MethodPost && mediaType == mediaJSON
}

// responseType is application/graphql-response+json when Accept names
// it, else application/json (the media type clients from before it
// expect).
func responseType(r *http.Request) string {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == mediaGraphQLResponse {
			return mediaGraphQLResponse
		}
	}
	return mediaJSON
}

func (graphqlPOST) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	start, media := graphql.Now(), responseType(r)
	w.Header().Set("Content-Type", media+"; charset=utf-8")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		refuseRequest(w, http.StatusBadRequest, "", "the request body could not be read")
		return
	}
	params, field, msg := decodeParams(body)
	if msg != "" {
		refuseRequest(w, http.StatusBadRequest, field, msg)
		return
	}
	execute(w, r, exec, params, start, media, false)
}

func (graphqlGET) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") == "" && r.Method == http.MethodGet
}

func (graphqlGET) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	start, media := graphql.Now(), responseType(r)
	w.Header().Set("Content-Type", media+"; charset=utf-8")
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		refuseRequest(w, http.StatusBadRequest, "", "the URL's query string is malformed")
		return
	}
	params := &graphql.RawParams{Query: q.Get("query"), OperationName: q.Get("operationName")}
	for _, f := range []struct {
		name string
		into *map[string]any
	}{{"variables", &params.Variables}, {"extensions", &params.Extensions}} {
		if v := q.Get(f.name); v != "" {
			if !decodeObject([]byte(v), f.into) {
				refuseRequest(w, http.StatusBadRequest, f.name, f.name+" must be a JSON object")
				return
			}
		}
	}
	execute(w, r, exec, params, start, media, true)
}

// execute runs params (queries only, over GET) and writes the answer in
// media. A request with no query is refused, unless a persisted query's
// hash stands for it.
func execute(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor, params *graphql.RawParams, start time.Time, media string, queryOnly bool) {
	if params.Query == "" && params.Extensions["persistedQuery"] == nil {
		refuseRequest(w, http.StatusBadRequest, "query", "query is required: a GraphQL document")
		return
	}
	ctx := r.Context()
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	rc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		status := http.StatusOK
		// An unknown persisted query stays 200: clients then send the
		// query, where a 400 makes some turn persisted queries off.
		if media == mediaGraphQLResponse && !persistedQueryMiss(errs) {
			status = http.StatusBadRequest
		}
		writeNotExecuted(w, status, exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs))
		return
	}
	op := rc.Doc.Operations.ForName(rc.OperationName)
	switch {
	case op == nil:
		refuseRequest(w, http.StatusBadRequest, "operationName", "no operation of that name")
		return
	case queryOnly && op.Operation != ast.Query:
		w.Header().Set("Allow", http.MethodPost)
		refuseRequest(w, http.StatusMethodNotAllowed, "", "only queries run over GET: send mutations with POST")
		return
	case op.Operation == ast.Subscription:
		// Over plain POST a subscription would hold the request open
		// with no stream of its own.
		refuseRequest(w, http.StatusBadRequest, "query", "subscriptions run over a websocket (graphql-transport-ws) or SSE (Accept: text/event-stream)")
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, rc)
	writeResponse(w, responses(ctx))
}

// decodeObject decodes a JSON object (numbers kept as json.Number) into
// into, nothing following it; null leaves into nil. False when b is
// neither.
func decodeObject(b []byte, into *map[string]any) bool {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return true
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return len(b) > 0 && b[0] == '{' && d.Decode(into) == nil && atEnd(d)
}

// atEnd tells whether d has read all its input.
func atEnd(d *json.Decoder) bool {
	_, err := d.Token()
	return err == io.EOF
}

// persistedQueryMiss tells whether errs is an unknown persisted query's
// only.
func persistedQueryMiss(errs gqlerror.List) bool {
	for _, e := range errs {
		if e.Extensions["code"] != "PERSISTED_QUERY_NOT_FOUND" {
			return false
		}
	}
	return len(errs) > 0
}

// decodeParams reads a request body: a JSON object with query (a
// string), operationName (a string), variables and extensions (objects),
// each of them null or absent (execute requires a query). On failure it
// returns the parameter at fault and a message.
func decodeParams(body []byte) (*graphql.RawParams, string, string) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, "", `the request body must be a JSON object such as {"query": "{ viewer { workspace } }"}`
	}
	if !atEnd(dec) {
		return nil, "", "the request body must hold one JSON object"
	}
	p := &graphql.RawParams{}
	isNull := func(m json.RawMessage) bool { return len(m) == 0 || string(m) == "null" }
	if m, ok := raw["query"]; ok && !isNull(m) {
		if err := json.Unmarshal(m, &p.Query); err != nil {
			return nil, "query", "query must be a string holding a GraphQL document"
		}
	}
	if m, ok := raw["operationName"]; ok && !isNull(m) {
		if err := json.Unmarshal(m, &p.OperationName); err != nil {
			return nil, "operationName", "operationName must be a string"
		}
	}
	for _, f := range []struct {
		name string
		into *map[string]any
	}{{"variables", &p.Variables}, {"extensions", &p.Extensions}} {
		m, ok := raw[f.name]
		if !ok || isNull(m) {
			continue
		}
		if !decodeObject(m, f.into) {
			return nil, f.name, f.name + " must be an object"
		}
	}
	return p, "", ""
}

// refuseRequest answers a request whose parameters are malformed, in Halo's
// error form (BAD_USER_INPUT, the parameter as field).
func refuseRequest(w http.ResponseWriter, status int, field, msg string) {
	err := &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": apperr.BadUserInput}}
	if field != "" {
		err.Extensions["field"] = field
	}
	writeNotExecuted(w, status, &graphql.Response{Errors: gqlerror.List{err}})
}

// writeNotExecuted writes the errors of a request that did not run:
// no data entry.
func writeNotExecuted(w http.ResponseWriter, status int, resp *graphql.Response) {
	w.WriteHeader(status)
	writeResponse(w, struct {
		Errors     gqlerror.List  `json:"errors"`
		Extensions map[string]any `json:"extensions,omitempty"`
	}{resp.Errors, resp.Extensions})
}

func writeResponse(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"errors":[{"message":"the response could not be encoded","extensions":{"code":%q}}]}`, apperr.Internal))
	}
	_, _ = w.Write(b)
}
