package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/resolvers"
)

// secCall is one valid operation on a root field, with its variables.
type secCall struct {
	query string
	vars  map[string]any
}

// mutationCalls has a valid call of every mutation. Each would succeed
// with every scope; the suite takes one scope away at a time. A mutation
// added to the schema without an entry here fails the suite.
func (w *secWorld) mutationCalls() map[string]secCall {
	email := ids("email", "new@acme.test")
	return map[string]secCall{
		"identify": {`mutation($i: [IdentifierInput!]!) { identify(input: {identifiers: $i, traits: {plan: "x"}}) { created profile { id traits } } }`, map[string]any{"i": email}},
		"track":    {`mutation($i: [IdentifierInput!]!) { track(input: {messageId: "sec-t1", identifiers: $i, name: "page_viewed"}) { duplicate profile { id } event { id name } } }`, map[string]any{"i": email}},
		"trackBatch": {`mutation($i: [IdentifierInput!]!) { trackBatch(inputs: [{messageId: "sec-b1", identifiers: $i, name: "page_viewed"}]) { accepted results { profileId eventId } } }`,
			map[string]any{"i": email}},
		"logInteraction":    {`mutation($p: ID!) { logInteraction(input: {profileId: $p, kind: NOTE, subject: "hello"}) { id subject } }`, map[string]any{"p": w.profile}},
		"definePurpose":     {`mutation { definePurpose(input: {key: "sec_purpose"}) { key } }`, nil},
		"setConsent":        {`mutation($p: ID!) { setConsent(input: {profileId: $p, purpose: "analytics", status: DENIED}) { status } }`, map[string]any{"p": w.profile}},
		"setConsents":       {`mutation($p: ID!) { setConsents(input: {profileId: $p, choices: [{purpose: "analytics", status: DENIED}]}) { status } }`, map[string]any{"p": w.profile}},
		"setIdentifierType": {`mutation { setIdentifierType(input: {name: "secCard"}) { name } }`, nil},
		"mergeProfiles":     {`mutation($a: ID!, $b: ID!) { mergeProfiles(sourceId: $a, targetId: $b) { id traits } }`, map[string]any{"a": w.other, "b": w.profile}},
		"unmergeProfile":    {`mutation($m: ID!) { unmergeProfile(mergeId: $m) { restored { id } record { id identifiers { value } } } }`, map[string]any{"m": w.merged}},
		"eraseProfile":      {`mutation($p: ID!) { eraseProfile(profileId: $p) { id } }`, map[string]any{"p": w.other}},
		"liftSuppression":   {`mutation { liftSuppression(identifier: {type: "email", value: "gone@acme.test"}) }`, nil},
		"setPIISettings":    {`mutation { setPIISettings(traitKeys: ["firstName"], identifierTypes: ["email"]) { traitKeys } }`, nil},
		"createSegment":     {`mutation { createSegment(input: {name: "sec-new", kind: STATIC}) { id members { nodes { id } } } }`, nil},
		"updateSegment":     {`mutation($s: ID!) { updateSegment(id: $s, input: {name: "renamed"}) { id } }`, map[string]any{"s": w.static}},
		"archiveSegment":    {`mutation($s: ID!) { archiveSegment(id: $s) { id } }`, map[string]any{"s": w.static}},
		"addToStaticSegment": {`mutation($s: ID!, $p: ID!) { addToStaticSegment(segmentId: $s, profileIds: [$p]) { id size } }`,
			map[string]any{"s": w.static, "p": w.other}},
		"defineComputedTrait": {`mutation { defineComputedTrait(input: {key: "sec_orders", kind: COUNT, event: "order"}) { key version backfill { status } } }`, nil},
		"deleteComputedTrait": {`mutation { deleteComputedTrait(key: "sec_none") }`, nil},
		"setScoreSettings":    {`mutation { setScoreSettings(input: {orderEvent: "order_completed", revenueProperty: "revenue"}) { orderEvent recount { status } } }`, nil},
		"refreshScoreSummary": {`mutation { refreshScoreSummary { at buyers } }`, nil},
		"removeFromStaticSegment": {`mutation($s: ID!, $p: ID!) { removeFromStaticSegment(segmentId: $s, profileIds: [$p]) { id } }`,
			map[string]any{"s": w.static, "p": w.profile}},
		"createAccount":            {`mutation { createAccount(input: {name: "Sec Co", domains: ["sec-co.test"]}) { id name } }`, nil},
		"updateAccount":            {`mutation($a: ID!) { updateAccount(id: $a, input: {traits: {x: 1}, expectedVersion: 1}) { id version } }`, map[string]any{"a": w.account}},
		"linkProfileToAccount":     {`mutation($p: ID!, $a: ID!) { linkProfileToAccount(profileId: $p, accountId: $a, role: "buyer") { role account { name } } }`, map[string]any{"p": w.other, "a": w.account}},
		"unlinkProfileFromAccount": {`mutation($p: ID!, $a: ID!) { unlinkProfileFromAccount(profileId: $p, accountId: $a) }`, map[string]any{"p": w.profile, "a": w.account}},
		"setAccountSettings":       {`mutation { setAccountSettings(freeMailDomains: ["gmail.com"]) { freeMailDomains } }`, nil},
		"definePipeline":           {`mutation { definePipeline(key: "sec", name: "Sec", stages: [{key: "a", name: "A", probability: 0.5}]) { key } }`, nil},
		"createDeal":               {`mutation { createDeal(input: {name: "Sec deal", currency: "EUR", amount: 1}) { id } }`, nil},
		"updateDeal":               {`mutation($d: ID!) { updateDeal(id: $d, input: {amount: 2, expectedVersion: 1}) { id version } }`, map[string]any{"d": w.deal}},
		"moveDealStage":            {`mutation($d: ID!) { moveDealStage(id: $d, stage: "proposal", expectedVersion: 1) { id stage } }`, map[string]any{"d": w.deal}},
		"closeDeal":                {`mutation($d: ID!) { closeDeal(id: $d, outcome: WON, expectedVersion: 1) { id status } }`, map[string]any{"d": w.deal}},
		"createTask":               {`mutation { createTask(input: {subject: "Sec task"}) { id subject } }`, nil},
		"completeTask":             {`mutation($t: ID!) { completeTask(id: $t) { id status } }`, map[string]any{"t": w.task}},
		"openTicket":               {`mutation($p: ID!) { openTicket(input: {profileId: $p, subject: "Sec ticket"}) { id status } }`, map[string]any{"p": w.profile}},
		"updateTicket":             {`mutation($t: ID!) { updateTicket(id: $t, input: {status: PENDING}) { id status } }`, map[string]any{"t": w.ticket}},
		"addTicketComment":         {`mutation($t: ID!) { addTicketComment(input: {ticketId: $t, body: "On it"}) { comment { id } ticket { status } } }`, map[string]any{"t": w.ticket}},
		"mergeAccounts":            {`mutation($s: ID!, $a: ID!) { mergeAccounts(sourceId: $s, targetId: $a) { id merges { sourceName } } }`, map[string]any{"s": w.dupAccount, "a": w.account}},
		"setLifecycleStage":        {`mutation($p: ID!) { setLifecycleStage(profileId: $p, stage: LEAD) { id lifecycleStage } }`, map[string]any{"p": w.profile}},
		"setTicketSlaTargets":      {`mutation { setTicketSlaTargets(targets: [{priority: LOW, firstResponseMinutes: 600}]) { priority firstResponseMinutes } }`, nil},
	}
}

// queryCalls has a valid call of every query field but viewer.
func (w *secWorld) queryCalls() map[string]secCall {
	return map[string]secCall{
		"profile":           {`query($p: ID) { profile(id: $p) { id traits } }`, map[string]any{"p": w.profile}},
		"profiles":          {`{ profiles { nodes { id } } }`, nil},
		"identifierTypes":   {`{ identifierTypes { name } }`, nil},
		"consentPurposes":   {`{ consentPurposes { key } }`, nil},
		"exportSegment":     {`query($s: ID!) { exportSegment(segmentId: $s, purpose: "marketing", channel: EMAIL) { nodes { profileId } } }`, map[string]any{"s": w.static}},
		"exportProfileData": {`query($p: ID!) { exportProfileData(profileId: $p) }`, map[string]any{"p": w.profile}},
		"piiSettings":       {`{ piiSettings { traitKeys } }`, nil},
		"segment":           {`query($s: ID!) { segment(id: $s) { id name } }`, map[string]any{"s": w.static}},
		"segments":          {`{ segments { nodes { id } } }`, nil},
		"segmentPreview":    {`{ segmentPreview(rule: {trait: {key: "plan", op: EQ, value: "pro"}}) { count } }`, nil},
		"computedTraits":    {`{ computedTraits { key backfill { status processed total } } }`, nil},
		"computedTrait":     {`{ computedTrait(key: "sec_none") { key } }`, nil},
		"scoreSettings":     {`{ scoreSettings { orderEvent revenueProperty recount { status } } }`, nil},
		"scoreSummary":      {`{ scoreSummary { at buyers recency } }`, nil},
		"eventVolume":       {`{ eventVolume(since: "2026-01-01T00:00:00Z", until: "2026-01-02T00:00:00Z", interval: HOUR, groupBy: NAME) { total groups { key } buckets { start counts } } }`, nil},
		"activeProfiles":    {`{ activeProfiles(since: "2026-01-01T00:00:00Z", until: "2026-01-02T00:00:00Z", interval: HOUR) { total buckets { active } } }`, nil},
		"revenue":           {`{ revenue(since: "2026-01-01T00:00:00Z", until: "2026-01-02T00:00:00Z", interval: HOUR) { orders revenue buckets { averageOrderValue } } }`, nil},
		"segmentSize":       {`query($s: ID!) { segmentSize(segmentId: $s, since: "2026-01-01T00:00:00Z", until: "2026-01-02T00:00:00Z", interval: HOUR) { buckets { size } } }`, map[string]any{"s": w.dynamic}},
		"profileGrowth":     {`{ profileGrowth(since: "2026-01-01T00:00:00Z", until: "2026-01-02T00:00:00Z", interval: HOUR) { profiles buckets { figures { newProfiles } } } }`, nil},
		"funnel":            {`query($s: ID) { funnel(steps: [{name: "order_completed"}, {name: "signup"}], since: "2026-01-01T00:00:00Z", until: "2026-01-02T00:00:00Z", segmentId: $s) { steps { people } } }`, map[string]any{"s": w.dynamic}},
		"retention":         {`{ retention(start: {name: "signup"}, returning: {name: "order_completed"}, since: "2026-01-01T00:00:00Z", until: "2026-01-08T00:00:00Z", interval: DAY) { cohorts { people returned } } }`, nil},
		"topValues":         {`{ topValues(event: "order_completed", property: "n", since: "2026-01-01T00:00:00Z", until: "2026-01-02T00:00:00Z") { values { value count } } }`, nil},
		"consentRates":      {`{ consentRates(purpose: "marketing", since: "2026-01-01T00:00:00Z", until: "2026-01-02T00:00:00Z", interval: HOUR) { buckets { contactable } } }`, nil},
		"account":           {`query($a: ID) { account(id: $a) { id name domains } }`, map[string]any{"a": w.account}},
		"accounts":          {`{ accounts { totalCount nodes { id name } } }`, nil},
		"accountSettings":   {`{ accountSettings { freeMailDomains } }`, nil},
		"pipelines":         {`{ pipelines { key stages { key } } }`, nil},
		"deal":              {`query($d: ID!) { deal(id: $d) { id name amount } }`, map[string]any{"d": w.deal}},
		"deals":             {`{ deals { totalCount nodes { id } } }`, nil},
		"pipelineSummary":   {`{ pipelineSummary { won stages { count } } }`, nil},
		"tasks":             {`{ tasks { totalCount nodes { subject } } }`, nil},
		"ticket":            {`query($t: ID!) { ticket(id: $t) { id subject comments { nodes { body } } } }`, map[string]any{"t": w.ticket}},
		"tickets":           {`{ tickets(filter: {breached: false}) { totalCount nodes { id sla { firstResponseBreached } } } }`, nil},
		"ticketSlaTargets":  {`{ ticketSlaTargets { priority resolutionMinutes } }`, nil},
	}
}

// subscriptionCalls has a valid call of every subscription.
func (w *secWorld) subscriptionCalls() map[string]secCall {
	return map[string]secCall{
		"profileUpdated":           {`subscription($p: ID!) { profileUpdated(id: $p) { id } }`, map[string]any{"p": w.profile}},
		"timelineAppended":         {`subscription($p: ID!) { timelineAppended(profileId: $p) { id } }`, map[string]any{"p": w.profile}},
		"consentChanged":           {`subscription($p: ID!) { consentChanged(profileId: $p) { status } }`, map[string]any{"p": w.profile}},
		"segmentMembershipChanged": {`subscription($s: ID!) { segmentMembershipChanged(segmentId: $s) { id } }`, map[string]any{"s": w.static}},
		"eventVolumeLive":          {`subscription { eventVolumeLive(interval: HOUR, groupBy: NAME) { bucket { total } } }`, nil},
		"segmentBuildProgress":     {`subscription($s: ID!) { segmentBuildProgress(segmentId: $s) { status } }`, map[string]any{"s": w.dynamic}},
		"dealChanged":              {`subscription { dealChanged(pipeline: "sales") { id stage } }`, nil},
		"ticketChanged":            {`subscription { ticketChanged(filter: {status: OPEN}) { id status } }`, nil},
		"accountUpdated":           {`subscription($a: ID!) { accountUpdated(id: $a) { id name } }`, map[string]any{"a": w.account}},
	}
}

// openFields are the root fields deliberately without @hasScope.
var openFields = map[string]bool{"Query.viewer": true}

// requireCalls checks that every field of root has a @hasScope directive
// (or is listed in openFields) and a call in calls, and returns the field
// names in schema order.
func requireCalls(t *testing.T, schema *ast.Schema, root *ast.Definition, calls map[string]secCall) []string {
	t.Helper()
	var names []string
	for _, f := range root.Fields {
		if strings.HasPrefix(f.Name, "__") {
			continue
		}
		if resolvers.ScopeOf(f) == "" {
			if !openFields[root.Name+"."+f.Name] {
				t.Errorf("%s.%s has no @hasScope directive: every root field declares the scope it needs", root.Name, f.Name)
			}
			continue
		}
		if _, ok := calls[f.Name]; !ok {
			t.Errorf("%s.%s has no hostile case: add a valid call of it to the suite's table", root.Name, f.Name)
			continue
		}
		names = append(names, f.Name)
	}
	for name := range calls {
		if root.Fields.ForName(name) == nil {
			t.Errorf("the suite calls %s.%s, which the schema does not have", root.Name, name)
		}
	}
	return names
}

func (w *secWorld) scopeCases(t *testing.T, schema *ast.Schema) {
	s := w.s

	// Every mutation, every scope its call needs taken away in turn:
	// FORBIDDEN naming the scope, and nothing stored (also when the
	// missing scope is a payload field's: the mutation is refused whole).
	muts := w.mutationCalls()
	for _, name := range requireCalls(t, schema, schema.Mutation, muts) {
		c := muts[name]
		scopes := scopesOf(t, schema, c.query)
		if len(scopes) == 0 || !slices.Contains(scopes, resolvers.ScopeOf(schema.Mutation.Fields.ForName(name))) {
			t.Fatalf("%s: derived scopes %v", name, scopes)
		}
		for _, missing := range scopes {
			t.Run("mutation "+name+" without "+missing, func(t *testing.T) {
				r := w.hostile(t, s.token(t, "acme", allBut(missing)...), c.query, c.vars, "FORBIDDEN")
				if !strings.Contains(string(r.Body), "needs scope "+missing) {
					t.Errorf("the error does not name the scope: %s", r.Body)
				}
				noData(t, r, name)
			})
		}
	}

	// Every query: FORBIDDEN without its scope, and no data.
	queries := w.queryCalls()
	for _, name := range requireCalls(t, schema, schema.Query, queries) {
		c := queries[name]
		scope := resolvers.ScopeOf(schema.Query.Fields.ForName(name))
		t.Run("query "+name+" without "+scope, func(t *testing.T) {
			r := w.hostile(t, s.token(t, "acme", allBut(scope)...), c.query, c.vars, "FORBIDDEN")
			noData(t, r, name)
		})
	}

	// Every subscription, over the websocket: FORBIDDEN without its scope.
	subs := w.subscriptionCalls()
	for _, name := range requireCalls(t, schema, schema.Subscription, subs) {
		c := subs[name]
		scope := resolvers.ScopeOf(schema.Subscription.Fields.ForName(name))
		t.Run("subscription "+name+" without "+scope, func(t *testing.T) {
			w.hostileSubscribe(t, s.token(t, "acme", allBut(scope)...), c, "FORBIDDEN")
		})
	}

	// An ingest-only key: every query refused...
	ingest := s.token(t, "acme", auth.ScopeEventsWrite)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range queries {
			if !yield(k) {
				return
			}
		}
	}) {
		c := queries[name]
		t.Run("ingest key query "+name, func(t *testing.T) {
			noData(t, w.hostile(t, ingest, c.query, c.vars, "FORBIDDEN"), name)
		})
	}
	// ... every other write refused...
	for _, name := range []string{"mergeProfiles", "setConsent", "createSegment", "eraseProfile"} {
		c := muts[name]
		t.Run("ingest key mutation "+name, func(t *testing.T) {
			noData(t, w.hostile(t, ingest, c.query, c.vars, "FORBIDDEN"), name)
		})
	}
	// ... profile fields beyond the id refused before anything is stored...
	t.Run("ingest key identify asking for identifiers", func(t *testing.T) {
		w.hostile(t, ingest, `mutation { identify(input: {identifiers: [{type: "email", value: "ingest@acme.test"}]}) { profile { id identifiers { value } } } }`, nil, "FORBIDDEN")
	})
	t.Run("ingest key track asking for the event's properties", func(t *testing.T) {
		w.hostile(t, ingest, `mutation { track(input: {messageId: "ing-x", identifiers: [{type: "email", value: "ingest@acme.test"}], name: "a"}) { event { id properties } } }`, nil, "FORBIDDEN")
	})
	t.Run("ingest key identify carrying consent", func(t *testing.T) {
		w.hostile(t, ingest, `mutation { identify(input: {identifiers: [{type: "email", value: "ingest@acme.test"}], consent: [{purpose: "marketing", status: GRANTED}]}) { profile { id } } }`, nil, "FORBIDDEN")
	})
	t.Run("ingest key subscription", func(t *testing.T) {
		w.hostileSubscribe(t, ingest, subs["timelineAppended"], "FORBIDDEN")
	})

	// ... but identify, track, trackBatch and logInteraction work and give
	// ids back.
	t.Run("ingest key writes and reads ids", func(t *testing.T) {
		before := w.snapshot(t)
		if len(before) < 20 {
			t.Fatalf("the snapshot sees %d documents: it would miss changes", len(before))
		}
		defer func() {
			// The control: the snapshot sees what these writes stored.
			if after := w.snapshot(t); len(after) <= len(before) {
				t.Errorf("the snapshot did not see the ingest key's writes (%d documents before, %d after)", len(before), len(after))
			}
		}()
		r := s.gql(t, ingest, `mutation { identify(input: {identifiers: [{type: "email", value: "ingest@acme.test"}], traits: {plan: "free"}}) { created mergedProfileIds profile { id } } }`, nil)
		r.requireOK(t)
		var idn struct {
			Identify struct {
				Created bool
				Profile struct{ ID string }
			}
		}
		r.decode(t, &idn)
		if !idn.Identify.Created || idn.Identify.Profile.ID == "" {
			t.Fatalf("identify: %s", r.Body)
		}
		r = s.gql(t, ingest, `mutation { track(input: {messageId: "ing-1", identifiers: [{type: "email", value: "ingest@acme.test"}], name: "signup"}) { duplicate profile { id } event { id profileId messageId } } }`, nil)
		r.requireOK(t)
		if !strings.Contains(string(r.Data), idn.Identify.Profile.ID) {
			t.Fatalf("track: %s", r.Body)
		}
		r = s.gql(t, ingest, `mutation { trackBatch(inputs: [{messageId: "ing-2", identifiers: [{type: "email", value: "ingest@acme.test"}], name: "a"}]) { accepted duplicates results { messageId profileId eventId duplicate } } }`, nil)
		r.requireOK(t)
		r = s.gql(t, ingest, `mutation($p: ID!) { logInteraction(input: {profileId: $p, kind: NOTE}) { id profileId } }`, map[string]any{"p": idn.Identify.Profile.ID})
		r.requireOK(t)
		r = s.gql(t, ingest, viewerQuery, nil)
		r.requireOK(t)
	})
}

// hostileSubscribe starts a subscription over the websocket and expects it
// to fail with code before sending anything.
func (w *secWorld) hostileSubscribe(t *testing.T, tok string, c secCall, code string) {
	t.Helper()
	w.hostileDo(t, code, func() gqlResponse {
		ws := connectWS(t, w.s, tok)
		id := ws.subscribe(t, c.query, c.vars)
		m := ws.read(t, 5*time.Second)
		if m.ID != id || !opFailed(m, code) {
			t.Fatalf("want %s, got %s %s", code, m.Type, m.Payload)
		}
		if m.Type == "next" && strings.Contains(string(m.Payload), `"data":{`) {
			t.Fatalf("data sent: %s", m.Payload)
		}
		return gqlResponse{Status: 200, Body: m.Payload, Errors: []gqlError{{Extensions: map[string]any{"code": code}}}}
	})
}
