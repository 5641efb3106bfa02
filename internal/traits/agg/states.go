package agg

import (
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/halo-cdp/halo/internal/platform/rawbson"
)

// States is a profile's computed state by definition key, as stored on
// the profile document.
//
// It is stored as one packed binary rather than a sub-document of
// per-key documents: with a few dozen definitions the per-key framing
// (document lengths, element keys, an 8-byte revision each) outweighed
// the aggregates themselves, and pushed profile rows past what SQLite
// keeps in a WITHOUT ROWID leaf (~1000 bytes with 4 KiB pages), so every
// profile read and write touched an overflow page too. One blob also
// spares the driver's reflection over the map on every ingest write.
//
// Layout (see pack.go for the conventions): format byte, count, then per
// key in key order: key, revision as a delta from the previous key's,
// body length, body. A body is a varint of presence flags (stateHas*)
// and the present fields: n, sum, lo, hi, newest, first, last, buckets,
// values (times in one body are deltas from the previous one, starting
// at zero), so one key can be decoded, or skipped, without the others.
//
// Decoding also reads the layouts written before (a sub-document of
// State documents, see State.UnmarshalBSON).
type States map[string]State

// Presence flags of a state body.
const (
	stateHasN = 1 << iota
	stateHasSum
	stateHasLo
	stateHasHi
	stateHasNewest
	stateHasBuckets
	stateHasValues
	stateHasFirst
	stateHasLast
)

// MarshalBSONValue writes the packed binary.
func (m States) MarshalBSONValue() (byte, []byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out, body packer
	out.reset()
	out.uint(int64(len(keys)))
	var prevRev int64
	for _, k := range keys {
		s := m[k]
		body.buf, body.prevAt, body.prevMs = body.buf[:0], 0, 0
		if err := body.state(&s); err != nil {
			return 0, nil, fmt.Errorf("computed %s: %w", k, err)
		}
		out.uint(int64(len(k)))
		out.buf = append(out.buf, k...)
		out.int(s.Rev - prevRev)
		prevRev = s.Rev
		out.uint(int64(len(body.buf)))
		out.buf = append(out.buf, body.buf...)
	}
	return byte(bson.TypeBinary), bsoncore.AppendBinary(nil, binSubtype, out.buf), nil
}

func (p *packer) state(s *State) error {
	flags := int64(0)
	set := func(on bool, f int64) {
		if on {
			flags |= f
		}
	}
	set(s.N != 0, stateHasN)
	set(s.Sum != 0, stateHasSum)
	set(s.Lo != 0, stateHasLo)
	set(s.Hi != 0, stateHasHi)
	set(!s.Newest.IsZero(), stateHasNewest)
	set(len(s.Buckets) > 0, stateHasBuckets)
	set(len(s.Values) > 0, stateHasValues)
	set(s.First != nil, stateHasFirst)
	set(s.Last != nil, stateHasLast)
	p.uint(flags)
	if flags&stateHasN != 0 {
		p.uint(s.N)
	}
	if flags&stateHasSum != 0 {
		p.float(s.Sum)
	}
	if flags&stateHasLo != 0 {
		p.float(s.Lo)
	}
	if flags&stateHasHi != 0 {
		p.float(s.Hi)
	}
	// Newest first: the times after it (bucket points, values) are
	// usually close to it, so their deltas are short.
	if flags&stateHasNewest != 0 {
		p.time(s.Newest)
	}
	for _, pt := range []*Point{s.First, s.Last} {
		if pt != nil {
			if err := p.point(pt); err != nil {
				return err
			}
		}
	}
	if flags&stateHasBuckets != 0 {
		if err := p.buckets(s.Buckets); err != nil {
			return err
		}
	}
	if flags&stateHasValues != 0 {
		if err := p.values(s.Values); err != nil {
			return err
		}
	}
	return nil
}

// UnmarshalBSONValue reads the packed binary, or the older sub-document
// of State documents.
func (m *States) UnmarshalBSONValue(typ byte, data []byte) error {
	out, err := DecodeStates(bson.RawValue{Type: bson.Type(typ), Value: data}, nil)
	*m = out
	return err
}

// DecodeStates decodes the states of keys (all when keys is nil) from a
// stored computed field, values plain and times in UTC.
func DecodeStates(v bson.RawValue, keys []string) (States, error) {
	switch v.Type {
	case bson.TypeNull:
		return nil, nil
	case bson.TypeEmbeddedDocument:
		out := States{}
		err := rawbson.Each(v.Value, func(k []byte, v bson.RawValue) error {
			if keys != nil && !slices.Contains(keys, string(k)) {
				return nil
			}
			var s State
			if err := s.UnmarshalBSON(v.Value); err != nil {
				return fmt.Errorf("computed %s: %w", k, err)
			}
			out[string(k)] = s
			return nil
		})
		return out, err
	case bson.TypeBinary:
	default:
		return nil, fmt.Errorf("decode computed states: %s", v.Type)
	}
	u := unpack(v)
	n := u.count(4)
	if u.err != nil {
		return nil, u.err
	}
	size := n
	if keys != nil {
		size = min(n, len(keys))
	}
	out := make(States, size)
	var rev int64
	for range n {
		k := u.bytes(u.uint())
		rev += u.int()
		body := u.bytes(u.uint())
		if u.err != nil {
			return nil, u.err
		}
		if keys != nil && !slices.Contains(keys, string(k)) {
			continue
		}
		b := unpacker{b: body}
		s := b.state()
		if err := b.done(); err != nil {
			return nil, fmt.Errorf("computed %s: %w", k, err)
		}
		s.Rev = rev
		out[string(k)] = s
	}
	if err := u.done(); err != nil {
		return nil, err
	}
	return out, nil
}

func (u *unpacker) state() State {
	var s State
	flags := u.uint()
	if flags&^(stateHasLast<<1-1) != 0 {
		u.err = errors.New("decode computed state: unknown fields")
		return s
	}
	if flags&stateHasN != 0 {
		s.N = u.uint()
	}
	if flags&stateHasSum != 0 {
		s.Sum = u.float()
	}
	if flags&stateHasLo != 0 {
		s.Lo = u.float()
	}
	if flags&stateHasHi != 0 {
		s.Hi = u.float()
	}
	if flags&stateHasNewest != 0 {
		s.Newest = u.time()
	}
	if flags&stateHasFirst != 0 {
		s.First = u.point()
	}
	if flags&stateHasLast != 0 {
		s.Last = u.point()
	}
	if flags&stateHasBuckets != 0 {
		s.Buckets = u.buckets()
	}
	if flags&stateHasValues != 0 {
		s.Values = u.values()
	}
	return s
}
