package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/halo-cdp/halo/tools/load"
)

// segmentRules are the 50 segments of the targets, of mixed kinds: event
// counts with windows, filtered events, inactivity, traits, profile
// fields, computed traits, scores, consent, nesting; five are static.
func segmentRules(prev func() string) []map[string]any {
	days := func(n int) map[string]any { return map[string]any{"last": map[string]any{"amount": n, "unit": "DAYS"}} }
	names := []string{"page_viewed", "product_viewed", "added_to_cart", "order_completed", "signup"}
	var out []map[string]any
	for i := range 45 {
		name := names[i%len(names)]
		var r map[string]any
		switch i % 9 {
		case 0:
			r = map[string]any{"event": map[string]any{"name": name, "count": map[string]any{"op": "GTE", "value": 2 + i%3}, "window": days(30)}}
		case 1:
			r = map[string]any{"and": []any{
				map[string]any{"trait": map[string]any{"key": "plan", "op": "EQ", "value": plans[i%len(plans)]}},
				map[string]any{"event": map[string]any{"name": name, "window": days(7)}},
			}}
		case 2:
			r = map[string]any{"event": map[string]any{"name": "order_completed", "where": []any{map[string]any{"key": "revenue", "op": "GT", "value": 100 + 10*i}}, "window": days(90)}}
		case 3:
			r = map[string]any{"lastEvent": map[string]any{"name": name, "notWithin": map[string]any{"amount": 14 + i, "unit": "DAYS"}}}
		case 4:
			r = map[string]any{"or": []any{
				map[string]any{"trait": map[string]any{"key": "address.country", "op": "IN", "values": []any{"FR", "DE"}}},
				map[string]any{"profile": map[string]any{"field": "EVENT_COUNT", "op": "GTE", "value": 12 + i%5}},
			}}
		case 5:
			r = map[string]any{"computed": map[string]any{"key": "views_30d", "op": "GTE", "value": 1 + i%4}}
		case 6:
			r = map[string]any{"computed": map[string]any{"key": "scores.engagement", "op": "GTE", "value": 10 + i}}
		case 7:
			r = map[string]any{"and": []any{
				map[string]any{"consent": map[string]any{"purpose": "marketing", "channel": "EMAIL", "status": "GRANTED"}},
				map[string]any{"computed": map[string]any{"key": "orders_90d", "op": "GTE", "value": 1}},
			}}
		default:
			r = map[string]any{"and": []any{
				map[string]any{"inSegment": prev()},
				map[string]any{"event": map[string]any{"name": name, "count": map[string]any{"op": "GTE", "value": 3}}},
			}}
		}
		out = append(out, r)
	}
	return out
}

// createSegments creates the dataset's 50 segments on the server
// behind c: the 45 dynamic ones before its events (so their membership is
// kept on ingest, as in a live workspace), the 5 static lists of 100 of
// its people after (withStatic).
func createSegments(ctx context.Context, d dataset, c *client, withStatic bool) ([]string, error) {
	var ids []string
	last := ""
	if !withStatic {
		for i := range 45 {
			// Built at each step: nested rules name the segment made last.
			r := segmentRules(func() string { return last })[i]
			id, err := createSegment(ctx, c, map[string]any{"name": fmt.Sprintf("bench segment %d", i), "rule": r})
			if err != nil {
				return ids, err
			}
			ids = append(ids, id)
			if i%9 != 8 {
				last = id
			}
		}
		return ids, nil
	}
	for i := range 5 {
		id, err := createSegment(ctx, c, map[string]any{"name": fmt.Sprintf("bench list %d", i), "kind": "STATIC"})
		if err != nil {
			return ids, err
		}
		var people []any
		for k := range 100 {
			people = append(people, map[string]any{"type": "anonymousId", "value": load.KnownPerson(d.runID(), (i*1000+k*7)%d.Profiles)})
		}
		if err := c.do(ctx, `mutation($id: ID!, $ids: [IdentifierInput!]) { addToStaticSegment(segmentId: $id, identifiers: $ids) { id } }`,
			map[string]any{"id": id, "ids": people}, nil); err != nil {
			return ids, fmt.Errorf("addToStaticSegment: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func createSegment(ctx context.Context, c *client, in map[string]any) (string, error) {
	var out struct{ CreateSegment struct{ ID string } }
	if err := c.do(ctx, `mutation($in: CreateSegmentInput!) { createSegment(input: $in) { id } }`, map[string]any{"in": in}, &out); err != nil {
		return "", fmt.Errorf("createSegment %s: %w", in["name"], err)
	}
	return out.CreateSegment.ID, nil
}

// newSegmentRules are the segments created on the full dataset: one of
// each costly kind (event counts over all history and a window, a filtered
// event, inactivity, a computed trait, a trait).
func newSegmentRules() []map[string]any {
	days := func(n int) map[string]any { return map[string]any{"last": map[string]any{"amount": n, "unit": "DAYS"}} }
	return []map[string]any{
		{"event": map[string]any{"name": "product_viewed", "count": map[string]any{"op": "GTE", "value": 3}}},
		{"event": map[string]any{"name": "page_viewed", "count": map[string]any{"op": "GTE", "value": 2}, "window": days(45)}},
		{"event": map[string]any{"name": "order_completed", "where": []any{map[string]any{"key": "revenue", "op": "GT", "value": 250}}, "window": days(120)}},
		{"lastEvent": map[string]any{"name": "added_to_cart", "notWithin": map[string]any{"amount": 21, "unit": "DAYS"}}},
		{"computed": map[string]any{"key": "revenue_total", "op": "GTE", "value": 200}},
		{"trait": map[string]any{"key": "plan", "op": "IN", "values": []any{"pro", "enterprise"}}},
	}
}

// runSegments measures createSegment, updateSegment and segmentPreview on
// the full dataset.
func runSegments(ctx context.Context, h *harness) error {
	dir, err := h.fresh()
	if err != nil {
		return err
	}
	srv, err := h.start(ctx, dir, "segments")
	if err != nil {
		return err
	}
	defer srv.stop()
	c := h.client(srv)
	var (
		ids []string
		lat []time.Duration
	)
	for i, r := range newSegmentRules() {
		t0 := time.Now()
		id, err := createSegment(ctx, c, map[string]any{"name": fmt.Sprintf("new segment %d", i), "rule": r})
		if err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
		ids = append(ids, id)
	}
	// load.Percentile sorts a copy itself; the max needs no sort either.
	worst := slices.Max(lat)
	h.add(result{area: "segments", what: fmt.Sprintf("createSegment on the full dataset (%d kinds): p50 / max", len(lat)), target: "< 200 ms",
		figure: fmt.Sprintf("%s / %s", ms(load.Percentile(lat, 50)), ms(worst)), ok: verdict(worst < 200*time.Millisecond)})
	// Their builds ran side by side from the first save.
	waited, err := settle(ctx, c, ids, 10*time.Minute, h.logf)
	if err != nil {
		return err
	}
	all := waited + lat[len(lat)-1]
	h.add(result{area: "segments", what: fmt.Sprintf("the %d builds, side by side, all READY after the last save", len(ids)), target: "< 15 s each",
		figure: fmt.Sprintf("%.1f s", all.Seconds()), ok: verdict(all < 15*time.Second)})
	// Updating an event-count segment's rule rebuilds its membership.
	t0 := time.Now()
	rule := map[string]any{"event": map[string]any{"name": "product_viewed", "count": map[string]any{"op": "GTE", "value": 3}, "window": map[string]any{"last": map[string]any{"amount": 60, "unit": "DAYS"}}}}
	if err := c.do(ctx, `mutation($id: ID!, $r: SegmentRuleInput!) { updateSegment(id: $id, input: {rule: $r}) { id } }`, map[string]any{"id": ids[0], "r": rule}, nil); err != nil {
		return fmt.Errorf("updateSegment: %w", err)
	}
	upd := time.Since(t0)
	h.add(result{area: "segments", what: "updateSegment (event count rule) answers", target: "< 200 ms", figure: ms(upd), ok: verdict(upd < 200*time.Millisecond)})
	waited, err = settle(ctx, c, ids[:1], 10*time.Minute, h.logf)
	if err != nil {
		return err
	}
	built := waited + upd
	h.add(result{area: "segments", what: "the updated segment's build, save to READY", target: "< 15 s",
		figure: fmt.Sprintf("%.1f s", built.Seconds()), ok: verdict(built < 15*time.Second)})
	var size struct{ Segment struct{ Size int } }
	if err := c.do(ctx, `query($id: ID!) { segment(id: $id) { size } }`, map[string]any{"id": ids[0]}, &size); err != nil {
		return err
	}
	h.add(result{area: "segments", what: "members of the updated segment", figure: fmt.Sprint(size.Segment.Size)})
	var plat []time.Duration
	previews := segmentRules(func() string { return ids[0] })[:9]
	for _, r := range previews {
		t0 := time.Now()
		if err := c.do(ctx, `query($r: SegmentRuleInput!) { segmentPreview(rule: $r) { count } }`, map[string]any{"r": r}, nil); err != nil {
			return fmt.Errorf("segmentPreview: %w", err)
		}
		plat = append(plat, time.Since(t0))
	}
	worst = slices.Max(plat)
	h.add(result{area: "segments", what: fmt.Sprintf("segmentPreview (%d rule kinds): p50 / max", len(plat)), target: "< 300 ms",
		figure: fmt.Sprintf("%s / %s", ms(load.Percentile(plat, 50)), ms(worst)), ok: verdict(worst < 300*time.Millisecond)})
	if err := runLists(ctx, h, c); err != nil {
		return err
	}
	h.add(result{area: "segments", what: "server peak RSS", target: "< 300 MiB", figure: mib(srv.peak()), ok: verdict(srv.peak() < 300<<20)})
	return nil
}

// adHocLists are the CRM list views measured: a page of 20 with
// totalCount, each one pass over every profile.
var adHocLists = []struct {
	name string
	vars map[string]any
}{
	{"known people with an email on a plan, by last seen", map[string]any{
		"f": map[string]any{"and": []any{
			map[string]any{"identifier": map[string]any{"type": "email"}},
			map[string]any{"trait": map[string]any{"key": "plan", "op": "IN", "values": []any{"pro", "enterprise"}}}}},
		"s": map[string]any{"by": "LAST_SEEN_AT"}}},
	{"everyone by engagement now", map[string]any{"s": map[string]any{"by": "SCORE", "score": "ENGAGEMENT"}}},
	{"3+ product views, by country", map[string]any{
		"f": map[string]any{"event": map[string]any{"name": "product_viewed", "count": map[string]any{"op": "GTE", "value": 3}}},
		"s": map[string]any{"by": "TRAIT", "trait": "address.country", "direction": "ASC"}}},
}

// runLists measures the ad-hoc lists (profiles with filter and sortBy),
// first and second page, five times each.
func runLists(ctx context.Context, h *harness, c *client) error {
	const q = `query($f: SegmentRuleInput, $s: ProfileSortInput, $a: String) {
	  profiles(filter: $f, sortBy: $s, first: 20, after: $a) { totalCount nodes { id } pageInfo { endCursor } } }`
	for _, l := range adHocLists {
		var (
			lat   []time.Duration
			total int
		)
		for i := 0; i < 5; i++ {
			var after any
			for page := 0; page < 2; page++ {
				vars := maps.Clone(l.vars)
				vars["a"] = after
				var out struct {
					Profiles struct {
						TotalCount int
						PageInfo   struct{ EndCursor *string }
					}
				}
				t0 := time.Now()
				if err := c.do(ctx, q, vars, &out); err != nil {
					return fmt.Errorf("list %q: %w", l.name, err)
				}
				lat = append(lat, time.Since(t0))
				total, after = out.Profiles.TotalCount, out.Profiles.PageInfo.EndCursor
			}
		}
		worst := slices.Max(lat)
		h.add(result{area: "segments", what: fmt.Sprintf("ad-hoc list, %s (%d people): p50 / max of 10 pages", l.name, total), target: "< 300 ms",
			figure: fmt.Sprintf("%s / %s", ms(load.Percentile(lat, 50)), ms(worst)), ok: verdict(worst < 300*time.Millisecond)})
	}
	// The identifier node in a saved segment: its build reads each
	// profile's identifiers once.
	t0 := time.Now()
	id, err := createSegment(ctx, c, map[string]any{"name": "known with email", "rule": map[string]any{"identifier": map[string]any{"type": "email"}}})
	if err != nil {
		return err
	}
	if _, err := settle(ctx, c, []string{id}, 10*time.Minute, h.logf); err != nil {
		return err
	}
	built := time.Since(t0)
	var size struct{ Segment struct{ Size int } }
	if err := c.do(ctx, `query($id: ID!) { segment(id: $id) { size } }`, map[string]any{"id": id}, &size); err != nil {
		return err
	}
	h.add(result{area: "segments", what: fmt.Sprintf("identifier-node segment (%d known with an email), save to READY", size.Segment.Size), target: "< 15 s",
		figure: fmt.Sprintf("%.1f s", built.Seconds()), ok: verdict(built < 15*time.Second)})
	return nil
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func mib(b int64) string { return fmt.Sprintf("%d MiB", b>>20) }
