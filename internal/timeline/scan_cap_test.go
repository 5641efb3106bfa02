package timeline_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/timeline"
)

// A filtered read scans at most a bounded number of stored items (Read's
// maxScan, 5,000) per page. When the filter rejects more than that, the
// page comes back short, and it must still say hasNextPage: true so the
// client continues from its last item and, page by page, reaches the
// matching items beyond the cap (issue 15.2).
//
// Layout, newest first (one second apart): 3 "wanted", 4,990 noise,
// 2 "wanted", 2,000 noise, 5 "wanted". A page of 10 reaches the cap
// before the oldest 5 wanted items, so it is short; each gap after a
// returned item is under the cap, so following the cursor gets them all.
//
// A run of more than the cap of rejected items right after the client's
// position (or from the top) is TestReadFilteredScanCapResumesPastLongGap.
func TestReadFilteredScanCapSaysHasNext(t *testing.T) {
	e := newEnv(t)
	const wanted = "wanted"
	runs := []struct {
		name string
		n    int
	}{{wanted, 3}, {"noise", 4990}, {wanted, 2}, {"noise", 2000}, {wanted, 5}}
	var in []timeline.TrackInput
	var want []string
	i := 0
	for _, r := range runs {
		for range r.n {
			ev := good(fmt.Sprintf("m%04d", i))
			ev.Name = r.name
			ev.OccurredAt = at(-time.Duration(i) * time.Second) // m0000 newest
			if r.name == wanted {
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
	f := timeline.Filter{Names: []string{wanted}}

	page, err := timeline.Read(e.ctx, e.tn, pid, 10, "", f)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) == 0 || len(page.Items) >= 10 {
		t.Fatalf("setup: first page has %d items, want a short page (scan cap reached)", len(page.Items))
	}
	if !page.HasNext {
		t.Fatalf("page cut short by the scan cap (%d of 10 items, %d matching items left) says HasNext false",
			len(page.Items), len(want)-len(page.Items))
	}
	if got := messageIDs(page.Items); !reflect.DeepEqual(got, want[:len(got)]) {
		t.Fatalf("first page %v, want a prefix of %v", got, want)
	}
	// Following the cursor reaches every matching item, in order.
	if got := messageIDs(readAll(t, e, pid, 10, f)); !reflect.DeepEqual(got, want) {
		t.Fatalf("paged by 10:\n got %v\nwant %v", got, want)
	}
}

// A run of more rejected items than the scan cap right after the client's
// position (or at the top of the read) gives a page with no items. It must
// still say where to continue, or the matching items beyond the run are
// unreachable: Read then returns the key of the last item it scanned
// (issue 15.2).
//
// Layout, newest first (one second apart): 3 "wanted", 5,100 noise,
// 5 "wanted".
func TestReadFilteredScanCapResumesPastLongGap(t *testing.T) {
	e := newEnv(t)
	const wanted = "wanted"
	runs := []struct {
		name string
		n    int
	}{{wanted, 3}, {"noise", 5100}, {wanted, 5}}
	var in []timeline.TrackInput
	var want []string
	var times []time.Time
	i := 0
	for _, r := range runs {
		for range r.n {
			ev := good(fmt.Sprintf("m%04d", i))
			ev.Name = r.name
			ev.OccurredAt = at(-time.Duration(i) * time.Second) // m0000 newest
			if r.name == wanted {
				want = append(want, ev.MessageID)
			}
			times = append(times, *ev.OccurredAt)
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
	f := timeline.Filter{Names: []string{wanted}}

	// The first page of 3 is cut short by the cap inside the noise, so
	// it carries a Resume position past its last item.
	page, err := timeline.Read(e.ctx, e.tn, pid, 3, "", f)
	if err != nil {
		t.Fatal(err)
	}
	if got := messageIDs(page.Items); !reflect.DeepEqual(got, want[:3]) || !page.HasNext || page.Resume == "" {
		t.Fatalf("first page %v HasNext %v Resume %q, want %v, HasNext and a position", got, page.HasNext, page.Resume, want[:3])
	}
	// Continuing from its last edge's cursor (any edge cursor is a valid
	// after) scans only noise: the page is empty, says HasNext, and
	// carries the position where its scan stopped.
	page, err = timeline.Read(e.ctx, e.tn, pid, 3, page.Cursors[2], f)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 0 || !page.HasNext || page.Resume == "" {
		t.Fatalf("page over the noise: %d items, HasNext %v, Resume %q; want none, true and a position",
			len(page.Items), page.HasNext, page.Resume)
	}

	// Page sizes below, at and above the number of matching items: every
	// walk reaches all 8, and readAll fails on a page that says HasNext
	// without a position to continue from.
	for _, size := range []int{1, 2, 3, 10, 100} {
		if got := messageIDs(readAll(t, e, pid, size, f)); !reflect.DeepEqual(got, want) {
			t.Fatalf("paged by %d:\n got %v\nwant %v", size, got, want)
		}
	}

	// From the top: until m0002's time leaves the 5,100 noise items first.
	until := times[2]
	top := timeline.Filter{Names: []string{wanted}, Until: &until}
	if got := messageIDs(readAll(t, e, pid, 10, top)); !reflect.DeepEqual(got, want[3:]) {
		t.Fatalf("paged from a noisy top:\n got %v\nwant %v", got, want[3:])
	}
}
