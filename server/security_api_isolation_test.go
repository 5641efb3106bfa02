package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// isolationCases aims acme's all-scope token at globex's ids: every answer
// is the one a nonexistent id gets (NOT_FOUND, or null where the schema
// says "null when nothing matches"), never globex's data, and nothing
// changes in either workspace.
func (w *secWorld) isolationCases(t *testing.T) {
	s := w.s
	acme := s.token(t, "acme")
	const missing = "0196f000-0000-7000-8000-000000000000" // well-formed, never issued
	cases := []struct {
		name, query string
		vars        func(id string) map[string]any
		foreign     string
		// code is what a nonexistent id gets: NOT_FOUND for the id an
		// operation is about, BAD_USER_INPUT (naming the field) for an id
		// given as input to one; "" when the field is null, without error.
		code string
	}{
		{"profile by id", `query($x: ID) { profile(id: $x) { id traits } }`, one("x"), w.gProfile, ""},
		{"account by id", `query($x: ID) { account(id: $x) { id name contacts { nodes { id } } } }`, one("x"), w.gAccount, ""},
		{"update an account", `mutation($x: ID!) { updateAccount(id: $x, input: {name: "mine", expectedVersion: 1}) { id } }`, one("x"), w.gAccount, "NOT_FOUND"},
		{"link to an account", `mutation($x: ID!, $p: ID!) { linkProfileToAccount(profileId: $p, accountId: $x) { role } }`, with("x", "p", w.profile), w.gAccount, "NOT_FOUND"},
		{"link a person", `mutation($x: ID!, $a: ID!) { linkProfileToAccount(profileId: $x, accountId: $a) { role } }`, with("x", "a", w.account), w.gProfile, "NOT_FOUND"},
		{"complete a task", `mutation($x: ID!) { completeTask(id: $x) { id } }`, one("x"), w.gTask, "NOT_FOUND"},
		{"a task about a person", `mutation($x: ID!) { createTask(input: {subject: "x", profileId: $x}) { id } }`, one("x"), w.gProfile, "NOT_FOUND"},
		{"a task at an account", `mutation($x: ID!) { createTask(input: {subject: "x", accountId: $x}) { id } }`, one("x"), w.gAccount, "NOT_FOUND"},
		{"a task on a deal", `mutation($x: ID!) { createTask(input: {subject: "x", dealId: $x}) { id } }`, one("x"), w.gDeal, "NOT_FOUND"},
		{"deal by id", `query($x: ID!) { deal(id: $x) { id name } }`, one("x"), w.gDeal, ""},
		{"merge its account into own", `mutation($x: ID!, $a: ID!) { mergeAccounts(sourceId: $x, targetId: $a) { id } }`, with("x", "a", w.account), w.gAccount, "NOT_FOUND"},
		{"merge own account into its", `mutation($x: ID!, $a: ID!) { mergeAccounts(sourceId: $a, targetId: $x) { id } }`, with("x", "a", w.account), w.gAccount, "NOT_FOUND"},
		{"set a lifecycle stage", `mutation($x: ID!) { setLifecycleStage(profileId: $x, stage: CUSTOMER) { id } }`, one("x"), w.gProfile, "NOT_FOUND"},
		{"ticket by id", `query($x: ID!) { ticket(id: $x) { id subject comments { nodes { body } } } }`, one("x"), w.gTicket, ""},
		{"update a ticket", `mutation($x: ID!) { updateTicket(id: $x, input: {status: CLOSED}) { id } }`, one("x"), w.gTicket, "NOT_FOUND"},
		{"comment on a ticket", `mutation($x: ID!) { addTicketComment(input: {ticketId: $x, body: "x"}) { comment { id } } }`, one("x"), w.gTicket, "NOT_FOUND"},
		{"a ticket for a person", `mutation($x: ID!) { openTicket(input: {profileId: $x, subject: "x"}) { id } }`, one("x"), w.gProfile, "NOT_FOUND"},
		{"a ticket at an account", `mutation($x: ID!, $p: ID!) { openTicket(input: {profileId: $p, subject: "x", accountId: $x}) { id } }`, with("x", "p", w.profile), w.gAccount, "NOT_FOUND"},
		{"update a deal", `mutation($x: ID!) { updateDeal(id: $x, input: {amount: 1, expectedVersion: 1}) { id } }`, one("x"), w.gDeal, "NOT_FOUND"},
		{"move a deal", `mutation($x: ID!) { moveDealStage(id: $x, stage: "proposal", expectedVersion: 1) { id } }`, one("x"), w.gDeal, "NOT_FOUND"},
		{"close a deal", `mutation($x: ID!) { closeDeal(id: $x, outcome: LOST, expectedVersion: 1) { id } }`, one("x"), w.gDeal, "NOT_FOUND"},
		{"a deal at an account", `mutation($x: ID!) { createDeal(input: {name: "x", currency: "EUR", accountId: $x}) { id } }`, one("x"), w.gAccount, "NOT_FOUND"},
		{"a deal with a contact", `mutation($x: ID!) { createDeal(input: {name: "x", currency: "EUR", contactIds: [$x]}) { id } }`, one("x"), w.gProfile, "NOT_FOUND"},
		{"unlink from an account", `mutation($x: ID!, $p: ID!) { unlinkProfileFromAccount(profileId: $p, accountId: $x) }`, with("x", "p", w.profile), w.gAccount, "NOT_FOUND"},
		{"segment by id", `query($x: ID!) { segment(id: $x) { id name members { nodes { id } } } }`, one("x"), w.gSegment, ""},
		{"export a segment", `query($x: ID!) { exportSegment(segmentId: $x, purpose: "marketing", channel: EMAIL) { nodes { profileId traits } } }`, one("x"), w.gSegment, "NOT_FOUND"},
		{"a segment's size", `query($x: ID!) { segmentSize(segmentId: $x, since: "2026-01-01T00:00:00Z", until: "2026-01-02T00:00:00Z", interval: DAY) { buckets { size entered } } }`, one("x"), w.gSegment, "NOT_FOUND"},
		{"a funnel of a segment", `query($x: ID!) { funnel(steps: [{name: "order_completed"}], since: "2026-01-01T00:00:00Z", until: "2099-01-01T00:00:00Z", segmentId: $x) { steps { people } } }`, one("x"), w.gSegment, "NOT_FOUND"},
		{"export a person's data", `query($x: ID!) { exportProfileData(profileId: $x) }`, one("x"), w.gProfile, "NOT_FOUND"},
		{"preview a rule nesting a segment", `query($x: ID!) { segmentPreview(rule: {inSegment: $x}) { count sample { id } } }`, one("x"), w.gSegment, "BAD_USER_INPUT"},
		{"a list filtered by a segment", `query($x: ID!) { profiles(filter: {inSegment: $x}) { totalCount nodes { id } } }`, one("x"), w.gSegment, "BAD_USER_INPUT"},
		{"log an interaction", `mutation($x: ID!) { logInteraction(input: {profileId: $x, kind: NOTE, subject: "x"}) { id } }`, one("x"), w.gProfile, "NOT_FOUND"},
		{"merge into own profile", `mutation($x: ID!, $p: ID!) { mergeProfiles(sourceId: $x, targetId: $p) { id } }`, with("x", "p", w.profile), w.gProfile, "NOT_FOUND"},
		{"merge own profile into it", `mutation($x: ID!, $p: ID!) { mergeProfiles(sourceId: $p, targetId: $x) { id } }`, with("x", "p", w.profile), w.gProfile, "NOT_FOUND"},
		{"unmerge", `mutation($x: ID!) { unmergeProfile(mergeId: $x) { record { id } } }`, one("x"), w.gMerge, "NOT_FOUND"},
		{"erase", `mutation($x: ID!) { eraseProfile(profileId: $x) { id } }`, one("x"), w.gProfile, "NOT_FOUND"},
		{"set consent", `mutation($x: ID!) { setConsent(input: {profileId: $x, purpose: "marketing", status: WITHDRAWN}) { status } }`, one("x"), w.gProfile, "NOT_FOUND"},
		{"set consents", `mutation($x: ID!) { setConsents(input: {profileId: $x, choices: [{purpose: "marketing", status: WITHDRAWN}]}) { status } }`, one("x"), w.gProfile, "NOT_FOUND"},
		{"update a segment", `mutation($x: ID!) { updateSegment(id: $x, input: {name: "pwned"}) { id } }`, one("x"), w.gSegment, "NOT_FOUND"},
		{"archive a segment", `mutation($x: ID!) { archiveSegment(id: $x) { id } }`, one("x"), w.gSegment, "NOT_FOUND"},
		{"add own profile to its segment", `mutation($x: ID!, $p: ID!) { addToStaticSegment(segmentId: $x, profileIds: [$p]) { id } }`, with("x", "p", w.profile), w.gSegment, "NOT_FOUND"},
		{"add its profile to own segment", `mutation($x: ID!, $s: ID!) { addToStaticSegment(segmentId: $s, profileIds: [$x]) { id } }`, with("x", "s", w.static), w.gProfile, "BAD_USER_INPUT"},
		{"remove from its segment", `mutation($x: ID!, $p: ID!) { removeFromStaticSegment(segmentId: $x, profileIds: [$p]) { id } }`, with("x", "p", w.profile), w.gSegment, "NOT_FOUND"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.code == "" {
				for _, id := range []string{missing, c.foreign} {
					r := s.gql(t, acme, c.query, c.vars(id))
					r.requireOK(t)
					if strings.Contains(string(r.Data), `":{`) {
						t.Fatalf("%s: data for another workspace's id: %s", c.name, r.Data)
					}
				}
				return
			}
			want := w.hostile(t, acme, c.query, c.vars(missing), c.code)
			got := w.hostile(t, acme, c.query, c.vars(c.foreign), c.code)
			noData(t, got, firstField(c.query))
			if a, b := strings.ReplaceAll(string(want.Body), missing, "ID"), strings.ReplaceAll(string(got.Body), c.foreign, "ID"); a != b {
				t.Errorf("another workspace's id is answered differently from a missing one:\n missing: %s\n foreign: %s", a, b)
			}
			if strings.Contains(string(got.Body), "Gina") || strings.Contains(string(got.Body), w.gEmail) {
				t.Fatalf("globex data leaked: %s", got.Body)
			}
		})
	}

	t.Run("profile by identifier", func(t *testing.T) {
		r := s.gql(t, acme, `query($e: String!) { profile(identifier: {type: "email", value: $e}) { id } }`, map[string]any{"e": w.gEmail})
		r.requireOK(t)
		if string(r.Data) != `{"profile":null}` {
			t.Fatalf("globex's identifier resolved in acme: %s", r.Data)
		}
	})
	t.Run("event volume", func(t *testing.T) {
		// globex's own event name, and the name both track: acme counts
		// only its own.
		globex := s.token(t, "globex")
		now := time.Now().UTC()
		track(t, s, globex, "iso-g-only", ids("email", w.gEmail), "globex_only", now.Add(-time.Minute))
		r := s.gql(t, acme, `query($s: Time!, $u: Time!) { eventVolume(since: $s, until: $u, interval: DAY, groupBy: NAME) { total groups { key total } } }`,
			map[string]any{"s": now.Add(-48 * time.Hour).Format(time.RFC3339), "u": now.Add(time.Hour).Format(time.RFC3339)})
		r.requireOK(t)
		var got struct {
			EventVolume struct {
				Total  int
				Groups []struct {
					Key   string
					Total int
				}
			}
		}
		r.decode(t, &got)
		for _, g := range got.EventVolume.Groups {
			if g.Key == "globex_only" || g.Key == "order_completed" && g.Total != 1 {
				t.Fatalf("globex's events counted in acme: %s", r.Data)
			}
		}
		if got.EventVolume.Total < 1 {
			t.Fatalf("acme's own event not counted: %s", r.Data)
		}
	})
	t.Run("active profiles", func(t *testing.T) {
		// Three people active in globex only: acme's figure stays.
		globex := s.token(t, "globex")
		now := time.Now().UTC()
		vars := map[string]any{"s": now.Add(-48 * time.Hour).Format(time.RFC3339), "u": now.Add(time.Hour).Format(time.RFC3339)}
		const q = `query($s: Time!, $u: Time!) { activeProfiles(since: $s, until: $u, interval: DAY) { total } }`
		total := func(tok string) int {
			t.Helper()
			r := s.gql(t, tok, q, vars)
			r.requireOK(t)
			var got struct{ ActiveProfiles struct{ Total int } }
			r.decode(t, &got)
			return got.ActiveProfiles.Total
		}
		before, theirs := total(acme), total(globex)
		for i := range 3 {
			track(t, s, globex, fmt.Sprintf("iso-g-active-%d", i), ids("anonymousId", fmt.Sprintf("iso-g-visitor-%d", i)), "page_viewed", now.Add(-time.Minute))
		}
		if after := total(acme); after != before {
			t.Fatalf("globex's active people counted in acme: %d, then %d", before, after)
		}
		if after := total(globex); after != theirs+3 {
			t.Fatalf("globex's own active people: %d, then %d", theirs, after)
		}
	})
	t.Run("revenue", func(t *testing.T) {
		// A globex order: acme's revenue stays, globex's moves.
		globex := s.token(t, "globex")
		now := time.Now().UTC()
		vars := map[string]any{"s": now.Add(-48 * time.Hour).Format(time.RFC3339), "u": now.Add(time.Hour).Format(time.RFC3339)}
		const q = `query($s: Time!, $u: Time!) { revenue(since: $s, until: $u, interval: DAY) { orders revenue } }`
		figures := func(tok string) (int, float64) {
			t.Helper()
			r := s.gql(t, tok, q, vars)
			r.requireOK(t)
			var got struct {
				Revenue struct {
					Orders  int
					Revenue float64
				}
			}
			r.decode(t, &got)
			return got.Revenue.Orders, got.Revenue.Revenue
		}
		orders, revenue := figures(acme)
		theirs, _ := figures(globex)
		trackEventAt(t, s, globex, "iso-g-order", ids("email", w.gEmail), "order_completed", now.Add(-time.Minute), map[string]any{"revenue": 1e6})
		if o, r := figures(acme); o != orders || r != revenue {
			t.Fatalf("globex's order counted in acme: %d/%v, then %d/%v", orders, revenue, o, r)
		}
		if o, _ := figures(globex); o != theirs+1 {
			t.Fatalf("globex's own order: %d, then %d", theirs, o)
		}
	})
	t.Run("history series", func(t *testing.T) {
		// globex's profiles, merges and consent never count in acme's
		// growth and consent series: acme's figures equal its own counts.
		now := time.Now().UTC()
		vars := map[string]any{"s": now.Add(-48 * time.Hour).Format(time.RFC3339), "u": now.Add(time.Hour).Format(time.RFC3339)}
		const q = `query($s: Time!, $u: Time!) {
		  profiles(first: 0) { totalCount }
		  profileGrowth(since: $s, until: $u, interval: DAY) { profiles totals { merges } }
		  consentRates(purpose: "marketing", since: $s, until: $u, interval: DAY) { buckets { profiles } } }`
		for _, tok := range []string{acme, s.token(t, "globex")} {
			r := s.gql(t, tok, q, vars)
			r.requireOK(t)
			var got struct {
				Profiles      struct{ TotalCount int }
				ProfileGrowth struct {
					Profiles int
					Totals   struct{ Merges int }
				}
				ConsentRates struct{ Buckets []struct{ Profiles int } }
			}
			r.decode(t, &got)
			last := got.ConsentRates.Buckets[len(got.ConsentRates.Buckets)-1]
			if got.ProfileGrowth.Profiles != got.Profiles.TotalCount || last.Profiles != got.Profiles.TotalCount || got.ProfileGrowth.Totals.Merges > 1 {
				t.Fatalf("a workspace's series count another's profiles or merges: %s", r.Data)
			}
		}
	})
	t.Run("funnels and top values", func(t *testing.T) {
		// globex's events never reach acme's funnels, grids or values:
		// globex tracks its own name, and a value only it sends.
		globex := s.token(t, "globex")
		now := time.Now().UTC()
		track(t, s, globex, "iso-g-funnel", ids("email", w.gEmail), "order_completed", now.Add(-time.Minute))
		vars := map[string]any{"s": now.Add(-48 * time.Hour).Format(time.RFC3339), "u": now.Add(time.Hour).Format(time.RFC3339)}
		const q = `query($s: Time!, $u: Time!) {
		  only: funnel(steps: [{name: "globex_only"}], since: $s, until: $u) { steps { people } }
		  orders: funnel(steps: [{name: "order_completed"}], since: $s, until: $u) { steps { people } }
		  retention(start: {name: "globex_only"}, returning: {name: "globex_only"}, since: $s, until: $u, interval: DAY) { cohorts { people } }
		  topValues(event: "order_completed", property: "n", since: $s, until: $u) { events } }`
		r := s.gql(t, acme, q, vars)
		r.requireOK(t)
		var got struct {
			Only, Orders struct{ Steps []struct{ People int } }
			Retention    struct{ Cohorts []struct{ People int } }
			TopValues    struct{ Events int }
		}
		r.decode(t, &got)
		for _, c := range got.Retention.Cohorts {
			if c.People != 0 {
				t.Fatalf("globex's events in acme's retention: %s", r.Data)
			}
		}
		if got.Only.Steps[0].People != 0 || got.Orders.Steps[0].People != 1 || got.TopValues.Events != 1 {
			t.Fatalf("acme's funnels or values count globex's events: %s", r.Data)
		}
	})
	t.Run("accounts", func(t *testing.T) {
		// globex's account, and globex's person at acme's domain, never
		// reach acme's lists or links.
		globex := s.token(t, "globex")
		spy, _ := identify(t, s, globex, ids("email", "spy@acme.test"), nil)
		r := s.gql(t, acme, `query($a: ID) { accounts(first: 100) { totalCount nodes { id name } }
		  account(id: $a) { contacts(first: 100) { nodes { id } } }
		  byDomain: account(identifier: {type: "domain", value: "globex.test"}) { id } }`, map[string]any{"a": w.account})
		r.requireOK(t)
		if strings.Contains(string(r.Data), w.gAccount) || strings.Contains(string(r.Data), "Globex") || strings.Contains(string(r.Data), spy.ID) ||
			!strings.Contains(string(r.Data), `"byDomain":null`) {
			t.Fatalf("acme sees globex's accounts or people: %s", r.Data)
		}
	})
	t.Run("ad-hoc lists", func(t *testing.T) {
		// globex's people, with emails as acme's have, never appear in or
		// count toward acme's lists.
		r := s.gql(t, acme, `{ known: profiles(filter: {identifier: {type: "email"}}, first: 100) { totalCount nodes { id } }
		  all: profiles(sortBy: {by: EVENT_COUNT}, first: 100) { totalCount nodes { id } }
		  plain: profiles(first: 0) { totalCount } }`, nil)
		r.requireOK(t)
		var got struct {
			Known, All struct {
				TotalCount int
				Nodes      []struct{ ID string }
			}
			Plain struct{ TotalCount int }
		}
		r.decode(t, &got)
		if strings.Contains(string(r.Data), w.gProfile) || got.All.TotalCount != got.Plain.TotalCount || got.Known.TotalCount == 0 || got.Known.TotalCount > got.Plain.TotalCount {
			t.Fatalf("acme's ad-hoc lists see globex: %s", r.Data)
		}
	})
	t.Run("search", func(t *testing.T) {
		r := s.gql(t, acme, `{ profiles(search: "gina", first: 100) { nodes { id } } }`, nil)
		r.requireOK(t)
		if strings.Contains(string(r.Data), w.gProfile) {
			t.Fatalf("globex's profile found from acme: %s", r.Data)
		}
	})

	subs := []struct {
		name, query string
		vars        map[string]any
	}{
		{"profileUpdated", `subscription($x: ID!) { profileUpdated(id: $x) { id traits } }`, map[string]any{"x": w.gProfile}},
		{"timelineAppended", `subscription($x: ID!) { timelineAppended(profileId: $x) { id } }`, map[string]any{"x": w.gProfile}},
		{"consentChanged", `subscription($x: ID!) { consentChanged(profileId: $x) { status } }`, map[string]any{"x": w.gProfile}},
		{"segmentMembershipChanged by segment", `subscription($x: ID!) { segmentMembershipChanged(segmentId: $x) { id } }`, map[string]any{"x": w.gSegment}},
		{"segmentMembershipChanged by profile", `subscription($x: ID!) { segmentMembershipChanged(profileId: $x) { id } }`, map[string]any{"x": w.gProfile}},
		{"segmentBuildProgress", `subscription($x: ID!) { segmentBuildProgress(segmentId: $x) { status } }`, map[string]any{"x": w.gSegment}},
		{"accountUpdated", `subscription($x: ID!) { accountUpdated(id: $x) { id name } }`, map[string]any{"x": w.gAccount}},
	}
	for _, c := range subs {
		t.Run("subscribe "+c.name, func(t *testing.T) {
			w.hostileSubscribe(t, acme, secCall{c.query, c.vars}, "NOT_FOUND")
		})
	}
}

func one(name string) func(string) map[string]any {
	return func(id string) map[string]any { return map[string]any{name: id} }
}

func with(name, other, value string) func(string) map[string]any {
	return func(id string) map[string]any { return map[string]any{name: id, other: value} }
}

// firstField is the first root field an operation selects.
func firstField(query string) string {
	i := strings.Index(query, "{")
	rest := strings.TrimSpace(query[i+1:])
	end := strings.IndexAny(rest, "({ ")
	return rest[:end]
}
