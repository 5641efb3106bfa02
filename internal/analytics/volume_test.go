package analytics_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/analytics"
	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/store"
)

// The buckets of a series follow the zone's calendar: local midnights,
// 23- and 25-hour days at DST changes, hours on the half hour where the
// zone is half an hour off UTC, weeks from Monday, months.
func TestSpanLayout(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		name         string
		since, until string
		iv           analytics.Interval
		zone         string
		want         []string // bucket edges, UTC
	}{
		{"Lisbon days across the spring change", "2026-03-28T12:00:00Z", "2026-03-30T01:00:00Z", analytics.Day, "Europe/Lisbon",
			[]string{"2026-03-28T00:00:00Z", "2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z", "2026-03-30T23:00:00Z"}},
		{"Lisbon days across the autumn change", "2026-10-24T12:00:00Z", "2026-10-26T01:00:00Z", analytics.Day, "Europe/Lisbon",
			[]string{"2026-10-23T23:00:00Z", "2026-10-24T23:00:00Z", "2026-10-26T00:00:00Z", "2026-10-27T00:00:00Z"}},
		{"New York hours across the spring change", "2026-03-08T06:00:00Z", "2026-03-08T08:00:00Z", analytics.Hour, "America/New_York",
			[]string{"2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"}},
		{"Kolkata hours begin at half past", "2026-05-01T10:40:00Z", "2026-05-01T11:10:00Z", analytics.Hour, "Asia/Kolkata",
			[]string{"2026-05-01T10:30:00Z", "2026-05-01T11:30:00Z"}},
		{"Kathmandu days", "2026-05-01T00:00:00Z", "2026-05-01T00:01:00Z", analytics.Day, "Asia/Kathmandu",
			[]string{"2026-04-30T18:15:00Z", "2026-05-01T18:15:00Z"}},
		{"Santiago days across a change at midnight (6 September 2026 begins at 01:00)", "2026-09-05T12:00:00Z", "2026-09-06T12:00:00Z", analytics.Day, "America/Santiago",
			[]string{"2026-09-05T04:00:00Z", "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z"}},
		{"Havana weeks across a change at midnight (8 March 2026)", "2026-03-08T12:00:00Z", "2026-03-09T12:00:00Z", analytics.Week, "America/Havana",
			[]string{"2026-03-02T05:00:00Z", "2026-03-09T04:00:00Z", "2026-03-16T04:00:00Z"}},
		{"weeks from Monday", "2026-12-02T10:00:00Z", "2026-12-08T00:00:00Z", analytics.Week, "UTC",
			[]string{"2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z", "2026-12-14T00:00:00Z"}},
		{"months in Tokyo", "2026-01-31T16:00:00Z", "2026-02-02T00:00:00Z", analytics.Month, "Asia/Tokyo",
			[]string{"2026-01-31T15:00:00Z", "2026-02-28T15:00:00Z"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sp, err := analytics.NewSpan(utc(c.since), utc(c.until), c.iv, c.zone)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range sp.Bounds {
				got = append(got, b.UTC().Format(time.RFC3339))
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("edges\n got %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestSpanBadInput(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name         string
		since, until time.Time
		iv           analytics.Interval
		zone, field  string
	}{
		{"since after until", at, at.Add(-time.Hour), analytics.Day, "UTC", "since"},
		{"since equal to until", at, at, analytics.Day, "UTC", "since"},
		{"unknown zone", at, at.Add(time.Hour), analytics.Day, "Mars/Olympus", "timeZone"},
		{"the server's zone is not a zone", at, at.Add(time.Hour), analytics.Day, "Local", "timeZone"},
		{"1,001 buckets", at, at.Add(1001 * time.Hour), analytics.Hour, "UTC", "interval"},
		{"an edge inside a quarter hour (Amsterdam, 1930: +0:20)", time.Date(1930, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(1930, 5, 3, 0, 0, 0, 0, time.UTC), analytics.Day, "Europe/Amsterdam", "since"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := analytics.NewSpan(c.since, c.until, c.iv, c.zone)
			e, ok := apperr.As(err)
			if !ok || e.Code != apperr.BadUserInput || e.Field != c.field {
				t.Fatalf("got %v, want BAD_USER_INPUT on %s", err, c.field)
			}
		})
	}
	if _, err := analytics.NewSpan(at, at.Add(1000*time.Hour), analytics.Hour, "UTC"); err != nil {
		t.Fatalf("1,000 buckets refused: %v", err)
	}
}

// cursorDoc is the rollup cursor as stored (analytics' cursor), for the
// test to move it back as a crash between a fold and its cursor's advance
// would leave it.
type cursorDoc struct {
	ID         string    `bson:"_id"`
	Folded     string    `bson:"folded"`
	Owner      string    `bson:"owner"`
	LeaseUntil time.Time `bson:"leaseUntil"`
	RevenueKey string    `bson:"revenueKey,omitempty"`
	Version    int64     `bson:"version"`
}

// Every series equals a count made from scratch over the stored events,
// whatever was folded when: random batches of events at random past times
// (out of order, late), repeated messageIds, people merged by a shared
// userId, people erased (their events folded or not yet), folds at random
// moments and folds repeated after a simulated crash; random queries over
// zones with DST and half-hour offsets, every interval, grouped and
// filtered.
func TestEventVolumeMatchesStoredEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(seedOf(t, "VOLUME_SEED"), 0))
	start := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	e := apptest.New(t, start)
	an := e.Services.Analytics
	names := []string{"page_viewed", "signed_up", "order_completed", "cart_viewed", "search", "logout"}
	channels := []string{"", "web", "ios"}
	sys := e.Store.Tenant(store.SystemWorkspace)
	roll := func() {
		t.Helper()
		if err := an.Roll(e.Ctx, e.Store, time.Now(), []string{"ws1"}, rng.IntN(2) == 0); err != nil {
			t.Fatalf("roll: %v", err)
		}
	}
	var sent []string
	// People 0-24 may share a userId in pairs (their profiles merge);
	// 25-34 never do, and each may be erased, after which nobody sends
	// their identifiers again.
	erased := map[int]bool{}
	profileOf := map[int]string{}
	unmerges, settingsChanges := 0, 0
	orderSettings := []traits.ScoreSettings{
		{OrderEvent: "order_completed", RevenueProperty: "revenue"},
		{OrderEvent: "order_completed", RevenueProperty: "amount"},
		{OrderEvent: "signed_up", RevenueProperty: "amount.value"},
	}
	for batch := range 40 {
		var ins []timeline.TrackInput
		var who []int
		for range 1 + rng.IntN(30) {
			p := rng.IntN(35)
			for erased[p] {
				p = rng.IntN(35)
			}
			who = append(who, p)
			ids := []identity.Identifier{{Type: "anonymousId", Value: fmt.Sprintf("a%d", p)}}
			if p < 25 && rng.IntN(8) == 0 {
				// Two visitors with one userId: their profiles merge.
				ids = append(ids, identity.Identifier{Type: "userId", Value: fmt.Sprintf("u%d", p/2)})
			}
			at := start.Add(-time.Duration(rng.Int64N(int64(40 * 24 * time.Hour))))
			if rng.IntN(2) == 0 {
				// Noon UTC: many events share a quarter hour, so that a
				// count taken off twice shows.
				at = at.Truncate(24 * time.Hour).Add(12 * time.Hour)
			}
			msg := fmt.Sprintf("m%d-%d", batch, len(ins))
			if len(sent) > 0 && rng.IntN(10) == 0 {
				msg = sent[rng.IntN(len(sent))] // a replay: stored once
			}
			sent = append(sent, msg)
			in := timeline.TrackInput{MessageID: msg, Identifiers: ids, Name: names[rng.IntN(len(names))], Channel: channels[rng.IntN(len(channels))], OccurredAt: &at}
			// Order values as senders send them: decimals, whole
			// numbers, nested, missing, not numbers, under either
			// property the settings may name.
			switch rng.IntN(6) {
			case 0:
				in.Properties = map[string]any{"revenue": float64(rng.IntN(100000)) / 100, "amount": rng.IntN(500)}
			case 1:
				in.Properties = map[string]any{"revenue": rng.IntN(1000), "amount": map[string]any{"value": 1.5}}
			case 2:
				in.Properties = map[string]any{"revenue": "12.50"}
			case 3:
				in.Properties = map[string]any{"amount": -3.25}
			}
			ins = append(ins, in)
		}
		res, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "inputs", ins)
		if err != nil && apperr.CodeOf(err) != apperr.Conflict {
			t.Fatalf("batch %d: %v", batch, err)
		}
		for i, r := range res {
			if r.Profile != nil {
				profileOf[who[i]] = r.Profile.ID
			}
		}
		if rng.IntN(3) == 0 {
			// A CRM interaction: on the timeline, not an event.
			p := who[rng.IntN(len(who))]
			at := start.Add(-time.Duration(rng.Int64N(int64(40 * 24 * time.Hour))))
			if pid, ok := profileOf[p]; ok {
				if _, err := e.Services.Ingest.LogInteraction(e.Ctx, e.Tenant, timeline.InteractionInput{ProfileID: pid, Kind: "CALL", OccurredAt: &at}); err != nil {
					t.Fatalf("interaction: %v", err)
				}
			}
		}
		if rng.IntN(4) == 0 {
			// An erasure: the person's events go, folded or not; now and
			// then one whose subtraction a crash cut before the events
			// were deleted, run again.
			p := 25 + rng.IntN(10)
			if pid, ok := profileOf[p]; ok && !erased[p] {
				if rng.IntN(2) == 0 {
					// The timeline step cut after its subtraction, then
					// resumed after a fold: the resumed pass takes only
					// what was folded since. (The erasure's own pass after
					// it finds no events left.)
					id := "erasure-" + pid
					if err := an.SubtractErased(e.Ctx, e.Tenant, id, pid); err != nil {
						t.Fatalf("subtract %d: %v", p, err)
					}
					roll()
					if _, err := an.EraseEvents(e.Ctx, e.Tenant, id, pid); err != nil {
						t.Fatalf("resume erasing %d: %v", p, err)
					}
				}
				if _, err := e.Services.Privacy.Erase(e.Ctx, e.Tenant, pid, "test", "tester"); err != nil {
					t.Fatalf("erase %d: %v", p, err)
				}
				erased[p] = true
			}
		}
		if rng.IntN(5) == 0 {
			// An unmerge: events go back to the restored profile, after
			// some were folded under the survivor.
			if done := doneMerges(t, e); len(done) > 0 {
				if _, err := e.Services.Identity.UnmergeProfiles(e.Ctx, e.Tenant, done[rng.IntN(len(done))], "t"); err != nil && apperr.CodeOf(err) == "" {
					t.Fatalf("unmerge: %v", err)
				}
				unmerges++
			}
		}
		if rng.IntN(12) == 0 {
			// New order settings: the rollups are folded again under them.
			o := orderSettings[rng.IntN(len(orderSettings))]
			if _, err := e.Services.Traits.SetScoreSettings(e.Ctx, e.Tenant, o, "tester"); err != nil {
				t.Fatalf("score settings %+v: %v", o, err)
			}
			settingsChanges++
		}
		// Moves are tidied into the activity days at once, or left for
		// reads to take from the marked profiles' events.
		if rng.IntN(2) == 0 {
			an.TidyAfter(0)
		} else {
			an.TidyAfter(time.Hour)
		}
		switch rng.IntN(4) {
		case 0:
			roll()
		case 1:
			// A fold whose cursor advance a crash cut: the cursor goes
			// back to the start and the next fold must add nothing twice.
			roll()
			var c cursorDoc
			if err := sys.C(analytics.Cursors).Get(e.Ctx, "ws1", &c); err == nil {
				c.Folded = ""
				c.Version++
				if err := sys.C(analytics.Cursors).Put(e.Ctx, &c); err != nil {
					t.Fatal(err)
				}
			}
		}
		if batch%10 == 9 {
			checkVolumes(t, e, an, rng, start, names, channels)
		}
	}
	an.TidyAfter(0)
	roll()
	checkVolumes(t, e, an, rng, start, names, channels)
	if n, err := analytics.Marks(e.Ctx, e.Tenant); err != nil || n != 0 {
		t.Fatalf("%d marks of moves left after a roll (%v)", n, err)
	}
	t.Logf("%d unmerges, %d erasures, %d order settings", unmerges, len(erased), settingsChanges)
	// An erased profile's number, the one link from the activity days to
	// it, is gone.
	for p := range erased {
		var doc struct{}
		if err := e.Tenant.C(analytics.Numbers).Get(e.Ctx, profileOf[p], &doc); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("erased profile %s keeps its activity number (%v)", profileOf[p], err)
		}
	}

	// Erasures leave no trace of the person's days behind.
	docs, err := e.Tenant.C(analytics.Rollups).Find(e.Ctx, store.Query{Index: analytics.RollupsByDay})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if v, err := d.Raw.LookupErr("erased"); err == nil && len(v.Document()) > 5 {
			t.Errorf("rollup %s keeps erasure marks: %s", d.Raw.Lookup("_id"), v)
		}
	}
	c, err := sys.C(analytics.Cursors).Find(e.Ctx, store.Query{Index: store.ByID})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range c {
		if v, err := d.Raw.LookupErr("erasing"); err == nil && len(v.Document()) > 5 {
			t.Errorf("cursor keeps erasures under way: %s", v)
		}
	}
	if len(docs) == 0 {
		t.Fatal("nothing was folded")
	}
	if len(erased) == 0 {
		t.Log("no erasure this seed")
	}

	// Refold: the rollups go, reads count from the stored events until
	// the next fold has made them again.
	if err := analytics.Refold(e.Ctx, e.Store, "ws1"); err != nil {
		t.Fatal(err)
	}
	if n, err := e.Tenant.C(analytics.Rollups).Count(e.Ctx, store.Query{Index: analytics.RollupsByDay}); err != nil || n != 0 {
		t.Fatalf("%d rollups after Refold (%v)", n, err)
	}
	checkVolumes(t, e, an, rng, start, names, channels)
	roll()
	if n, err := e.Tenant.C(analytics.Rollups).Count(e.Ctx, store.Query{Index: analytics.RollupsByDay}); err != nil || n == 0 {
		t.Fatalf("%d rollups folded again (%v)", n, err)
	}
	checkVolumes(t, e, an, rng, start, names, channels)
}

// checkVolumes asks random series (event volume and active profiles)
// and compares each with a count from scratch over the stored events.
func checkVolumes(t *testing.T, e *apptest.Env, an *analytics.Service, rng *rand.Rand, start time.Time, names, channels []string) {
	t.Helper()
	type ev struct {
		name, channel, profile string
		at                     time.Time
		props                  map[string]any
	}
	var all []ev
	err := timeline.ScanEvents(e.Ctx, e.Tenant, nil, func(x *timeline.Event) error {
		if x.Kind == timeline.KindEvent {
			all = append(all, ev{x.Name, x.Channel, x.ProfileID, x.OccurredAt, x.Properties})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	settings, err := traits.Orders(e.Ctx, e.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	for range 12 {
		q := randomSpan(rng, start)
		r, err := an.Revenue(e.Ctx, e.Tenant, q)
		if err != nil {
			t.Fatalf("revenue %+v: %v", q, err)
		}
		// From scratch: the orders in each bucket and their values in
		// millionths, as integers.
		wantOrders, wantRevenue := make([]int64, r.Span.Len()), make([]int64, r.Span.Len())
		for _, x := range all {
			if x.name != settings.OrderEvent {
				continue
			}
			if i := bucketOf(r.Span, x.at); i >= 0 {
				v, _ := agg.NumberAt(x.props, settings.RevenueProperty)
				wantOrders[i]++
				wantRevenue[i] += int64(math.Round(v * 1e6))
			}
		}
		if r.OrderEvent != settings.OrderEvent || r.Property != settings.RevenueProperty {
			t.Fatalf("revenue under %s/%s, settings %+v", r.OrderEvent, r.Property, settings)
		}
		for i, b := range r.Buckets {
			if b.Orders != wantOrders[i] || b.Revenue != wantRevenue[i] {
				t.Fatalf("revenue %+v under %+v: bucket %d: %d orders worth %d, from scratch %d worth %d", q, settings, i, b.Orders, b.Revenue, wantOrders[i], wantRevenue[i])
			}
		}
		v, err := an.ActiveProfiles(e.Ctx, e.Tenant, q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		// From scratch: the distinct owners of the events in each bucket.
		want := make([]map[string]bool, v.Span.Len())
		total := map[string]bool{}
		for _, x := range all {
			b := bucketOf(v.Span, x.at)
			if b < 0 {
				continue
			}
			if want[b] == nil {
				want[b] = map[string]bool{}
			}
			want[b][x.profile] = true
			total[x.profile] = true
		}
		if v.Total != int64(len(total)) {
			t.Fatalf("active %+v: total %d, from scratch %d", q, v.Total, len(total))
		}
		for i, n := range v.Buckets {
			if n != int64(len(want[i])) {
				t.Fatalf("active %+v: bucket %d: %d, from scratch %d", q, i, n, len(want[i]))
			}
		}
	}
	for range 12 {
		q := analytics.VolumeQuery{
			SeriesQuery: randomSpan(rng, start),
			GroupBy:     analytics.GroupBy(rng.IntN(4)),
			Top:         1 + rng.IntN(4),
		}
		if q.GroupBy == analytics.ByProperty {
			q.Property = []string{"revenue", "amount", "amount.value"}[rng.IntN(3)]
		}
		if rng.IntN(3) == 0 {
			q.Names = []string{names[rng.IntN(len(names))], names[rng.IntN(len(names))]}
		}
		if rng.IntN(3) == 0 {
			q.Channels = []string{channels[rng.IntN(len(channels))]}
		}
		v, err := an.EventVolume(e.Ctx, e.Tenant, q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		// From scratch: each event's bucket by the edges, its group by
		// name or channel.
		want := map[string][]int64{}
		var total int64
		for _, x := range all {
			if len(q.Names) > 0 && !slices.Contains(q.Names, x.name) || len(q.Channels) > 0 && !slices.Contains(q.Channels, x.channel) {
				continue
			}
			b := bucketOf(v.Span, x.at)
			if b < 0 {
				continue
			}
			g := ""
			switch q.GroupBy {
			case analytics.ByName:
				g = x.name
			case analytics.ByChannel:
				g = x.channel
			case analytics.ByProperty:
				g = propertyKey(rule.Lookup(x.props, q.Property))
			}
			if want[g] == nil {
				want[g] = make([]int64, len(v.Span.Bounds)-1)
			}
			want[g][b]++
			total++
		}
		if v.Total != total {
			t.Fatalf("%+v: total %d, from scratch %d", q, v.Total, total)
		}
		for i, bk := range v.Buckets {
			var sum int64
			for _, c := range want {
				sum += c[i]
			}
			if bk.Total != sum {
				t.Fatalf("%+v: bucket %d total %d, from scratch %d", q, i, bk.Total, sum)
			}
		}
		if q.GroupBy == analytics.NoGroup {
			if len(v.Groups) != 0 {
				t.Fatalf("ungrouped series has groups %+v", v.Groups)
			}
			continue
		}
		named := 0
		for j, g := range v.Groups {
			if g.Other {
				if j != len(v.Groups)-1 || len(want)-named <= 0 {
					t.Fatalf("%+v: other group at %d of %d, %d groups in all", q, j, len(v.Groups), len(want))
				}
				continue
			}
			named++
			key := g.Key
			if q.GroupBy == analytics.ByProperty {
				key = propertyKey(g.Value, !g.Null)
			}
			for i, bk := range v.Buckets {
				if bk.Counts[j] != want[key][i] {
					t.Fatalf("%+v: group %q bucket %d: %d, from scratch %d", q, key, i, bk.Counts[j], want[key][i])
				}
			}
		}
		if named != min(q.Top, len(want)) {
			t.Fatalf("%+v: %d groups named, want %d of %d", q, named, min(q.Top, len(want)), len(want))
		}
		// The named groups are the largest, largest first, and other
		// holds the rest.
		totals := map[string]int64{}
		for k, c := range want {
			for _, n := range c {
				totals[k] += n
			}
		}
		var namedSum, largestLeft int64
		listed := map[string]bool{}
		for j, g := range v.Groups {
			if g.Other {
				continue
			}
			key := g.Key
			if q.GroupBy == analytics.ByProperty {
				key = propertyKey(g.Value, !g.Null)
			}
			listed[key] = true
			namedSum += g.Total
			if g.Total != totals[key] || j > 0 && g.Total > v.Groups[j-1].Total {
				t.Fatalf("%+v: group %q total %d (from scratch %d) out of order: %+v", q, key, g.Total, totals[key], v.Groups)
			}
		}
		for k, n := range totals {
			if !listed[k] {
				largestLeft = max(largestLeft, n)
			}
		}
		if len(v.Groups) == 0 {
			continue
		}
		if last := v.Groups[len(v.Groups)-1]; last.Other {
			if last.Total != v.Total-namedSum {
				t.Fatalf("%+v: other holds %d, the rest is %d", q, last.Total, v.Total-namedSum)
			}
			if named > 0 && v.Groups[named-1].Total < largestLeft {
				t.Fatalf("%+v: a group of %d left out, the smallest named has %d", q, largestLeft, v.Groups[named-1].Total)
			}
		}
	}
}

// randomSpan is a series' span: any interval, in zones with DST and
// half-hour offsets, within the stream's 40 days and a little around.
func randomSpan(rng *rand.Rand, start time.Time) analytics.SeriesQuery {
	zones := []string{"UTC", "Europe/Lisbon", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe"}
	q := analytics.SeriesQuery{
		Since:    start.Add(-time.Duration(rng.Int64N(int64(45 * 24 * time.Hour)))),
		Interval: analytics.Interval(rng.IntN(4)),
		TimeZone: zones[rng.IntN(len(zones))],
	}
	q.Until = q.Since.Add(time.Duration(1+rng.Int64N(int64(20*24*time.Hour))) + time.Hour)
	if q.Interval == analytics.Hour {
		q.Until = q.Since.Add(time.Duration(1+rng.Int64N(int64(30*24*time.Hour)))%(900*time.Hour) + time.Minute)
	}
	return q
}

// bucketOf is the bucket of sp at falls in, -1 outside, found edge by
// edge (not as the package finds it).
func bucketOf(sp analytics.Span, at time.Time) int {
	for i := 0; i+1 < len(sp.Bounds); i++ {
		if !at.Before(sp.Bounds[i]) && at.Before(sp.Bounds[i+1]) {
			return i
		}
	}
	return -1
}

// doneMerges lists the ids of the workspace's merges that took effect.
func doneMerges(t *testing.T, e *apptest.Env) []string {
	t.Helper()
	var done []string
	recs, err := e.Tenant.C(identity.Merges).Find(e.Ctx, store.Query{Index: store.ByID})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range recs {
		if d.Raw.Lookup("kind").StringValue() == identity.KindMerge && d.Raw.Lookup("status").StringValue() == "done" {
			done = append(done, d.Raw.Lookup("_id").StringValue())
		}
	}
	return done
}

// propertyKey names a property's value for a from-scratch count: the
// events without it (or with null) together, the others by their JSON.
func propertyKey(v any, ok bool) string {
	if !ok || v == nil {
		return "(none)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// A series by property walks every stored event: no live tile of it.
func TestLiveVolumeRefusesProperty(t *testing.T) {
	e := apptest.New(t, time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC))
	_, err := e.Services.Analytics.LiveVolume(e.Ctx, nil, e.Tenant, analytics.VolumeQuery{SeriesQuery: analytics.SeriesQuery{Interval: analytics.Day}, GroupBy: analytics.ByProperty, Property: "plan", Top: 10})
	if ae, ok := apperr.As(err); !ok || ae.Code != apperr.BadUserInput || ae.Field != "groupBy" {
		t.Fatalf("got %v, want BAD_USER_INPUT on groupBy", err)
	}
}
