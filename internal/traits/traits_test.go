package traits_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/userjson"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/internal/traits/agg/aggtest"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/tools/seed"
)

var start = time.Date(2026, 4, 20, 12, 0, 0, 0, time.UTC)

type env struct {
	*apptest.Env
	tr *traits.Engine
}

func newEnv(t testing.TB) *env {
	// One process: its cache is invalidated at once.
	e := apptest.New(t, start, app.WithTraitsSettle(0))
	t.Cleanup(e.Services.Traits.Wait)
	return &env{Env: e, tr: e.Services.Traits}
}

func last(n int, u rule.Unit) *rule.Window {
	return &rule.Window{Last: &rule.Last{Amount: n, Unit: u}}
}

// inputs is one definition of every kind, with and without windows.
func inputs() []traits.Input {
	usd := []rule.PropertyCond{{Key: "currency", Op: rule.EQ, Value: "USD"}}
	return []traits.Input{
		{Key: "orders", Kind: "COUNT", Event: "order"},
		{Key: "orders_7d", Kind: "COUNT", Event: "order", Window: last(7, rule.Days)},
		{Key: "usd_orders_2h", Kind: "COUNT", Event: "order", Where: usd, Window: last(2, rule.Hours)},
		{Key: "revenue", Kind: "SUM", Event: "order", Property: "revenue"},
		{Key: "revenue_30d", Kind: "SUM", Event: "order", Property: "revenue", Window: last(30, rule.Days)},
		{Key: "avg_order", Kind: "AVG", Event: "order", Property: "revenue"},
		{Key: "min_order_7d", Kind: "MIN", Event: "order", Property: "revenue", Window: last(7, rule.Days)},
		{Key: "max_order", Kind: "MAX", Event: "order", Property: "revenue", Where: usd},
		{Key: "first_sku", Kind: "FIRST", Event: "order", Property: "item.sku"},
		{Key: "last_sku_3d", Kind: "LAST", Event: "order", Property: "item.sku", Window: last(3, rule.Days)},
		{Key: "top_page", Kind: "MOST_FREQUENT", Event: "page", Property: "path"},
		{Key: "top_page_7d", Kind: "MOST_FREQUENT", Event: "page", Property: "path", Window: last(7, rule.Days)},
		{Key: "pages", Kind: "UNIQUE_LIST", Event: "page", Property: "path"},
		{Key: "pages_90m", Kind: "UNIQUE_LIST", Event: "page", Property: "path", Window: last(90, rule.Minutes)},
		{Key: "april_orders", Kind: "COUNT", Event: "order", Window: &rule.Window{Between: &rule.Between{
			From: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 15, 0, 0, 0, 0, time.UTC)}}},
	}
}

func (e *env) defineAll(t testing.TB, ins []traits.Input) {
	t.Helper()
	for _, in := range ins {
		if _, err := e.tr.Define(e.Ctx, e.Tenant, in); err != nil {
			t.Fatalf("define %s: %v", in.Key, err)
		}
	}
}

// randomEvents makes a deterministic batch of events for visitor v, with
// occurredAt spread over the 40 days before now (out of order).
func randomEvents(r *rand.Rand, v string, n int, now time.Time, msg *int) []timeline.TrackInput {
	paths := []string{"/", "/pricing", "/docs", "/blog", "/cart"}
	var out []timeline.TrackInput
	for range n {
		*msg++
		at := now.Add(-time.Duration(r.Int64N(int64(40 * 24 * time.Hour))))
		if r.IntN(3) == 0 {
			at = now.Add(-time.Duration(r.IntN(180)) * time.Minute)
		}
		in := timeline.TrackInput{MessageID: fmt.Sprintf("m%d", *msg), Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: v}}, OccurredAt: &at}
		if r.IntN(2) == 0 {
			in.Name = "page"
			in.Properties = map[string]any{"path": paths[r.IntN(len(paths))]}
		} else {
			in.Name = "order"
			props := map[string]any{"currency": []string{"USD", "EUR"}[r.IntN(2)], "item": map[string]any{"sku": fmt.Sprintf("sku-%d", r.IntN(9))}}
			if r.IntN(5) > 0 {
				props["revenue"] = float64(r.IntN(20000)) / 100
			}
			in.Properties = props
		}
		out = append(out, in)
	}
	return out
}

// storedEvents reads a profile's raw events.
func (e *env) storedEvents(t *testing.T, pid string) []aggtest.Event {
	t.Helper()
	docs, err := e.Tenant.C(timeline.Events).Find(e.Ctx, store.Query{Index: timeline.EventsByProfileTime, Eq: []any{pid}})
	if err != nil {
		t.Fatal(err)
	}
	var out []aggtest.Event
	for _, d := range docs {
		var ev timeline.Event
		if err := d.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, aggtest.Event{ID: ev.ID, Name: ev.Name, Props: plain(ev.Properties), At: ev.OccurredAt.UTC()})
	}
	return out
}

func plain(m map[string]any) map[string]any {
	return profileProps(m)
}

func near(a, b any) bool {
	fa, ok1 := a.(float64)
	fb, ok2 := b.(float64)
	if ok1 && ok2 {
		return math.Abs(fa-fb) <= 1e-9*math.Max(1, math.Abs(fb))
	}
	return reflect.DeepEqual(a, b)
}

// check compares every definition's value on every profile in ids with
// the from-scratch reference over the profile's stored events.
func (e *env) check(t *testing.T, what string, ids []string, now time.Time) {
	t.Helper()
	set, err := e.tr.Definitions(e.Ctx, e.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		p, err := profile.Get(e.Ctx, e.Tenant, id)
		if err != nil {
			t.Fatalf("%s: profile %s: %v", what, id, err)
		}
		evs := e.storedEvents(t, id)
		for _, d := range set.Defs {
			got, _ := traits.Value(d, p, now)
			if want := aggtest.Reference(*d, evs, now); !near(got, want) {
				t.Fatalf("%s: profile %s %s = %#v, want %#v (%d events)", what, id, d.Key, got, want, len(evs))
			}
		}
	}
}

func (e *env) track(t *testing.T, ins []timeline.TrackInput) string {
	t.Helper()
	res, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "inputs", ins)
	if err != nil {
		t.Fatalf("track: %v", err)
	}
	return res[len(res)-1].Profile.ID
}

// TestIngestMergeUnmergeErase: state maintained on ingest (random
// batches, events out of order) equals the reference for every kind; then
// again after a merge, an unmerge and, for the erased person, nothing is
// left.
func TestIngestMergeUnmergeErase(t *testing.T) {
	e := newEnv(t)
	e.defineAll(t, inputs())
	e.tr.Wait()
	r := rand.New(rand.NewPCG(42, 7))
	msg := 0
	var ids []string
	for _, v := range []string{"a", "b", "c"} {
		var pid string
		for range 4 {
			pid = e.track(t, randomEvents(r, v, 1+r.IntN(25), start, &msg))
		}
		ids = append(ids, pid)
	}
	e.check(t, "ingest", ids, start)
	e.check(t, "ingest, 2 days later", ids, start.Add(49*time.Hour))

	// Merge b into a (a is older), then more events on the survivor.
	if _, err := e.Services.Identity.Merge(e.Ctx, e.Tenant, ids[0], ids[1], "test", "tester"); err != nil {
		t.Fatal(err)
	}
	e.track(t, randomEvents(r, "a", 10, start, &msg))
	e.check(t, "after merge", ids[:1], start)
	docs, err := e.Tenant.C(identity.Merges).Find(e.Ctx, store.Query{Index: identity.MergesByTarget, Eq: []any{ids[0]}})
	if err != nil || len(docs) == 0 {
		t.Fatalf("merge record: %v", err)
	}
	var rec identity.Record
	if err := docs[0].Decode(&rec); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Services.Identity.Unmerge(e.Ctx, e.Tenant, rec.ID, "tester"); err != nil {
		t.Fatal(err)
	}
	e.check(t, "after unmerge", ids[:2], start)

	if _, err := e.Services.Privacy.Erase(e.Ctx, e.Tenant, ids[2], "test", "tester"); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.Get(e.Ctx, e.Tenant, ids[2]); err == nil {
		t.Fatal("erased profile still there")
	}
	if n := len(e.storedEvents(t, ids[2])); n != 0 {
		t.Fatalf("erased person's events left: %d", n)
	}
	e.check(t, "after erase (others)", ids[:2], start)
}

// TestBackfillOverDemo loads the demo data, defines the traits, and checks
// every profile against the reference once the backfill is DONE, with
// progress recorded; events tracked while it runs are counted once.
func TestBackfillOverDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the demo data")
	}
	e := newEnv(t)
	now := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	e.Clock.Set(now)
	if _, err := seed.Load(e.Ctx, e.Store, "ws1", seed.Options{Seed: 1, Now: now}); err != nil {
		t.Fatal(err)
	}
	e.Clock.Set(now)
	ins := []traits.Input{
		{Key: "orders", Kind: "COUNT", Event: "order_completed"},
		{Key: "revenue_30d", Kind: "SUM", Event: "order_completed", Property: "revenue", Window: last(30, rule.Days)},
		{Key: "avg_revenue", Kind: "AVG", Event: "order_completed", Property: "revenue"},
		{Key: "max_price", Kind: "MAX", Event: "product_viewed", Property: "price"},
		{Key: "first_sku", Kind: "FIRST", Event: "order_completed", Property: "sku"},
		{Key: "last_path", Kind: "LAST", Event: "page_viewed", Property: "path"},
		{Key: "top_sku", Kind: "MOST_FREQUENT", Event: "product_viewed", Property: "sku"},
		{Key: "skus_14d", Kind: "UNIQUE_LIST", Event: "added_to_cart", Property: "sku", Window: last(14, rule.Days)},
	}
	e.defineAll(t, ins)
	// Concurrent ingest during the backfill: a known visitor's orders.
	var wg sync.WaitGroup
	r := rand.New(rand.NewPCG(3, 3))
	var tracked []string
	wg.Go(func() {
		for i := range 30 {
			at := now.Add(-time.Duration(r.IntN(1000)) * time.Minute)
			res, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "t", "inputs", []timeline.TrackInput{{
				MessageID: fmt.Sprintf("live-%d", i), Name: "order_completed", OccurredAt: &at,
				Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: fmt.Sprintf("live-%d", i%3)}},
				Properties:  map[string]any{"revenue": float64(i), "sku": fmt.Sprintf("s%d", i%4)},
			}})
			if err != nil {
				t.Error(err)
				return
			}
			tracked = append(tracked, res[0].Profile.ID)
		}
	})
	wg.Wait()
	e.tr.Wait()
	defs, err := e.tr.List(e.Ctx, e.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range defs {
		b := d.Backfill
		if b.Status != traits.Done || b.Processed != b.Total || b.Total < 900 || b.StartedAt.IsZero() || b.FinishedAt.IsZero() {
			t.Fatalf("%s backfill: %+v", d.Key, b)
		}
	}
	var ids []string
	err = profileIDs(e, func(id string) { ids = append(ids, id) })
	if err != nil {
		t.Fatal(err)
	}
	e.check(t, "backfill", ids, now)
	e.check(t, "backfill, 20 days later", ids, now.Add(20*24*time.Hour))
	t.Logf("%d profiles checked, %d definitions", len(ids), len(defs))
}

// TestWindowExpiryExitsSegment: a segment on a windowed computed trait;
// moving the clock past the window edge, the sweeper makes the profile
// exit, and the value has changed.
func TestWindowExpiryExitsSegment(t *testing.T) {
	e := newEnv(t)
	e.defineAll(t, []traits.Input{{Key: "orders_7d", Kind: "COUNT", Event: "order", Window: last(7, rule.Days)}})
	e.tr.Wait()
	seg, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "buyers", Rule: &rule.Rule{
		Computed: &rule.ComputedCond{Key: "orders_7d", Op: rule.GTE, Value: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	msg := 0
	one := func(at time.Time) string {
		msg++
		return e.track(t, []timeline.TrackInput{{MessageID: fmt.Sprint(msg), Name: "order", OccurredAt: &at,
			Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: "x"}}}})
	}
	pid := one(start.Add(-3 * 24 * time.Hour))
	if isMember(t, e, seg.ID, pid) {
		t.Fatal("member after one order")
	}
	one(start)
	if !isMember(t, e, seg.ID, pid) {
		t.Fatal("not a member after two orders")
	}
	p := e.Profile(t, pid)
	edge := time.Date(2026, 4, 24, 0, 0, 0, 0, time.UTC) // the older order leaves the window
	if !p.EvalAt().Equal(edge) {
		t.Fatalf("next evaluation %s, want %s", p.EvalAt(), edge)
	}
	e.Clock.Set(edge.Add(time.Second))
	if n, err := e.Services.Segments.Sweep(e.Ctx, e.Tenant, edge.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if isMember(t, e, seg.ID, pid) {
		t.Fatal("still a member after the window edge")
	}
	vals, err := e.tr.Values(e.Ctx, e.Tenant, e.Profile(t, pid), []string{"orders_7d"}, edge.Add(time.Second))
	if err != nil || vals["orders_7d"] != int64(1) {
		t.Fatalf("value after the edge: %v %v", vals, err)
	}
}

// TestSelectiveReevaluation: a track of an event no definition counts
// does not evaluate a computed-node segment.
func TestSelectiveReevaluation(t *testing.T) {
	e := newEnv(t)
	e.defineAll(t, []traits.Input{{Key: "orders", Kind: "COUNT", Event: "order"}})
	e.tr.Wait()
	if _, err := e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "buyers", Rule: &rule.Rule{
		Computed: &rule.ComputedCond{Key: "orders", Op: rule.GTE, Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	at := start
	in := func(id, name string) []timeline.TrackInput {
		return []timeline.TrackInput{{MessageID: id, Name: name, OccurredAt: &at, Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: "v"}}}}
	}
	e.track(t, in("1", "order")) // new profile: evaluated in full
	before := e.Services.Segments.Evaluations()
	e.track(t, in("2", "page"))
	if n := e.Services.Segments.Evaluations() - before; n != 0 {
		t.Fatalf("a page view evaluated %d segments", n)
	}
	e.track(t, in("3", "order"))
	if n := e.Services.Segments.Evaluations() - before; n != 1 {
		t.Fatalf("an order evaluated %d segments, want 1", n)
	}
}

func TestBadInputs(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		in    traits.Input
		field string
	}{
		{traits.Input{Key: "Bad Key", Kind: "COUNT", Event: "x"}, "input.key"},
		{traits.Input{Key: "", Kind: "COUNT", Event: "x"}, "input.key"},
		{traits.Input{Key: "a", Kind: "MEDIAN", Event: "x"}, "input.kind"},
		{traits.Input{Key: "a", Kind: "COUNT", Event: " "}, "input.event"},
		{traits.Input{Key: "a", Kind: "COUNT", Event: "x", Property: "p"}, "input.property"},
		{traits.Input{Key: "a", Kind: "SUM", Event: "x"}, "input.property"},
		{traits.Input{Key: "a", Kind: "LAST", Event: "x", Property: "a..b"}, "input.property"},
		{traits.Input{Key: "a", Kind: "COUNT", Event: "x", Where: []rule.PropertyCond{{Key: "k", Op: "LIKE"}}}, "input.where[0].op"},
		{traits.Input{Key: "a", Kind: "COUNT", Event: "x", Window: last(400, rule.Days)}, "input.window.last.amount"},
	}
	for _, c := range cases {
		_, err := e.tr.Define(e.Ctx, e.Tenant, c.in)
		ae, ok := apperr.As(err)
		if !ok || ae.Code != apperr.BadUserInput || ae.Field != c.field {
			t.Errorf("%+v: got %v, want BAD_USER_INPUT at %s", c.in, err, c.field)
		}
	}
	// Redefining is an update with a new version and revision.
	d1, err := e.tr.Define(e.Ctx, e.Tenant, traits.Input{Key: "n", Kind: "COUNT", Event: "x"})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := e.tr.Define(e.Ctx, e.Tenant, traits.Input{Key: "n", Kind: "SUM", Event: "x", Property: "v"})
	if err != nil || d2.DefVersion != 2 || d2.Rev <= d1.Rev || !d2.CreatedAt.Equal(d1.CreatedAt) {
		t.Fatalf("redefine: %+v %v", d2, err)
	}
	// A segment node needs a defined key.
	_, err = e.Services.Segments.Create(e.Ctx, e.Tenant, segment.CreateInput{Name: "s", Rule: &rule.Rule{
		Computed: &rule.ComputedCond{Key: "nope", Op: rule.GT, Value: 1}}})
	if ae, ok := apperr.As(err); !ok || ae.Field != "input.rule.computed.key" {
		t.Fatalf("unknown key in a rule: %v", err)
	}
	if ok, err := e.tr.Delete(e.Ctx, e.Tenant, "n"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if ok, _ := e.tr.Delete(e.Ctx, e.Tenant, "n"); ok {
		t.Fatal("deleted twice")
	}
	// At most MaxDefinitions.
	for i := range traits.MaxDefinitions {
		if _, err := e.tr.Define(e.Ctx, e.Tenant, traits.Input{Key: fmt.Sprintf("k%d", i), Kind: "COUNT", Event: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.tr.Define(e.Ctx, e.Tenant, traits.Input{Key: "one_more", Kind: "COUNT", Event: "x"}); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Fatalf("51st definition: %v", err)
	}
}

func isMember(t *testing.T, e *env, segID, pid string) bool {
	t.Helper()
	ms, err := e.Services.Segments.ProfileSegments(e.Ctx, e.Tenant, pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.SegmentID == segID {
			return true
		}
	}
	return false
}

func profileIDs(e *env, fn func(string)) error {
	after := ""
	for {
		page, err := profile.List(e.Ctx, e.Tenant, profile.CreatedAsc, 500, after)
		if err != nil {
			return err
		}
		for i, p := range page.Profiles {
			after = page.Cursors[i]
			if p.MergingInto == "" {
				fn(p.ID)
			}
		}
		if !page.HasNext {
			return nil
		}
	}
}

func profileProps(m map[string]any) map[string]any { return userjson.PlainObject(m) }
