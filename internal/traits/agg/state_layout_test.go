package agg

import (
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/halo-cdp/halo/internal/platform/userjson"
)

// Production writes every state of a profile as one packed binary
// (States). These write a single state as a document of its own, the
// layout before, so the tests can check that documents stored that way
// still read back (UnmarshalBSON, DecodeStates), and Normalise is the
// reference for what decoding leaves (plain values, UTC times).

// MarshalBSON writes the state: r, n, s, lo, hi and t as BSON elements,
// f and l (points), v (values) and b (buckets) as packed binaries.
func (s State) MarshalBSON() ([]byte, error) {
	idx, doc := bsoncore.AppendDocumentStart(make([]byte, 0, 64+4*len(s.Buckets)+16*len(s.Values)))
	doc = bsoncore.AppendInt64Element(doc, "r", s.Rev)
	if s.N != 0 {
		doc = bsoncore.AppendInt64Element(doc, "n", s.N)
	}
	doc = appendFloats(doc, s.Sum, s.Lo, s.Hi)
	var (
		p   packer
		err error
	)
	for _, f := range []struct {
		key string
		pt  *Point
	}{{"f", s.First}, {"l", s.Last}} {
		if f.pt == nil {
			continue
		}
		p.reset()
		if err = p.point(f.pt); err != nil {
			return nil, err
		}
		doc = p.appendTo(doc, f.key)
	}
	if len(s.Values) > 0 {
		p.reset()
		if err = p.values(s.Values); err != nil {
			return nil, err
		}
		doc = p.appendTo(doc, "v")
	}
	if len(s.Buckets) > 0 {
		p.reset()
		if err = p.buckets(s.Buckets); err != nil {
			return nil, err
		}
		doc = p.appendTo(doc, "b")
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

// Normalise fixes up a decoded state: values as plain Go values, times
// in UTC.
func (s *State) Normalise() {
	s.Newest = s.Newest.UTC()
	for _, p := range []*Point{s.First, s.Last} {
		if p != nil {
			p.V, p.At = userjson.Plain(p.V), p.At.UTC()
		}
	}
	for i := range s.Values {
		s.Values[i].V, s.Values[i].Last = userjson.Plain(s.Values[i].V), s.Values[i].Last.UTC()
	}
	for i := range s.Buckets {
		for _, p := range []*Point{s.Buckets[i].First, s.Buckets[i].Last} {
			if p != nil {
				p.V, p.At = userjson.Plain(p.V), p.At.UTC()
			}
		}
	}
}

func (p *packer) appendTo(doc []byte, key string) []byte {
	return bsoncore.AppendBinaryElement(doc, key, binSubtype, p.buf)
}
