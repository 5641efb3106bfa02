package traits_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// pqWorkspace holds ada (3 orders of 100, email ada@example.com), bob (1
// order of 50) and cyd (no orders), created in that order a minute
// apart.
func pqWorkspace(t *testing.T) (*apptest.Env, map[string]string) {
	t.Helper()
	e := apptest.New(t, start, app.WithTraitsSettle(0))
	t.Cleanup(e.Services.Traits.Wait)
	ids := map[string]string{}
	msg := 0
	for i, p := range []struct {
		name   string
		orders int
		value  float64
	}{{"ada", 3, 100}, {"bob", 1, 50}, {"cyd", 0, 0}} {
		who := []identity.Identifier{{Type: identity.AnonymousID, Value: p.name}, {Type: identity.Email, Value: p.name + "@example.com"}}
		res, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: who})
		if err != nil {
			t.Fatalf("identify %s: %v", p.name, err)
		}
		ids[p.name] = res.Profile.ID
		var ins []timeline.TrackInput
		for range p.orders {
			msg++
			ins = append(ins, timeline.TrackInput{MessageID: fmt.Sprint("pq", msg), Identifiers: who[:1], Name: traits.DefaultOrderEvent,
				Properties: map[string]any{"revenue": p.value}})
		}
		if len(ins) > 0 {
			if _, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "input", ins); err != nil {
				t.Fatalf("orders of %s: %v", p.name, err)
			}
		}
		e.Clock.Set(start.Add(time.Duration(i+1) * time.Minute))
	}
	return e, ids
}

// cursorsOf records the lists a query asked its cursor about and answers
// with key.
func cursorsOf(asked *[]string, key string) func(string) (string, error) {
	return func(list string) (string, error) {
		*asked = append(*asked, list)
		return key, nil
	}
}

func isInvalidAt(err error, field string) bool {
	ae, ok := apperr.As(err)
	return ok && ae.Code == apperr.BadUserInput && ae.Field == field
}

func pageIDs(p traits.ProfilePage) []string {
	var out []string
	for _, x := range p.Profiles {
		out = append(out, x.ID)
	}
	return out
}

// TestProfilesQuery: one call chooses between ranking, search and
// listing, holds their rules (search needs pii:read and does not combine
// with scores) and names the list its cursors belong to.
func TestProfilesQuery(t *testing.T) {
	e, ids := pqWorkspace(t)
	tr := e.Services.Traits
	ada, bob, cyd := ids["ada"], ids["bob"], ids["cyd"]
	query := func(q traits.ProfileQuery) (traits.ProfilePage, []string, error) {
		t.Helper()
		var asked []string
		if q.After == nil {
			q.After = cursorsOf(&asked, "")
		}
		page, err := tr.Profiles(e.Ctx, e.Tenant, q)
		return page, asked, err
	}
	search := "ada"

	// Search matches personal data: refused without pii:read, before
	// anything else is looked at, the cursor included.
	_, asked, err := query(traits.ProfileQuery{First: 10, Search: &search, ByScore: &traits.ScoreOrder{Key: scores.KeyRevenue}})
	if ae, ok := apperr.As(err); !ok || ae.Code != apperr.Forbidden || ae.Message != "profiles(search) needs scope pii:read: it matches personal data" || len(asked) != 0 {
		t.Fatalf("search without pii:read: %v, cursor asked for %v", err, asked)
	}
	// With it, search does not combine with byScore or scoreFilter.
	for _, q := range []traits.ProfileQuery{
		{First: 10, Search: &search, MayReadPII: true, ByScore: &traits.ScoreOrder{Key: scores.KeyRevenue}},
		{First: 10, Search: &search, MayReadPII: true, ScoreFilter: []traits.Range{{Key: scores.KeyOrders}}},
	} {
		_, asked, err := query(q)
		if ae, ok := apperr.As(err); !ok || ae.Code != apperr.BadUserInput || ae.Field != "search" ||
			ae.Message != "cannot be combined with byScore or scoreFilter" || len(asked) != 0 {
			t.Fatalf("search with scores: %v, cursor asked for %v", err, asked)
		}
	}
	page, asked, err := query(traits.ProfileQuery{First: 10, Search: &search, MayReadPII: true})
	if err != nil || page.List != "s" || !slices.Equal(asked, []string{"s"}) || !slices.Equal(pageIDs(page), []string{ada}) {
		t.Fatalf("search: %v in %q (%v), cursor asked for %v", pageIDs(page), page.List, err, asked)
	}

	// Listing, each order its own list.
	for _, c := range []struct {
		order profile.Order
		list  string
		want  []string
	}{
		{profile.CreatedDesc, "pCREATED_AT_DESC", []string{cyd, bob, ada}},
		{profile.CreatedAsc, "pCREATED_AT_ASC", []string{ada, bob, cyd}},
		{profile.UpdatedDesc, "pUPDATED_AT_DESC", nil},
		{profile.LastSeenDesc, "pLAST_SEEN_AT_DESC", nil},
	} {
		page, asked, err := query(traits.ProfileQuery{First: 10, Order: c.order})
		if err != nil || page.List != c.list || !slices.Equal(asked, []string{c.list}) || len(page.Profiles) != 3 || page.HasNext ||
			c.want != nil && !slices.Equal(pageIDs(page), c.want) {
			t.Fatalf("order %d: %v in %q (%v), cursor asked for %v", c.order, pageIDs(page), page.List, err, asked)
		}
	}
	// The cursor the caller hands back positions the next page.
	first, _, err := query(traits.ProfileQuery{First: 1})
	if err != nil || !first.HasNext || !slices.Equal(pageIDs(first), []string{cyd}) {
		t.Fatalf("first page: %v (%v)", pageIDs(first), err)
	}
	var resumed []string
	next, err := tr.Profiles(e.Ctx, e.Tenant, traits.ProfileQuery{First: 5, After: cursorsOf(&resumed, first.Cursors[0])})
	if err != nil || !slices.Equal(pageIDs(next), []string{bob, ada}) || next.HasNext {
		t.Fatalf("next page: %v (%v)", pageIDs(next), err)
	}
	// A cursor the caller's layer refuses for the list ends the query.
	bad := apperr.Invalid("after", "malformed cursor")
	if _, err := tr.Profiles(e.Ctx, e.Tenant, traits.ProfileQuery{First: 5, After: func(string) (string, error) { return "", bad }}); !errors.Is(err, bad) {
		t.Fatalf("refused cursor: %v", err)
	}
	if _, _, err := query(traits.ProfileQuery{First: 5, Order: profile.Order(99)}); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatalf("unknown order: %v", err)
	}

	// Ranking: by a score, highest first unless ascending, the direction
	// part of the list's name; orderBy is ignored.
	page, asked, err = query(traits.ProfileQuery{First: 10, Order: profile.CreatedAsc, ByScore: &traits.ScoreOrder{Key: scores.KeyRevenue}})
	if err != nil || page.List != "rscores.revenue" || !slices.Equal(asked, []string{"rscores.revenue"}) || !slices.Equal(pageIDs(page), []string{ada, bob, cyd}) {
		t.Fatalf("by revenue: %v in %q (%v), cursor asked for %v", pageIDs(page), page.List, err, asked)
	}
	page, _, err = query(traits.ProfileQuery{First: 10, ByScore: &traits.ScoreOrder{Key: scores.KeyRevenue, Asc: true}})
	if err != nil || page.List != "rscores.revenue+" || !slices.Equal(pageIDs(page), []string{cyd, bob, ada}) {
		t.Fatalf("by revenue ascending: %v in %q (%v)", pageIDs(page), page.List, err)
	}
	// A filter alone ranks by its first score, highest first, within
	// every range.
	two := 2.0
	page, _, err = query(traits.ProfileQuery{First: 10, ScoreFilter: []traits.Range{{Key: scores.KeyOrders, Min: &two}, {Key: scores.KeyRevenue}}})
	if err != nil || page.List != "rscores.orders" || !slices.Equal(pageIDs(page), []string{ada}) {
		t.Fatalf("filtered by orders: %v in %q (%v)", pageIDs(page), page.List, err)
	}
	one := 1.0
	page, _, err = query(traits.ProfileQuery{First: 10, ByScore: &traits.ScoreOrder{Key: scores.KeyRevenue, Asc: true}, ScoreFilter: []traits.Range{{Key: scores.KeyOrders, Min: &one}}})
	if err != nil || page.List != "rscores.revenue+" || !slices.Equal(pageIDs(page), []string{bob, ada}) {
		t.Fatalf("by revenue within orders ≥ 1: %v in %q (%v)", pageIDs(page), page.List, err)
	}
	// Rank's own refusals come through.
	if _, _, err := query(traits.ProfileQuery{First: 10, ByScore: &traits.ScoreOrder{Key: "nope"}}); !isInvalidAt(err, "byScore") {
		t.Fatalf("unknown score: %v", err)
	}
}

// TestScoresOf: Profile.scores loads the profile through the caller's
// loader; one erased since the caller saw it scores as a new profile with
// no tally, created when it was.
func TestScoresOf(t *testing.T) {
	e, ids := pqWorkspace(t)
	tr := e.Services.Traits
	live := func(ctx context.Context, tn store.Tenant, id string) (*profile.Profile, error) {
		return profile.Resolve(ctx, tn, id, identity.Redirect)
	}
	s, in, err := tr.ScoresOf(e.Ctx, e.Tenant, ids["ada"], time.Time{}, live)
	if err != nil || in.Orders != 3 || in.Revenue != 300 {
		t.Fatalf("ada: %+v %+v (%v)", s, in, err)
	}
	ws, wi, err := tr.Scores(e.Ctx, e.Tenant, e.Profile(t, ids["ada"]), time.Time{})
	if err != nil || !reflect.DeepEqual(ws, s) || wi.Orders != in.Orders || wi.Revenue != in.Revenue {
		t.Fatalf("ada: ScoresOf %+v, Scores %+v (%v)", s, ws, err)
	}

	if _, err := e.Services.Privacy.Erase(e.Ctx, e.Tenant, ids["bob"], "test", "tester"); err != nil {
		t.Fatal(err)
	}
	created := start.Add(time.Minute)
	s, in, err = tr.ScoresOf(e.Ctx, e.Tenant, ids["bob"], created, live)
	if err != nil || in.Orders != 0 || in.Revenue != 0 || !in.FirstOrder.IsZero() {
		t.Fatalf("erased bob: %+v %+v (%v)", s, in, err)
	}
	ws, _, err = tr.Scores(e.Ctx, e.Tenant, profile.New(ids["bob"], created), time.Time{})
	if err != nil || !reflect.DeepEqual(ws, s) {
		t.Fatalf("erased bob: %+v, want a new profile's %+v (%v)", s, ws, err)
	}

	boom := errors.New("boom")
	_, _, err = tr.ScoresOf(e.Ctx, e.Tenant, ids["ada"], time.Time{}, func(context.Context, store.Tenant, string) (*profile.Profile, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("loader failure: %v", err)
	}
}
