package main

import (
	"strings"
	"testing"
	"time"
)

// TestE2ETasks: tasks linked to a person, an account and a deal, an
// assignee's list soonest due first with the overdue one flagged and
// totalCount, completing, and the refusals.
func TestE2ETasks(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	ann, _ := identify(t, s, tok, ids("email", "ann@acme.com"), nil)
	acme := createAccount(t, s, tok, map[string]any{"name": "Acme"})
	d := createDeal(t, s, tok, map[string]any{"name": "Acme renewal", "currency": "EUR", "amount": 10})
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	create := `mutation($in: CreateTaskInput!) { createTask(input: $in) { id overdue profile { id } account { name } deal { name } } }`
	r := s.gql(t, tok, create, map[string]any{"in": map[string]any{"subject": "Call Ann", "dueAt": past, "assignee": "rep-1",
		"profileId": ann.ID, "accountId": acme.ID, "dealId": d.ID}})
	r.requireOK(t)
	var made struct{ CreateTask struct{ ID string } }
	r.decode(t, &made)
	if !strings.Contains(string(r.Data), `"overdue":true`) || !strings.Contains(string(r.Data), ann.ID) || !strings.Contains(string(r.Data), `"name":"Acme renewal"`) {
		t.Fatalf("created: %s", r.Data)
	}
	s.gql(t, tok, create, map[string]any{"in": map[string]any{"subject": "Send the quote", "dueAt": future, "assignee": "rep-1"}}).requireOK(t)
	s.gql(t, tok, create, map[string]any{"in": map[string]any{"subject": "Other", "assignee": "rep-2"}}).requireOK(t)
	r = s.gql(t, tok, `{ tasks(assignee: "rep-1", status: OPEN) { totalCount nodes { subject overdue } } }`, nil)
	r.requireOK(t)
	if !strings.Contains(string(r.Data), `"totalCount":2,"nodes":[{"subject":"Call Ann","overdue":true},{"subject":"Send the quote","overdue":false}]`) {
		t.Fatalf("rep-1's tasks: %s", r.Data)
	}
	r = s.gql(t, tok, `mutation($id: ID!) { completeTask(id: $id) { status overdue completedAt } }`, map[string]any{"id": made.CreateTask.ID})
	r.requireOK(t)
	if !strings.Contains(string(r.Data), `"status":"DONE","overdue":false`) {
		t.Fatalf("complete: %s", r.Data)
	}
	// Both are on the person's timeline.
	r = s.gql(t, tok, `query($p: ID) { profile(id: $p) { timeline(kinds: [INTERACTION]) { nodes { interactionKind subject } } } }`, map[string]any{"p": ann.ID})
	r.requireOK(t)
	if want := `{"interactionKind":"TASK","subject":"Task completed: Call Ann"},{"interactionKind":"TASK","subject":"Task created: Call Ann"}`; !strings.Contains(string(r.Data), want) {
		t.Fatalf("the task's items: %s, want %s", r.Data, want)
	}
	for _, c := range []struct{ name, query, code, field string }{
		{"done already", `mutation { completeTask(id: "` + made.CreateTask.ID + `") { id } }`, "BAD_USER_INPUT", "id"},
		{"no subject", `mutation { createTask(input: {subject: " "}) { id } }`, "BAD_USER_INPUT", "input.subject"},
		{"nobody", `mutation { createTask(input: {subject: "x", profileId: "nope"}) { id } }`, "NOT_FOUND", ""},
		{"no such task", `mutation { completeTask(id: "nope") { id } }`, "NOT_FOUND", ""},
		{"a malformed cursor", `{ tasks(after: "tasks-by_status.zzz") { totalCount } }`, "BAD_USER_INPUT", "after"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.gql(t, tok, c.query, nil)
			r.requireError(t, 0, c.code)
			if f, _ := r.Errors[0].Extensions["field"].(string); c.field != "" && f != c.field {
				t.Fatalf("field %q, want %q: %s", f, c.field, r.Body)
			}
		})
	}
	// Another workspace sees none of them.
	r = s.gql(t, s.token(t, "globex"), `{ tasks { totalCount } }`, nil)
	r.requireOK(t)
	if !strings.Contains(string(r.Data), `"totalCount":0`) {
		t.Fatalf("globex sees acme's tasks: %s", r.Data)
	}
}

func createTask(t *testing.T, s *testServer, tok, subject string) string {
	t.Helper()
	r := s.gql(t, tok, `mutation($s: String!) { createTask(input: {subject: $s}) { id } }`, map[string]any{"s": subject})
	r.requireOK(t)
	var out struct{ CreateTask struct{ ID string } }
	r.decode(t, &out)
	return out.CreateTask.ID
}

func openTicket(t *testing.T, s *testServer, tok, profileID, subject string) string {
	t.Helper()
	r := s.gql(t, tok, `mutation($p: ID!, $s: String!) { openTicket(input: {profileId: $p, subject: $s}) { id } }`, map[string]any{"p": profileID, "s": subject})
	r.requireOK(t)
	var out struct{ OpenTicket struct{ ID string } }
	r.decode(t, &out)
	return out.OpenTicket.ID
}
