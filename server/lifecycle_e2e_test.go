package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestE2ELifecycleSegmentsLive: a segment of customers (a lifecycleStage
// node) over a websocket. A deal opening makes its contact an
// opportunity; winning it makes them a customer, and ENTERED arrives;
// setting the stage back by hand sends EXITED. The preview agrees, the
// history lists every change with its cause, and bad input is refused.
func TestE2ELifecycleSegmentsLive(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	seg := createSegment(t, s, tok, map[string]any{"name": "customers", "rule": map[string]any{"lifecycleStage": map[string]any{"in": []any{"CUSTOMER", "EVANGELIST"}}}})
	ws := connectWS(t, s, tok)
	op := ws.subscribe(t, membershipSub, map[string]any{"s": seg.ID})
	recv := wsMemRecv(t, ws, op)
	set := `mutation($p: ID!, $s: LifecycleStage!) { setLifecycleStage(profileId: $p, stage: $s) { id lifecycleStage } }`

	// The protocol does not acknowledge a subscribe: warm-up people enter
	// until one's ENTERED arrives.
	for i := 0; ; i++ {
		if i == 50 {
			t.Fatal("the subscription never went live")
		}
		w := identifyID(t, s, tok, fmt.Sprintf("warm%d@example.com", i))
		s.gql(t, tok, set, map[string]any{"p": w, "s": "CUSTOMER"}).requireOK(t)
		if m, ok := recv(300 * time.Millisecond); ok && m.profileID() == w {
			break
		}
	}
	for {
		if _, ok := recv(200 * time.Millisecond); !ok {
			break
		}
	}

	ann := identifyID(t, s, tok, "ann@acme.com")
	stage := func() string {
		r := s.gql(t, tok, `query($p: ID) { profile(id: $p) { lifecycleStage } }`, map[string]any{"p": ann})
		r.requireOK(t)
		return string(r.Data)
	}
	d := createDeal(t, s, tok, map[string]any{"name": "Acme", "currency": "EUR", "amount": 100, "contactIds": []any{ann}})
	if got := stage(); !strings.Contains(got, `"lifecycleStage":"OPPORTUNITY"`) {
		t.Fatalf("after the deal opened: %s", got)
	}
	if m, ok := recv(300 * time.Millisecond); ok {
		t.Fatalf("an opportunity is no customer: %+v", m)
	}
	s.gql(t, tok, `mutation($d: ID!, $v: Int!) { closeDeal(id: $d, outcome: WON, expectedVersion: $v) { status } }`, map[string]any{"d": d.ID, "v": d.Version}).requireOK(t)
	if m, ok := recv(5 * time.Second); !ok || m.Kind != "ENTERED" || m.profileID() != ann || m.Cause != "lifecycle" {
		t.Fatalf("won: got %+v %v, want ann ENTERED by lifecycle", m, ok)
	}
	// The deal's story is on its contact's timeline.
	r := s.gql(t, tok, `query($p: ID) { profile(id: $p) { timeline(kinds: [INTERACTION]) { nodes { interactionKind subject } } } }`, map[string]any{"p": ann})
	r.requireOK(t)
	if want := `[{"interactionKind":"DEAL","subject":"Deal won: Acme (won)"},{"interactionKind":"DEAL","subject":"Deal created: Acme (qualification)"}]`; !strings.Contains(string(r.Data), want) {
		t.Fatalf("the deal's items: %s, want %s", r.Data, want)
	}
	r = s.gql(t, tok, `{ segmentPreview(rule: {lifecycleStage: {in: [CUSTOMER]}}) { count } }`, nil)
	r.requireOK(t)
	var pv struct{ SegmentPreview struct{ Count int } }
	r.decode(t, &pv)
	seg2 := s.gql(t, tok, `query($s: ID!) { segment(id: $s) { size } }`, map[string]any{"s": seg.ID})
	seg2.requireOK(t)
	if !strings.Contains(string(seg2.Data), fmt.Sprintf(`"size":%d`, pv.SegmentPreview.Count)) {
		t.Fatalf("preview %d, segment %s", pv.SegmentPreview.Count, seg2.Data)
	}

	// By hand, back: EXITED.
	s.gql(t, tok, set, map[string]any{"p": ann, "s": "CHURNED"}).requireOK(t)
	if m, ok := recv(5 * time.Second); !ok || m.Kind != "EXITED" || m.profileID() != ann {
		t.Fatalf("churned: got %+v %v, want ann EXITED", m, ok)
	}
	r = s.gql(t, tok, `query($p: ID) { profile(id: $p) { lifecycleStage lifecycleHistory { from to cause actor } } }`, map[string]any{"p": ann})
	r.requireOK(t)
	want := `"lifecycleStage":"CHURNED","lifecycleHistory":[{"from":null,"to":"OPPORTUNITY","cause":"deal.opened","actor":null},` +
		`{"from":"OPPORTUNITY","to":"CUSTOMER","cause":"deal.won","actor":null},{"from":"CUSTOMER","to":"CHURNED","cause":"manual","actor":"test"}]`
	if !strings.Contains(string(r.Data), want) {
		t.Fatalf("history:\n got %s\nwant %s", r.Data, want)
	}

	for _, c := range []struct {
		name, query string
		vars        map[string]any
		code, field string
	}{
		{"an unknown stage", set, map[string]any{"p": ann, "s": "PROSPECT"}, "GRAPHQL_VALIDATION_FAILED", ""},
		{"an unknown person", set, map[string]any{"p": "nope", "s": "LEAD"}, "NOT_FOUND", ""},
		{"an empty stage list", `{ segmentPreview(rule: {lifecycleStage: {in: []}}) { count } }`, nil, "BAD_USER_INPUT", "rule.lifecycleStage.in"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.gql(t, tok, c.query, c.vars)
			if len(r.Errors) == 0 || r.Errors[0].Code() != c.code {
				t.Fatalf("want %s: %s", c.code, r.Body)
			}
			if f, _ := r.Errors[0].Extensions["field"].(string); c.field != "" && f != c.field {
				t.Fatalf("field %q, want %q: %s", f, c.field, r.Body)
			}
		})
	}
	if got := stage(); !strings.Contains(got, `"lifecycleStage":"CHURNED"`) {
		t.Fatalf("refused calls changed the stage: %s", got)
	}
}

// TestE2EDealSegment: "has an open deal in proposal over 50 EUR" through
// GraphQL: a deal's moves take its contact in and out, the preview
// agrees, and bad nodes name their field.
func TestE2EDealSegment(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	rl := map[string]any{"deal": map[string]any{"pipeline": "sales", "stages": []any{"proposal"}, "statuses": []any{"OPEN"},
		"amount": map[string]any{"op": "GT", "value": 50}, "currency": "EUR"}}
	seg := createSegment(t, s, tok, map[string]any{"name": "in proposal", "rule": rl})
	ann := identifyID(t, s, tok, "ann@example.com")
	members := func() string {
		r := s.gql(t, tok, `query($s: ID!, $r: SegmentRuleInput!) { segment(id: $s) { size members { nodes { id } } } segmentPreview(rule: $r) { count } }`,
			map[string]any{"s": seg.ID, "r": rl})
		r.requireOK(t)
		return string(r.Data)
	}
	d := createDeal(t, s, tok, map[string]any{"name": "Acme", "currency": "EUR", "amount": 100, "contactIds": []any{ann}})
	if got := members(); !strings.Contains(got, `"size":0`) || !strings.Contains(got, `"count":0`) {
		t.Fatalf("in qualification: %s", got)
	}
	r := s.gql(t, tok, `mutation($d: ID!, $v: Int!) { moveDealStage(id: $d, stage: "proposal", expectedVersion: $v) { version } }`, map[string]any{"d": d.ID, "v": d.Version})
	r.requireOK(t)
	if got := members(); !strings.Contains(got, `"size":1,"members":{"nodes":[{"id":"`+ann+`"}]}`) || !strings.Contains(got, `"count":1`) {
		t.Fatalf("in proposal: %s", got)
	}
	s.gql(t, tok, `mutation($d: ID!) { closeDeal(id: $d, outcome: LOST, expectedVersion: 2) { status } }`, map[string]any{"d": d.ID}).requireOK(t)
	if got := members(); !strings.Contains(got, `"size":0`) || !strings.Contains(got, `"count":0`) {
		t.Fatalf("lost: %s", got)
	}
	for _, c := range []struct {
		name  string
		node  map[string]any
		field string
	}{
		{"an unknown pipeline", map[string]any{"pipeline": "nope"}, "rule.deal.pipeline"},
		{"a stage without its pipeline", map[string]any{"stages": []any{"proposal"}}, "rule.deal.pipeline"},
		{"an unknown stage", map[string]any{"pipeline": "sales", "stages": []any{"nope"}}, "rule.deal.stages[0]"},
		{"a bad currency", map[string]any{"currency": "euro"}, "rule.deal.currency"},
		{"a bad operator", map[string]any{"amount": map[string]any{"op": "CONTAINS", "value": 1}}, "rule.deal.amount.op"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, s.gql(t, tok, `query($r: SegmentRuleInput!) { segmentPreview(rule: $r) { count } }`, map[string]any{"r": map[string]any{"deal": c.node}}), "BAD_USER_INPUT", c.field)
		})
	}
}

// TestE2EAccountSegmentLive: "works at a gold account with an open deal"
// over a websocket. The people of an account enter when the account gets
// an open deal (no write to them), and leave when it is re-tiered; the
// preview agrees with the segment, and bad nodes name their field.
func TestE2EAccountSegmentLive(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	rl := map[string]any{"account": map[string]any{
		"traits":  []any{map[string]any{"key": "tier", "op": "EQ", "value": "gold"}},
		"rollups": []any{map[string]any{"field": "OPEN_DEALS", "op": "GTE", "value": 1}}}}
	seg := createSegment(t, s, tok, map[string]any{"name": "gold with open deals", "rule": rl})
	ws := connectWS(t, s, tok)
	op := ws.subscribe(t, membershipSub, map[string]any{"s": seg.ID})
	recv := wsMemRecv(t, ws, op)

	// The protocol does not acknowledge a subscribe: warm-up accounts
	// get deals until one's person's ENTERED arrives.
	for i := 0; ; i++ {
		if i == 50 {
			t.Fatal("the subscription never went live")
		}
		a := createAccount(t, s, tok, map[string]any{"name": fmt.Sprint("Warm ", i), "domains": []any{fmt.Sprintf("warm%d.com", i)}, "traits": map[string]any{"tier": "gold"}})
		w := identifyID(t, s, tok, fmt.Sprintf("x@warm%d.com", i))
		createDeal(t, s, tok, map[string]any{"name": "warm", "currency": "EUR", "accountId": a.ID})
		if m, ok := recv(300 * time.Millisecond); ok && m.profileID() == w {
			break
		}
	}
	for {
		if _, ok := recv(200 * time.Millisecond); !ok {
			break
		}
	}

	acme := createAccount(t, s, tok, map[string]any{"name": "Acme", "domains": []any{"acme.com"}, "traits": map[string]any{"tier": "gold"}})
	ann := identifyID(t, s, tok, "ann@acme.com") // linked by her email's domain
	bob := identifyID(t, s, tok, "bob@example.org")
	s.gql(t, tok, `mutation($p: ID!, $a: ID!) { linkProfileToAccount(profileId: $p, accountId: $a, role: "buyer") { role } }`,
		map[string]any{"p": bob, "a": acme.ID}).requireOK(t)
	if m, ok := recv(300 * time.Millisecond); ok {
		t.Fatalf("no open deal yet: %+v", m)
	}
	// Both people's moves, by person.
	moves := func(step, want string) {
		t.Helper()
		got := map[string]string{}
		for range 2 {
			m, ok := recv(5 * time.Second)
			if !ok {
				t.Fatalf("%s: moves %v only", step, got)
			}
			got[m.profileID()] = m.Kind
		}
		if got[ann] != want || got[bob] != want {
			t.Fatalf("%s: %v, want ann and bob %s", step, got, want)
		}
	}
	createDeal(t, s, tok, map[string]any{"name": "Acme renewal", "currency": "EUR", "amount": 100, "accountId": acme.ID})
	moves("an open deal", "ENTERED")
	size := func() string {
		r := s.gql(t, tok, `query($s: ID!, $r: SegmentRuleInput!) { segment(id: $s) { size } segmentPreview(rule: $r) { count } }`,
			map[string]any{"s": seg.ID, "r": rl})
		r.requireOK(t)
		return string(r.Data)
	}
	// The warm-up people are members too.
	if d := size(); !sameFigure(d) {
		t.Fatalf("size and preview differ: %s", d)
	}
	s.gql(t, tok, `mutation($a: ID!, $v: Int!) { updateAccount(id: $a, input: {traits: {tier: "silver"}, expectedVersion: $v}) { version } }`,
		map[string]any{"a": acme.ID, "v": acme.Version}).requireOK(t)
	moves("re-tiered", "EXITED")
	for _, c := range []struct {
		name  string
		node  map[string]any
		field string
	}{
		{"a bad operator", map[string]any{"rollups": []any{map[string]any{"field": "CONTACTS", "op": "CONTAINS", "value": 1}}}, "rule.account.rollups[0].op"},
		{"a trait without a key", map[string]any{"traits": []any{map[string]any{"key": "", "op": "EQ", "value": "x"}}}, "rule.account.traits[0].key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.gql(t, tok, `query($r: SegmentRuleInput!) { segmentPreview(rule: $r) { count } }`, map[string]any{"r": map[string]any{"account": c.node}})
			wantError(t, r, "BAD_USER_INPUT", c.field)
		})
	}
	r := s.gql(t, tok, `{ segmentPreview(rule: {account: {rollups: [{field: HEALTH, op: GT, value: 1}]}}) { count } }`, nil)
	if len(r.Errors) == 0 || r.Errors[0].Code() != "GRAPHQL_VALIDATION_FAILED" {
		t.Fatalf("an unknown roll-up: %s", r.Body)
	}
}

// sameFigure tells whether a {"segment":{"size":n},"segmentPreview":{"count":n}} answer has one n twice.
func sameFigure(data string) bool {
	var size, count int
	if _, err := fmt.Sscanf(strings.NewReplacer(`{"segment":{"size":`, "", `},"segmentPreview":{"count":`, " ", "}}", "").Replace(data), "%d %d", &size, &count); err != nil {
		return false
	}
	return size == count && size > 0
}
