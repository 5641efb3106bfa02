package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
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
		{`{"query":"{ __typename }"}}`, ""},
		{`{"query":"{ __typename }"}]`, ""},
		{`{"query":"{ __typename }","variables":{"a":1}}}`, ""},
		{`{"query":"subscription { profileUpdated(id: \"secret-x\") { id } }"}`, "query"},
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

// TestGETRequests: over GET, malformed parameters are 400 naming the
// parameter, a mutation is 405, a document that does not validate is 200
// (application/json) or 400 (application/graphql-response+json), never
// with a data entry; a query runs.
func TestGETRequests(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	for _, c := range []struct {
		params               url.Values
		accept               string
		status               int
		code, field, hasData string
	}{
		{url.Values{"query": {"{ __typename }"}}, mediaJSON, 200, "", "", "yes"},
		{url.Values{"query": {"{ __typename }"}, "variables": {" {\"a\": 1} "}}, mediaJSON, 200, "", "", "yes"},
		{url.Values{"query": {"{ __typename }"}, "variables": {"null"}}, mediaJSON, 200, "", "", "yes"},
		{url.Values{"query": {"{ __typename }"}, "variables": {`{"a":1}}`}}, mediaJSON, 400, "BAD_USER_INPUT", "variables", ""},
		{url.Values{"query": {"{ __typename }"}, "variables": {"secret-x"}}, mediaJSON, 400, "BAD_USER_INPUT", "variables", ""},
		{url.Values{"query": {"{ __typename }"}, "extensions": {"[1]"}}, mediaGraphQLResponse, 400, "BAD_USER_INPUT", "extensions", ""},
		{url.Values{"operationName": {"x"}}, mediaJSON, 400, "BAD_USER_INPUT", "query", ""},
		{url.Values{"query": {"{ nope }"}}, mediaJSON, 200, "GRAPHQL_VALIDATION_FAILED", "", ""},
		{url.Values{"query": {"{ nope }"}}, mediaGraphQLResponse, 400, "GRAPHQL_VALIDATION_FAILED", "", ""},
		{url.Values{"query": {`mutation { setLifecycleStage(profileId: "x", stage: LEAD) { id } }`}}, mediaJSON, 405, "BAD_USER_INPUT", "", ""},
	} {
		req, err := http.NewRequest(http.MethodGet, s.URL+"/graphql?"+c.params.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", c.accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out map[string]json.RawMessage
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%v: not JSON: %s", c.params, body)
		}
		_, data := out["data"]
		if resp.StatusCode != c.status || data != (c.hasData != "") || c.code != "" && !strings.Contains(string(out["errors"]), `"code":"`+c.code+`"`) ||
			c.field != "" && !strings.Contains(string(out["errors"]), `"field":"`+c.field+`"`) || strings.Contains(string(body), "secret-x") {
			t.Errorf("%v (%s): %d %s; want %d, code %q, field %q, data %v", c.params, c.accept, resp.StatusCode, body, c.status, c.code, c.field, c.hasData != "")
		}
	}
}
