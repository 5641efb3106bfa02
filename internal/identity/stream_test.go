package identity_test

import (
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
)

// streamIdentify resolves one email at the clock's time, with traits.
func streamIdentify(t *testing.T, x *apptest.Env, email string, traits map[string]any) *profile.Profile {
	t.Helper()
	res, err := x.Services.Identity.Resolve(x.Ctx, x.Tenant, identity.Request{
		Identifiers: []identity.Identifier{{Type: identity.Email, Value: email}}, Traits: traits, SeenAt: x.Clock.Now(),
	})
	if err != nil {
		t.Fatalf("identify %s: %v", email, err)
	}
	return res.Profile
}

// A subscriber of a profile that is merged away goes on with the
// survivor: the merge shows the survivor, and so do its later changes.
func TestStreamProfileFollowsMerge(t *testing.T) {
	x := apptest.New(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	hub := x.Hub(t)
	ana := streamIdentify(t, x, "ana@example.com", nil)
	x.Clock.Set(x.Clock.Now().Add(time.Minute))
	bob := streamIdentify(t, x, "bob@example.com", nil)

	updates, err := x.Services.Identity.StreamProfile(t.Context(), hub, x.Tenant, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	streamIdentify(t, x, "bob@example.com", map[string]any{"plan": "free"})
	if p := apptest.Next(t, updates); p.ID != bob.ID || p.Traits["plan"] != "free" {
		t.Fatalf("before the merge got %s %v, want %s on plan free", p.ID, p.Traits, bob.ID)
	}

	if _, err := x.Services.Identity.Merge(x.Ctx, x.Tenant, ana.ID, bob.ID, "test", "test"); err != nil {
		t.Fatal(err)
	}
	if p := apptest.Next(t, updates); p.ID != ana.ID {
		t.Fatalf("after the merge got %s, want the survivor %s", p.ID, ana.ID)
	}
	// The merge changes both profiles; the survivor's change may or may
	// not have been coalesced with the source's. Either way every value is
	// the survivor, and its next change comes.
	x.Clock.Set(x.Clock.Now().Add(time.Minute))
	streamIdentify(t, x, "ana@example.com", map[string]any{"plan": "pro"})
	for {
		p := apptest.Next(t, updates)
		if p.ID != ana.ID {
			t.Fatalf("got %s, want the survivor %s", p.ID, ana.ID)
		}
		if p.Traits["plan"] == "pro" {
			break
		}
	}

	// Subscribing by the merged-away id resolves to the survivor at once.
	again, err := x.Services.Identity.StreamProfile(t.Context(), hub, x.Tenant, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	streamIdentify(t, x, "ana@example.com", map[string]any{"plan": "team"})
	if p := apptest.Next(t, again); p.ID != ana.ID || p.Traits["plan"] != "team" {
		t.Fatalf("got %s %v, want the survivor %s on plan team", p.ID, p.Traits, ana.ID)
	}
}

func TestStreamProfileBadInput(t *testing.T) {
	x := apptest.New(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	hub := x.Hub(t)
	for _, tc := range []struct {
		name, id string
		code     apperr.Code
		field    string
	}{
		{"no id", "", apperr.BadUserInput, "id"},
		{"long id", strings.Repeat("p", 129), apperr.BadUserInput, "id"},
		{"unknown profile", "nobody", apperr.NotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			updates, err := x.Services.Identity.StreamProfile(t.Context(), hub, x.Tenant, tc.id)
			e, ok := apperr.As(err)
			if !ok || e.Code != tc.code || e.Field != tc.field {
				t.Fatalf("err = %v, want %s on %q", err, tc.code, tc.field)
			}
			if updates != nil {
				t.Fatal("a stream came with the error")
			}
		})
	}
	if n := hub.Subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left by refused streams", n)
	}
}
