package rawbson

import (
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestEach(t *testing.T) {
	doc, _ := bson.Marshal(bson.D{{Key: "a", Value: "x"}, {Key: "b", Value: int32(2)}, {Key: "c", Value: bson.D{{Key: "d", Value: true}}}})
	var keys []string
	err := Each(doc, func(k []byte, v bson.RawValue) error {
		keys = append(keys, string(k)+":"+v.Type.String())
		return nil
	})
	if err != nil || len(keys) != 3 || keys[0] != "a:string" || keys[1] != "b:32-bit integer" || keys[2] != "c:embedded document" {
		t.Fatalf("keys %v, err %v", keys, err)
	}
	stop := errors.New("stop")
	n := 0
	if err := Each(doc, func([]byte, bson.RawValue) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("stop: n=%d err=%v", n, err)
	}
	empty, _ := bson.Marshal(bson.D{})
	if err := Each(empty, func([]byte, bson.RawValue) error { t.Fatal("called on empty"); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{nil, {1, 2}, doc[:len(doc)-3], append([]byte{0xff, 0, 0, 0}, doc[4:]...)} {
		if err := Each(bad, func([]byte, bson.RawValue) error { return nil }); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: err %v, want ErrMalformed", bad, err)
		}
	}
}
