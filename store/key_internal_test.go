package store

import (
	"encoding/base64"
	"errors"
	"math"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The hand-appended cursor must be the same bytes bson.Marshal gives the
// canonical values, so cursors handed out before stay valid and decodable.
func TestEncodeKeyMatchesMarshal(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 123e6, time.UTC)
	doc, err := bson.Marshal(bson.D{
		{Key: "_id", Value: "id-1"}, {Key: "s", Value: "text"}, {Key: "i32", Value: int32(7)},
		{Key: "i64", Value: int64(1) << 40}, {Key: "f", Value: 2.5}, {Key: "b", Value: true},
		{Key: "at", Value: at}, {Key: "nested", Value: bson.D{{Key: "x", Value: int32(-3)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	fields := []string{"s", "i32", "i64", "f", "b", "at", "nested.x"}
	rq := ResolvedQuery{Index: Index{Fields: fields}}
	got, err := encodeKey(rq, doc)
	if err != nil {
		t.Fatal(err)
	}
	want, err := bson.Marshal(bson.D{{Key: "k", Value: bson.A{"text", int64(7), int64(1) << 40, 2.5, true, bson.NewDateTimeFromTime(at), int64(-3), "id-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got != base64.RawURLEncoding.EncodeToString(want) {
		t.Fatalf("key %s, want %s", got, base64.RawURLEncoding.EncodeToString(want))
	}
	vals, err := decodeKey(got, len(fields)+1)
	if err != nil || vals[1] != int64(7) || vals[5] != bson.NewDateTimeFromTime(at) {
		t.Fatalf("decode: %v %v", vals, err)
	}

	for name, v := range map[string]any{"NaN": math.NaN(), "array": bson.A{1}, "null": nil} {
		doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: "x"}, {Key: "s", Value: v}})
		if _, err := encodeKey(ResolvedQuery{Index: Index{Fields: []string{"s"}}}, doc); !errors.Is(err, ErrBadQuery) {
			t.Errorf("%s: err %v, want ErrBadQuery", name, err)
		}
	}
}
