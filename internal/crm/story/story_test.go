package story_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/crm/story"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// TestPostOncePerPerson: two ids of one person (one merged into the
// other) get one item; a repeat of the event stores nothing more; an
// erased or unknown id is skipped; a long subject is cut to fit.
func TestPostOncePerPerson(t *testing.T) {
	e := apptest.New(t, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	s := e.Services
	a, b := e.Person(t, "a@example.org"), e.Person(t, "b@example.org")
	if _, err := s.Identity.Merge(e.Ctx, e.Tenant, a, b, "same", "t"); err != nil {
		t.Fatal(err)
	}
	it := story.Item{Kind: "DEAL", Subject: strings.Repeat("é", 400), Key: "deal:x:v1", Properties: map[string]any{"action": "created"}}
	story.Post(e.Ctx, e.Tenant, s.Ingest, it, a, b, "nope")
	story.Post(e.Ctx, e.Tenant, s.Ingest, it, b)
	items := count(t, e.Ctx, e.Tenant, a)
	if len(items) != 1 || len(items[0].Subject) > 500 || !strings.HasSuffix(items[0].Subject, "…") {
		t.Fatalf("items on the survivor: %d %+v", len(items), items)
	}
}

func count(t *testing.T, ctx context.Context, tn store.Tenant, profileID string) []*timeline.Event {
	t.Helper()
	var out []*timeline.Event
	if err := timeline.EventsOf(ctx, tn, profileID, func(ev *timeline.Event) error {
		if ev.Kind == timeline.KindInteraction {
			out = append(out, ev)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
