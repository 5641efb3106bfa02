package timeline_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/timeline"
)

// TestReadPagesThroughTiedTimestamps: 250 events, two per timestamp, read
// in pages of 50 by following each page's position: every event once,
// newest first, full pages until the last, which says there is no more.
// Ties are broken by id, not lost at a page boundary. A window with a
// name and a kind filter keeps [since, until).
func TestReadPagesThroughTiedTimestamps(t *testing.T) {
	e := newEnv(t)
	base := t0.Add(-48 * time.Hour)
	user := []identity.Identifier{{Type: identity.UserID, Value: "pager"}}
	var in []timeline.TrackInput
	for i := 0; i < 250; i++ {
		at := base.Add(time.Duration(i/2) * time.Minute)
		in = append(in, timeline.TrackInput{MessageID: fmt.Sprintf("ev-%03d", i), Identifiers: user,
			Name: "page_viewed", OccurredAt: &at, Properties: map[string]any{"i": i}})
	}
	var pid string
	for i := 0; i < len(in); i += 125 {
		pid = e.track(t, "inputs", in[i:i+125]...)[0].Profile.ID
	}

	seen := map[string]bool{}
	var last time.Time
	after := ""
	pages := 0
	for {
		page, err := timeline.Read(e.ctx, e.tn, pid, 50, after, timeline.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, ev := range page.Items {
			if seen[ev.MessageID] {
				t.Fatalf("page %d repeats %s", pages, ev.MessageID)
			}
			seen[ev.MessageID] = true
			if !last.IsZero() && ev.OccurredAt.After(last) {
				t.Fatalf("not newest first: %s after %s", ev.OccurredAt, last)
			}
			last = ev.OccurredAt
		}
		if !page.HasNext {
			break
		}
		if len(page.Items) != 50 {
			t.Fatalf("page %d has %d items", pages, len(page.Items))
		}
		after = page.Next()
	}
	if len(seen) != 250 || pages != 5 {
		t.Fatalf("walked %d events in %d pages, want 250 in 5", len(seen), pages)
	}

	since, until := base.Add(10*time.Minute), base.Add(20*time.Minute)
	page, err := timeline.Read(e.ctx, e.tn, pid, 100, "", timeline.Filter{
		Since: &since, Until: &until, Names: []string{"page_viewed"}, Kinds: []string{timeline.KindEvent}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(page.Items); n != 20 {
		t.Fatalf("window [10m,20m) has %d events, want 20", n)
	}
}

// TestReadFilteredScanCapWalkFromAnEdge: a client may continue from any
// edge's cursor, not only from a page's end. From the last matching item
// before a run of more rejected items than the scan cap, the next page
// is empty but says where its scan stopped, and following that position
// reaches the matching items beyond the run (issue 15.2).
//
// Layout, newest first (one second apart): 2 "wanted", 5,100 noise,
// 3 "wanted".
func TestReadFilteredScanCapWalkFromAnEdge(t *testing.T) {
	e := newEnv(t)
	runs := []struct {
		name string
		n    int
	}{{"wanted", 2}, {"noise", 5100}, {"wanted", 3}}
	var in []timeline.TrackInput
	var want []string
	i := 0
	for _, r := range runs {
		for range r.n {
			ev := good(fmt.Sprintf("gap-%04d", i))
			ev.Name = r.name
			ev.OccurredAt = at(-time.Duration(i) * time.Second)
			if r.name == "wanted" {
				want = append(want, ev.MessageID)
			}
			in = append(in, ev)
			i++
		}
	}
	var pid string
	for len(in) > 0 {
		n := min(len(in), timeline.MaxBatch)
		pid = e.track(t, "events", in[:n]...)[0].Profile.ID
		in = in[n:]
	}
	f := timeline.Filter{Names: []string{"wanted"}}
	read := func(after string) timeline.Page {
		t.Helper()
		page, err := timeline.Read(e.ctx, e.tn, pid, 10, after, f)
		if err != nil {
			t.Fatal(err)
		}
		return page
	}
	// walk follows Next() from after while HasNext; it reports whether a
	// page on the way had no items.
	walk := func(after string) (got []string, crossedEmpty bool) {
		t.Helper()
		for pages := 1; ; pages++ {
			if pages > 20 {
				t.Fatalf("pagination does not end; got %v", got)
			}
			page := read(after)
			got = append(got, messageIDs(page.Items)...)
			if !page.HasNext {
				return got, crossedEmpty
			}
			next := page.Next()
			if next == "" {
				t.Fatalf("page %d (%d items) says HasNext but has no position; got %v so far, want %v", pages, len(page.Items), got, want)
			}
			if next == after {
				t.Fatalf("page %d does not move: its position %q is its after", pages, after)
			}
			if len(page.Items) == 0 {
				crossedEmpty = true
			}
			after = next
		}
	}

	if got, _ := walk(""); !reflect.DeepEqual(got, want) {
		t.Fatalf("followed the pages from the top to\n %v\nwant %v", got, want)
	}
	first := read("")
	if got := messageIDs(first.Items); !reflect.DeepEqual(got, want[:2]) || !first.HasNext {
		t.Fatalf("first page %v HasNext %v, want %v and true", got, first.HasNext, want[:2])
	}
	got, crossedEmpty := walk(first.Cursors[1])
	if !reflect.DeepEqual(got, want[2:]) {
		t.Fatalf("followed the pages from %s to\n %v\nwant %v", want[1], got, want[2:])
	}
	if !crossedEmpty {
		t.Fatal("setup: no page was empty, so the run of noise did not reach past the scan cap")
	}
}
