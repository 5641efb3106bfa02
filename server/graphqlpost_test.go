package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMalformedRequests: a body that is not a GraphQL request gets 400,
// BAD_USER_INPUT with the parameter at fault, no data entry, and a
// message that echoes neither the body nor Go's type names.
func TestMalformedRequests(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	for _, c := range []struct{ body, field string }{
		{`{"query":"{ __typename }","variables":"x"}`, "variables"},
		{`{"query":"{ __typename }","variables":[1]}`, "variables"},
		{`{"query":"{ __typename }","extensions":"secret-x"}`, "extensions"},
		{`{"query":5}`, "query"},
		{`{"query":{"q":"secret-x"}}`, "query"},
		{`{"query":"{ __typename }","operationName":5}`, "operationName"},
		{`{"qeury":"{ __typename }"}`, "query"},
		{`not json secret-x`, ""},
		{`["secret-x"]`, ""},
		{`{"query":"{ __typename }"} {"query":"secret-x"}`, ""},
	} {
		for _, accept := range []string{mediaJSON, mediaGraphQLResponse} {
			req, err := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", accept)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var out struct {
				Data   *json.RawMessage `json:"data"`
				Errors []struct {
					Message    string
					Extensions map[string]any
				}
			}
			has := map[string]any{}
			if err := json.Unmarshal(body, &out); err != nil || json.Unmarshal(body, &has) != nil {
				t.Fatalf("%s (%s): not JSON: %s", c.body, accept, body)
			}
			_, data := has["data"]
			switch {
			case resp.StatusCode != http.StatusBadRequest || len(out.Errors) != 1 || data:
				t.Errorf("%s (%s): %d %s; want 400, one error, no data", c.body, accept, resp.StatusCode, body)
			case out.Errors[0].Extensions["code"] != "BAD_USER_INPUT" || c.field != "" && out.Errors[0].Extensions["field"] != c.field:
				t.Errorf("%s: %s; want BAD_USER_INPUT on %q", c.body, body, c.field)
			case strings.Contains(out.Errors[0].Message, "secret-x") || strings.Contains(out.Errors[0].Message, c.body) ||
				strings.Contains(out.Errors[0].Message, "Go ") || strings.Contains(out.Errors[0].Message, "map[") || strings.Contains(out.Errors[0].Message, "RawParams"):
				t.Errorf("%s: the message echoes the body or Go's types: %q", c.body, out.Errors[0].Message)
			}
		}
	}
}
