package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
)

// poll returns the data of operation id's next message within d, or
// false; an error or complete message fails the test.
func (c *wsClient) poll(t testing.TB, id string, d time.Duration) (string, bool) {
	t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			t.Fatalf("connection closed: %v", <-c.closed)
		}
		var p struct {
			Data   json.RawMessage `json:"data"`
			Errors []gqlError      `json:"errors"`
		}
		if m.ID != id || m.Type != "next" || json.Unmarshal(m.Payload, &p) != nil || len(p.Errors) > 0 {
			t.Fatalf("operation %s: %s %s", m.ID, m.Type, m.Payload)
		}
		return string(p.Data), true
	case <-time.After(d):
		return "", false
	}
}

// live subscribes query on its own connection to s and calls warm (a
// write through another instance that the subscription sees) until a
// message arrives: the protocol does not acknowledge a subscribe. It
// drains what follows and returns the receiver.
func live(t *testing.T, s *testServer, tok, query string, vars map[string]any, warm func(i int)) func(time.Duration) (string, bool) {
	t.Helper()
	c := connectWS(t, s, tok)
	op := c.subscribe(t, query, vars)
	recv := func(d time.Duration) (string, bool) { return c.poll(t, op, d) }
	for i := 0; ; i++ {
		if i == 50 {
			t.Fatalf("%s never went live", query)
		}
		warm(i)
		if _, ok := recv(300 * time.Millisecond); ok {
			break
		}
	}
	for {
		if _, ok := recv(200 * time.Millisecond); !ok {
			return recv
		}
	}
}

// TestE2ECRMLive: dealChanged, ticketChanged and accountUpdated
// subscribed on one instance deliver the writes made through another (a
// second server process on the same store), and the ticket queue hears
// of a ticket that leaves it, and of one the sweeper flags breached once
// the clock passes its target.
func TestE2ECRMLive(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	clock := app.NewManualClock(now)
	s1 := startServer(t, serverOptions{Clock: clock})
	s2 := startServer(t, serverOptions{Clock: clock, DataDir: s1.DataDir, Env: map[string]string{"HALO_JWT_SECRET": string(s1.Secret)}})
	tok := s1.token(t, "acme")
	ann := identifyID(t, s1, tok, "ann@acme.com")
	acme := createAccount(t, s1, tok, map[string]any{"name": "Acme"})

	// Deals.
	deals := live(t, s2, tok, `subscription { dealChanged(pipeline: "sales") { id name stage status } }`, nil, func(i int) {
		createDeal(t, s1, tok, map[string]any{"name": fmt.Sprint("warm-up ", i), "currency": "EUR"})
	})
	d := createDeal(t, s1, tok, map[string]any{"name": "Acme renewal", "currency": "EUR", "amount": 10, "contactIds": []any{ann}})
	if got, ok := deals(5 * time.Second); !ok || !strings.Contains(got, `"name":"Acme renewal","stage":"qualification","status":"OPEN"`) {
		t.Fatalf("created: %q %v", got, ok)
	}
	s1.gql(t, tok, `mutation($d: ID!, $v: Int!) { moveDealStage(id: $d, stage: "proposal", expectedVersion: $v) { id } }`, map[string]any{"d": d.ID, "v": d.Version}).requireOK(t)
	if got, ok := deals(5 * time.Second); !ok || !strings.Contains(got, `"id":"`+d.ID+`","name":"Acme renewal","stage":"proposal"`) {
		t.Fatalf("moved: %q %v", got, ok)
	}

	// Another workspace's deals never reach this subscriber.
	createDeal(t, s1, s1.token(t, "globex"), map[string]any{"name": "Globex deal", "currency": "EUR"})
	if got, ok := deals(500 * time.Millisecond); ok {
		t.Fatalf("globex's deal reached acme: %q", got)
	}

	// Accounts: a link, then an edit.
	accounts := live(t, s2, tok, `subscription($a: ID!) { accountUpdated(id: $a) { name contacts { totalCount } } }`, map[string]any{"a": acme.ID}, func(i int) {
		s1.gql(t, tok, `mutation($a: ID!, $n: String) { updateAccount(id: $a, input: {name: $n, expectedVersion: `+fmt.Sprint(acme.Version+i)+`}) { id } }`,
			map[string]any{"a": acme.ID, "n": fmt.Sprint("Acme ", i)}).requireOK(t)
	})
	s1.gql(t, tok, `mutation($p: ID!, $a: ID!) { linkProfileToAccount(profileId: $p, accountId: $a, role: "buyer") { role } }`, map[string]any{"p": ann, "a": acme.ID}).requireOK(t)
	if got, ok := accounts(5 * time.Second); !ok || !strings.Contains(got, `"contacts":{"totalCount":1}`) {
		t.Fatalf("linked: %q %v", got, ok)
	}

	// The NEW queue, and the breached one.
	open := `mutation($p: ID!, $s: String!, $pr: TicketPriority!) { openTicket(input: {profileId: $p, subject: $s, priority: $pr}) { id } }`
	newQueue := live(t, s2, tok, `subscription { ticketChanged(filter: {status: NEW}) { subject status } }`, nil, func(i int) {
		s1.gql(t, tok, open, map[string]any{"p": ann, "s": fmt.Sprint("warm-up ", i), "pr": "LOW"}).requireOK(t)
	})
	breached := live(t, s2, tok, `subscription { ticketChanged(filter: {breached: true}) { subject sla { firstResponseBreached } } }`, nil, func(i int) {
		// A ticket already past its target: the opening write flags it.
		clock.Set(now.Add(-time.Duration(i+1) * 24 * time.Hour))
		s1.gql(t, tok, open, map[string]any{"p": ann, "s": fmt.Sprint("late warm-up ", i), "pr": "URGENT"}).requireOK(t)
		clock.Set(now)
		s1.gql(t, tok, `mutation($p: ID!) { openTicket(input: {profileId: $p, subject: "nudge"}) { id } }`, map[string]any{"p": ann}).requireOK(t)
	})
	for {
		if _, ok := newQueue(300 * time.Millisecond); !ok {
			break
		}
	}
	r := s1.gql(t, tok, open, map[string]any{"p": ann, "s": "Checkout down", "pr": "URGENT"})
	r.requireOK(t)
	var tk struct{ OpenTicket struct{ ID string } }
	r.decode(t, &tk)
	// The sweeper may flag a late warm-up (still NEW) meanwhile: the
	// queue hears of it too, rightly; only this ticket's messages count.
	mine := func(d time.Duration) (string, bool) {
		deadline := time.Now().Add(d)
		for {
			got, ok := newQueue(time.Until(deadline))
			if !ok || strings.Contains(got, `"subject":"Checkout down"`) {
				return got, ok
			}
		}
	}
	if got, ok := mine(5 * time.Second); !ok || got != `{"ticketChanged":{"subject":"Checkout down","status":"NEW"}}` {
		t.Fatalf("opened: %q %v", got, ok)
	}
	// Leaving the queue is told (it no longer matches); a change outside
	// it afterwards is not.
	s1.gql(t, tok, `mutation($t: ID!) { updateTicket(id: $t, input: {status: OPEN}) { id } }`, map[string]any{"t": tk.OpenTicket.ID}).requireOK(t)
	if got, ok := mine(5 * time.Second); !ok || got != `{"ticketChanged":{"subject":"Checkout down","status":"OPEN"}}` {
		t.Fatalf("left the queue: %q %v", got, ok)
	}
	s1.gql(t, tok, `mutation($t: ID!) { updateTicket(id: $t, input: {assignee: "sam"}) { id } }`, map[string]any{"t": tk.OpenTicket.ID}).requireOK(t)
	if got, ok := mine(500 * time.Millisecond); ok {
		t.Fatalf("a ticket outside the queue was told: %q", got)
	}
	// An hour and a bit later, the sweeper flags it: the breached queue
	// hears of it.
	clock.Set(now.Add(61 * time.Minute))
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, ok := breached(time.Until(deadline))
		if !ok {
			t.Fatal("the sweeper's breach was not delivered")
		}
		if strings.Contains(got, `"subject":"Checkout down"`) {
			break
		}
	}
}
