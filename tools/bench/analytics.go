package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/halo-cdp/halo/internal/analytics"
	"github.com/halo-cdp/halo/internal/app"
)

// runAnalytics measures the dashboard figures on the dataset: how long a
// server started on it takes to fold all its events into rollups (the
// copy's rollups are removed first, as if they were stored before rollups
// existed: a backlog), then a dashboard query
// (a 90-day daily event volume by name in a zone with DST, the profile
// total and a segment's member total) and the event volume alone, from
// 4 clients.
func runAnalytics(ctx context.Context, h *harness) error {
	dir, err := h.fresh()
	if err != nil {
		return err
	}
	if err := dropRollups(ctx, dir); err != nil {
		return err
	}
	// The log file is appended to from run to run: only what this server
	// writes counts.
	var from int64
	if fi, err := os.Stat(filepath.Join(h.dir, "analytics.log")); err == nil {
		from = fi.Size()
	}
	t0 := time.Now()
	srv, err := h.start(ctx, dir, "analytics")
	if err != nil {
		return err
	}
	defer srv.stop()
	// The dataset's events were stored by the harness's build, perhaps by
	// a server without rollups: the first series read has the roller fold
	// the workspace (the one way it learns of a workspace no write names).
	c := h.client(srv)
	if err := c.do(ctx, `{ eventVolume(since: "2026-01-01T00:00:00Z", until: "2026-01-02T00:00:00Z", interval: DAY) { total } }`, nil, nil); err != nil {
		return err
	}
	line, err := waitLog(ctx, srv.log.Name(), from, "analytics: rollups current", `"workspace":"`+benchWorkspace+`"`, 15*time.Minute)
	if err != nil {
		return err
	}
	h.add(result{area: "analytics", what: "rollups of every event of the dataset (a backlog: the copy's rollups removed), folded after the server starts",
		figure: fmt.Sprintf("%.0f s (%s)", time.Since(t0).Seconds(), folded(line))})

	var segs struct {
		Segments struct{ Nodes []struct{ ID string } }
	}
	if err := c.do(ctx, `{ segments(first: 1) { nodes { id } } }`, nil, &segs); err != nil {
		return err
	}
	if len(segs.Segments.Nodes) == 0 {
		return fmt.Errorf("the dataset has no segment")
	}
	until := h.opts.data.Anchor
	vars := map[string]any{"s": until.Add(-90 * 24 * time.Hour).Format(time.RFC3339), "u": until.Format(time.RFC3339), "seg": segs.Segments.Nodes[0].ID}
	const volume = `eventVolume(since: $s, until: $u, interval: DAY, timeZone: "Europe/Lisbon", groupBy: NAME) { total groups { key total } buckets { start total counts } }`
	dashboard := `query($s: Time!, $u: Time!, $seg: ID!) { ` + volume + `
	  profiles(first: 1) { totalCount }
	  segment(id: $seg) { members(first: 1) { totalCount } } }`
	var first struct {
		EventVolume struct {
			Total  int
			Groups []struct{ Key string }
		}
		Profiles struct{ TotalCount int }
	}
	if err := c.do(ctx, dashboard, vars, &first); err != nil {
		return err
	}
	d := h.opts.duration / 3
	for _, q := range []struct{ what, query string }{
		{fmt.Sprintf("dashboard query (90-day daily eventVolume by name in Europe/Lisbon, %d events in %d groups, + profiles and segment members totalCount), 4 clients, %s: p50 / p99, requests/s",
			first.EventVolume.Total, len(first.EventVolume.Groups), d), dashboard},
		{"eventVolume alone, the same series: p50 / p99, requests/s", `query($s: Time!, $u: Time!) { ` + volume + ` }`},
	} {
		v := vars
		if !strings.Contains(q.query, "$seg)") {
			v = map[string]any{"s": vars["s"], "u": vars["u"]}
		}
		lat, err := hammer(ctx, c, q.query, v, 4, d)
		if err != nil {
			return err
		}
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		h.add(result{area: "analytics", what: q.what, target: "p99 < 20 ms",
			figure: fmt.Sprintf("%s / %s, %.0f/s", ms(p50), ms(p99), float64(len(lat))/d.Seconds()), ok: verdict(p99 < 20*time.Millisecond)})
	}
	if err := wholeDashboard(ctx, h, c, vars["seg"].(string), d); err != nil {
		return err
	}
	if err := activeSeries(ctx, h, c, d); err != nil {
		return err
	}
	if err := historySeries(ctx, h, c, d); err != nil {
		return err
	}
	if err := pathReads(ctx, h, c, vars); err != nil {
		return err
	}
	h.add(result{area: "analytics", what: "server peak RSS", target: "< 300 MiB", figure: mib(srv.peak()), ok: verdict(srv.peak() < 300<<20)})
	return nil
}

// dashboardQuery is the dashboard of docs/analytics.md: tiles (people, a
// segment's members, active people, orders and revenue) and series over
// 30 days in Europe/Lisbon.
const dashboardQuery = `query Dashboard($since: Time!, $until: Time!, $vip: ID!) {
  people: profiles(first: 0) { totalCount }
  vip: segment(id: $vip) { name members(first: 0) { totalCount } }
  active: activeProfiles(since: $since, until: $until, interval: DAY, timeZone: "Europe/Lisbon") {
    total buckets { start active }
  }
  sales: revenue(since: $since, until: $until, interval: DAY, timeZone: "Europe/Lisbon") {
    orders revenue averageOrderValue buckets { start orders revenue }
  }
  traffic: eventVolume(since: $since, until: $until, interval: DAY, timeZone: "Europe/Lisbon",
                       groupBy: NAME, top: 5) {
    total groups { key other total } buckets { start counts }
  }
}`

// wholeDashboard measures dashboardQuery over the dataset's last 30 days
// from 4 clients for d.
func wholeDashboard(ctx context.Context, h *harness, c *client, segment string, d time.Duration) error {
	until := h.opts.data.Anchor
	vars := map[string]any{"since": until.Add(-30 * 24 * time.Hour).Format(time.RFC3339), "until": until.Format(time.RFC3339), "vip": segment}
	var first struct {
		Sales  struct{ Orders int }
		Active struct{ Total int }
	}
	if err := c.do(ctx, dashboardQuery, vars, &first); err != nil {
		return err
	}
	lat, err := hammer(ctx, c, dashboardQuery, vars, 4, d)
	if err != nil {
		return err
	}
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	h.add(result{area: "analytics", what: fmt.Sprintf("the dashboard of docs/analytics.md, 30 days (%d active, %d orders), 4 clients: p50 / p99, requests/s", first.Active.Total, first.Sales.Orders),
		figure: fmt.Sprintf("%s / %s, %.0f/s", ms(p50), ms(p99), float64(len(lat))/d.Seconds())})
	return nil
}

// activeSeries measures active profiles over the dataset's last 30 days
// (daily: DAU) and 90 days (weekly: WAU) in Europe/Lisbon, from 4 clients
// for d each.
func activeSeries(ctx context.Context, h *harness, c *client, d time.Duration) error {
	until := h.opts.data.Anchor
	for _, q := range []struct {
		what     string
		days     int
		interval string
		target   bool // the issue's: 30 days
	}{
		{"activeProfiles, 30 days daily (DAU) in Europe/Lisbon", 30, "DAY", true},
		{"activeProfiles, 90 days weekly (WAU) in Europe/Lisbon", 90, "WEEK", false},
	} {
		vars := map[string]any{"s": until.Add(-time.Duration(q.days) * 24 * time.Hour).Format(time.RFC3339), "u": until.Format(time.RFC3339), "i": q.interval}
		const query = `query($s: Time!, $u: Time!, $i: Interval!) { activeProfiles(since: $s, until: $u, interval: $i, timeZone: "Europe/Lisbon") { total buckets { start active } } }`
		var first struct{ ActiveProfiles struct{ Total int } }
		if err := c.do(ctx, query, vars, &first); err != nil {
			return err
		}
		lat, err := hammer(ctx, c, query, vars, 4, d)
		if err != nil {
			return err
		}
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		r := result{area: "analytics", what: fmt.Sprintf("%s, %d profiles active in all, 4 clients: p50 / p99, requests/s", q.what, first.ActiveProfiles.Total),
			figure: fmt.Sprintf("%s / %s, %.0f/s", ms(p50), ms(p99), float64(len(lat))/d.Seconds())}
		if q.target {
			r.target, r.ok = "p99 < 50 ms", verdict(p99 < 50*time.Millisecond)
		}
		h.add(r)
	}
	return nil
}

// pathReads measures the reads that follow people through every event (a
// funnel, a retention grid, top values) over the dataset's 90 days, one
// client, a few requests each: they read the whole events index.
func pathReads(ctx context.Context, h *harness, c *client, vars map[string]any) error {
	span := `since: $s, until: $u`
	for _, q := range []struct{ what, query string }{
		{"funnel product_viewed → added_to_cart → order_completed within 7 days, 90 days",
			`query($s: Time!, $u: Time!) { funnel(steps: [{name: "product_viewed"}, {name: "added_to_cart"}, {name: "order_completed"}], within: {amount: 7, unit: DAYS}, ` + span + `) { steps { people medianSecondsFromPrevious } } }`},
		{"retention page_viewed → order_completed, weekly cohorts over 90 days, 8 periods, Europe/Lisbon",
			`query($s: Time!, $u: Time!) { retention(start: {name: "page_viewed"}, returning: {name: "order_completed"}, ` + span + `, interval: WEEK, timeZone: "Europe/Lisbon", periods: 8) { cohorts { people returned } } }`},
		{"topValues of order_completed's sku, 90 days",
			`query($s: Time!, $u: Time!) { topValues(event: "order_completed", property: "sku", ` + span + `) { events values { value count } } }`},
		{"eventVolume of order_completed by PROPERTY sku, 90 days daily in Europe/Lisbon, top 5",
			`query($s: Time!, $u: Time!) { eventVolume(` + span + `, interval: DAY, timeZone: "Europe/Lisbon", names: ["order_completed"], groupBy: PROPERTY, property: "sku", top: 5) { total groups { key total } buckets { counts } } }`},
	} {
		v := map[string]any{"s": vars["s"], "u": vars["u"]}
		var lat []time.Duration
		for range 5 {
			t := time.Now()
			if err := c.do(ctx, q.query, v, nil); err != nil {
				return err
			}
			lat = append(lat, time.Since(t))
		}
		slices.Sort(lat)
		h.add(result{area: "analytics", what: q.what + ", 1 client, 5 requests: median / max", target: "< 2 s",
			figure: fmt.Sprintf("%s / %s", ms(lat[2]), ms(lat[4])), ok: verdict(lat[4] < 2*time.Second)})
	}
	return nil
}

// historySeries measures the series replayed from histories, each a
// 90-day daily series in Europe/Lisbon ending now, from 4 clients for d: the size of
// the dataset's largest segment, the profile growth, and marketing's
// consent rates (the dataset records no consent: that series reads the
// profile counts and an empty log).
func historySeries(ctx context.Context, h *harness, c *client, d time.Duration) error {
	var segs struct {
		Segments struct {
			Nodes []struct {
				ID      string
				Name    string
				Members struct{ TotalCount int }
			}
		}
	}
	if err := c.do(ctx, `{ segments(first: 100) { nodes { id name members(first: 0) { totalCount } } } }`, nil, &segs); err != nil {
		return err
	}
	largest := segs.Segments.Nodes[0]
	for _, n := range segs.Segments.Nodes {
		if n.Members.TotalCount > largest.Members.TotalCount {
			largest = n
		}
	}
	span := `since: $s, until: $u, interval: DAY, timeZone: "Europe/Lisbon"`
	for _, q := range []struct{ what, query string }{
		{fmt.Sprintf("segmentSize, 90 days daily, of the largest segment (%q, %d members)", largest.Name, largest.Members.TotalCount),
			`query($s: Time!, $u: Time!, $seg: ID!) { segmentSize(segmentId: $seg, ` + span + `) { buckets { start size entered exited } } }`},
		{"profileGrowth, 90 days daily", `query($s: Time!, $u: Time!) { profileGrowth(` + span + `) { profiles totals { newProfiles newlyKnown merges erasures } buckets { start profiles figures { newProfiles newlyKnown merges erasures } } } }`},
		{"consentRates (marketing, EMAIL), 90 days daily", `query($s: Time!, $u: Time!) { consentRates(purpose: "marketing", channel: EMAIL, ` + span + `) { buckets { start granted denied expired profiles contactable contactableShare } } }`},
	} {
		// The histories are written on the build's wall clock, after the
		// dataset's anchor: the 90 days end now.
		now := time.Now().UTC()
		v := map[string]any{"s": now.Add(-90 * 24 * time.Hour).Format(time.RFC3339), "u": now.Format(time.RFC3339)}
		if strings.Contains(q.query, "$seg") {
			v["seg"] = largest.ID
		}
		lat, err := hammer(ctx, c, q.query, v, 4, d)
		if err != nil {
			return err
		}
		p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
		h.add(result{area: "analytics", what: q.what + ", 4 clients: p50 / p99, requests/s",
			figure: fmt.Sprintf("%s / %s, %.0f/s", ms(p50), ms(p99), float64(len(lat))/d.Seconds())})
	}
	return nil
}

// dropRollups removes the rollups and the fold position of the dataset
// copy in dir: the server then folds every event again.
func dropRollups(ctx context.Context, dir string) error {
	st, err := openStore(ctx, dir, app.Collections)
	if err != nil {
		return err
	}
	defer st.Close(context.Background())
	return analytics.Refold(ctx, st, benchWorkspace)
}

// folded is the "folded" attribute of the server's JSON log line.
func folded(line string) string {
	var l struct{ Folded int }
	if err := json.Unmarshal([]byte(line), &l); err != nil {
		return "?"
	}
	return fmt.Sprintf("%d items", l.Folded)
}

// hammer sends query from workers clients, each one after the other,
// for d, and returns every latency, sorted; any error ends it.
func hammer(ctx context.Context, c *client, query string, vars map[string]any, workers int, d time.Duration) ([]time.Duration, error) {
	var (
		mu    sync.Mutex
		lat   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	end := time.Now().Add(d)
	for range workers {
		wg.Go(func() {
			for time.Now().Before(end) {
				t := time.Now()
				err := c.do(ctx, query, vars, nil)
				took := time.Since(t)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				lat = append(lat, took)
				stop := first != nil
				mu.Unlock()
				if stop {
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	slices.Sort(lat)
	return lat, nil
}

// waitLog waits until the log file at path has, after its first from
// bytes, a line holding msg and attr, and returns it.
func waitLog(ctx context.Context, path string, from int64, msg, attr string, patience time.Duration) (string, error) {
	deadline := time.Now().Add(patience)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		b = b[min(from, int64(len(b))):]
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, msg) && strings.Contains(line, attr) {
				return line, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no %q in %s after %s", msg, path, patience)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
