// Package rawbson reads stored BSON documents without reflection or
// per-element allocations, for the hot paths that decode many documents
// (segment previews, counter decoding).
package rawbson

import (
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// ErrMalformed reports a document that is not valid BSON.
var ErrMalformed = errors.New("rawbson: malformed document")

// Each calls fn with each element of doc, in order, without building the
// element list or key strings (bson.Raw.Elements allocates both). key is
// only valid during the call; fn's error stops the walk and is returned.
func Each(doc []byte, fn func(key []byte, v bson.RawValue) error) error {
	length, rem, ok := bsoncore.ReadLength(doc)
	if !ok || length < 5 || int(length) > len(doc) {
		return ErrMalformed
	}
	rem = rem[:length-4-1] // without the length and the trailing NUL
	for len(rem) > 0 {
		var el bsoncore.Element
		el, rem, ok = bsoncore.ReadElement(rem)
		if !ok {
			return ErrMalformed
		}
		v := el.Value()
		if err := fn(el.KeyBytes(), bson.RawValue{Type: bson.Type(v.Type), Value: v.Data}); err != nil {
			return err
		}
	}
	return nil
}
