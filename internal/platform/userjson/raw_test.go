package userjson

import (
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestPlainRawMatchesPlain(t *testing.T) {
	doc, err := bson.Marshal(bson.D{
		{Key: "s", Value: "text"}, {Key: "i32", Value: int32(-4)}, {Key: "i64", Value: int64(1) << 42},
		{Key: "f", Value: 1.25}, {Key: "b", Value: false}, {Key: "null", Value: nil},
		{Key: "at", Value: time.Date(2026, 11, 23, 8, 0, 0, 5e6, time.UTC)},
		{Key: "obj", Value: bson.D{{Key: "city", Value: "Paris"}, {Key: "tags", Value: bson.A{"a", int32(1), bson.D{{Key: "x", Value: true}}}}}},
		{Key: "empty", Value: bson.D{}}, {Key: "none", Value: bson.A{}},
		{Key: "oid", Value: bson.ObjectID{1, 2, 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	elems, err := bson.Raw(doc).Elements()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range elems {
		var x any
		if err := e.Value().Unmarshal(&x); err != nil {
			t.Fatal(err)
		}
		if got, want := PlainRaw(e.Value()), Plain(x); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v, want %#v", e.Key(), got, want)
		}
	}
}
