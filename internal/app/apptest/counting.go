package apptest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/store"
)

// Counting is a store.Backend that counts the calls it passes on to the
// engine it wraps, per operation and collection ("insert changes"), and
// the documents written: how benchmarks see what one event costs.
type Counting struct {
	store.Backend
	mu     sync.Mutex
	calls  map[string]int64
	writes map[string]int64 // documents inserted, replaced, put or deleted, per collection
}

// NewCounting wraps b.
func NewCounting(b store.Backend) *Counting {
	return &Counting{Backend: b, calls: map[string]int64{}, writes: map[string]int64{}}
}

func (c *Counting) count(op, coll string, docs int) {
	c.mu.Lock()
	c.calls[op+" "+coll]++
	if docs > 0 {
		c.writes[coll] += int64(docs)
	}
	c.mu.Unlock()
}

// Reset forgets the counts so far.
func (c *Counting) Reset() {
	c.mu.Lock()
	clear(c.calls)
	clear(c.writes)
	c.mu.Unlock()
}

// Writes is the documents written so far, in all collections.
func (c *Counting) Writes() int64 { return c.sum(c.writes) }

// Calls is the engine calls so far.
func (c *Counting) Calls() int64 { return c.sum(c.calls) }

func (c *Counting) sum(m map[string]int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// CallsOf is the calls of op ("find", "insertMany", ...) on coll so far.
func (c *Counting) CallsOf(op, coll string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op+" "+coll]
}

// Summary lists the calls and written documents per collection, each
// divided by per (for example the events stored), largest first.
func (c *Counting) Summary(per float64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	line := func(title string, m map[string]int64) {
		keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int { return int(m[b] - m[a]) })
		fmt.Fprintf(&b, "%s:", title)
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%.2f", k, float64(m[k])/per)
		}
		b.WriteByte('\n')
	}
	line("calls", c.calls)
	line("documents written", c.writes)
	return b.String()
}

func (c *Counting) Get(ctx context.Context, coll, ws, id string) (bson.Raw, error) {
	c.count("get", coll, 0)
	return c.Backend.Get(ctx, coll, ws, id)
}

func (c *Counting) Insert(ctx context.Context, coll, ws string, doc bson.Raw) error {
	c.count("insert", coll, 1)
	return c.Backend.Insert(ctx, coll, ws, doc)
}

func (c *Counting) InsertMany(ctx context.Context, coll, ws string, docs []bson.Raw) ([]error, error) {
	c.count("insertMany", coll, len(docs))
	return c.Backend.InsertMany(ctx, coll, ws, docs)
}

func (c *Counting) Replace(ctx context.Context, coll, ws, id string, expectedVersion int64, doc bson.Raw) error {
	c.count("replace", coll, 1)
	return c.Backend.Replace(ctx, coll, ws, id, expectedVersion, doc)
}

func (c *Counting) Put(ctx context.Context, coll, ws, id string, doc bson.Raw) error {
	c.count("put", coll, 1)
	return c.Backend.Put(ctx, coll, ws, id, doc)
}

func (c *Counting) Delete(ctx context.Context, coll, ws, id string) error {
	c.count("delete", coll, 1)
	return c.Backend.Delete(ctx, coll, ws, id)
}

func (c *Counting) DeleteMany(ctx context.Context, coll, ws string, q store.ResolvedQuery) (int64, error) {
	n, err := c.Backend.DeleteMany(ctx, coll, ws, q)
	c.count("deleteMany", coll, int(n))
	return n, err
}

func (c *Counting) Find(ctx context.Context, coll, ws string, q store.ResolvedQuery) ([]bson.Raw, error) {
	c.count("find", coll, 0)
	return c.Backend.Find(ctx, coll, ws, q)
}

func (c *Counting) Count(ctx context.Context, coll, ws string, q store.ResolvedQuery) (int64, error) {
	c.count("count", coll, 0)
	return c.Backend.Count(ctx, coll, ws, q)
}
