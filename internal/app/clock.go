package app

import (
	"sync"
	"time"
)

// ManualClock is a clock that is set by hand: the seed replays history
// with it (so createdAt and receivedAt look like the past they replay),
// and tests use it for deterministic times. Safe for concurrent use.
type ManualClock struct {
	mu   sync.Mutex
	now  time.Time
	tick time.Duration
}

// NewManualClock returns a clock reading t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{now: t} }

// Now returns the current reading, then advances it by the tick (if any).
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.now
	c.now = c.now.Add(c.tick)
	return n
}

// Set moves the clock to t.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// SetTick makes every reading advance the clock by d (0 stops it).
func (c *ManualClock) SetTick(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick = d
}
