package analytics

import (
	"encoding/binary"
	"fmt"
	"time"
)

// quarters is how many quarter hours a UTC day has. Every time zone in
// use is a whole number of quarter hours from UTC, so the buckets of a
// series in any zone (local hours, midnights, DST changes) begin on a
// quarter-hour boundary of UTC: a count per quarter hour answers them
// all exactly.
const quarters = 96

// day is the rollup document of one UTC day of a workspace: for each
// event name and channel seen that day, the events that occurred in each
// quarter hour. Folded is the id of the last item folded in: items are
// folded in id order, so one with an id at or below it is counted
// already (a fold that is repeated after a crash adds nothing twice).
type day struct {
	ID          string    `bson:"_id"` // YYYY-MM-DD
	WorkspaceID string    `bson:"workspaceId"`
	Day         time.Time `bson:"day"` // UTC midnight
	Folded      string    `bson:"folded"`
	Series      []series  `bson:"series"`
	// Erased records, per erasure under way (its mark), the Folded its
	// last pass subtracted up to (erase.go): a pass repeated after a
	// crash subtracts only what was folded since. Removed when the
	// erasure's events are gone.
	Erased map[string]string `bson:"erased,omitempty"`
	// RevenueKey is the order settings Revenue was added up under, and
	// Revenue the order values per quarter hour in millionths, packed
	// (revenue.go).
	RevenueKey string `bson:"rk,omitempty"`
	Revenue    []byte `bson:"rv,omitempty"`
	Version    int64  `bson:"version"`
}

// addRevenue adds c to the day's revenue sums.
func (d *day) addRevenue(c *[quarters]int64, sign int64) error {
	have, err := revenueQuarters(d.Revenue)
	if err != nil {
		return fmt.Errorf("rollup %s: %w", d.ID, err)
	}
	for q := range have {
		have[q] += sign * c[q]
	}
	d.Revenue = packRevenue(have)
	return nil
}

// series is one name and channel's counts of a day. Counts are packed
// (Q): a uvarint per quarter hour, so a quiet quarter costs one byte and
// a 90-day read decodes kilobytes, not megabytes of BSON arrays.
type series struct {
	Name    string `bson:"n"`
	Channel string `bson:"c,omitempty"`
	Total   int64  `bson:"t"`
	Q       []byte `bson:"q"`
}

func dayID(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func dayStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// quarterOf is the quarter hour of its UTC day t falls in.
func quarterOf(t time.Time) int {
	t = t.UTC()
	return t.Hour()*4 + t.Minute()/15
}

// counts unpacks s's quarter-hour counts.
func (s *series) counts() ([quarters]int64, error) {
	var out [quarters]int64
	b := s.Q
	for i := range out {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return out, fmt.Errorf("rollup series %q/%q: quarter %d unreadable", s.Name, s.Channel, i)
		}
		out[i], b = int64(v), b[n:]
	}
	return out, nil
}

// set packs c into s.
func (s *series) set(c [quarters]int64) {
	b := make([]byte, 0, quarters+16)
	var total int64
	for _, v := range c {
		b = binary.AppendUvarint(b, uint64(max(v, 0)))
		total += v
	}
	s.Q, s.Total = b, total
}
