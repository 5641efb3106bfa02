package analytics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/halo-cdp/halo/store"
)

// Numbers. The activity days name profiles by a number the workspace
// gives each profile the first time one of its events is folded: four
// bytes in a bitset rather than an id in a hash set, and the days carry
// no identifier of a person. The one link from a number back to its
// profile is the profile's number document, which an erasure deletes
// with the entries (erase.go). Numbers are never given twice (number).

// numbered is a profile's number document; its id is the profile's.
type numbered struct {
	ID          string `bson:"_id"`
	WorkspaceID string `bson:"workspaceId"`
	N           int64  `bson:"n"`
}

// numberCache holds, per workspace, the numbers this instance has read
// or given: a number never changes and is never given again, so an entry
// stays true; once its profile is erased it names entries nobody has.
type numberCache struct {
	mu sync.Mutex
	ws map[string]map[string]uint32
}

func (c *numberCache) get(ws string, ids []string) (map[string]uint32, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	have := c.ws[ws]
	out := make(map[string]uint32, len(ids))
	var missing []string
	asked := make(map[string]bool, len(ids))
	for _, id := range ids {
		if asked[id] {
			continue
		}
		asked[id] = true
		if n, ok := have[id]; ok {
			out[id] = n
		} else {
			missing = append(missing, id)
		}
	}
	return out, missing
}

func (c *numberCache) put(ws string, found map[string]uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ws == nil {
		c.ws = map[string]map[string]uint32{}
	}
	m, ok := c.ws[ws]
	if !ok {
		m = map[string]uint32{}
		c.ws[ws] = m
	}
	for id, n := range found {
		m[id] = n
	}
}

func (c *numberCache) forget(ws, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.ws[ws], id)
}

// numbers returns the numbers the profiles have; a profile without one
// is left out.
func (s *Service) numbers(ctx context.Context, tn store.Tenant, ids []string) (map[string]uint32, error) {
	out, missing := s.nums.get(tn.Workspace(), ids)
	if len(missing) == 0 {
		return out, nil
	}
	found := map[string]uint32{}
	for in := range store.InLists(missing) {
		docs, err := tn.C(Numbers).Find(ctx, store.Query{Index: store.ByID, In: in})
		if err != nil {
			return nil, fmt.Errorf("read profile numbers: %w", err)
		}
		for _, d := range docs {
			id, _ := d.Raw.Lookup("_id").StringValueOK()
			n, ok := d.Raw.Lookup("n").AsInt64OK()
			if !ok || n < 1 || n >= 1<<31 {
				return nil, fmt.Errorf("profile number of %s unreadable", id)
			}
			found[id] = uint32(n)
		}
	}
	s.nums.put(tn.Workspace(), found)
	for id, n := range found {
		out[id] = n
	}
	return out, nil
}

// number returns the profiles' numbers, giving the next ones to those
// without. It runs under the rollup lease, cur being the held cursor: the
// numbers given are recorded on it (Numbered, by compare-and-swap)
// before any is stored, so a holder whose lease was taken over stores
// none, and a number is never given twice, not even that of an erased
// profile (its document gone, the cursor still counts it).
func (s *Service) number(ctx context.Context, tn, sys store.Tenant, cur *cursor, ids []string) (map[string]uint32, error) {
	out, err := s.numbers(ctx, tn, ids)
	if err != nil {
		return nil, err
	}
	var fresh []string
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			out[id] = 0 // given below
			fresh = append(fresh, id)
		}
	}
	if len(fresh) == 0 {
		return out, nil
	}
	// The highest stored too: a cursor written before it counted numbers.
	docs, err := tn.C(Numbers).Find(ctx, store.Query{Index: NumbersByN, Desc: true, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("read the highest profile number: %w", err)
	}
	top := cur.Numbered
	if len(docs) > 0 {
		n, _ := docs[0].Raw.Lookup("n").AsInt64OK()
		top = max(top, n)
	}
	if top+int64(len(fresh)) >= 1<<31 {
		return nil, errors.New("analytics: the workspace has used every profile number")
	}
	cur.Numbered = top + int64(len(fresh))
	cur.Version++
	if err := sys.C(Cursors).Replace(ctx, cur, cur.Version-1); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, errLeaseLost
		}
		return nil, fmt.Errorf("record the profile numbers given: %w", err)
	}
	given := make(map[string]uint32, len(fresh))
	fns := make([]func(context.Context), len(fresh))
	errs := make([]error, len(fresh))
	for i, id := range fresh {
		n := top + int64(i) + 1
		given[id] = uint32(n)
		fns[i] = func(ctx context.Context) {
			errs[i] = tn.C(Numbers).Insert(ctx, &numbered{ID: id, N: n})
		}
	}
	for chunk := range slices.Chunk(fns, 256) {
		store.Together(ctx, chunk...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("number profiles: %w", err)
	}
	s.nums.put(tn.Workspace(), given)
	for id, n := range given {
		out[id] = n
	}
	return out, nil
}
