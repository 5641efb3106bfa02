package realtime_test

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/timeline"
)

// The domain services publish what they write.
func TestServicesPublish(t *testing.T) {
	env := apptest.New(t, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	hub := realtime.NewHub(env.Store, realtime.Options{})
	t.Cleanup(hub.Close)
	env.Services.Publish(hub)
	ch, cancel := hub.Subscribe("ws1", nil, "")
	defer cancel()
	next := func() realtime.Change {
		t.Helper()
		select {
		case c := <-ch:
			return c
		case <-time.After(time.Second):
			t.Fatal("nothing published")
		}
		return realtime.Change{}
	}

	ana := identity.Identifier{Type: "email", Value: "ana@example.com"}
	res, err := env.Services.Identity.Resolve(env.Ctx, env.Tenant, identity.Request{Identifiers: []identity.Identifier{ana}, SeenAt: env.Clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if c := next(); c.Kind != realtime.ProfileUpdated || c.ProfileID != res.Profile.ID {
		t.Fatalf("identify published %+v", c)
	}

	out, err := env.Services.Ingest.TrackEvents(env.Ctx, env.Tenant, "test", "inputs", []timeline.TrackInput{
		{MessageID: "m1", Identifiers: []identity.Identifier{ana}, Name: "a"},
		{MessageID: "m2", Identifiers: []identity.Identifier{ana}, Name: "b"},
		{MessageID: "m1", Identifiers: []identity.Identifier{ana}, Name: "a"}, // duplicate
	})
	if err != nil {
		t.Fatal(err)
	}
	c := next()
	ids := c.Strings(realtime.PayloadItemIDs)
	if c.Kind != realtime.TimelineAppended || c.ProfileID != res.Profile.ID || len(ids) != 2 || ids[0] != out[0].Event.ID || ids[1] != out[1].Event.ID {
		t.Fatalf("track published %+v", c)
	}

	ev, err := env.Services.Ingest.LogInteraction(env.Ctx, env.Tenant, timeline.InteractionInput{ProfileID: res.Profile.ID, Kind: "CALL"})
	if err != nil {
		t.Fatal(err)
	}
	if c := next(); c.Kind != realtime.TimelineAppended || c.Strings(realtime.PayloadItemIDs)[0] != ev.ID {
		t.Fatalf("logInteraction published %+v", c)
	}

	env.Clock.Set(env.Clock.Now().Add(time.Minute))
	bob, err := env.Services.Identity.Resolve(env.Ctx, env.Tenant, identity.Request{Identifiers: []identity.Identifier{{Type: "deviceId", Value: "d1"}}, SeenAt: env.Clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	next()
	if _, err := env.Services.Identity.Merge(env.Ctx, env.Tenant, res.Profile.ID, bob.Profile.ID, "test", "test"); err != nil {
		t.Fatal(err)
	}
	got := map[string]realtime.Change{}
	for range 2 {
		c := next()
		got[c.ProfileID] = c
	}
	if got[bob.Profile.ID].String(realtime.PayloadMergedInto) != res.Profile.ID {
		t.Fatalf("merge published %+v", got)
	}
	if from := got[res.Profile.ID].Strings(realtime.PayloadMergedFrom); len(from) != 1 || from[0] != bob.Profile.ID {
		t.Fatalf("merge published %+v", got)
	}
}
