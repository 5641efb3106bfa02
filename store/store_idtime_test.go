package store_test

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/store"
)

func TestIDTime(t *testing.T) {
	at := time.Date(2026, 12, 4, 19, 40, 1, 123e6, time.UTC)
	for _, id := range []string{store.IDAt(at), store.IDAt(at)[:13] + "-7abc-8def-0123456789ab"} {
		got, ok := store.IDTime(id)
		if !ok || !got.Equal(at) {
			t.Fatalf("IDTime(%s) = %v, %v; want %v", id, got, ok, at)
		}
	}
	if now := time.Now().UTC().Truncate(time.Millisecond); true {
		got, ok := store.IDTime(store.NewID())
		if !ok || got.Sub(now) < 0 || got.Sub(now) > time.Second {
			t.Fatalf("IDTime(NewID()) = %v, %v, drawn at %v", got, ok, now)
		}
	}
	for _, bad := range []string{"", "x", "zzzzzzzz-zzzz", "01a24270x32e5"} {
		if _, ok := store.IDTime(bad); ok {
			t.Fatalf("IDTime(%q) ok", bad)
		}
	}
}
