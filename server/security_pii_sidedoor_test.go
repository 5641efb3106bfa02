package main

// Hostile cases of issue 14 (items 3, 4, 5): personal data reachable
// without scope pii:read through side doors of the masking: consent
// proofs, computed traits over PII properties, and segment rules used as
// an oracle. Every refusal asserts the exact code and message fragment and
// that the store did not change (snapshot and digest); every masked value
// is asserted exactly, and the pii:read caller sees it in clear.

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/halo-cdp/halo/internal/platform/auth"
)

const (
	sdEmail = "secret-Alpha@acme.test"
	sdPhone = "+14155550123"
)

// sdWorld is the seeded state of the side-door cases.
type sdWorld struct {
	*secWorld
	admin, masked, maskedWriter, clear string
	person                             string // the profile with the secrets
	piiSegment                         string // saved by a pii:read caller, rule on email
}

func seedSideDoors(t *testing.T) *sdWorld {
	t.Helper()
	s := startServer(t, serverOptions{Env: map[string]string{"HALO_RATE_LIMIT": "0", "HALO_WORKSPACE_RATE_LIMIT": "0"}})
	w := &sdWorld{
		secWorld:     &secWorld{s: s, st: secondStore(t, s)},
		admin:        s.token(t, "acme"),
		masked:       s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopeSegmentsRead),
		maskedWriter: s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopeSegmentsRead, auth.ScopeSegmentsWrite),
		clear:        s.token(t, "acme", auth.ScopeProfilesRead, auth.ScopeSegmentsRead, auth.ScopeSegmentsWrite, auth.ScopePIIRead),
	}
	// Computed traits defined by a segments:write caller without pii:read:
	// allowed (their values are masked, not refused).
	define := `mutation($in: DefineComputedTraitInput!) { defineComputedTrait(input: $in) { key } }`
	for _, in := range []map[string]any{
		{"key": "order_emails", "kind": "UNIQUE_LIST", "event": "order_completed", "property": "email"},
		{"key": "last_phone", "kind": "LAST", "event": "order_completed", "property": "phone"},
		{"key": "secret_orders", "kind": "COUNT", "event": "order_completed",
			"where": []map[string]any{{"key": "email", "op": "STARTS_WITH", "value": "secret-A"}}},
		{"key": "order_count", "kind": "COUNT", "event": "order_completed"},
		{"key": "order_total", "kind": "SUM", "event": "order_completed", "property": "amount"},
	} {
		s.gql(t, w.maskedWriter, define, map[string]any{"in": in}).requireOK(t)
	}

	p, _ := identify(t, s, w.admin, ids("email", sdEmail), map[string]any{
		"firstName": "Ana", "email": sdEmail, "plan": "pro", "address": map[string]any{"street": "1 Main St", "city": "Lisbon"},
	})
	w.person = p.ID
	sdTrack(t, s, w.admin, "sd-1", map[string]any{"email": sdEmail, "phone": sdPhone, "amount": 10})
	w.s.gql(t, w.admin, `mutation($p: ID!, $proof: JSON) { setConsent(input: {profileId: $p, purpose: "marketing", channel: EMAIL, status: GRANTED, proof: $proof}) { status } }`,
		map[string]any{"p": w.person, "proof": map[string]any{
			"email": sdEmail, "ip": "203.0.113.7", "name": "Ana Secret", "form": "banner-v2",
			"client": map[string]any{"remoteAddr": "198.51.100.4", "userAgent": "Mozilla/5.0", "origin": "2001:db8::1"},
		}}).requireOK(t)
	// Someone else, so that a count of 1 says something.
	identify(t, s, w.admin, ids("email", "bo@acme.test"), map[string]any{"plan": "free"})

	// Wait until the computed values are there (ingest or backfill) and
	// every backfill is done: one finishing later would rewrite the
	// documents the hostile cases expect unchanged.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c := sdComputed(t, s, w.clear, w.person)
		if c["order_count"] == float64(1) && c["last_phone"] == sdPhone && c["secret_orders"] == float64(1) && sdBackfillsDone(t, s, w.clear) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("computed values never arrived: %v", c)
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.piiSegment = createSegment(t, s, w.clear, map[string]any{"name": "secret-a",
		"rule": map[string]any{"trait": map[string]any{"key": "email", "op": "STARTS_WITH", "value": "secret-A"}}}).ID
	return w
}

// sdTrack tracks an order_completed of the person with props.
func sdTrack(t *testing.T, s *testServer, tok, messageID string, props map[string]any) {
	t.Helper()
	s.gql(t, tok, `mutation($in: TrackInput!) { track(input: $in) { profile { id } } }`, map[string]any{"in": map[string]any{
		"messageId": messageID, "identifiers": ids("email", sdEmail), "name": "order_completed", "properties": props,
	}}).requireOK(t)
}

// sdBackfillsDone says every computed trait's backfill is DONE.
func sdBackfillsDone(t *testing.T, s *testServer, tok string) bool {
	t.Helper()
	r := s.gql(t, tok, `{ computedTraits { backfill { status } } }`, nil)
	r.requireOK(t)
	var out struct {
		ComputedTraits []struct{ Backfill struct{ Status string } }
	}
	r.decode(t, &out)
	for _, c := range out.ComputedTraits {
		if c.Backfill.Status != "DONE" {
			return false
		}
	}
	return true
}

func sdComputed(t *testing.T, s *testServer, tok, id string) map[string]any {
	t.Helper()
	r := s.gql(t, tok, `query($id: ID!) { profile(id: $id) { computed } }`, map[string]any{"id": id})
	r.requireOK(t)
	var out struct {
		Profile struct{ Computed map[string]any }
	}
	r.decode(t, &out)
	return out.Profile.Computed
}

// refused sends a hostile operation and asserts FORBIDDEN with every
// fragment in its message, an unchanged snapshot and an unchanged digest.
func (w *sdWorld) refused(t *testing.T, tok, query string, vars map[string]any, fragments ...string) {
	t.Helper()
	before := takeStoreDigest(t, w.st, "acme")
	r := w.hostile(t, tok, query, vars, "FORBIDDEN")
	requireStoreDigest(t, w.st, "acme", before)
	for _, f := range fragments {
		if !strings.Contains(r.Errors[0].Message, f) {
			t.Fatalf("message %q lacks %q", r.Errors[0].Message, f)
		}
	}
	if strings.Contains(string(r.Body), w.person) {
		t.Fatalf("refusal names the profile: %s", r.Body)
	}
}

func TestSecurityPIISideDoors(t *testing.T) {
	w := seedSideDoors(t)
	s := w.s

	// Item 3: a consent proof is masked like traits (and IP addresses are
	// personal data), in the same response as the masked traits.
	t.Run("ConsentProof", func(t *testing.T) {
		history := func(tok string) (proof, traits map[string]any) {
			t.Helper()
			r := s.gql(t, tok, `query($id: ID!) { profile(id: $id) { traits consentHistory { nodes { proof } } } }`, map[string]any{"id": w.person})
			r.requireOK(t)
			var out struct {
				Profile struct {
					Traits         map[string]any
					ConsentHistory struct {
						Nodes []struct{ Proof map[string]any }
					}
				}
			}
			r.decode(t, &out)
			if len(out.Profile.ConsentHistory.Nodes) != 1 {
				t.Fatalf("history %s", r.Body)
			}
			return out.Profile.ConsentHistory.Nodes[0].Proof, out.Profile.Traits
		}
		proof, traits := history(w.masked)
		want := map[string]any{
			"email": "s***@acme.test", "ip": "2***", "name": "A***", "form": "banner-v2",
			"client": map[string]any{"remoteAddr": "1***", "userAgent": "Mozilla/5.0", "origin": "2***"},
		}
		if !reflect.DeepEqual(proof, want) {
			t.Fatalf("masked proof %v, want %v", proof, want)
		}
		if traits["email"] != "s***@acme.test" || traits["firstName"] != "A***" {
			t.Fatalf("masked traits %v", traits)
		}
		proof, _ = history(w.clear)
		want = map[string]any{
			"email": sdEmail, "ip": "203.0.113.7", "name": "Ana Secret", "form": "banner-v2",
			"client": map[string]any{"remoteAddr": "198.51.100.4", "userAgent": "Mozilla/5.0", "origin": "2001:db8::1"},
		}
		if !reflect.DeepEqual(proof, want) {
			t.Fatalf("pii:read proof %v, want %v", proof, want)
		}
	})

	// Item 4: computed values derived from PII keys (property or where)
	// are masked like their source, everywhere a profile is shown.
	wantMasked := map[string]any{
		"order_emails": []any{"s***@acme.test"}, "last_phone": "+1********23", "secret_orders": "***",
		"order_count": float64(1), "order_total": float64(10),
	}
	wantClear := map[string]any{
		"order_emails": []any{sdEmail}, "last_phone": sdPhone, "secret_orders": float64(1),
		"order_count": float64(1), "order_total": float64(10),
	}
	t.Run("ComputedProfile", func(t *testing.T) {
		if got := sdComputed(t, s, w.masked, w.person); !reflect.DeepEqual(got, wantMasked) {
			t.Fatalf("masked computed %v, want %v", got, wantMasked)
		}
		if got := sdComputed(t, s, w.clear, w.person); !reflect.DeepEqual(got, wantClear) {
			t.Fatalf("pii:read computed %v, want %v", got, wantClear)
		}
		// keys: selects, still masked.
		r := s.gql(t, w.masked, `query($id: ID!) { profile(id: $id) { computed(keys: ["order_emails"]) } }`, map[string]any{"id": w.person})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), `"s***@acme.test"`) || strings.Contains(string(r.Body), "secret-Alpha") {
			t.Fatalf("computed(keys) %s", r.Body)
		}
	})
	t.Run("ComputedProfilesAndMembers", func(t *testing.T) {
		for _, q := range []string{
			`query { profiles(first: 50) { nodes { id computed } } }`,
			`query($s: ID!) { segment(id: $s) { members(first: 10) { nodes { id computed } } } }`,
			`query { segmentPreview(rule: {trait: {key: "plan", op: EQ, value: "pro"}}) { count sample { id computed } } }`,
		} {
			var vars map[string]any
			if strings.Contains(q, "$s") {
				vars = map[string]any{"s": w.piiSegment}
			}
			r := s.gql(t, w.masked, q, vars)
			r.requireOK(t)
			if strings.Contains(string(r.Body), "secret-Alpha") || strings.Contains(string(r.Body), sdPhone) {
				t.Fatalf("%s leaks: %s", q, r.Body)
			}
			if !strings.Contains(string(r.Body), `"order_emails":["s***@acme.test"]`) || !strings.Contains(string(r.Body), `"last_phone":"+1********23"`) {
				t.Fatalf("%s not masked as expected: %s", q, r.Body)
			}
		}
	})
	t.Run("ComputedExports", func(t *testing.T) {
		// exportSegment carries traits and identifiers (masked), never
		// computed values; nothing of the person shows in clear.
		r := s.gql(t, w.masked, `query($s: ID!) { exportSegment(segmentId: $s, purpose: "marketing", channel: EMAIL) { nodes { profileId traits identifiers { type value } } } }`,
			map[string]any{"s": w.piiSegment})
		r.requireOK(t)
		if !strings.Contains(string(r.Body), w.person) || strings.Contains(string(r.Body), "secret-Alpha") || strings.Contains(string(r.Body), sdPhone) {
			t.Fatalf("exportSegment %s", r.Body)
		}
		// Every way to a computed value or a proof is a field resolver that
		// masks: Profile.computed and ConsentRecord.proof (reached only by
		// Profile.consentHistory). A new field would need its own masking.
		schema := loadSchema(t)
		var computed, proofs, records []string
		for _, def := range schema.Types {
			if def.Kind != ast.Object || strings.HasPrefix(def.Name, "__") {
				continue
			}
			for _, f := range def.Fields {
				switch {
				case f.Name == "computed":
					computed = append(computed, def.Name+"."+f.Name)
				case f.Name == "proof":
					proofs = append(proofs, def.Name+"."+f.Name)
				}
				if n := f.Type.Name(); n == "ConsentRecord" || n == "ConsentRecordConnection" {
					records = append(records, def.Name+"."+f.Name)
				}
			}
		}
		if strings.Join(computed, ",") != "Profile.computed" || strings.Join(proofs, ",") != "ConsentRecord.proof" {
			t.Fatalf("fields named computed %v, proof %v", computed, proofs)
		}
		for _, f := range records {
			if f != "Profile.consentHistory" && f != "ConsentRecordConnection.nodes" && f != "ConsentRecordEdge.node" {
				t.Fatalf("consent records reachable through %s", f)
			}
		}
	})
	t.Run("ComputedSubscription", func(t *testing.T) {
		c := connectWS(t, s, w.masked)
		op := c.subscribe(t, `subscription($id: ID!) { profileUpdated(id: $id) { id computed } }`, map[string]any{"id": w.person})
		var got struct {
			ProfileUpdated struct {
				ID       string
				Computed map[string]any
			} `json:"profileUpdated"`
		}
		deadline := time.Now().Add(10 * time.Second)
		for n := 0; got.ProfileUpdated.ID == "" && time.Now().Before(deadline); n++ {
			sdTrack(t, s, w.admin, "sd-sub-"+time.Now().Format(time.RFC3339Nano), map[string]any{"email": sdEmail, "phone": sdPhone, "amount": 0})
			select {
			case m := <-c.msgs:
				if m.ID != op || m.Type != "next" {
					t.Fatalf("unexpected %s %s", m.Type, m.Payload)
				}
				if strings.Contains(string(m.Payload), "secret-Alpha") || strings.Contains(string(m.Payload), sdPhone) {
					t.Fatalf("profileUpdated leaks: %s", m.Payload)
				}
				var pl struct{ Data json.RawMessage }
				if err := json.Unmarshal(m.Payload, &pl); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(pl.Data, &got); err != nil {
					t.Fatal(err)
				}
			case <-time.After(300 * time.Millisecond):
			}
		}
		cv := got.ProfileUpdated.Computed
		if got.ProfileUpdated.ID != w.person || !reflect.DeepEqual(cv["order_emails"], []any{"s***@acme.test"}) ||
			cv["last_phone"] != "+1********23" || cv["secret_orders"] != "***" {
			t.Fatalf("profileUpdated computed %v", cv)
		}
	})

	// Item 5: rules that read personal data need pii:read to preview,
	// create or update.
	preview := `query($r: SegmentRuleInput!) { segmentPreview(rule: $r) { count sample { id } } }`
	create := `mutation($in: CreateSegmentInput!) { createSegment(input: $in) { id } }`
	update := `mutation($id: ID!, $in: UpdateSegmentInput!) { updateSegment(id: $id, input: $in) { id } }`
	trait := func(key, op string, v any) map[string]any {
		return map[string]any{"trait": map[string]any{"key": key, "op": op, "value": v}}
	}
	oracles := []struct {
		name string
		rule map[string]any
		path string // the rule path the message names
		what string
	}{
		{"TraitStartsWith", trait("email", "STARTS_WITH", "secret-A"), "rule.trait", `"email"`},
		{"TraitCaseAndExists", map[string]any{"and": []any{trait("plan", "EQ", "pro"), map[string]any{"not": trait("EMAIL", "EXISTS", true)}}},
			"rule.and[1].not.trait", `"EMAIL"`},
		{"TraitDotPath", trait("address.street", "STARTS_WITH", "1"), "rule.trait", `"address.street"`},
		{"TraitParentOfPII", map[string]any{"or": []any{trait("plan", "EQ", "x"), trait("address", "EXISTS", true)}}, "rule.or[1].trait", `"address"`},
		{"EventWhere", map[string]any{"event": map[string]any{"name": "order_completed", "where": []any{
			map[string]any{"key": "amount", "op": "GTE", "value": 1},
			map[string]any{"key": "email", "op": "STARTS_WITH", "value": "secret-A"}}}}, "rule.event.where[1]", `"email"`},
		{"ComputedProperty", map[string]any{"computed": map[string]any{"key": "order_emails", "op": "STARTS_WITH", "value": "secret-A"}}, "rule.computed", `"order_emails"`},
		{"ComputedWhere", map[string]any{"computed": map[string]any{"key": "secret_orders", "op": "GTE", "value": 1}}, "rule.computed", `"secret_orders"`},
	}
	for _, o := range oracles {
		t.Run("Rule"+o.name, func(t *testing.T) {
			w.refused(t, w.masked, preview, map[string]any{"r": o.rule}, "needs scope pii:read", o.path, o.what)
			w.refused(t, w.maskedWriter, create, map[string]any{"in": map[string]any{"name": "oracle", "rule": o.rule}},
				"needs scope pii:read", "input."+o.path, o.what)
			w.refused(t, w.maskedWriter, update, map[string]any{"id": w.piiSegment, "in": map[string]any{"rule": o.rule}},
				"needs scope pii:read", "input."+o.path, o.what)
			// With pii:read the same rule is accepted (preview only: no
			// segment is left behind).
			r := s.gql(t, w.clear, preview, map[string]any{"r": o.rule})
			r.requireOK(t)
		})
	}
	t.Run("RuleAllowedWithoutPII", func(t *testing.T) {
		for _, rule := range []map[string]any{
			trait("plan", "EQ", "pro"),
			{"computed": map[string]any{"key": "order_count", "op": "GTE", "value": 1}},
			{"computed": map[string]any{"key": "order_total", "op": "GTE", "value": 1}},
			{"event": map[string]any{"name": "order_completed", "where": []any{map[string]any{"key": "amount", "op": "GTE", "value": 1}}}},
			{"inSegment": w.piiSegment}, // membership, not values
		} {
			r := s.gql(t, w.masked, preview, map[string]any{"r": rule})
			r.requireOK(t)
			var out struct {
				SegmentPreview struct {
					Count  int
					Sample []struct{ ID string }
				}
			}
			r.decode(t, &out)
			if out.SegmentPreview.Count != 1 || out.SegmentPreview.Sample[0].ID != w.person {
				t.Fatalf("preview %v: %s", rule, r.Body)
			}
		}
		// Reading a saved PII segment's membership stays allowed.
		r := s.gql(t, w.masked, `query($s: ID!) { segment(id: $s) { size members(first: 5) { nodes { id } } } }`, map[string]any{"s": w.piiSegment})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), `"size":1`) || !strings.Contains(string(r.Data), w.person) {
			t.Fatalf("segment members %s", r.Body)
		}
		// A segment built on it, and a rename, by a writer without pii:read.
		id := createSegment(t, s, w.maskedWriter, map[string]any{"name": "in-secret", "rule": map[string]any{"inSegment": w.piiSegment}}).ID
		s.gql(t, w.maskedWriter, update, map[string]any{"id": w.piiSegment, "in": map[string]any{"name": "renamed"}}).requireOK(t)
		if id == "" {
			t.Fatal("no segment")
		}
	})
	t.Run("RuleAcceptedWithPII", func(t *testing.T) {
		r := s.gql(t, w.clear, preview, map[string]any{"r": trait("email", "STARTS_WITH", "secret-A")})
		r.requireOK(t)
		if !strings.Contains(string(r.Data), `"count":1`) || !strings.Contains(string(r.Data), w.person) {
			t.Fatalf("pii:read preview %s", r.Body)
		}
		createSegment(t, s, w.clear, map[string]any{"name": "secret-orders", "rule": map[string]any{"computed": map[string]any{"key": "order_emails", "op": "STARTS_WITH", "value": "secret-A"}}})
		s.gql(t, w.clear, update, map[string]any{"id": w.piiSegment, "in": map[string]any{"rule": trait("phone", "EXISTS", true)}}).requireOK(t)
	})
	// A writer without pii:read cannot make a computed trait that a saved
	// rule compares one over personal data: the saved segment would then
	// answer what a preview refuses.
	t.Run("ComputedRedefinedOverPII", func(t *testing.T) {
		define := `mutation($in: DefineComputedTraitInput!) { defineComputedTrait(input: $in) { key version } }`
		s.gql(t, w.maskedWriter, define, map[string]any{"in": map[string]any{"key": "plans", "kind": "UNIQUE_LIST", "event": "order_completed", "property": "plan"}}).requireOK(t)
		createSegment(t, s, w.maskedWriter, map[string]any{"name": "plans", "rule": map[string]any{"computed": map[string]any{"key": "plans", "op": "STARTS_WITH", "value": "secret-A"}}})
		w.refused(t, w.maskedWriter, define, map[string]any{"in": map[string]any{"key": "plans", "kind": "UNIQUE_LIST", "event": "order_completed", "property": "email"}},
			"needs scope pii:read", `"plans"`)
		w.refused(t, w.maskedWriter, define, map[string]any{"in": map[string]any{"key": "plans", "kind": "UNIQUE_LIST", "event": "order_completed", "property": "plan",
			"where": []any{map[string]any{"key": "email", "op": "STARTS_WITH", "value": "secret-A"}}}}, "needs scope pii:read", `"plans"`)
		// Deleting it first changes nothing: the saved rule still compares the key.
		s.gql(t, w.maskedWriter, `mutation { deleteComputedTrait(key: "plans") }`, nil).requireOK(t)
		w.refused(t, w.maskedWriter, define, map[string]any{"in": map[string]any{"key": "plans", "kind": "LAST", "event": "order_completed", "property": "email"}},
			"needs scope pii:read", `"plans"`)
		// With pii:read it may.
		s.gql(t, w.clear, define, map[string]any{"in": map[string]any{"key": "plans", "kind": "UNIQUE_LIST", "event": "order_completed", "property": "email"}}).requireOK(t)
	})
}
