package privacy_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/halo-cdp/halo/apperr"
	"github.com/halo-cdp/halo/privacy"
	"github.com/halo-cdp/halo/segment"
	"github.com/halo-cdp/halo/traits/agg"
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
	where := []segment.PropertyCond{{Key: "Email", Op: segment.StartsWith, Value: "a"}}
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
		{"not PII", &agg.Def{Key: "k", Property: "amount", Where: []segment.PropertyCond{{Key: "plan", Op: segment.EQ, Value: "pro"}}}, 12.5, 12.5, false},
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
		{Key: "secret_orders", Where: []segment.PropertyCond{{Key: "address.street", Op: segment.Exists}}},
	})
	trait := func(key string, op segment.Op) segment.Rule {
		return segment.Rule{Trait: &segment.TraitCond{Key: key, Op: op, Value: "a"}}
	}
	for _, tt := range []struct {
		name string
		r    segment.Rule
		msg  string // "" allowed
	}{
		{"trait", trait("email", segment.StartsWith), `rule.trait needs scope pii:read: it reads personal data (trait key "email")`},
		{"exists too", segment.Rule{And: []segment.Rule{trait("plan", segment.EQ), {Not: ptr(trait("Phone", segment.Exists))}}},
			`rule.and[1].not.trait needs scope pii:read: it reads personal data (trait key "Phone")`},
		{"parent of a PII path", segment.Rule{Or: []segment.Rule{trait("plan", segment.EQ), trait("address", segment.Exists)}},
			`rule.or[1].trait needs scope pii:read: it reads personal data (trait key "address")`},
		{"event property", segment.Rule{Event: &segment.EventCond{Name: "order", Where: []segment.PropertyCond{{Key: "plan", Op: segment.EQ}, {Key: "EMAIL", Op: segment.EQ}}}},
			`rule.event.where[1] needs scope pii:read: it reads personal data (event property "EMAIL")`},
		{"computed property", segment.Rule{Computed: &segment.ComputedCond{Key: "emails", Op: segment.Contains}},
			`rule.computed needs scope pii:read: it reads personal data (computed trait "emails" is derived from personal data)`},
		{"computed where", segment.Rule{Computed: &segment.ComputedCond{Key: "secret_orders", Op: segment.GT}},
			`rule.computed needs scope pii:read`},
		{"allowed: other keys", segment.Rule{And: []segment.Rule{trait("plan", segment.EQ), trait("address.city", segment.EQ)}}, ""},
		{"allowed: inSegment", segment.Rule{InSegment: "s1"}, ""},
		{"allowed: computed", segment.Rule{Computed: &segment.ComputedCond{Key: "orders", Op: segment.GT}}, ""},
		{"allowed: unknown computed (left to validation)", segment.Rule{Computed: &segment.ComputedCond{Key: "nope", Op: segment.GT}}, ""},
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
