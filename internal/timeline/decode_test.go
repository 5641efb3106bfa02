package timeline

import (
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// decodeEvent reads every stored layout exactly as the driver's struct
// decoder does: strings and dates, nulls, other types, nested
// properties, identifiers, unknown keys, repeated keys, and documents
// it cannot read.
func TestDecodeEventMatchesDriver(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 30, 45, 123e6, time.UTC)
	docs := []bson.D{
		{{Key: "_id", Value: "e1"}, {Key: "workspaceId", Value: "ws"}, {Key: "profileId", Value: "p1"}, {Key: "originProfileId", Value: "p0"},
			{Key: "identifiers", Value: bson.A{bson.D{{Key: "type", Value: "email"}, {Key: "value", Value: "a@b.c"}}}},
			{Key: "kind", Value: KindEvent}, {Key: "name", Value: "page_viewed"}, {Key: "messageId", Value: "m1"},
			{Key: "properties", Value: bson.D{{Key: "path", Value: "/"}, {Key: "n", Value: int32(3)}, {Key: "f", Value: 1.5},
				{Key: "nested", Value: bson.D{{Key: "a", Value: bson.A{int64(1), "x", nil, true}}}}}},
			{Key: "channel", Value: "web"}, {Key: "occurredAt", Value: bson.NewDateTimeFromTime(at)}, {Key: "receivedAt", Value: bson.DateTime(-1500)}},
		{{Key: "_id", Value: "e2"}, {Key: "kind", Value: KindInteraction}, {Key: "interactionKind", Value: "CALL"}, {Key: "subject", Value: "s"},
			{Key: "body", Value: "b"}, {Key: "direction", Value: "INBOUND"}, {Key: "actor", Value: "agent"}, {Key: "properties", Value: bson.D{}},
			{Key: "occurredAt", Value: at.Format(time.RFC3339)}, {Key: "receivedAt", Value: int64(1700000000123)}},
		{{Key: "_id", Value: "e3"}, {Key: "name", Value: nil}, {Key: "properties", Value: nil}, {Key: "occurredAt", Value: nil},
			{Key: "channel", Value: bson.Symbol("sym")}, {Key: "unknown", Value: bson.D{{Key: "x", Value: 1}}}, {Key: "name", Value: "again"}},
		{{Key: "_id", Value: "e7"}, {Key: "properties", Value: bson.D{{Key: "when", Value: bson.DateTime(5)}, {Key: "deep", Value: bson.A{bson.D{{Key: "oid", Value: bson.ObjectID{1}}}}}}},
			{Key: "identifiers", Value: bson.A{bson.D{{Key: "type", Value: "email"}, {Key: "value", Value: int32(1)}}}}},
		{{Key: "_id", Value: "e8"}, {Key: "identifiers", Value: bson.A{"x"}}},
		{{Key: "_id", Value: "e9"}, {Key: "identifiers", Value: bson.A{}}, {Key: "properties", Value: bson.D{{Key: "a", Value: bson.A{}}, {Key: "d", Value: bson.D{}}}}},
		{{Key: "_id", Value: "e4"}, {Key: "name", Value: int32(7)}},                     // not a string: the driver's error
		{{Key: "_id", Value: "e5"}, {Key: "occurredAt", Value: true}},                   // not a time: the driver's error
		{{Key: "_id", Value: "e6"}, {Key: "properties", Value: bson.A{"not", "a map"}}}, // the driver's error
		{},
	}
	for i, d := range docs {
		raw, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var got, want Event
		gotErr := decodeEvent(raw, &got)
		wantErr := bson.Unmarshal(raw, (*eventFields)(&want))
		if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Errorf("doc %d: error %v, driver's %v", i, gotErr, wantErr)
			continue
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("doc %d:\n got %#v\nwant %#v", i, got, want)
		}
	}
	if err := decodeEvent(bson.Raw{1, 2, 3}, new(Event)); err == nil {
		t.Error("a malformed document decoded")
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: "e1"}, {Key: "workspaceId", Value: "ws"}, {Key: "profileId", Value: "p1"}, {Key: "originProfileId", Value: "p1"},
		{Key: "identifiers", Value: bson.A{bson.D{{Key: "type", Value: "anonymousId"}, {Key: "value", Value: "a-1"}}}},
		{Key: "kind", Value: KindEvent}, {Key: "name", Value: "order_completed"}, {Key: "messageId", Value: "m1"},
		{Key: "properties", Value: bson.D{{Key: "sku", Value: "SKU-1"}, {Key: "revenue", Value: 10.5}, {Key: "currency", Value: "USD"}}},
		{Key: "channel", Value: "web"}, {Key: "occurredAt", Value: bson.DateTime(1700000000000)}, {Key: "receivedAt", Value: bson.DateTime(1700000000000)}})
	b.Run("decodeEvent", func(b *testing.B) {
		for b.Loop() {
			var ev Event
			if err := decodeEvent(raw, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("driver", func(b *testing.B) {
		for b.Loop() {
			var ev Event
			if err := bson.Unmarshal(raw, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
