package rule

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
)

// FuzzValidateRule feeds arbitrary rule trees (as the JSON a client's
// input maps to) through validation. Validation must never panic and only
// ever refuse with BAD_USER_INPUT naming a field under the root; a rule it
// accepts must evaluate without panicking, keep its meaning through the
// stored form (BSON), and give features and dependencies.
//
//	go test ./segment -run '^$' -fuzz FuzzValidateRule -fuzztime 30s
func FuzzValidateRule(f *testing.F) {
	for _, seed := range []string{
		`{"trait":{"key":"plan","op":"EQ","value":"pro"}}`,
		`{"and":[{"trait":{"key":"address.country","op":"IN","values":["FR","DE"]}},{"not":{"lastEvent":{"name":"login","notWithin":{"amount":14,"unit":"DAYS"}}}}]}`,
		`{"event":{"name":"order","where":[{"key":"revenue","op":"GT","value":50}],"count":{"op":"GTE","value":2},"window":{"last":{"amount":7,"unit":"DAYS"}}}}`,
		`{"event":{"name":"order","window":{"between":{"from":"2026-01-01T00:00:00Z","to":"2026-02-01T00:00:00Z"}}}}`,
		`{"or":[{"profile":{"field":"EVENT_COUNT","op":"GTE","value":10}},{"inSegment":"seg-static"},{"inSegment":"seg-dyn"}]}`,
		`{"consent":{"purpose":"marketing","channel":"EMAIL","status":"GRANTED"}}`,
		`{"trait":{"key":"$where","op":"EQ","value":{"$gt":1}}}`,
		`{"and":[]}`, `{}`, `{"not":{"not":{"not":{}}}}`,
	} {
		f.Add([]byte(seed))
	}
	dyn := Rule{Trait: &TraitCond{Key: "plan", Op: EQ, Value: "pro"}}
	lookups := Lookups{
		Segment: func(id string) (*Rule, bool) {
			switch id {
			case "seg-static":
				return nil, true
			case "seg-dyn":
				return &dyn, true
			}
			return nil, false
		},
		Purpose: func(key string) bool { return key == "marketing" || key == "analytics" },
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Rule
		if json.Unmarshal(data, &r) != nil {
			return
		}
		err := ValidateWith("self", r, lookups)
		if err != nil {
			var e *apperr.Error
			if !errors.As(err, &e) || e.Code != apperr.BadUserInput || len(e.Field) < len(RootPath) || e.Field[:len(RootPath)] != RootPath {
				t.Fatalf("refusal is not BAD_USER_INPUT under %q: %#v", RootPath, err)
			}
			return
		}
		Prepare(&r)
		in := Input{
			Traits:    map[string]any{"plan": "pro", "address": map[string]any{"country": "FR"}, "n": 3.5},
			CreatedAt: now.Add(-48 * time.Hour), FirstSeenAt: now.Add(-48 * time.Hour), LastSeenAt: now,
			EventCount: 4, Features: map[string]Counter{},
			Segment: func(id string) (SegmentRef, bool) {
				rule, ok := lookups.Segment(id)
				return SegmentRef{Rule: rule, Member: rule == nil && ok}, ok
			},
		}
		for _, ft := range Features(r) {
			var c Counter
			c.Add(now.Add(-time.Hour))
			c.Add(now.Add(-72 * time.Hour))
			in.Features[ft.Key] = c
		}
		match, next := Evaluate(r, in, now)
		_ = DependsOn(r)

		raw, err := bson.Marshal(r)
		if err != nil {
			t.Fatalf("a valid rule does not encode: %v", err)
		}
		var back Rule
		if err := bson.Unmarshal(raw, &back); err != nil {
			t.Fatalf("a stored rule does not decode: %v", err)
		}
		if err := ValidateWith("self", back, lookups); err != nil {
			t.Fatalf("a stored valid rule is refused: %v", err)
		}
		Prepare(&back)
		if m2, n2 := Evaluate(back, in, now); m2 != match || !n2.Equal(next) {
			t.Fatalf("stored rule evaluates differently: %v %s vs %v %s", m2, n2, match, next)
		}
		keys := func(fs []Feature) []string {
			out := make([]string, len(fs))
			for i, f := range fs {
				out[i] = f.Key
			}
			return out
		}
		if !reflect.DeepEqual(keys(Features(back)), keys(Features(r))) {
			t.Fatalf("stored rule counts other features: %v vs %v", keys(Features(back)), keys(Features(r)))
		}
	})
}

// FuzzCounterDecode: any bytes given as a stored counter either decode
// or fail with an error; what decodes encodes again and decodes the same.
func FuzzCounterDecode(f *testing.F) {
	var c Counter
	c.Add(time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC))
	good, _ := c.MarshalBSON()
	f.Add(good)
	f.Add([]byte{5, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var got Counter
		if got.UnmarshalBSON(data) != nil {
			return
		}
		raw, err := got.MarshalBSON()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var again Counter
		if err := again.UnmarshalBSON(raw); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		same := func(a, b Buckets) bool { return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b)) }
		if again.Total != got.Total || !same(again.Days, got.Days) || !same(again.Minutes, got.Minutes) {
			t.Fatalf("round trip changed the counter: %+v vs %+v", again, got)
		}
	})
}
