package rule

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/halo-cdp/halo/internal/platform/rawbson"
)

// Counters are most of a profile document, and every profile read and
// write (ingest's compare-and-swap, previews over every profile) encodes
// or decodes them: both are written by hand instead of by reflection.

const (
	dayLayout    = "2006-01-02"
	minuteLayout = "2006-01-02T15:04"
)

// MarshalBSON writes {days, minutes, total, first, last}; days and minutes
// are documents keyed by "2006-01-02" and "2006-01-02T15:04" (omitted when
// empty).
func (c Counter) MarshalBSON() ([]byte, error) {
	idx, doc := bsoncore.AppendDocumentStart(make([]byte, 0, 64+24*len(c.Days)+30*len(c.Minutes)))
	doc = appendBuckets(doc, "days", c.Days, 86400, dayLayout)
	doc = appendBuckets(doc, "minutes", c.Minutes, 60, minuteLayout)
	doc = bsoncore.AppendInt64Element(doc, "total", c.Total)
	doc = bsoncore.AppendDateTimeElement(doc, "first", c.First.UnixMilli())
	doc = bsoncore.AppendDateTimeElement(doc, "last", c.Last.UnixMilli())
	return bsoncore.AppendDocumentEnd(doc, idx)
}

func appendBuckets(dst []byte, key string, b Buckets, unitSec int64, layout string) []byte {
	if len(b) == 0 {
		return dst
	}
	idx, dst := bsoncore.AppendDocumentElementStart(dst, key)
	for _, x := range b {
		// An int64 element: type byte, NUL-terminated key, value.
		dst = append(dst, byte(bsoncore.TypeInt64))
		dst = time.Unix(x.At*unitSec, 0).UTC().AppendFormat(dst, layout)
		dst = append(dst, 0)
		dst = bsoncore.AppendInt64(dst, x.N)
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst
}

// UnmarshalBSON reads what MarshalBSON writes (and what the reflection
// encoder wrote before it: the same layout, buckets in any order, int32
// or int64). Bucket keys that do not parse are dropped, as pruning did.
func (c *Counter) UnmarshalBSON(data []byte) error {
	*c = Counter{}
	return rawbson.Each(data, func(k []byte, v bson.RawValue) (err error) {
		switch string(k) {
		case "days":
			c.Days, err = buckets(v, parseDay)
		case "minutes":
			c.Minutes, err = buckets(v, parseMinute)
		case "total":
			n, ok := v.AsInt64OK()
			if !ok {
				return fmt.Errorf("decode counter: total is %s", v.Type)
			}
			c.Total = n
		case "first", "last":
			ms, ok := v.DateTimeOK()
			if !ok {
				return fmt.Errorf("decode counter: %s is %s", k, v.Type)
			}
			t := time.UnixMilli(ms).UTC()
			if string(k) == "first" {
				c.First = t
			} else {
				c.Last = t
			}
		}
		return err
	})
}

func buckets(v bson.RawValue, parse func([]byte) (int64, bool)) (Buckets, error) {
	doc, ok := v.DocumentOK()
	if !ok {
		return nil, fmt.Errorf("decode counter buckets: %s", v.Type)
	}
	// A bucket element takes at least 1+11+8 bytes: a size hint.
	out := make(Buckets, 0, len(doc)/20)
	sorted := true
	err := rawbson.Each(doc, func(key []byte, v bson.RawValue) error {
		n, ok := v.AsInt64OK()
		if !ok {
			return fmt.Errorf("decode counter bucket %s: %s", key, v.Type)
		}
		at, ok := parse(key)
		if !ok || n <= 0 {
			return nil
		}
		if len(out) > 0 && out[len(out)-1].At >= at {
			sorted = false
		}
		out = append(out, Bucket{At: at, N: n})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !sorted {
		slices.SortFunc(out, func(a, b Bucket) int { return cmp.Compare(a.At, b.At) })
		merged := out[:0]
		for _, x := range out {
			if len(merged) > 0 && merged[len(merged)-1].At == x.At {
				merged[len(merged)-1].N += x.N
				continue
			}
			merged = append(merged, x)
		}
		out = merged
	}
	return out, nil
}
