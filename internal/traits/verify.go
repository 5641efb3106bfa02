package traits

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// Verify recomputes from p's stored events what ingest maintains on p for
// this package, and reports each difference: the value at now of every
// computed trait, and the score tally (orders, revenue, first and last
// order, and the activity days the engagement window sees at now), which
// every score is computed from. A definition not backfilled on p yet
// (another revision) is left out: its backfill will overwrite it. It
// reads, never writes.
func (e *Engine) Verify(ctx context.Context, tn store.Tenant, p *profile.Profile, now time.Time) ([]profile.Mismatch, error) {
	cfg, err := e.config(ctx, tn)
	if err != nil {
		return nil, err
	}
	fresh := *p
	fresh.Computed, fresh.Tally = nil, nil
	if err := recomputeFromEvents(ctx, tn, &fresh, cfg.set.Defs, cfg.orders, now); err != nil {
		return nil, err
	}
	var out []profile.Mismatch
	differ := func(what string, stored, computed any) {
		out = append(out, profile.Mismatch{ProfileID: p.ID, What: what, Stored: fmt.Sprint(stored), Computed: fmt.Sprint(computed)})
	}
	for _, d := range cfg.set.Defs {
		if st, ok := p.Computed[d.Key]; ok && st.Rev != d.Rev {
			continue
		}
		stored, _ := Value(d, p, now)
		computed, _ := Value(d, &fresh, now)
		if !reflect.DeepEqual(stored, computed) {
			differ("computed trait "+d.Key, stored, computed)
		}
	}
	if cfg.orders == nil {
		return out, nil
	}
	st, ct := p.Tally, fresh.Tally
	if st == nil {
		st = &scores.Tally{Rev: ct.Rev}
	}
	if st.Rev != ct.Rev {
		differ("score tally revision", st.Rev, ct.Rev)
		return out, nil
	}
	if st.Orders != ct.Orders || !st.FirstOrder.Equal(ct.FirstOrder) || !st.LastOrder.Equal(ct.LastOrder) {
		differ("orders (count, first, last)", fmt.Sprint(st.Orders, st.FirstOrder, st.LastOrder), fmt.Sprint(ct.Orders, ct.FirstOrder, ct.LastOrder))
	}
	// Sums in another order may differ in the last bits.
	if math.Abs(st.Revenue-ct.Revenue) > 1e-9*math.Max(1, math.Abs(ct.Revenue)) {
		differ("revenue", st.Revenue, ct.Revenue)
	}
	if sa, ca := seen(st.Activity, now), seen(ct.Activity, now); !slices.Equal(sa, ca) {
		differ("activity days", sa, ca)
	}
	return out, nil
}

// seen is the activity days the engagement window sees at now.
func seen(days []scores.Day, now time.Time) []scores.Day {
	cut := scores.DayOf(now) - scores.ActivityDays
	return slices.DeleteFunc(slices.Clone(days), func(d scores.Day) bool { return d.Day <= cut })
}
