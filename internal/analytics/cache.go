package analytics

import "sync"

// maxCachedSeries bounds the decoded day rollups an instance keeps, by
// their series (an event name and channel of a day: 384 bytes of counts
// each, some 80 MB in all): past the bound, the cache starts over.
const maxCachedSeries = 200_000

// dayCache keeps decoded day rollups by workspace, epoch (cursor.Epoch:
// Refold starts the days over), day and version, so that a series reads
// only the days that changed since it last read them (the cursor
// records every day's version: volume.go). A version is a stored state
// of the day, so a kept view is never stale for it. Views are shared:
// nothing may write to one.
type dayCache struct {
	mu     sync.Mutex
	m      map[string]dayView // workspace/epoch/day
	series int
}

func (c *dayCache) get(ws, epoch, day string, version int64) (dayView, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[ws+"/"+epoch+"/"+day]
	return v, ok && v.Version == version
}

func (c *dayCache) put(ws, epoch string, d dayView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || c.series+len(d.Series) > maxCachedSeries {
		c.m, c.series = map[string]dayView{}, 0
	}
	k := ws + "/" + epoch + "/" + d.ID
	c.series += len(d.Series) - len(c.m[k].Series)
	c.m[k] = d
}
