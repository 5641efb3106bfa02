package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
)

type gqlTicket struct {
	ID, Status, Priority string
	AccountID            *struct{ ID string } `json:"account"`
	Profile              *struct{ ID string }
	Breached             bool
	Version              int
	Sla                  struct {
		FirstResponseDueAt, ResolutionDueAt       *time.Time
		FirstResponseSeconds                      *float64
		FirstResponseBreached, ResolutionBreached bool
	}
	History []struct{ Status string }
}

const ticketFields = `id status priority account { id } profile { id } breached version
	sla { firstResponseDueAt resolutionDueAt firstResponseSeconds firstResponseBreached resolutionBreached } history { status }`

func ticketOf(t *testing.T, r gqlResponse, field string) gqlTicket {
	t.Helper()
	r.requireOK(t)
	var out map[string]json.RawMessage
	r.decode(t, &out)
	var tk gqlTicket
	if err := json.Unmarshal(out[field], &tk); err != nil {
		t.Fatalf("decode %s: %v: %s", field, err, r.Data)
	}
	return tk
}

// TestE2ETickets drives tickets through GraphQL on a clock the test
// moves: a ticket by identifier (a new person, who joins the account of
// their email's domain, which the ticket takes), status moves and the
// refused ones, comments and the first response, the queues with
// totalCount, and breaches flagged by the background sweeper alone once
// the clock passes a target.
func TestE2ETickets(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	clock := app.NewManualClock(now)
	s := startServer(t, serverOptions{Clock: clock})
	tok := s.token(t, "acme")
	acme := createAccount(t, s, tok, map[string]any{"name": "Acme", "domains": []any{"acme.com"}})
	open := `mutation($in: OpenTicketInput!) { openTicket(input: $in) { ` + ticketFields + ` } }`

	urgent := ticketOf(t, s.gql(t, tok, open, map[string]any{"in": map[string]any{
		"identifier": map[string]any{"type": "email", "value": "Ann@Acme.com"}, "subject": "Checkout is down", "priority": "URGENT", "channel": "EMAIL"}}), "openTicket")
	if urgent.Status != "NEW" || urgent.AccountID == nil || urgent.AccountID.ID != acme.ID || urgent.Profile == nil ||
		!urgent.Sla.FirstResponseDueAt.Equal(now.Add(time.Hour)) || !urgent.Sla.ResolutionDueAt.Equal(now.Add(4*time.Hour)) || urgent.Breached {
		t.Fatalf("opened by identifier: %+v", urgent)
	}
	ann := urgent.Profile.ID
	normal := ticketOf(t, s.gql(t, tok, open, map[string]any{"in": map[string]any{"profileId": ann, "subject": "Invoice copy", "assignee": "sam"}}), "openTicket")
	if normal.Priority != "NORMAL" || !normal.Sla.FirstResponseDueAt.Equal(now.Add(8*time.Hour)) {
		t.Fatalf("opened by profile id: %+v", normal)
	}

	// The agent's first public answer, a minute in.
	clock.Set(now.Add(time.Minute))
	r := s.gql(t, tok, `mutation($t: ID!) { addTicketComment(input: {ticketId: $t, body: "Looking into it"}) { comment { author byCustomer internal } ticket { `+ticketFields+` } } }`,
		map[string]any{"t": normal.ID})
	r.requireOK(t)
	if !strings.Contains(string(r.Data), `"author":"test","byCustomer":false,"internal":false`) || !strings.Contains(string(r.Data), `"status":"OPEN"`) ||
		!strings.Contains(string(r.Data), `"firstResponseSeconds":60`) {
		t.Fatalf("first response: %s", r.Data)
	}
	update := `mutation($t: ID!, $in: UpdateTicketInput!) { updateTicket(id: $t, input: $in) { ` + ticketFields + ` } }`
	closed := ticketOf(t, s.gql(t, tok, update, map[string]any{"t": normal.ID, "in": map[string]any{"status": "CLOSED"}}), "updateTicket")
	if closed.Status != "CLOSED" || len(closed.History) != 3 {
		t.Fatalf("closed: %+v", closed)
	}

	// The refusals name their field and change nothing.
	for _, c := range []struct {
		name, query string
		vars        map[string]any
		code, field string
	}{
		{"CLOSED to NEW", update, map[string]any{"t": normal.ID, "in": map[string]any{"status": "NEW"}}, "BAD_USER_INPUT", "input.status"},
		{"CLOSED to PENDING", update, map[string]any{"t": normal.ID, "in": map[string]any{"status": "PENDING"}}, "BAD_USER_INPUT", "input.status"},
		{"a stale version", update, map[string]any{"t": normal.ID, "in": map[string]any{"status": "OPEN", "expectedVersion": 1}}, "CONFLICT", ""},
		{"a comment on a closed ticket", `mutation($t: ID!) { addTicketComment(input: {ticketId: $t, body: "x"}) { comment { id } } }`, map[string]any{"t": normal.ID}, "BAD_USER_INPUT", "input.ticketId"},
		{"both a profile and an identifier", open, map[string]any{"in": map[string]any{"profileId": ann, "identifier": map[string]any{"type": "email", "value": "x@y.com"}, "subject": "x"}}, "BAD_USER_INPUT", "input"},
		{"neither", open, map[string]any{"in": map[string]any{"subject": "x"}}, "BAD_USER_INPUT", "input"},
		{"a bad email", open, map[string]any{"in": map[string]any{"identifier": map[string]any{"type": "email", "value": "not an email"}, "subject": "x"}}, "BAD_USER_INPUT", ""},
		{"no subject", open, map[string]any{"in": map[string]any{"profileId": ann, "subject": "  "}}, "BAD_USER_INPUT", "input.subject"},
		{"no subject for a new person", open, map[string]any{"in": map[string]any{"identifier": map[string]any{"type": "email", "value": "new@example.com"}, "subject": " "}}, "BAD_USER_INPUT", "input.subject"},
		{"an unknown account for a new person", open, map[string]any{"in": map[string]any{"identifier": map[string]any{"type": "email", "value": "new@example.com"}, "subject": "x", "accountId": "nope"}}, "NOT_FOUND", ""},
		{"an unknown person", open, map[string]any{"in": map[string]any{"profileId": "nope", "subject": "x"}}, "NOT_FOUND", ""},
		{"an unknown priority", open, map[string]any{"in": map[string]any{"profileId": ann, "subject": "x", "priority": "SOON"}}, "GRAPHQL_VALIDATION_FAILED", ""},
		{"a customer's internal note", `mutation($t: ID!) { addTicketComment(input: {ticketId: $t, body: "x", byCustomer: true, internal: true}) { comment { id } } }`, map[string]any{"t": urgent.ID}, "BAD_USER_INPUT", "input.internal"},
		{"a negative target", `mutation { setTicketSlaTargets(targets: [{priority: LOW, firstResponseMinutes: -5}]) { priority } }`, nil, "BAD_USER_INPUT", "targets[0].firstResponseMinutes"},
		{"a target that would wrap", `mutation { setTicketSlaTargets(targets: [{priority: LOW, resolutionMinutes: 307445735}]) { priority } }`, nil, "BAD_USER_INPUT", "targets[0].resolutionMinutes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			const state = `{ tickets { totalCount nodes { id status version } } ticketSlaTargets { priority firstResponseMinutes } profiles { totalCount } }`
			before := s.gql(t, tok, state, nil)
			r := s.gql(t, tok, c.query, c.vars)
			if len(r.Errors) == 0 || r.Errors[0].Code() != c.code {
				t.Fatalf("want %s: %s", c.code, r.Body)
			}
			if f, _ := r.Errors[0].Extensions["field"].(string); c.field != "" && f != c.field {
				t.Fatalf("field %q, want %q: %s", f, c.field, r.Body)
			}
			if after := s.gql(t, tok, state, nil); string(after.Data) != string(before.Data) {
				t.Fatalf("a refused call changed tickets:\n%s\n%s", before.Data, after.Data)
			}
		})
	}
	// Reopening goes to OPEN, with the version read.
	reopened := ticketOf(t, s.gql(t, tok, update, map[string]any{"t": normal.ID, "in": map[string]any{"status": "OPEN", "expectedVersion": closed.Version}}), "updateTicket")
	if reopened.Status != "OPEN" || reopened.Version != closed.Version+1 {
		t.Fatalf("reopened: %+v", reopened)
	}

	// Queues, with totalCount; the person's and the account's tickets.
	for q, want := range map[string]string{
		`{ tickets(filter: {status: NEW}) { totalCount nodes { id } } }`:                                     `"totalCount":1,"nodes":[{"id":"` + urgent.ID + `"}]`,
		`{ tickets(filter: {assignee: "sam", status: OPEN}) { totalCount nodes { id } } }`:                   `"totalCount":1,"nodes":[{"id":"` + normal.ID + `"}]`,
		`{ tickets(filter: {assignee: ""}) { totalCount } }`:                                                 `"totalCount":1`,
		`{ tickets(filter: {priority: URGENT, breached: false}) { totalCount } }`:                            `"totalCount":1`,
		`{ tickets(first: 1) { totalCount pageInfo { hasNextPage } nodes { id } } }`:                         `"totalCount":2,"pageInfo":{"hasNextPage":true},"nodes":[{"id":"` + urgent.ID + `"}]`,
		`query { account(id: "` + acme.ID + `") { tickets { totalCount } } }`:                                `"totalCount":2`,
		`query { profile(id: "` + ann + `") { tickets(status: OPEN) { totalCount nodes { id } } } }`:         `"totalCount":1,"nodes":[{"id":"` + normal.ID + `"}]`,
		`query { ticket(id: "` + normal.ID + `") { comments(internal: false) { nodes { body } } subject } }`: `"comments":{"nodes":[{"body":"Looking into it"}]},"subject":"Invoice copy"`,
	} {
		r := s.gql(t, tok, q, nil)
		r.requireOK(t)
		if !strings.Contains(string(r.Data), want) {
			t.Fatalf("%s:\n got %s\nwant %s", q, r.Data, want)
		}
	}

	// Breaches by time alone: the sweeper flags the urgent ticket once
	// the clock passes its first-response target, with no write to it.
	breached := func() string {
		r := s.gql(t, tok, `{ tickets(filter: {breached: true}) { totalCount nodes { id sla { firstResponseBreached resolutionBreached } } } }`, nil)
		r.requireOK(t)
		return string(r.Data)
	}
	clock.Set(now.Add(59 * time.Minute))
	time.Sleep(1500 * time.Millisecond) // a sweep or more at 59 minutes
	if got := breached(); !strings.Contains(got, `"totalCount":0`) {
		t.Fatalf("breached before the target: %s", got)
	}
	clock.Set(now.Add(61 * time.Minute))
	want := `"totalCount":1,"nodes":[{"id":"` + urgent.ID + `","sla":{"firstResponseBreached":true,"resolutionBreached":false}}]`
	waitUntil(t, 10*time.Second, "the sweeper flags the first-response breach", func() bool { return strings.Contains(breached(), want) })
	clock.Set(now.Add(4*time.Hour + time.Minute))
	want = `"sla":{"firstResponseBreached":true,"resolutionBreached":true}`
	waitUntil(t, 10*time.Second, "the sweeper flags the resolution breach", func() bool { return strings.Contains(breached(), want) })

	// The ticket's story is on the person's timeline, newest first, with
	// the ticket's id.
	r = s.gql(t, tok, `query($p: ID) { profile(id: $p) { timeline(kinds: [INTERACTION], first: 50) { nodes { interactionKind subject properties } } } }`, map[string]any{"p": ann})
	r.requireOK(t)
	var tl struct {
		Profile struct {
			Timeline struct {
				Nodes []struct {
					InteractionKind, Subject string
					Properties               map[string]any
				}
			}
		}
	}
	r.decode(t, &tl)
	var story []string
	for _, n := range tl.Profile.Timeline.Nodes {
		if n.InteractionKind == "TICKET" && n.Properties["ticketId"] == normal.ID {
			story = append(story, fmt.Sprint(n.Properties["action"], ":", n.Properties["status"]))
		}
	}
	if got, want := strings.Join(story, " "), "moved:OPEN moved:CLOSED commented:OPEN opened:NEW"; got != want {
		t.Fatalf("the ticket's items on the timeline: %q, want %q", got, want)
	}

	// The identifier form makes a person, as identify does: it needs
	// identify's scope.
	crmOnly := s.token(t, "acme", "crm:read", "crm:write", "profiles:read")
	r = s.gql(t, crmOnly, open, map[string]any{"in": map[string]any{"identifier": map[string]any{"type": "email", "value": "new@example.com"}, "subject": "x"}})
	wantError(t, r, "FORBIDDEN", "")
	ticketOf(t, s.gql(t, crmOnly, open, map[string]any{"in": map[string]any{"profileId": ann, "subject": "By id, with crm:write alone"}}), "openTicket")

	// Another workspace sees none of it.
	r = s.gql(t, s.token(t, "globex"), `{ tickets { totalCount } }`, nil)
	r.requireOK(t)
	if !strings.Contains(string(r.Data), `"totalCount":0`) {
		t.Fatalf("globex sees acme's tickets: %s", r.Data)
	}
}

// waitUntil polls cond every 50 ms until it holds, failing after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2ETicketSegmentLive: "has an open breached ticket" over a
// websocket: the sweeper's breach (the clock moved past the target, no
// write to the ticket) sends ENTERED; resolving it sends EXITED; the
// preview agrees with the segment.
func TestE2ETicketSegmentLive(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	clock := app.NewManualClock(now)
	s := startServer(t, serverOptions{Clock: clock})
	tok := s.token(t, "acme")
	rl := map[string]any{"ticket": map[string]any{"open": true, "breached": true}}
	seg := createSegment(t, s, tok, map[string]any{"name": "breached", "rule": rl})
	recv := live(t, s, tok, membershipSub, map[string]any{"s": seg.ID}, func(i int) {
		// A warm-up ticket opened a day ago, already past its targets:
		// the opening write flags it.
		clock.Set(now.Add(-24 * time.Hour))
		id := openTicket(t, s, tok, identifyID(t, s, tok, fmt.Sprintf("warm%d@example.com", i)), "warm-up")
		clock.Set(now)
		s.gql(t, tok, `mutation($t: ID!) { updateTicket(id: $t, input: {assignee: "x"}) { id } }`, map[string]any{"t": id}).requireOK(t)
	})
	ann := identifyID(t, s, tok, "ann@example.com")
	r := s.gql(t, tok, `mutation($p: ID!) { openTicket(input: {profileId: $p, subject: "Down", priority: URGENT}) { id } }`, map[string]any{"p": ann})
	r.requireOK(t)
	var tk struct{ OpenTicket struct{ ID string } }
	r.decode(t, &tk)
	if got, ok := recv(500 * time.Millisecond); ok {
		t.Fatalf("a ticket within its target: %s", got)
	}
	clock.Set(now.Add(61 * time.Minute))
	got, ok := recv(10 * time.Second)
	if !ok || !strings.Contains(got, `"kind":"ENTERED"`) || !strings.Contains(got, ann) {
		t.Fatalf("breached by the sweeper: %q %v", got, ok)
	}
	var pv struct{ SegmentPreview struct{ Count int } }
	r = s.gql(t, tok, `query($r: SegmentRuleInput!) { segmentPreview(rule: $r) { count } }`, map[string]any{"r": rl})
	r.requireOK(t)
	r.decode(t, &pv)
	size := s.gql(t, tok, `query($s: ID!) { segment(id: $s) { size } }`, map[string]any{"s": seg.ID})
	size.requireOK(t)
	if !strings.Contains(string(size.Data), fmt.Sprintf(`"size":%d`, pv.SegmentPreview.Count)) {
		t.Fatalf("preview %d, segment %s", pv.SegmentPreview.Count, size.Data)
	}
	s.gql(t, tok, `mutation($t: ID!) { updateTicket(id: $t, input: {status: RESOLVED}) { id } }`, map[string]any{"t": tk.OpenTicket.ID}).requireOK(t)
	if got, ok := recv(5 * time.Second); !ok || !strings.Contains(got, `"kind":"EXITED"`) || !strings.Contains(got, ann) {
		t.Fatalf("resolved: %q %v", got, ok)
	}
}
