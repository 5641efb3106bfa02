package wscache

import (
	"errors"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	var c Cache[int]
	loads := 0
	load := func() (int, error) { loads++; return loads, nil }
	if v, cached, err := c.Get("ws", time.Hour, load); v != 1 || cached || err != nil {
		t.Fatalf("first get %d %v %v", v, cached, err)
	}
	if v, cached, _ := c.Get("ws", time.Hour, load); v != 1 || !cached {
		t.Fatalf("second get %d %v, want the cached 1", v, cached)
	}
	if v, _, _ := c.Get("other", time.Hour, load); v != 2 {
		t.Fatalf("another workspace %d", v)
	}
	c.Invalidate("ws")
	if v, cached, _ := c.Get("ws", time.Hour, load); v != 3 || cached {
		t.Fatalf("after invalidate %d %v", v, cached)
	}
	// An error is returned and nothing is kept.
	boom := errors.New("boom")
	c.Invalidate("ws")
	if _, _, err := c.Get("ws", time.Hour, func() (int, error) { return 0, boom }); err != boom {
		t.Fatal(err)
	}
	if v, cached, _ := c.Get("ws", time.Hour, load); v != 4 || cached {
		t.Fatalf("after a failed load %d %v", v, cached)
	}
	// Expiry.
	var short Cache[int]
	short.Get("ws", time.Nanosecond, load)
	time.Sleep(time.Millisecond)
	if _, cached, _ := short.Get("ws", time.Nanosecond, load); cached {
		t.Fatal("an expired value was served")
	}
}

// A load that raced an invalidation is returned but not kept.
func TestCacheRacedLoadNotKept(t *testing.T) {
	var c Cache[string]
	v, _, _ := c.Get("ws", time.Hour, func() (string, error) {
		c.Invalidate("ws") // a change lands while the load reads
		return "before the change", nil
	})
	if v != "before the change" {
		t.Fatal(v)
	}
	if v, cached, _ := c.Get("ws", time.Hour, func() (string, error) { return "after", nil }); v != "after" || cached {
		t.Fatalf("the raced load was kept: %q %v", v, cached)
	}
}
