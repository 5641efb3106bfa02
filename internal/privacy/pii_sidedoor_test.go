package privacy_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/privacy"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits/agg"
)

func sideDoorMasker() *privacy.PIIMasker {
	return privacy.NewPIIMasker(privacy.PIISettings{TraitKeys: []string{"email", "Phone", "address.street", "name"}})
}

func TestReadsPII(t *testing.T) {
	m := sideDoorMasker()
	for key, want := range map[string]bool{
		"email": true, "EMAIL": true, "phone": true, "email.domain": true, // inside a PII key
		"address": true, "Address.Street": true, "address.street.no": true, // holds one; is one; inside one
		"address.city": false, "plan": false, "emails": false, "name2": false,
	} {
		if got := m.ReadsPII(key); got != want {
			t.Errorf("ReadsPII(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestComputedValue(t *testing.T) {
	m := sideDoorMasker()
	where := []rule.PropertyCond{{Key: "Email", Op: rule.StartsWith, Value: "a"}}
	for _, tt := range []struct {
		name string
		d    *agg.Def
		v    any
		want any
		pii  bool
	}{
		{"unique list of a PII property", &agg.Def{Key: "k", Property: "email"}, []any{"ana@example.com", "bo@example.org"}, []any{"a***@example.com", "b***@example.org"}, true},
		{"last of a PII property, case-insensitive", &agg.Def{Key: "k", Property: "PHONE"}, "+14155550123", "+1********23", true},
		{"object with a nested PII key", &agg.Def{Key: "k", Property: "address"}, []any{map[string]any{"street": "1 Main St", "city": "Lisbon"}},
			[]any{map[string]any{"street": "1***", "city": "Lisbon"}}, true},
		{"count filtered on a PII key", &agg.Def{Key: "k", Where: where}, int64(3), "***", true},
		{"sum filtered on a PII key", &agg.Def{Key: "k", Property: "amount", Where: where}, 12.5, "***", true},
		{"null stays null", &agg.Def{Key: "k", Property: "email"}, nil, nil, true},
		{"not PII", &agg.Def{Key: "k", Property: "amount", Where: []rule.PropertyCond{{Key: "plan", Op: rule.EQ, Value: "pro"}}}, 12.5, 12.5, false},
		{"count", &agg.Def{Key: "k"}, int64(3), int64(3), false},
	} {
		if got := m.ComputedValue(tt.d, tt.v); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %#v, want %#v", tt.name, got, tt.want)
		}
		if got := m.ComputedFromPII(tt.d); got != tt.pii {
			t.Errorf("%s: ComputedFromPII %v", tt.name, got)
		}
	}
}

func TestMaskProof(t *testing.T) {
	m := sideDoorMasker()
	in := map[string]any{
		"email": "ana@example.com", "IP": "203.0.113.7", "name": "Ana", "form": "banner-v2", "version": int64(3),
		"address": map[string]any{"street": "1 Main St", "city": "Lisbon"},
		"ctx": map[string]any{
			"ip_address": "10.0.0.1", "X-Forwarded-For": "198.51.100.1, 10.0.0.2", "email": "ana@example.com",
			"origin": "2001:db8::1", "userAgent": "Mozilla/5.0", "zip": "1000-001",
		},
		"list": []any{"192.0.2.1", "ok"},
	}
	want := map[string]any{
		"email": "a***@example.com", "IP": "2***", "name": "A***", "form": "banner-v2", "version": int64(3),
		"address": map[string]any{"street": "1***", "city": "Lisbon"},
		"ctx": map[string]any{
			"ip_address": "1***", "X-Forwarded-For": "1***", "email": "a***@example.com",
			"origin": "2***", "userAgent": "Mozilla/5.0", "zip": "1000-001",
		},
		"list": []any{"1***", "ok"},
	}
	if got := m.Proof(in); !reflect.DeepEqual(got, want) {
		t.Fatalf("Proof\n got %#v\nwant %#v", got, want)
	}
	if in["email"] != "ana@example.com" || in["ctx"].(map[string]any)["ip_address"] != "10.0.0.1" {
		t.Fatal("Proof changed its input")
	}
}

func TestCheckRule(t *testing.T) {
	m := sideDoorMasker()
	defs := agg.NewSet([]*agg.Def{
		{Key: "emails", Property: "email"},
		{Key: "orders"},
		{Key: "secret_orders", Where: []rule.PropertyCond{{Key: "address.street", Op: rule.Exists}}},
	})
	trait := func(key string, op rule.Op) rule.Rule {
		return rule.Rule{Trait: &rule.TraitCond{Key: key, Op: op, Value: "a"}}
	}
	for _, tt := range []struct {
		name string
		r    rule.Rule
		msg  string // "" allowed
	}{
		{"trait", trait("email", rule.StartsWith), `rule.trait needs scope pii:read: it reads personal data (trait key "email")`},
		{"exists too", rule.Rule{And: []rule.Rule{trait("plan", rule.EQ), {Not: ptr(trait("Phone", rule.Exists))}}},
			`rule.and[1].not.trait needs scope pii:read: it reads personal data (trait key "Phone")`},
		{"parent of a PII path", rule.Rule{Or: []rule.Rule{trait("plan", rule.EQ), trait("address", rule.Exists)}},
			`rule.or[1].trait needs scope pii:read: it reads personal data (trait key "address")`},
		{"event property", rule.Rule{Event: &rule.EventCond{Name: "order", Where: []rule.PropertyCond{{Key: "plan", Op: rule.EQ}, {Key: "EMAIL", Op: rule.EQ}}}},
			`rule.event.where[1] needs scope pii:read: it reads personal data (event property "EMAIL")`},
		{"computed property", rule.Rule{Computed: &rule.ComputedCond{Key: "emails", Op: rule.Contains}},
			`rule.computed needs scope pii:read: it reads personal data (computed trait "emails" is derived from personal data)`},
		{"computed where", rule.Rule{Computed: &rule.ComputedCond{Key: "secret_orders", Op: rule.GT}},
			`rule.computed needs scope pii:read`},
		{"allowed: other keys", rule.Rule{And: []rule.Rule{trait("plan", rule.EQ), trait("address.city", rule.EQ)}}, ""},
		{"allowed: inSegment", rule.Rule{InSegment: "s1"}, ""},
		{"allowed: computed", rule.Rule{Computed: &rule.ComputedCond{Key: "orders", Op: rule.GT}}, ""},
		{"allowed: unknown computed (left to validation)", rule.Rule{Computed: &rule.ComputedCond{Key: "nope", Op: rule.GT}}, ""},
	} {
		err := m.CheckRule(tt.r, "rule", defs.Get)
		if tt.msg == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if apperr.CodeOf(err) != apperr.Forbidden || !strings.HasPrefix(err.Error(), tt.msg) {
			t.Errorf("%s: %v, want FORBIDDEN %q", tt.name, err, tt.msg)
		}
	}
}

func TestCheckDefine(t *testing.T) {
	m := sideDoorMasker()
	pii, plain := &agg.Def{Key: "k", Property: "email"}, &agg.Def{Key: "k", Property: "plan"}
	if err := m.CheckDefine(pii, false); err != nil {
		t.Fatalf("not compared: %v", err)
	}
	if err := m.CheckDefine(plain, true); err != nil {
		t.Fatalf("not PII: %v", err)
	}
	if err := m.CheckDefine(pii, true); apperr.CodeOf(err) != apperr.Forbidden || !strings.Contains(err.Error(), "needs scope pii:read") {
		t.Fatalf("compared and PII: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
