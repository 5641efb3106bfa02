package analytics

import "sync"

// maxCachedDays bounds the decoded day rollups an instance keeps (384
// bytes per event name and channel of the day): past the bound, the
// cache starts over.
const maxCachedDays = 10_000

// dayCache keeps decoded day rollups by workspace, day and version, so
// that a series reads only the days that changed since it last read them
// (the cursor records every day's version: volume.go). A version is a
// stored state of the day, so a kept view is never stale for it.
type dayCache struct {
	mu sync.Mutex
	m  map[string]dayView // workspace/day
}

func (c *dayCache) get(ws, day string, version int64) (dayView, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[ws+"/"+day]
	return v, ok && v.Version == version
}

func (c *dayCache) put(ws string, d dayView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedDays {
		c.m = map[string]dayView{}
	}
	c.m[ws+"/"+d.ID] = d
}
