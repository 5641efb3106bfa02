package store_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/halo-cdp/halo/store"
)

// TestRewrite: writers racing on one document each land once (no lost
// update), a stale seed is read again, a change that declines writes
// nothing, and a missing document is no error.
func TestRewrite(t *testing.T) {
	ctx, st := open(t)
	c := st.Tenant("ws").C(items)
	if err := c.Insert(ctx, item{ID: "a", Name: "", Version: 1}); err != nil {
		t.Fatal(err)
	}
	version := func(i *item) *int64 { return &i.Version }
	stale := item{ID: "a", Version: 1}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			seed := stale
			if err := store.Rewrite(ctx, c, "a", &seed, version, func(it *item) bool {
				it.Name += string(rune('a' + i))
				return true
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var got item
	if err := c.Get(ctx, "a", &got); err != nil || len(got.Name) != 8 || got.Version != 9 {
		t.Fatalf("after 8 racing rewrites: %+v %v", got, err)
	}
	if err := store.Rewrite(ctx, c, "a", nil, version, func(*item) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "a", &got); err != nil || got.Version != 9 {
		t.Fatalf("a declined change wrote: %+v %v", got, err)
	}
	if err := store.Rewrite(ctx, c, "missing", nil, version, func(*item) bool { t.Fatal("called"); return true }); err != nil {
		t.Fatal(err)
	}
}

// TestRewriteAll: every document the query reads is changed once, even
// when the change moves it out of the query (the page after is read
// after the last one, not again from the start); declined ones stay.
func TestRewriteAll(t *testing.T) {
	ctx, st := open(t)
	c := st.Tenant("ws").C(items)
	for i := range 450 {
		if err := c.Insert(ctx, item{ID: fmt.Sprintf("i%03d", i), Name: "old", Group: "g", Code: fmt.Sprint(i), Version: 1}); err != nil {
			t.Fatal(err)
		}
	}
	err := store.RewriteAll(ctx, c, store.Query{Index: "by_name", Eq: []any{"old"}}, func(i *item) string { return i.ID },
		func(i *item) *int64 { return &i.Version }, func(i *item) bool {
			if i.Code == "7" {
				return false
			}
			i.Name = "new"
			return true
		})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int64{"old": 1, "new": 449} {
		if n, err := c.Count(ctx, store.Query{Index: "by_name", Eq: []any{name}}); err != nil || n != want {
			t.Fatalf("%s: %d, want %d (%v)", name, n, want, err)
		}
	}
}
