package agg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/halo-cdp/halo/internal/platform/userjson"
	"github.com/halo-cdp/halo/internal/segment/rule"
)

// Packed layout of the parts of a State that grow with use (buckets,
// values) and of its points. As sub-documents they cost ~30 bytes per
// COUNT bucket, nearly all of it keys, lengths and 8-byte integers that
// are mostly a few units apart; packed, such a bucket is two bytes.
//
// A blob is a BSON binary of subtype binSubtype holding a format byte
// (packV1) and then:
//
//   - point: value, time, id.
//   - buckets: column flags (which of sum, lo, hi, first, last any bucket
//     has: a COUNT bucket stores none of them), count, then per bucket
//     unit, n, the flagged floats and, when points are flagged, a byte
//     telling which the bucket has, then those points.
//   - values: count, then per value: value, n, last seen, per-unit count,
//     then that many (unit, n).
//
// Integers are varints (zigzag when signed). Units and times are deltas
// from the previous unit or time in the same blob: buckets are sorted and
// times close together, so most take one or two bytes (a delta may wrap
// around int64 on absurd times; decoding wraps the same way back).
// Floats that are whole numbers (counts, cents, most amounts) are
// varints too, others their 8 bytes (see float).
const (
	binSubtype = 0x80
	packV1     = 1
)

// Bucket columns.
const (
	colSum = 1 << iota
	colLo
	colHi
	colFirst
	colLast
)

// Value tags: the scalars events carry are written without BSON's
// length and terminator; anything else as its BSON type and bytes.
const (
	valNull = iota
	valFalse
	valTrue
	valFloat
	valInt
	valString
	valBSON
)

type packer struct {
	buf            []byte
	prevAt, prevMs int64
}

func (p *packer) reset() {
	p.buf = append(p.buf[:0], packV1)
	p.prevAt, p.prevMs = 0, 0
}

func (p *packer) uint(n int64) { p.buf = binary.AppendUvarint(p.buf, uint64(n)) }
func (p *packer) int(n int64)  { p.buf = binary.AppendVarint(p.buf, n) }

func (p *packer) unit(u int64) {
	p.int(u - p.prevAt)
	p.prevAt = u
}

// time keeps milliseconds, as a BSON datetime does.
func (p *packer) time(t time.Time) {
	ms := t.UnixMilli()
	p.int(ms - p.prevMs)
	p.prevMs = ms
}

// float writes a whole number below 2^53 in magnitude as its zigzag
// varint shifted left (low bit 0), anything else as 1 and its 8 bytes.
// -0 becomes 0, as the old layout's omitempty made it.
func (p *packer) float(f float64) {
	if i := int64(f); float64(i) == f && i > -1<<53 && i < 1<<53 {
		zz := uint64(i<<1) ^ uint64(i>>63)
		p.buf = binary.AppendUvarint(p.buf, zz<<1)
		return
	}
	p.buf = append(p.buf, 1)
	p.buf = binary.LittleEndian.AppendUint64(p.buf, math.Float64bits(f))
}

func (p *packer) value(v any) error {
	switch x := v.(type) {
	case nil:
		p.buf = append(p.buf, valNull)
	case bool:
		if x {
			p.buf = append(p.buf, valTrue)
		} else {
			p.buf = append(p.buf, valFalse)
		}
	case float64:
		p.buf = append(p.buf, valFloat)
		p.float(x)
	case int64:
		p.buf = append(p.buf, valInt)
		p.int(x)
	case int:
		p.buf = append(p.buf, valInt)
		p.int(int64(x))
	case int32:
		p.buf = append(p.buf, valInt)
		p.int(int64(x))
	case string:
		p.buf = append(p.buf, valString)
		p.uint(int64(len(x)))
		p.buf = append(p.buf, x...)
	default:
		t, data, err := bson.MarshalValue(v)
		if err != nil {
			return fmt.Errorf("encode computed value: %w", err)
		}
		p.buf = append(p.buf, valBSON, byte(t))
		p.buf = append(p.buf, data...)
	}
	return nil
}

func (p *packer) point(pt *Point) error {
	if err := p.value(pt.V); err != nil {
		return err
	}
	p.time(pt.At)
	p.uint(int64(len(pt.ID)))
	p.buf = append(p.buf, pt.ID...)
	return nil
}

func (p *packer) buckets(bs []Bucket) error {
	var cols byte
	for i := range bs {
		b := &bs[i]
		cols |= flag(b.Sum != 0, colSum) | flag(b.Lo != 0, colLo) | flag(b.Hi != 0, colHi) |
			flag(b.First != nil, colFirst) | flag(b.Last != nil, colLast)
	}
	p.buf = append(p.buf, cols)
	p.uint(int64(len(bs)))
	for i := range bs {
		b := &bs[i]
		p.unit(b.At)
		p.uint(b.N)
		if cols&colSum != 0 {
			p.float(b.Sum)
		}
		if cols&colLo != 0 {
			p.float(b.Lo)
		}
		if cols&colHi != 0 {
			p.float(b.Hi)
		}
		if cols&(colFirst|colLast) == 0 {
			continue
		}
		p.buf = append(p.buf, flag(b.First != nil, colFirst)|flag(b.Last != nil, colLast))
		for _, pt := range []*Point{b.First, b.Last} {
			if pt == nil {
				continue
			}
			if err := p.point(pt); err != nil {
				return err
			}
		}
	}
	return nil
}

func flag(on bool, f byte) byte {
	if on {
		return f
	}
	return 0
}

func (p *packer) values(vs []Value) error {
	p.uint(int64(len(vs)))
	for i := range vs {
		v := &vs[i]
		if err := p.value(v.V); err != nil {
			return err
		}
		p.uint(v.N)
		p.time(v.Last)
		p.uint(int64(len(v.Per)))
		for _, b := range v.Per {
			p.unit(b.At)
			p.uint(b.N)
		}
	}
	return nil
}

var errPacked = errors.New("decode computed state: malformed packed data")

// unpacker reads a blob; the first malformed read sets err and makes
// every later read return zero, so callers check err once at the end.
type unpacker struct {
	b              []byte
	prevAt, prevMs int64
	err            error
}

func unpack(v bson.RawValue) unpacker {
	sub, data, ok := v.BinaryOK()
	if !ok || sub != binSubtype || len(data) == 0 || data[0] != packV1 {
		return unpacker{err: fmt.Errorf("decode computed state: unknown packed layout (%s)", v.Type)}
	}
	return unpacker{b: data[1:]}
}

// done is the blob's error, also when bytes are left over.
func (u *unpacker) done() error {
	if u.err == nil && len(u.b) != 0 {
		u.err = errPacked
	}
	return u.err
}

func (u *unpacker) fail() { u.err, u.b = errPacked, nil }

func (u *unpacker) byte() byte {
	if len(u.b) == 0 {
		u.fail()
		return 0
	}
	c := u.b[0]
	u.b = u.b[1:]
	return c
}

func (u *unpacker) uint() int64 {
	n, k := binary.Uvarint(u.b)
	if k <= 0 {
		u.fail()
		return 0
	}
	u.b = u.b[k:]
	return int64(n)
}

func (u *unpacker) int() int64 {
	n, k := binary.Varint(u.b)
	if k <= 0 {
		u.fail()
		return 0
	}
	u.b = u.b[k:]
	return n
}

// count reads a length, refusing one the remaining bytes cannot hold
// (at least min bytes per item), so bad data cannot make it allocate.
func (u *unpacker) count(min int) int {
	n := u.uint()
	if n < 0 || n > int64(len(u.b)/min) {
		u.fail()
		return 0
	}
	return int(n)
}

func (u *unpacker) bytes(n int64) []byte {
	if n < 0 || n > int64(len(u.b)) {
		u.fail()
		return nil
	}
	out := u.b[:n]
	u.b = u.b[n:]
	return out
}

func (u *unpacker) unit() int64 {
	u.prevAt += u.int()
	return u.prevAt
}

func (u *unpacker) time() time.Time {
	u.prevMs += u.int()
	return time.UnixMilli(u.prevMs).UTC()
}

func (u *unpacker) float() float64 {
	x, k := binary.Uvarint(u.b)
	switch {
	case k <= 0:
		u.fail()
		return 0
	case x == 1:
		u.b = u.b[k:]
		raw := u.bytes(8)
		if raw == nil {
			return 0
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(raw))
	case x&1 != 0:
		u.fail()
		return 0
	}
	u.b = u.b[k:]
	zz := x >> 1
	return float64(int64(zz>>1) ^ -int64(zz&1))
}

// value returns what userjson.PlainRaw returns for the value's BSON
// encoding (the old layout's reading).
func (u *unpacker) value() any {
	switch u.byte() {
	case valNull:
		return nil
	case valFalse:
		return false
	case valTrue:
		return true
	case valFloat:
		return u.float()
	case valInt:
		return u.int()
	case valString:
		return string(u.bytes(u.uint()))
	case valBSON:
		t := bsoncore.Type(u.byte())
		if u.err != nil {
			return nil
		}
		v, rem, ok := bsoncore.ReadValue(u.b, t)
		if !ok {
			u.fail()
			return nil
		}
		u.b = rem
		// Cloned: PlainRaw may keep slices of it (binary values), and
		// the caller's buffer is not ours to keep.
		return userjson.PlainRaw(bson.RawValue{Type: bson.Type(t), Value: bytes.Clone(v.Data)})
	}
	u.fail()
	return nil
}

func (u *unpacker) point() *Point {
	p := &Point{V: u.value()}
	p.At = u.time()
	p.ID = string(u.bytes(u.uint()))
	return p
}

func unpackPoint(v bson.RawValue) (*Point, error) {
	u := unpack(v)
	if u.err != nil {
		return nil, u.err
	}
	p := u.point()
	if err := u.done(); err != nil {
		return nil, err
	}
	return p, nil
}

func unpackBuckets(v bson.RawValue) ([]Bucket, error) {
	u := unpack(v)
	if u.err != nil {
		return nil, u.err
	}
	out := u.buckets()
	return out, u.done()
}

func (u *unpacker) buckets() []Bucket {
	cols := u.byte()
	n := u.count(2)
	if u.err != nil {
		return nil
	}
	out := make([]Bucket, n)
	for i := range out {
		b := &out[i]
		b.At = u.unit()
		b.N = u.uint()
		if cols&colSum != 0 {
			b.Sum = u.float()
		}
		if cols&colLo != 0 {
			b.Lo = u.float()
		}
		if cols&colHi != 0 {
			b.Hi = u.float()
		}
		if cols&(colFirst|colLast) != 0 {
			has := u.byte()
			if has&colFirst != 0 {
				b.First = u.point()
			}
			if has&colLast != 0 {
				b.Last = u.point()
			}
		}
		if u.err != nil {
			return nil
		}
	}
	return out
}

func unpackValues(v bson.RawValue) ([]Value, error) {
	u := unpack(v)
	if u.err != nil {
		return nil, u.err
	}
	out := u.values()
	return out, u.done()
}

func (u *unpacker) values() []Value {
	n := u.count(4)
	if u.err != nil {
		return nil
	}
	out := make([]Value, n)
	for i := range out {
		val := &out[i]
		val.V = u.value()
		val.N = u.uint()
		val.Last = u.time()
		if k := u.count(2); k > 0 {
			val.Per = make([]rule.Bucket, k)
			for j := range val.Per {
				val.Per[j].At = u.unit()
				val.Per[j].N = u.uint()
			}
		}
		if u.err != nil {
			return nil
		}
	}
	return out
}
