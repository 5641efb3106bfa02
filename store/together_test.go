package store

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// batches records what a fake engine was handed by Together.
type batches struct {
	mu  sync.Mutex
	got [][]any
}

func (b *batches) submit(ws []any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, ws)
}

func (b *batches) all() [][]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.got)
}

// The first writes of every fn are handed over once, when the last fn has
// offered or returned; a fn's second write and
// another engine's are not held.
func TestTogetherHandsFirstWritesOverOnce(t *testing.T) {
	var b batches
	var mu sync.Mutex
	var offered []any
	held := map[string]bool{}
	offer := func(ctx context.Context, engine, w any) {
		ok := Held(ctx, engine, w, b.submit)
		mu.Lock()
		defer mu.Unlock()
		held[w.(string)] = ok
		if ok {
			offered = append(offered, w)
		}
	}
	first := make(chan struct{})
	Together(t.Context(),
		func(ctx context.Context) { offer(ctx, "e", "a1"); close(first); offer(ctx, "e", "a2") },
		func(ctx context.Context) { offer(ctx, "e", "b1") },
		func(ctx context.Context) {},
		func(ctx context.Context) { <-first; offer(ctx, "other", "c1"); offer(ctx, "e", "c2") },
	)
	got := b.all()
	sorted := func(ws []any) []string {
		var out []string
		for _, w := range ws {
			out = append(out, w.(string))
		}
		slices.Sort(out)
		return out
	}
	if len(got) != 1 || !slices.Equal(sorted(got[0]), []string{"a1", "b1", "c2"}) || len(offered) != 3 {
		t.Fatalf("handed %v, offered %v", got, offered)
	}
	want := map[string]bool{"a1": true, "a2": false, "b1": true, "c1": false, "c2": true}
	for w, ok := range want {
		if held[w] != ok {
			t.Errorf("%s held %v, want %v", w, held[w], ok)
		}
	}
}

// A fn that has not offered a write by maxHold after the first does not
// hold the others up: what was offered goes, and its own write, later,
// is not held.
func TestTogetherHoldsAWriteAtMostMaxHold(t *testing.T) {
	var b batches
	var late bool
	start := time.Now()
	var waited time.Duration
	Together(t.Context(),
		func(ctx context.Context) { Held(ctx, "e", "first", b.submit) },
		func(ctx context.Context) {
			for len(b.all()) == 0 {
				time.Sleep(time.Millisecond)
			}
			waited = time.Since(start)
			late = Held(ctx, "e", "late", b.submit)
		},
	)
	if got := b.all(); len(got) != 1 || !slices.Equal(got[0], []any{"first"}) || late {
		t.Fatalf("handed %v, late write held %v", got, late)
	}
	if waited < maxHold {
		t.Fatalf("handed over after %v, before maxHold (%v)", waited, maxHold)
	}
}

// Without writes, or outside Together, nothing is held or handed over.
func TestTogetherWithoutWrites(t *testing.T) {
	var b batches
	Together(t.Context(), func(context.Context) {}, func(context.Context) {})
	if Held(t.Context(), "e", "alone", b.submit) || len(b.all()) != 0 {
		t.Fatalf("handed %v", b.all())
	}
}
