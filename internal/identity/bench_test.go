package identity_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
)

// Benchmarks of Resolve (the identify half of identify and track) on the
// embedded store, through the real wiring:
//
//	go test ./identity -run '^$' -bench Identify
//
// New: each call is a person never seen (anonymousId + email + userId):
// three identifiers claimed and a profile created. Known: a pool of 1,000
// existing people, each identified again with one of their emails and a
// trait change (lookup, then a profile compare-and-swap).
func BenchmarkIdentifyNewPerson(b *testing.B) {
	e := apptest.New(b, t0)
	e.Clock.SetTick(time.Microsecond)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{
			Identifiers: []identity.Identifier{
				{Type: identity.AnonymousID, Value: fmt.Sprintf("anon-%d", i)},
				{Type: identity.Email, Value: fmt.Sprintf("new%d@example.com", i)},
				{Type: identity.UserID, Value: fmt.Sprintf("user-%d", i)},
			},
			Traits: map[string]any{"plan": "free", "firstName": "Ann"},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIdentifyKnownPerson(b *testing.B) {
	e := apptest.New(b, t0)
	e.Clock.SetTick(time.Microsecond)
	const pool = 1000
	for p := range pool {
		_, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{
			Identifiers: []identity.Identifier{
				{Type: identity.AnonymousID, Value: fmt.Sprintf("anon-%d", p)},
				{Type: identity.Email, Value: fmt.Sprintf("known%d@example.com", p)},
				{Type: identity.UserID, Value: fmt.Sprintf("user-%d", p)},
			},
			Traits: map[string]any{"plan": "free"},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{
			Identifiers: []identity.Identifier{{Type: identity.Email, Value: fmt.Sprintf("known%d@example.com", i%pool)}},
			Traits:      map[string]any{"visits": int64(i)},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
