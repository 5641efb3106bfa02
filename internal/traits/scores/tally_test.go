package scores

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestTallyMatchesRecount adds shuffled events one by one, as ingest does
// with a moving clock, and compares with a count from scratch at the end.
func TestTallyMatchesRecount(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	base := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for round := range 200 {
		type ev struct {
			at    time.Time
			order bool
			value float64
		}
		var evs []ev
		for range rng.IntN(150) {
			evs = append(evs, ev{at: base.Add(-time.Duration(rng.IntN(200*24)) * time.Hour).Add(time.Duration(rng.IntN(3600)) * time.Second),
				order: rng.IntN(4) == 0, value: float64(rng.IntN(20000)) / 100})
		}
		var tl Tally
		now := base.Add(-48 * time.Hour)
		for _, e := range evs {
			now = now.Add(time.Duration(rng.IntN(60)) * time.Minute)
			tl.Add(e.at, e.order, e.value, now)
		}
		// The reference at the final clock.
		var want Tally
		days := map[int64]int64{}
		for _, e := range evs {
			if e.order {
				want.Orders++
				want.Revenue += e.value
				if want.FirstOrder.IsZero() || e.at.Before(want.FirstOrder) {
					want.FirstOrder = e.at
				}
				if e.at.After(want.LastOrder) {
					want.LastOrder = e.at
				}
			}
			days[DayOf(e.at)]++
		}
		if tl.Orders != want.Orders || !tl.FirstOrder.Equal(want.FirstOrder) || !tl.LastOrder.Equal(want.LastOrder) ||
			abs(tl.Revenue-want.Revenue) > 1e-6 {
			t.Fatalf("round %d: orders %+v, want %+v", round, tl, want)
		}
		// Engagement reads only the window: compare the weighted sums.
		var ref []Day
		for d, n := range days {
			ref = append(ref, Day{Day: d, N: n})
		}
		a1, n1 := weighted(tl.Activity, now)
		a2, n2 := weighted(ref, now)
		if n1 != n2 || abs(a1-a2) > 1e-9 {
			t.Fatalf("round %d: activity %v/%d, want %v/%d", round, a1, n1, a2, n2)
		}
		if len(tl.Activity) > MaxActivityEntries {
			t.Fatalf("round %d: %d activity entries", round, len(tl.Activity))
		}
		for i := 1; i < len(tl.Activity); i++ {
			if tl.Activity[i-1].Day >= tl.Activity[i].Day {
				t.Fatalf("round %d: activity not sorted: %v", round, tl.Activity)
			}
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestTallyCodecRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for i := range 300 {
		var tl Tally
		tl.Rev = int64(rng.IntN(3))
		for range rng.IntN(400) {
			tl.Add(now.Add(-time.Duration(rng.IntN(100*24*60))*time.Minute), rng.IntN(3) == 0, rng.Float64()*500-50, now)
		}
		if i%7 == 0 {
			tl.Activity = append(tl.Activity, Day{Day: DayOf(now) + 1, N: 1 << 40})
		}
		raw, err := bson.Marshal(tl)
		if err != nil {
			t.Fatal(err)
		}
		var got Tally
		if err := bson.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(&tl) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, tl)
		}
		// Inside a profile-like document, through reflection.
		type holder struct {
			T *Tally `bson:"tally,omitempty"`
		}
		raw, err = bson.Marshal(holder{T: &tl})
		if err != nil {
			t.Fatal(err)
		}
		var h holder
		if err := bson.Unmarshal(raw, &h); err != nil || !h.T.Equal(&tl) {
			t.Fatalf("in a document: %v %+v", err, h.T)
		}
	}
	// A daily user's 90 days stay small.
	var tl Tally
	for d := range 90 {
		for range 3 {
			tl.Add(now.Add(-time.Duration(d)*24*time.Hour), d%10 == 0, 99.5, now)
		}
	}
	raw, _ := bson.Marshal(tl)
	if len(raw) > 300 {
		t.Errorf("a daily user's tally takes %d bytes", len(raw))
	}
	t.Logf("daily user's tally: %d bytes", len(raw))
}

func TestTallyCorruptActivityIsAnError(t *testing.T) {
	for _, blob := range [][]byte{{0x80}, {0x02}, {0x02, 0x01, 0x00, 0x01}} {
		raw, _ := bson.Marshal(bson.D{{Key: "a", Value: bson.Binary{Data: blob}}})
		var tl Tally
		if err := bson.Unmarshal(raw, &tl); err == nil {
			t.Errorf("%x decoded to %+v", blob, tl)
		}
	}
	raw, _ := bson.Marshal(bson.D{{Key: "o", Value: "many"}})
	var tl Tally
	if err := bson.Unmarshal(raw, &tl); err == nil {
		t.Error("a string order count decoded")
	}
}

// TestMergeTallies: the tally of a merged person is the tally of all
// their events, whichever side counted each.
func TestMergeTallies(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for round := range 300 {
		var a, b, all Tally
		for range rng.IntN(120) {
			at := now.Add(-time.Duration(rng.IntN(100*24)) * time.Hour)
			order, v := rng.IntN(3) == 0, float64(rng.IntN(5000))/100
			all.Add(at, order, v, now)
			if rng.IntN(2) == 0 {
				a.Add(at, order, v, now)
			} else {
				b.Add(at, order, v, now)
			}
		}
		got := MergeTallies(&a, &b)
		if got.Orders != all.Orders || abs(got.Revenue-all.Revenue) > 1e-6 || !got.FirstOrder.Equal(all.FirstOrder) ||
			!got.LastOrder.Equal(all.LastOrder) || !slices.Equal(got.Activity, all.Activity) {
			t.Fatalf("round %d: merged %+v, want %+v", round, got, all)
		}
		if a2 := MergeTallies(&a, nil); !a2.Equal(&a) {
			t.Fatalf("round %d: merge with nothing %+v", round, a2)
		}
	}
	if MergeTallies(nil, nil) != nil {
		t.Fatal("two empty tallies merge to a tally")
	}
	if got := MergeTallies(&Tally{Rev: 1, Orders: 1}, &Tally{Rev: 2, Orders: 1}); got != nil {
		t.Fatalf("tallies of different settings merged: %+v", got)
	}
}

// Equal tells whether two tallies hold the same counts.
func (t *Tally) Equal(o *Tally) bool {
	if t == nil || o == nil {
		return t == o
	}
	return t.Rev == o.Rev && t.Orders == o.Orders && t.Revenue == o.Revenue && t.FirstOrder.Equal(o.FirstOrder) &&
		t.LastOrder.Equal(o.LastOrder) && slices.Equal(t.Activity, o.Activity)
}
