// Package wscache holds one value per workspace (its segments, its
// computed-trait configuration, its consent purposes), loaded from the
// store on demand and kept for a short wall-clock TTL: what other
// instances change shows within the TTL, what this process changes shows
// at once (Invalidate).
package wscache

import (
	"sync"
	"time"
)

// Cache is a per-workspace cache of T. The zero value is ready to use; it
// is safe for concurrent use.
type Cache[T any] struct {
	mu   sync.Mutex
	vals map[string]entry[T]
	gen  map[string]int64 // invalidations per workspace
}

type entry[T any] struct {
	at time.Time
	v  T
}

// Get returns ws's value: the cached one while younger than ttl (cached
// true), else what load returns. A load that raced an Invalidate of ws is
// returned to its caller but not kept: it may have read the state from
// before the change, which every later Get must see.
func (c *Cache[T]) Get(ws string, ttl time.Duration, load func() (T, error)) (v T, cached bool, err error) {
	c.mu.Lock()
	e, ok := c.vals[ws]
	gen := c.gen[ws]
	c.mu.Unlock()
	if ok && time.Since(e.at) < ttl {
		return e.v, true, nil
	}
	if v, err = load(); err != nil {
		return v, false, err
	}
	c.mu.Lock()
	if c.gen[ws] == gen {
		if c.vals == nil {
			c.vals = map[string]entry[T]{}
		}
		c.vals[ws] = entry[T]{at: time.Now(), v: v}
	}
	c.mu.Unlock()
	return v, false, nil
}

// Invalidate drops ws's value, and keeps any load in flight from
// storing what it read.
func (c *Cache[T]) Invalidate(ws string) {
	c.mu.Lock()
	delete(c.vals, ws)
	if c.gen == nil {
		c.gen = map[string]int64{}
	}
	c.gen[ws]++
	c.mu.Unlock()
}
