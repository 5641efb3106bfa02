package userjson

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// PlainRaw converts a stored BSON value straight to its plain form: the
// same result as Plain of the decoded value, without the reflection of
// bson.Unmarshal (a hot path when many profiles are scanned).
func PlainRaw(v bson.RawValue) any {
	switch v.Type {
	case bson.TypeString:
		return v.StringValue()
	case bson.TypeInt32:
		return int64(v.Int32())
	case bson.TypeInt64:
		return v.Int64()
	case bson.TypeDouble:
		return v.Double()
	case bson.TypeBoolean:
		return v.Boolean()
	case bson.TypeNull:
		return nil
	case bson.TypeDateTime:
		return time.UnixMilli(v.DateTime()).UTC().Format(time.RFC3339Nano)
	case bson.TypeEmbeddedDocument:
		elems, err := v.Document().Elements()
		if err != nil {
			break
		}
		m := make(map[string]any, len(elems))
		for _, e := range elems {
			m[e.Key()] = PlainRaw(e.Value())
		}
		return m
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			break
		}
		out := make([]any, len(vals))
		for i, e := range vals {
			out[i] = PlainRaw(e)
		}
		return out
	}
	var x any
	if err := v.Unmarshal(&x); err != nil {
		return nil
	}
	return Plain(x)
}
