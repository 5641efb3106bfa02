package identity_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

var typesStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// wantBadInput checks err is BAD_USER_INPUT on field with inMsg in the message.
func wantBadInput(t *testing.T, err error, field, inMsg string) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok {
		t.Fatalf("error %v, want BAD_USER_INPUT on %s", err, field)
	}
	if e.Code != apperr.BadUserInput || e.Field != field || !strings.Contains(e.Message, inMsg) {
		t.Fatalf("error %s %q %q, want BAD_USER_INPUT on %q containing %q", e.Code, e.Field, e.Message, field, inMsg)
	}
}

func typesWith(cfgs ...identity.TypeConfig) identity.Types {
	ts := identity.Types{}
	for _, c := range identity.DefaultTypes() {
		ts[c.Name] = c
	}
	for _, c := range cfgs {
		ts[c.Name] = c
	}
	return ts
}

func TestDefaultTypes(t *testing.T) {
	want := map[string]struct {
		norm, region string
		max, prio    int
		unique       bool
	}{
		"anonymousId": {"none", "", 100, 60, false},
		"userId":      {"none", "", 1, 10, true},
		"email":       {"email", "", 5, 20, false},
		"phone":       {"phone", "US", 3, 30, false},
		"deviceId":    {"none", "", 20, 50, false},
		"crmId":       {"none", "", 1, 15, true},
	}
	got := identity.DefaultTypes()
	if len(got) != len(want) {
		t.Fatalf("%d default types, want %d", len(got), len(want))
	}
	for _, c := range got {
		w, ok := want[c.Name]
		if !ok {
			t.Fatalf("unexpected default type %s", c.Name)
		}
		if c.Normalization != w.norm || c.DefaultRegion != w.region || c.MaxPerProfile != w.max || c.Priority != w.prio || c.Unique != w.unique {
			t.Errorf("%s = %+v, want %+v", c.Name, c, w)
		}
		if !slices.Equal(c.Blocked, identity.DefaultBlocked) {
			t.Errorf("%s blocked = %q", c.Name, c.Blocked)
		}
		if _, err := identity.ValidateType(c); err != nil {
			t.Errorf("default %s does not pass ValidateType: %v", c.Name, err)
		}
	}
	// Each call returns fresh slices.
	got[0].Blocked[0] = "changed"
	if identity.DefaultTypes()[0].Blocked[0] != "" {
		t.Fatal("DefaultTypes shares its Blocked slices")
	}
}

func TestTypesNormaliseCustom(t *testing.T) {
	ts := typesWith(
		identity.TypeConfig{Name: "loyaltyCard", Normalization: "none", MaxPerProfile: 2, Priority: 40, Blocked: []string{"test-card"}},
		identity.TypeConfig{Name: "workEmail", Normalization: "email", MaxPerProfile: 1, Blocked: []string{"noreply@example.com"}},
		identity.TypeConfig{Name: "phone", Normalization: "phone", DefaultRegion: "GB", MaxPerProfile: 3},
		identity.TypeConfig{Name: "intlPhone", Normalization: "phone", MaxPerProfile: 3},
	)
	ok := []struct{ typ, in, want string }{
		{"loyaltyCard", "  LC-0042 ", "LC-0042"},
		{"loyaltyCard", "null", "null"}, // its own blocked list replaces the defaults
		{"workEmail", " Ana@Work.Example ", "ana@work.example"},
		{"phone", "07700 900123", "+447700900123"},
		{"phone", "020 7946 0958", "+442079460958"},
		{"phone", "+1 (555) 010-0000", "+15550100000"},
		{"phone", "00 1 212 555 0100", "+12125550100"},
		{"intlPhone", "+33 6 12 34 56 78", "+33612345678"},
	}
	for _, tt := range ok {
		got, err := ts.Normalise("input.identifiers", []identity.Identifier{{Type: tt.typ, Value: tt.in}})
		if err != nil {
			t.Errorf("%s %q: %v", tt.typ, tt.in, err)
			continue
		}
		if want := []identity.Identifier{{Type: tt.typ, Value: tt.want}}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s %q = %+v, want %+v", tt.typ, tt.in, got, want)
		}
	}

	bad := []struct{ typ, in, field, msg string }{
		{"loyaltyCard", "TEST-CARD", "value", "placeholder"},
		{"loyaltyCard", "0000", "value", "placeholder"}, // all-zero ids are always refused
		{"loyaltyCard", "", "value", "placeholder"},
		{"workEmail", "NoReply@Example.com", "value", "placeholder"},
		{"workEmail", "not-an-email", "value", "invalid email"},
		{"intlPhone", "06 12 34 56 78", "value", "add the +country code"},
		{"phone", "12", "value", "invalid phone"},
		{"fax", "123", "type", "known: anonymousId, userId, email, phone, deviceId, crmId, intlPhone, loyaltyCard, workEmail"},
	}
	for _, tt := range bad {
		_, err := ts.Normalise("input.identifiers", []identity.Identifier{{Type: "email", Value: "ok@example.com"}, {Type: tt.typ, Value: tt.in}})
		wantBadInput(t, err, "input.identifiers[1]."+tt.field, tt.msg)
	}

	// The package-level Normalise still uses the built-in defaults.
	if _, err := identity.Normalise("x", []identity.Identifier{{Type: "loyaltyCard", Value: "LC-1"}}); err == nil {
		t.Fatal("package-level Normalise accepted a custom type")
	}
}

func TestValidateType(t *testing.T) {
	good := identity.TypeConfig{Name: "shopId", Normalization: "none", MaxPerProfile: 3, Priority: 70}
	got, err := identity.ValidateType(identity.TypeConfig{
		Name: "mobile", Normalization: "phone", DefaultRegion: " gb ", MaxPerProfile: 2, Priority: 0,
		Blocked: []string{" TEST ", "test", "N/A", ""},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.DefaultRegion != "GB" || !slices.Equal(got.Blocked, []string{"test", "n/a", ""}) {
		t.Fatalf("tidied = %+v", got)
	}

	with := func(f func(*identity.TypeConfig)) identity.TypeConfig {
		c := good
		f(&c)
		return c
	}
	tests := []struct {
		name  string
		cfg   identity.TypeConfig
		field string
		msg   string
	}{
		{"empty name", with(func(c *identity.TypeConfig) { c.Name = "" }), "input.name", "not a valid type name"},
		{"name starts with digit", with(func(c *identity.TypeConfig) { c.Name = "1st" }), "input.name", "not a valid type name"},
		{"name with dash", with(func(c *identity.TypeConfig) { c.Name = "shop-id" }), "input.name", "not a valid type name"},
		{"name with dot", with(func(c *identity.TypeConfig) { c.Name = "a.b" }), "input.name", "not a valid type name"},
		{"name with $", with(func(c *identity.TypeConfig) { c.Name = "$type" }), "input.name", "not a valid type name"},
		{"name 41 chars", with(func(c *identity.TypeConfig) { c.Name = "a" + strings.Repeat("b", 40) }), "input.name", "not a valid type name"},
		{"unknown normalization", with(func(c *identity.TypeConfig) { c.Normalization = "lower" }), "input.normalization", `unknown normalization "lower"`},
		{"empty normalization", with(func(c *identity.TypeConfig) { c.Normalization = "" }), "input.normalization", "unknown normalization"},
		{"region on none", with(func(c *identity.TypeConfig) { c.DefaultRegion = "US" }), "input.defaultRegion", "phone normalization only"},
		{"unknown region", with(func(c *identity.TypeConfig) { c.Normalization, c.DefaultRegion = "phone", "XX" }), "input.defaultRegion", `"XX"`},
		{"alpha-3 region", with(func(c *identity.TypeConfig) { c.Normalization, c.DefaultRegion = "phone", "USA" }), "input.defaultRegion", "ISO 3166"},
		{"max 0", with(func(c *identity.TypeConfig) { c.MaxPerProfile = 0 }), "input.maxPerProfile", "between 1 and 1000"},
		{"max negative", with(func(c *identity.TypeConfig) { c.MaxPerProfile = -5 }), "input.maxPerProfile", "between 1 and 1000"},
		{"max too high", with(func(c *identity.TypeConfig) { c.MaxPerProfile = 1001 }), "input.maxPerProfile", "between 1 and 1000"},
		{"unique with max 2", with(func(c *identity.TypeConfig) { c.Unique, c.MaxPerProfile = true, 2 }), "input.maxPerProfile", "must be 1"},
		{"priority negative", with(func(c *identity.TypeConfig) { c.Priority = -1 }), "input.priority", "between 0 and 1000"},
		{"priority too high", with(func(c *identity.TypeConfig) { c.Priority = 1001 }), "input.priority", "between 0 and 1000"},
		{"too many blocked", with(func(c *identity.TypeConfig) {
			for i := range 101 {
				c.Blocked = append(c.Blocked, fmt.Sprint("v", i))
			}
		}), "input.blockedValues", "at most 100"},
		{"blocked too long", with(func(c *identity.TypeConfig) { c.Blocked = []string{"ok", strings.Repeat("x", 257)} }), "input.blockedValues[1]", "longer than 256"},
		{"blocked not UTF-8", with(func(c *identity.TypeConfig) { c.Blocked = []string{"a\xffb"} }), "input.blockedValues[0]", "not valid text"},
		{"blocked NUL", with(func(c *identity.TypeConfig) { c.Blocked = []string{"a", "b", "a\x00"} }), "input.blockedValues[2]", "not valid text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := identity.ValidateType(tt.cfg)
			wantBadInput(t, err, tt.field, tt.msg)
		})
	}
}

func TestSetTypeAndLoadTypes(t *testing.T) {
	e := apptest.New(t, typesStart)
	ctx, tn := e.Ctx, e.Tenant

	ts, err := identity.LoadTypes(ctx, tn)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ts.List(), identity.DefaultTypes()) {
		t.Fatalf("fresh workspace types = %+v, want the defaults", ts.List())
	}

	// Change a built-in, add a custom type.
	email := ts.Base("email")
	email.MaxPerProfile = 2
	email.Blocked = append(email.Blocked, "Test@Example.com")
	stored, err := identity.SetType(ctx, tn, email)
	if err != nil {
		t.Fatal(err)
	}
	if stored.MaxPerProfile != 2 || !slices.Contains(stored.Blocked, "test@example.com") {
		t.Fatalf("stored = %+v", stored)
	}
	loyalty := ts.Base("loyaltyCard")
	if loyalty.Normalization != "none" || loyalty.MaxPerProfile != 10 || loyalty.Priority != 100 {
		t.Fatalf("new custom type starts from %+v", loyalty)
	}
	loyalty.Priority = 45
	if _, err := identity.SetType(ctx, tn, loyalty); err != nil {
		t.Fatal(err)
	}

	ts, err = identity.LoadTypes(ctx, tn)
	if err != nil {
		t.Fatal(err)
	}
	if got := ts.Names(); !slices.Equal(got, []string{"anonymousId", "userId", "email", "phone", "deviceId", "crmId", "loyaltyCard"}) {
		t.Fatalf("names = %q", got)
	}
	if !reflect.DeepEqual(ts["email"], stored) {
		t.Fatalf("loaded email = %+v, want %+v", ts["email"], stored)
	}
	if ts["loyaltyCard"].Priority != 45 || ts["phone"].DefaultRegion != "US" {
		t.Fatalf("loaded = %+v", ts)
	}
	_, err = ts.Normalise("ids", []identity.Identifier{{Type: "email", Value: "TEST@example.com"}})
	wantBadInput(t, err, "ids[0].value", "placeholder")

	// Setting again updates the same document.
	email.MaxPerProfile = 3
	if _, err := identity.SetType(ctx, tn, email); err != nil {
		t.Fatal(err)
	}
	if n := e.Count(t, identity.IdentifierTypes, identity.IdentifierTypesByName); n != 2 {
		t.Fatalf("%d identifier_types documents, want 2", n)
	}
	var doc bson.M
	if err := tn.C(identity.IdentifierTypes).FindOne(ctx, store.Query{Index: identity.IdentifierTypesByName, Eq: []any{"email"}}, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["version"] != int64(2) || doc["maxPerProfile"] != int32(3) && doc["maxPerProfile"] != int64(3) {
		t.Fatalf("stored document = %v", doc)
	}

	// Tenant isolation: another workspace still sees the defaults.
	other, err := identity.LoadTypes(ctx, e.Store.Tenant("ws2"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(other.List(), identity.DefaultTypes()) {
		t.Fatalf("ws2 types = %+v, want the defaults", other.List())
	}
	// ... and can define the same custom name independently.
	l2 := other.Base("loyaltyCard")
	l2.Priority = 5
	if _, err := identity.SetType(ctx, e.Store.Tenant("ws2"), l2); err != nil {
		t.Fatal(err)
	}
	ts, _ = identity.LoadTypes(ctx, tn)
	if ts["loyaltyCard"].Priority != 45 {
		t.Fatalf("ws2's change leaked into ws1: %+v", ts["loyaltyCard"])
	}
}

func TestSetTypeRefuses(t *testing.T) {
	e := apptest.New(t, typesStart)
	ctx, tn := e.Ctx, e.Tenant
	ts, _ := identity.LoadTypes(ctx, tn)

	_, err := identity.SetType(ctx, tn, identity.TypeConfig{Name: "bad name", Normalization: "none", MaxPerProfile: 1})
	wantBadInput(t, err, "input.name", "not a valid type name")

	_, err = identity.SetType(ctx, tn, ts.Base("Email"))
	wantBadInput(t, err, "input.name", `"email" already exists`)

	email := ts.Base("email")
	email.Normalization = "none"
	_, err = identity.SetType(ctx, tn, email)
	wantBadInput(t, err, "input.normalization", "always uses email")

	phone := ts.Base("phone")
	phone.DefaultRegion = ""
	if _, err := identity.SetType(ctx, tn, phone); err != nil {
		t.Fatalf("phone without default region: %v", err)
	}

	// A custom type may change its normalization until values are stored.
	c := ts.Base("memberNo")
	if _, err := identity.SetType(ctx, tn, c); err != nil {
		t.Fatal(err)
	}
	c.Normalization = "email"
	if _, err := identity.SetType(ctx, tn, c); err != nil {
		t.Fatalf("change normalization of an unused type: %v", err)
	}
	if err := tn.C(identity.Identities).Insert(ctx, bson.M{"_id": store.NewID(), "type": "memberNo", "value": "m@example.com", "profileId": "p1"}); err != nil {
		t.Fatal(err)
	}
	c.Normalization = "none"
	_, err = identity.SetType(ctx, tn, c)
	wantBadInput(t, err, "input.normalization", "1 identifiers of this type are stored")

	// At most MaxTypes per workspace (6 built-ins + memberNo so far).
	for i := 0; i < identity.MaxTypes-7; i++ {
		if _, err := identity.SetType(ctx, tn, ts.Base(fmt.Sprintf("t%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	_, err = identity.SetType(ctx, tn, ts.Base("oneTooMany"))
	wantBadInput(t, err, "input.name", "at most 50")
	// Updating an existing one is still fine.
	if _, err := identity.SetType(ctx, tn, ts.Base("t00")); err != nil {
		t.Fatal(err)
	}
}

func TestSetTypeConcurrent(t *testing.T) {
	e := apptest.New(t, typesStart)
	ctx, tn := e.Ctx, e.Tenant
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			c := identity.NewCustomType("raced")
			c.Priority = i
			if _, err := identity.SetType(ctx, tn, c); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.Count(t, identity.IdentifierTypes, identity.IdentifierTypesByName); n != 1 {
		t.Fatalf("%d documents for one type, want 1", n)
	}
}
