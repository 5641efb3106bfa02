package agg

import (
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/rawbson"
	"github.com/halo-cdp/halo/internal/platform/userjson"
	"github.com/halo-cdp/halo/internal/segment/rule"
)

// A profile's states are written together as one packed binary (States,
// states.go). Documents written before that hold each state as a document
// of its own, until their next write: UnmarshalBSON reads those, and
// leaves values plain and times in UTC.

// UnmarshalBSON reads a state stored as a document of its own: the
// layout before agg.States (r, n, s, lo, hi, t as elements; f, l, v and b
// as packed binaries, or, older still, as sub-documents and arrays of
// them, told apart by their BSON type), with values plain and times in
// UTC.
func (s *State) UnmarshalBSON(data []byte) error {
	*s = State{}
	return rawbson.Each(data, func(k []byte, v bson.RawValue) (err error) {
		switch string(k) {
		case "r":
			s.Rev, err = int64Of(v, "r")
		case "n", "s", "lo", "hi", "f", "l":
			err = aggregate{&s.N, &s.Sum, &s.Lo, &s.Hi, &s.First, &s.Last}.decode(string(k), v)
		case "v":
			if v.Type == bson.TypeBinary {
				s.Values, err = unpackValues(v)
				break
			}
			err = eachItem(v, func(item bson.RawValue) error {
				val, err := valueOf(item)
				s.Values = append(s.Values, val)
				return err
			})
		case "b":
			if v.Type == bson.TypeBinary {
				s.Buckets, err = unpackBuckets(v)
				break
			}
			err = eachItem(v, func(item bson.RawValue) error {
				b, err := bucketOf(item)
				s.Buckets = append(s.Buckets, b)
				return err
			})
		case "t":
			s.Newest, err = timeOf(v, "t")
		}
		return err
	})
}

// aggregate points at the fields a State and a Bucket share (n, s, lo,
// hi, f, l), so one decoder reads them for both.
type aggregate struct {
	n           *int64
	sum, lo, hi *float64
	first, last **Point
}

func (a aggregate) decode(key string, v bson.RawValue) (err error) {
	switch key {
	case "n":
		*a.n, err = int64Of(v, "n")
	case "s", "lo", "hi":
		f, ok := v.AsFloat64OK()
		if !ok {
			return fmt.Errorf("decode computed state: %s is %s", key, v.Type)
		}
		switch key {
		case "s":
			*a.sum = f
		case "lo":
			*a.lo = f
		default:
			*a.hi = f
		}
	case "f":
		*a.first, err = pointOf(v)
	case "l":
		*a.last, err = pointOf(v)
	}
	return err
}

func int64Of(v bson.RawValue, name string) (int64, error) {
	n, ok := v.AsInt64OK()
	if !ok {
		return 0, fmt.Errorf("decode computed state: %s is %s", name, v.Type)
	}
	return n, nil
}

func timeOf(v bson.RawValue, name string) (time.Time, error) {
	ms, ok := v.DateTimeOK()
	if !ok {
		return time.Time{}, fmt.Errorf("decode computed state: %s is %s", name, v.Type)
	}
	return time.UnixMilli(ms).UTC(), nil
}

func eachItem(v bson.RawValue, fn func(bson.RawValue) error) error {
	arr, ok := v.ArrayOK()
	if !ok {
		return fmt.Errorf("decode computed state: list is %s", v.Type)
	}
	return rawbson.Each(arr, func(_ []byte, item bson.RawValue) error { return fn(item) })
}

func pointOf(v bson.RawValue) (*Point, error) {
	if v.Type == bson.TypeBinary {
		return unpackPoint(v)
	}
	doc, ok := v.DocumentOK()
	if !ok {
		return nil, fmt.Errorf("decode computed state: point is %s", v.Type)
	}
	p := &Point{}
	err := rawbson.Each(doc, func(k []byte, v bson.RawValue) (err error) {
		switch string(k) {
		case "v":
			p.V = userjson.PlainRaw(v)
		case "at":
			p.At, err = timeOf(v, "at")
		case "id":
			p.ID, _ = v.StringValueOK()
		}
		return err
	})
	return p, err
}

func valueOf(v bson.RawValue) (Value, error) {
	var out Value
	doc, ok := v.DocumentOK()
	if !ok {
		return out, fmt.Errorf("decode computed state: value is %s", v.Type)
	}
	err := rawbson.Each(doc, func(k []byte, v bson.RawValue) (err error) {
		switch string(k) {
		case "v":
			out.V = userjson.PlainRaw(v)
		case "n":
			out.N, err = int64Of(v, "n")
		case "at":
			out.Last, err = timeOf(v, "at")
		case "b":
			err = eachItem(v, func(item bson.RawValue) error {
				d, ok := item.DocumentOK()
				if !ok {
					return fmt.Errorf("decode computed state: bucket is %s", item.Type)
				}
				var b rule.Bucket
				err := rawbson.Each(d, func(k []byte, v bson.RawValue) (err error) {
					switch string(k) {
					case "at":
						b.At, err = int64Of(v, "at")
					case "n":
						b.N, err = int64Of(v, "n")
					}
					return err
				})
				out.Per = append(out.Per, b)
				return err
			})
		}
		return err
	})
	return out, err
}

func bucketOf(v bson.RawValue) (Bucket, error) {
	var b Bucket
	doc, ok := v.DocumentOK()
	if !ok {
		return b, fmt.Errorf("decode computed state: bucket is %s", v.Type)
	}
	err := rawbson.Each(doc, func(k []byte, v bson.RawValue) (err error) {
		switch string(k) {
		case "at":
			b.At, err = int64Of(v, "at")
		case "n", "s", "lo", "hi", "f", "l":
			err = aggregate{&b.N, &b.Sum, &b.Lo, &b.Hi, &b.First, &b.Last}.decode(string(k), v)
		}
		return err
	})
	return b, err
}
