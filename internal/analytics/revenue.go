package analytics

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/store"
)

// Revenue. The workspace's score settings name the order event and the
// property holding an order's value (traits.Orders). The day rollups add
// up those values per quarter hour beside the counts, in millionths of
// the currency unit, as integers: sums do not depend on the order events
// are added in, so they equal a sum from scratch exactly. Each day and
// the cursor record the settings the sums were made under (revenueKey);
// when the settings change, the roller drops the day rollups and folds
// every stored event again under the new ones (roll.go), and reads count
// from the stored events until it has.

// revenueKey names the settings revenue sums are made under.
func revenueKey(o traits.ScoreSettings) string { return o.OrderEvent + "\x00" + o.RevenueProperty }

// orders is what folding and reading need of the settings.
type orders struct{ event, path string }

func ordersOf(key string) orders {
	event, path, _ := strings.Cut(key, "\x00")
	return orders{event, path}
}

// currentOrders reads the workspace's settings.
func currentOrders(ctx context.Context, tn store.Tenant) (string, error) {
	o, err := traits.Orders(ctx, tn)
	if err != nil {
		return "", fmt.Errorf("read the order settings: %w", err)
	}
	return revenueKey(o), nil
}

// micros is an order value in millionths (a value that is missing or not
// a finite number is an order worth 0, as scores count it; so is one
// beyond ±4.6 trillion, which millionths in an int64 cannot add up).
func micros(v float64) int64 {
	m := math.Round(v * 1e6)
	if math.IsNaN(m) || m > math.MaxInt64/2 || m < math.MinInt64/2 {
		return 0
	}
	return int64(m)
}

// value is item it's order value in millionths, if it is an order.
// Properties that cannot be decoded hold no number: an order worth 0, as
// everywhere else a value cannot be read.
func (o orders) value(it *timeline.Stored) (int64, bool) {
	if it.Kind != timeline.KindEvent || it.Name != o.event {
		return 0, false
	}
	props, _ := it.Properties()
	v, _ := agg.NumberAt(props, o.path)
	return micros(v), true
}

// revenueQuarters unpacks a day's packed sums (zigzag varints).
func revenueQuarters(b []byte) ([quarters]int64, error) {
	var out [quarters]int64
	if len(b) == 0 {
		return out, nil
	}
	for i := range out {
		v, n := binary.Varint(b)
		if n <= 0 {
			return out, fmt.Errorf("revenue of quarter %d unreadable", i)
		}
		out[i], b = v, b[n:]
	}
	return out, nil
}

func packRevenue(c [quarters]int64) []byte {
	zero := true
	for _, v := range c {
		zero = zero && v == 0
	}
	if zero {
		return nil
	}
	b := make([]byte, 0, quarters+16)
	for _, v := range c {
		b = binary.AppendVarint(b, v)
	}
	return b
}

// Revenues is a revenue series.
type Revenues struct {
	Span       Span
	OrderEvent string
	Property   string
	Orders     int64
	Revenue    int64 // millionths
	Buckets    []RevenueBucket
}

// RevenueBucket is one bucket of a revenue series.
type RevenueBucket struct {
	Orders  int64
	Revenue int64 // millionths
}

// Revenue counts the order events per bucket and adds up their values,
// as eventVolume reads: the day rollups as of the cursor, then the tail.
func (s *Service) Revenue(ctx context.Context, tn store.Tenant, q SeriesQuery) (*Revenues, error) {
	sp, err := newSpan(q.Since, q.Until, q.Interval, q.TimeZone, s.location)
	if err != nil {
		return nil, err
	}
	key, err := currentOrders(ctx, tn)
	if err != nil {
		return nil, err
	}
	return again(ctx, tn, func() (*Revenues, string, error) { return s.revenueOnce(ctx, tn, sp, key) })
}

func (s *Service) revenueOnce(ctx context.Context, tn store.Tenant, sp Span, key string) (*Revenues, string, error) {
	o := ordersOf(key)
	out := &Revenues{Span: sp, OrderEvent: o.event, Property: o.path, Buckets: make([]RevenueBucket, sp.Len())}
	cur, err := s.readCursor(ctx, tn)
	if err != nil {
		return nil, "", err
	}
	var days []dayView
	current := cur.RevenueKey == key
	if current {
		if days, err = s.days(ctx, tn, sp, &cur); err != nil {
			return nil, "", err
		}
	} else {
		// Settings changed and not folded again yet: every stored event
		// is the tail.
		s.want(tn.Workspace())
	}
	for _, d := range days {
		// A day of other settings: they changed since the cursor was read.
		current = current && d.RevenueKey == key
	}
	if !current {
		days, cur.Folded = nil, ""
	}
	folded := map[string]string{}
	var at [quarters]int
	for _, d := range days {
		folded[d.ID] = d.Folded
		sp.quarters(d.Day, &at)
		for qh, b := range at {
			if b < 0 {
				continue
			}
			out.Buckets[b].Revenue += d.Revenue[qh]
			for i := range d.Series {
				if d.Series[i].Name == o.event {
					out.Buckets[b].Orders += int64(d.Series[i].Counts[qh])
				}
			}
		}
	}
	err = eachTail(ctx, tn, cur.Folded, o.event, func(items []timeline.Stored) error {
		for i := range items {
			it := &items[i]
			b := sp.Index(it.OccurredAt)
			if b < 0 || it.ID <= folded[dayID(it.OccurredAt)] {
				continue
			}
			if v, ok := o.value(it); ok {
				out.Buckets[b].Orders++
				out.Buckets[b].Revenue += v
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	for _, b := range out.Buckets {
		out.Orders += b.Orders
		out.Revenue += b.Revenue
	}
	return out, cur.Epoch, nil
}
