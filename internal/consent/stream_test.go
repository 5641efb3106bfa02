package consent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
)

// streamProfile identifies one email at the clock's time.
func streamProfile(t *testing.T, x *apptest.Env, email string) string {
	t.Helper()
	res, err := x.Services.Identity.Resolve(x.Ctx, x.Tenant, identity.Request{
		Identifiers: []identity.Identifier{{Type: identity.Email, Value: email}}, SeenAt: x.Clock.Now(),
	})
	if err != nil {
		t.Fatalf("identify %s: %v", email, err)
	}
	return res.Profile.ID
}

// streamSet records one choice for the profile.
func streamSet(t *testing.T, x *apptest.Env, profileID string, c consent.Choice) {
	t.Helper()
	if _, err := x.Services.Consent.Set(x.Ctx, x.Tenant, "input", consent.Subject{ProfileID: &profileID}, "", []consent.Choice{c}, "test"); err != nil {
		t.Fatalf("set %+v: %v", c, err)
	}
}

// Each recorded choice comes as the state it leaves, also after the
// profile is merged away (then as the survivor's state).
func TestStreamStatesAfterSetConsent(t *testing.T) {
	x := apptest.New(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	hub := x.Hub(t)
	ana := streamProfile(t, x, "ana@example.com")
	x.Clock.Set(x.Clock.Now().Add(time.Minute))
	bob := streamProfile(t, x, "bob@example.com")

	states, err := x.Services.Consent.StreamStates(t.Context(), hub, x.Tenant, bob)
	if err != nil {
		t.Fatal(err)
	}
	streamSet(t, x, ana, consent.Choice{Purpose: "marketing", Channel: "EMAIL", Status: "DENIED"})
	streamSet(t, x, bob, consent.Choice{Purpose: "marketing", Channel: "EMAIL", Status: "GRANTED"})
	st := apptest.Next(t, states)
	if st.ProfileID != bob || st.Purpose != "marketing" || st.Channel != "EMAIL" || st.Status != "GRANTED" {
		t.Fatalf("got %+v, want bob's marketing EMAIL GRANTED", st)
	}

	if _, err := x.Services.Identity.Merge(x.Ctx, x.Tenant, ana, bob, "test", "test"); err != nil {
		t.Fatal(err)
	}
	streamSet(t, x, ana, consent.Choice{Purpose: "analytics", Status: "DENIED"})
	st = apptest.Next(t, states)
	if st.ProfileID != ana || st.Purpose != "analytics" || st.Channel != "ANY" || st.Status != "DENIED" {
		t.Fatalf("got %+v, want the survivor's analytics ANY DENIED", st)
	}
	apptest.Quiet(t, states, 100*time.Millisecond)
}

func TestStreamStatesBadInput(t *testing.T) {
	x := apptest.New(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	hub := x.Hub(t)
	for _, tc := range []struct {
		name, id string
		code     apperr.Code
		field    string
	}{
		{"no profile id", "", apperr.BadUserInput, "profileId"},
		{"long profile id", strings.Repeat("p", 129), apperr.BadUserInput, "profileId"},
		{"unknown profile", "nobody", apperr.NotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			states, err := x.Services.Consent.StreamStates(t.Context(), hub, x.Tenant, tc.id)
			e, ok := apperr.As(err)
			if !ok || e.Code != tc.code || e.Field != tc.field {
				t.Fatalf("err = %v, want %s on %q", err, tc.code, tc.field)
			}
			if states != nil {
				t.Fatal("a stream came with the error")
			}
		})
	}
	if n := hub.Subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left by refused streams", n)
	}
}
