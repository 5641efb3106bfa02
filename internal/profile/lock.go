package profile

import (
	"slices"
	"sync"
)

// Writers of one profile in this process take turns (writeLocks): a
// compare-and-swap that loses a race costs a read, a decision and a
// write queued behind the store's group commit, and on a hot profile
// (a bot, a shared device, a merge target) every writer would lose over
// and over again. Taking turns leaves conflicts to writers in other
// processes, which the compare-and-swap still settles. Update holds the
// turn across one read-decide-write attempt, never across calls: fn must
// not update another profile, and none does (they read).

// keyLocks are mutexes by key, created on demand and dropped when free.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	refs int
}

var writeLocks keyLocks

// Turns takes the turns of the profiles ids (in id order, so that two
// callers taking overlapping sets cannot wait for each other) and returns
// their release: for a sequence of reads and writes of those profiles
// that no other writer in this process may interleave (the segment
// engine's membership hand-off). The holder must not call Update on
// them; Swap is the write to use.
func Turns(ids []string) (release func()) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	unlocks := make([]func(), len(ids))
	for i, id := range ids {
		unlocks[i] = writeLocks.lock(id)
	}
	return func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
}

// lock takes the turn of key and returns its release.
func (l *keyLocks) lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*keyLock{}
	}
	k := l.m[key]
	if k == nil {
		k = &keyLock{}
		l.m[key] = k
	}
	k.refs++
	l.mu.Unlock()
	k.Lock()
	return func() {
		k.Unlock()
		l.mu.Lock()
		if k.refs--; k.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
}
