package resolvers

import (
	"context"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"

	"github.com/halo-cdp/halo/graph"
)

// TestLimits measures the screens Halo serves against the limits the
// server sets (depth 10, 50 aliases, 1,000 fields, cost 5,000) and checks
// the shapes that must be refused. Run with -v for the figures.
func TestLimits(t *testing.T) {
	es := graph.NewExecutableSchema(New(nil).Config())
	l := &Limits{MaxDepth: 10, MaxAliases: 50, MaxFields: 1000, MaxComplexity: 5000}
	if err := l.Validate(es); err != nil {
		t.Fatal(err)
	}
	check := func(q string) (string, int, shape) {
		doc, gerr := gqlparser.LoadQuery(es.Schema(), q)
		if gerr != nil {
			t.Fatalf("%s: %v", q, gerr)
		}
		oc := &graphql.OperationContext{Doc: doc, Operation: doc.Operations[0], Variables: map[string]any{}}
		c := counter{doc: doc, frags: map[string]*shape{}}
		s := c.set(oc.Operation.SelectionSet)
		cost := complexity.Calculate(context.Background(), es, oc.Operation, oc.Variables)
		if err := l.MutateOperationContext(context.Background(), oc); err != nil {
			lim, _ := err.Extensions["limit"].(string)
			return lim, cost, s
		}
		return "", cost, s
	}
	for _, c := range []struct{ name, query, limit string }{
		{"README 360 view", `{ profile(id: "p") { id traits eventCount lastSeenAt identifiers { type value } timeline(first: 50) { edges { cursor node { kind name occurredAt properties } } pageInfo { hasNextPage endCursor } } } }`, ""},
		{"360 view, everything", `{ profile(id: "p") { id traits eventCount lastSeenAt identifiers { type value } consent { purpose channel status } consentHistory(first: 20) { nodes { purpose status capturedAt } } segments { segment { id name } enteredAt } merges { id kind at } timeline(first: 100) { edges { cursor node { kind name occurredAt properties } } pageInfo { hasNextPage endCursor } } } }`, ""},
		{"profile list of 100", `{ profiles(first: 100) { edges { cursor node { id traits eventCount lastSeenAt identifiers { type value } } } pageInfo { hasNextPage endCursor } } }`, ""},
		{"segment page of 100", `{ segment(id: "s") { id name size rule members(first: 100) { edges { enteredAt node { id traits identifiers { type value } } } pageInfo { hasNextPage endCursor } } history(first: 20) { nodes { kind at cause profile { id } } } } }`, ""},
		{"export of 1,000", `{ exportSegment(segmentId: "s", purpose: "marketing", channel: EMAIL, first: 1000) { nodes { profileId identifiers { type value } traits } pageInfo { endCursor } } }`, ""},
		{"100 profiles with 100 events each", `{ profiles(first: 100) { nodes { timeline(first: 100) { nodes { id name } } } } }`, "complexity"},
		{"100 profiles with their segments' members", `{ profiles(first: 100) { nodes { segments { segment { members(first: 10) { nodes { id } } } } } } }`, "complexity"},
		{"an account page with its contacts", `{ accounts(first: 20) { totalCount nodes { name contacts(first: 20) { totalCount nodes { id traits } } } } }`, ""},
		{"100 accounts with 100 contacts each", `{ accounts(first: 100) { nodes { contacts(first: 100) { nodes { id traits } } } } }`, "complexity"},
		{"a page of deals with their contacts", `{ deals(first: 20) { totalCount nodes { name amount contacts { id } } } }`, ""},
		{"100 deals with all their contacts' traits", `{ deals(first: 100) { nodes { contacts { id traits } } } }`, "complexity"},
		{"100 profiles with their accounts' contacts", `{ profiles(first: 100) { nodes { accounts { account { contacts(first: 10) { nodes { id } } } } } } }`, "complexity"},
		{"depth 11", `{ segment(id: "s") { members { edges { node { segments { segment { members { edges { node { segments { segment { id } } } } } } } } } } } }`, "depth"},
		{"fragment bomb", "query { ...f9 }\nfragment f0 on Query { viewer { workspace } }\n" + func() string {
			var b strings.Builder
			for i := 1; i < 10; i++ {
				b.WriteString("fragment f" + string(rune('0'+i)) + " on Query { ...f" + string(rune('0'+i-1)) + " ...f" + string(rune('0'+i-1)) + " }\n")
			}
			return b.String()
		}(), "fields"},
	} {
		got, cost, s := check(c.query)
		t.Logf("%-45s depth %2d fields %5d aliases %d cost %6d refused: %q", c.name, s.depth, s.fields, s.aliases, cost, got)
		if got != c.limit {
			t.Errorf("%s: refused by %q, want %q", c.name, got, c.limit)
		}
	}
}
