package profile_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

func openTenant(t *testing.T) (context.Context, store.Tenant) {
	t.Helper()
	ctx := t.Context()
	b, err := sqlitestore.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, b, app.Collections)
	if err != nil {
		b.Close(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	return ctx, st.Tenant("ws1")
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func fixture(i int) *profile.Profile {
	p := profile.New(fmt.Sprintf("p%05d", i), t0.Add(time.Duration(i)*time.Second))
	p.Traits = map[string]any{"plan": []string{"free", "pro"}[i%2], "address": map[string]any{"country": "FR", "tags": []any{"a", int64(i)}}, "score": float64(i) / 2}
	p.EventCount = int64(i)
	p.LastSeenAt = t0.Add(time.Duration(i) * time.Minute)
	var c rule.Counter
	for d := 0; d <= i%5; d++ {
		c.Add(t0.Add(-time.Duration(d) * 24 * time.Hour))
	}
	p.Features = map[string]rule.Counter{"f_a": c, "f_b": c}
	return p
}

// DecodeFields reads exactly the asked-for traits and counters, and the
// always-read fields, as Decode reads them.
func TestDecodeFields(t *testing.T) {
	p := fixture(7)
	p.MergingInto = "p00001"
	raw, err := bson.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	full, err := profile.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	got, err := profile.DecodeFields(raw, profile.Fields{Traits: []string{"address.country", "missing", "plan"}, Features: []string{"f_b", "f_none"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != full.ID || got.MergingInto != "p00001" || got.EventCount != 7 ||
		!got.CreatedAt.Equal(full.CreatedAt) || !got.LastSeenAt.Equal(full.LastSeenAt) || !got.FirstSeenAt.Equal(full.FirstSeenAt) || !got.NextEvalAt.Equal(full.NextEvalAt) {
		t.Fatalf("fixed fields: %+v\nwant %+v", got, full)
	}
	wantTraits := map[string]any{"address": full.Traits["address"], "plan": full.Traits["plan"]}
	if !reflect.DeepEqual(got.Traits, wantTraits) {
		t.Fatalf("traits %#v, want %#v", got.Traits, wantTraits)
	}
	if len(got.Features) != 1 || !reflect.DeepEqual(got.Features["f_b"], full.Features["f_b"]) {
		t.Fatalf("features %+v, want only f_b %+v", got.Features, full.Features["f_b"])
	}
	if _, err := profile.DecodeFields(raw[:len(raw)-4], profile.Fields{}); err == nil {
		t.Fatal("truncated document: no error")
	}
	bad, _ := bson.Marshal(bson.D{{Key: "_id", Value: "x"}, {Key: "features", Value: bson.D{{Key: "f_a", Value: bson.D{{Key: "total", Value: "many"}}}}}})
	if _, err := profile.DecodeFields(bad, profile.Fields{Features: []string{"f_a"}}); err == nil {
		t.Fatal("malformed counter: no error")
	}
}

// Scan hands every document over exactly once, pages numbered in order,
// oldest first within and across pages, whatever the worker count.
func TestScanPagesInOrder(t *testing.T) {
	ctx, tn := openTenant(t)
	n := 2*profile.ScanPage + 17
	docs := make([]any, n)
	for i := range docs {
		docs[i] = fixture(i)
	}
	if _, err := tn.C(profile.Profiles).InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 3} {
		var (
			mu    sync.Mutex
			pages = map[int][]string{}
		)
		err := profile.Scan(ctx, tn, workers, func(page int, docs []bson.Raw) error {
			ids := make([]string, len(docs))
			for i, d := range docs {
				ids[i] = d.Lookup("_id").StringValue()
			}
			mu.Lock()
			pages[page] = ids
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(pages) != 3 {
			t.Fatalf("workers %d: %d pages", workers, len(pages))
		}
		var all []string
		for page := 0; page < len(pages); page++ {
			all = append(all, pages[page]...)
		}
		if len(all) != n || !sort.StringsAreSorted(all) || all[0] != "p00000" {
			t.Fatalf("workers %d: %d ids, sorted %v", workers, len(all), sort.StringsAreSorted(all))
		}
	}
}

// An error from fn ends the scan with that error; a cancelled context
// ends it with the context's.
func TestScanStops(t *testing.T) {
	ctx, tn := openTenant(t)
	docs := make([]any, 3*profile.ScanPage)
	for i := range docs {
		docs[i] = fixture(i)
	}
	if _, err := tn.C(profile.Profiles).InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	calls := 0
	err := profile.Scan(ctx, tn, 1, func(int, []bson.Raw) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("fn error: %v after %d calls", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := profile.Scan(cctx, tn, 2, func(int, []bson.Raw) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// At most MaxScans scans run at once; the others wait their turn, and a
// waiting scan gives up with its context.
func TestScanSlots(t *testing.T) {
	ctx, tn := openTenant(t)
	if err := tn.C(profile.Profiles).Insert(ctx, fixture(1)); err != nil {
		t.Fatal(err)
	}
	var (
		mu            sync.Mutex
		running, peak int
		release       = make(chan struct{})
		started       = make(chan struct{}, 10)
		wg            sync.WaitGroup
	)
	const scans = profile.MaxScans + 3
	for range scans {
		wg.Go(func() {
			err := profile.Scan(ctx, tn, 1, func(int, []bson.Raw) error {
				mu.Lock()
				running++
				peak = max(peak, running)
				mu.Unlock()
				started <- struct{}{}
				<-release
				mu.Lock()
				running--
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	for range profile.MaxScans {
		<-started
	}
	// The rest wait: a scan with a short deadline gives up meanwhile.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := profile.Scan(short, tn, 1, func(int, []bson.Raw) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a scan past the bound: %v, want to wait and give up", err)
	}
	close(release)
	wg.Wait()
	if peak != profile.MaxScans {
		t.Fatalf("%d scans ran at once, want %d", peak, profile.MaxScans)
	}
}
