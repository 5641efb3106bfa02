// Package analytics answers dashboards: totals and time series over the
// workspace's stored events, exact, from rollups that never hold a
// person (collections.go, rollup.go), kept by a roller behind the write
// path rather than in it (roll.go), and read with the items stored since
// the last fold (volume.go).
package analytics

import (
	"sync"
	"time"

	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/store"
)

// Service is the analytics domain of one instance.
type Service struct {
	now      func() time.Time // leases: the wall clock, shared by instances
	clock    func() time.Time // the domain's: "now" in figures
	instance string           // holds rollup leases (roll.go)
	// purposes tells consent series each purpose's lawful basis.
	purposes *consent.Catalog
	// walks holds a token per walk of the events under way (MaxWalks).
	walks chan struct{}

	mu      sync.Mutex
	current map[string]bool // workspaces this instance has seen folded up to the horizon
	backlog map[string]int  // items folded in the others before that
	wanted  map[string]bool // workspaces read before any fold (volume.go): the next Roll folds them

	// tidyAfter is how long settled marks of moves wait (moves.go).
	tidyAfter time.Duration
	// nums holds the profiles' activity numbers (numbers.go).
	nums numberCache
	// cache holds decoded day rollups (cache.go).
	cache dayCache
	// zones holds the time zones series asked for: time.LoadLocation
	// reads and parses the zone database on every call.
	zones sync.Map // name → *time.Location
}

func (s *Service) location(name string) (*time.Location, error) {
	if l, ok := s.zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	s.zones.Store(name, l)
	return l, nil
}

// Deps are what the service needs.
type Deps struct {
	// Leases is the clock of rollup leases, shared by every instance
	// (default time.Now).
	Leases func() time.Time
	// Now is the domain's clock: the instant "now" in figures (default
	// time.Now).
	Now func() time.Time
	// Purposes are the workspaces' consent purposes.
	Purposes *consent.Catalog
}

// New makes the service.
func New(d Deps) *Service {
	if d.Leases == nil {
		d.Leases = time.Now
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{now: d.Leases, clock: d.Now, purposes: d.Purposes, tidyAfter: tidyAfter, walks: make(chan struct{}, MaxWalks), instance: store.NewID(), current: map[string]bool{}, backlog: map[string]int{}, wanted: map[string]bool{}}
}
