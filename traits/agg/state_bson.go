package agg

import (
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/halo-cdp/halo/rawbson"
	"github.com/halo-cdp/halo/segment"
	"github.com/halo-cdp/halo/userjson"
)

// States are stored on every profile document and decoded and re-encoded
// by every ingest write: MarshalBSON and UnmarshalBSON do it by hand, in
// exactly the layout the struct tags describe (so documents written by
// the reflection codec before read the same), and UnmarshalBSON also does
// what Normalise does (plain values, UTC times).

// MarshalBSON writes the state as its struct tags say.
func (s State) MarshalBSON() ([]byte, error) {
	idx, doc := bsoncore.AppendDocumentStart(make([]byte, 0, 64+48*len(s.Buckets)+40*len(s.Values)))
	doc = bsoncore.AppendInt64Element(doc, "r", s.Rev)
	if s.N != 0 {
		doc = bsoncore.AppendInt64Element(doc, "n", s.N)
	}
	doc = appendFloats(doc, s.Sum, s.Lo, s.Hi)
	var err error
	if doc, err = appendPoints(doc, s.First, s.Last); err != nil {
		return nil, err
	}
	if len(s.Values) > 0 {
		aidx, d := bsoncore.AppendArrayElementStart(doc, "v")
		doc = d
		for i := range s.Values {
			if doc, err = appendValue(doc, itoa(i), &s.Values[i]); err != nil {
				return nil, err
			}
		}
		doc, _ = bsoncore.AppendArrayEnd(doc, aidx)
	}
	if len(s.Buckets) > 0 {
		aidx, d := bsoncore.AppendArrayElementStart(doc, "b")
		doc = d
		for i := range s.Buckets {
			if doc, err = appendBucket(doc, itoa(i), &s.Buckets[i]); err != nil {
				return nil, err
			}
		}
		doc, _ = bsoncore.AppendArrayEnd(doc, aidx)
	}
	if !s.Newest.IsZero() {
		doc = bsoncore.AppendDateTimeElement(doc, "t", s.Newest.UnixMilli())
	}
	return bsoncore.AppendDocumentEnd(doc, idx)
}

func appendFloats(doc []byte, sum, lo, hi float64) []byte {
	if sum != 0 {
		doc = bsoncore.AppendDoubleElement(doc, "s", sum)
	}
	if lo != 0 {
		doc = bsoncore.AppendDoubleElement(doc, "lo", lo)
	}
	if hi != 0 {
		doc = bsoncore.AppendDoubleElement(doc, "hi", hi)
	}
	return doc
}

func appendPoints(doc []byte, first, last *Point) ([]byte, error) {
	var err error
	for _, p := range []struct {
		key string
		pt  *Point
	}{{"f", first}, {"l", last}} {
		if p.pt == nil {
			continue
		}
		idx, d := bsoncore.AppendDocumentElementStart(doc, p.key)
		if d, err = appendAny(d, "v", p.pt.V); err != nil {
			return nil, err
		}
		d = bsoncore.AppendDateTimeElement(d, "at", p.pt.At.UnixMilli())
		d = bsoncore.AppendStringElement(d, "id", p.pt.ID)
		if doc, err = bsoncore.AppendDocumentEnd(d, idx); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

func appendValue(doc []byte, key string, v *Value) ([]byte, error) {
	idx, d := bsoncore.AppendDocumentElementStart(doc, key)
	d, err := appendAny(d, "v", v.V)
	if err != nil {
		return nil, err
	}
	if v.N != 0 {
		d = bsoncore.AppendInt64Element(d, "n", v.N)
	}
	d = bsoncore.AppendDateTimeElement(d, "at", v.Last.UnixMilli())
	if len(v.Per) > 0 {
		aidx, dd := bsoncore.AppendArrayElementStart(d, "b")
		for i, b := range v.Per {
			bidx, e := bsoncore.AppendDocumentElementStart(dd, itoa(i))
			e = bsoncore.AppendInt64Element(e, "at", b.At)
			e = bsoncore.AppendInt64Element(e, "n", b.N)
			dd, _ = bsoncore.AppendDocumentEnd(e, bidx)
		}
		d, _ = bsoncore.AppendArrayEnd(dd, aidx)
	}
	return bsoncore.AppendDocumentEnd(d, idx)
}

func appendBucket(doc []byte, key string, b *Bucket) ([]byte, error) {
	idx, d := bsoncore.AppendDocumentElementStart(doc, key)
	d = bsoncore.AppendInt64Element(d, "at", b.At)
	d = bsoncore.AppendInt64Element(d, "n", b.N)
	d = appendFloats(d, b.Sum, b.Lo, b.Hi)
	d, err := appendPoints(d, b.First, b.Last)
	if err != nil {
		return nil, err
	}
	return bsoncore.AppendDocumentEnd(d, idx)
}

// appendAny writes a property value (a scalar almost always) with the
// driver's own encoding of it.
func appendAny(doc []byte, key string, v any) ([]byte, error) {
	if v == nil {
		return bsoncore.AppendNullElement(doc, key), nil
	}
	t, data, err := bson.MarshalValue(v)
	if err != nil {
		return nil, fmt.Errorf("encode computed value: %w", err)
	}
	doc = bsoncore.AppendHeader(doc, bsoncore.Type(t), key)
	return append(doc, data...), nil
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return fmt.Sprint(i)
}

// UnmarshalBSON reads what MarshalBSON (or the reflection codec) wrote,
// normalised as Normalise leaves it.
func (s *State) UnmarshalBSON(data []byte) error {
	*s = State{}
	return rawbson.Each(data, func(k []byte, v bson.RawValue) (err error) {
		switch string(k) {
		case "r":
			s.Rev, err = int64Of(v, "r")
		case "n", "s", "lo", "hi", "f", "l":
			err = aggregate{&s.N, &s.Sum, &s.Lo, &s.Hi, &s.First, &s.Last}.decode(string(k), v)
		case "v":
			err = eachItem(v, func(item bson.RawValue) error {
				val, err := valueOf(item)
				s.Values = append(s.Values, val)
				return err
			})
		case "b":
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
				var b segment.Bucket
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
