package account

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/userjson"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// Account is the stored document of one company.
type Account struct {
	ID          string `bson:"_id"`
	WorkspaceID string `bson:"workspaceId"`
	Name        string `bson:"name"`
	// NameKey is the name lower-cased: the index that searches and lists
	// by name.
	NameKey string `bson:"nameKey"`
	// Domains are the account's domain identifiers, as held (the
	// identities collection is the index that keeps them unique).
	Domains []string `bson:"domains"`
	// Identifiers are every identifier the account holds, its domains
	// among them: a claim whose account does not list it is a leftover
	// (claims.go).
	Identifiers []Identifier   `bson:"identifiers"`
	Traits      map[string]any `bson:"traits"`
	CreatedAt   time.Time      `bson:"createdAt"`
	UpdatedAt   time.Time      `bson:"updatedAt"`
	Version     int64          `bson:"version"`
}

// Trait limits: those of a profile's traits.
var (
	TraitLimits = userjson.Limits{MaxDepth: 5, MaxBytes: 16 << 10}
	maxTraitsB  = 64 << 10
)

// Deps are what the service needs from outside the package.
type Deps struct {
	Now func() time.Time
	// Changes is told of every account written and every link made or
	// removed (crm.account: accountUpdated).
	Changes realtime.Publisher
	// Segments re-decides an account's contacts when its traits or
	// counted roll-ups change (account rule nodes).
	Segments Segments
}

// Service is the accounts domain (New).
type Service struct {
	now      func() time.Time
	changes  realtime.Publisher
	segments Segments
}

// New builds the service.
func New(d Deps) *Service {
	now := d.Now
	if now == nil {
		now = time.Now
	}
	return &Service{now: now, changes: d.Changes, segments: d.Segments}
}

// notify tells subscribers that account id changed (itself or its people).
func (s *Service) notify(ctx context.Context, tn store.Tenant, id string) {
	realtime.Notify(ctx, s.changes, tn, realtime.Change{Kind: realtime.AccountUpdated, Payload: map[string]any{realtime.PayloadAccountID: id}})
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// CreateInput is a new account.
type CreateInput struct {
	Name        string
	Domains     []string
	Identifiers []Identifier
	Traits      any
}

// Create stores a new account with its identifiers, each claimed for it
// first: a domain or id another account holds is CONFLICT (naming the
// holder), and nothing is stored. The people whose emails are at its
// domains are then linked to it (source DOMAIN).
func (s *Service) Create(ctx context.Context, tn store.Tenant, in CreateInput) (*Account, error) {
	name, err := checkName("input.name", in.Name)
	if err != nil {
		return nil, err
	}
	ids, err := identifiersOf(in.Domains, in.Identifiers)
	if err != nil {
		return nil, err
	}
	traits, err := userjson.Object(in.Traits, TraitLimits)
	if err != nil {
		return nil, apperr.Invalid("input.traits", "%s", err.Error())
	}
	now := s.clock()
	a := &Account{ID: store.NewID(), Name: name, NameKey: strings.ToLower(name), Traits: userjson.WithoutNulls(traits),
		CreatedAt: now, UpdatedAt: now, Version: 1}
	a.Domains, a.Identifiers = domainsOf(ids), ids
	if a.Identifiers == nil {
		a.Identifiers = []Identifier{}
	}
	claimed, err := s.claimAll(ctx, tn, a.ID, ids)
	if err != nil {
		return nil, err
	}
	if err := tn.C(Accounts).Insert(ctx, a); err != nil {
		s.release(ctx, tn, a.ID, claimed)
		return nil, fmt.Errorf("store account: %w", err)
	}
	a.WorkspaceID = tn.Workspace()
	s.linkDomains(ctx, tn, a.ID, a.Domains)
	s.notify(ctx, tn, a.ID)
	Redecide(ctx, tn, s.segments, "account", nil, a.ID)
	return a, nil
}

// UpdateInput changes an account: Name and Domains when set (Domains
// replaces the list), Traits merged (a null removes a trait).
// ExpectedVersion is the version the caller read: another is CONFLICT.
type UpdateInput struct {
	Name            *string
	Domains         []string
	SetDomains      bool
	Traits          any
	ExpectedVersion int64
}

// Update changes account id as in says. New domains are claimed first and
// their people linked after; removed ones are released. A stale version,
// or a domain another account holds, is CONFLICT and changes nothing.
func (s *Service) Update(ctx context.Context, tn store.Tenant, id string, in UpdateInput) (*Account, error) {
	a, err := s.Get(ctx, tn, id)
	if err != nil {
		return nil, err
	}
	if a.Version != in.ExpectedVersion {
		return nil, stale(id, a.Version, in.ExpectedVersion)
	}
	next := *a
	if in.Name != nil {
		if next.Name, err = checkName("input.name", *in.Name); err != nil {
			return nil, err
		}
		next.NameKey = strings.ToLower(next.Name)
	}
	if in.Traits != nil {
		patch, err := userjson.Object(in.Traits, TraitLimits)
		if err != nil {
			return nil, apperr.Invalid("input.traits", "%s", err.Error())
		}
		next.Traits = userjson.Patch(a.Traits, patch)
		if n := userjson.Size(next.Traits); n > maxTraitsB {
			return nil, apperr.Invalid("input.traits", "account traits would be %d bytes, more than the %d allowed", n, maxTraitsB)
		}
	}
	var added, removed []Identifier
	if in.SetDomains {
		ids, err := identifiersOf(in.Domains, nil)
		if err != nil {
			return nil, err
		}
		next.Domains = domainsOf(ids)
		for _, d := range next.Domains {
			if !slices.Contains(a.Domains, d) {
				added = append(added, Identifier{Type: Domain, Value: d})
			}
		}
		for _, d := range a.Domains {
			if !slices.Contains(next.Domains, d) {
				removed = append(removed, Identifier{Type: Domain, Value: d})
			}
		}
	}
	if in.SetDomains {
		next.Identifiers = slices.DeleteFunc(slices.Clone(a.identifiers()), func(id Identifier) bool { return id.Type == Domain })
		for _, d := range next.Domains {
			next.Identifiers = append(next.Identifiers, Identifier{Type: Domain, Value: d})
		}
		if len(next.Identifiers) > MaxIdentifiers {
			return nil, apperr.Invalid("input.domains", "an account holds at most %d domains and identifiers", MaxIdentifiers)
		}
	}
	claimed, err := s.claimAll(ctx, tn, a.ID, added)
	if err != nil {
		return nil, err
	}
	next.UpdatedAt, next.Version = s.clock(), a.Version+1
	if err := tn.C(Accounts).Replace(ctx, &next, a.Version); err != nil {
		// Another write of the account landed first: keep what it
		// lists (a double submit claims nothing twice).
		s.releaseDropped(ctx, tn, a.ID, claimed)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return nil, stale(id, -1, in.ExpectedVersion)
		}
		return nil, fmt.Errorf("store account %s: %w", id, err)
	}
	s.releaseDropped(ctx, tn, a.ID, removed)
	s.linkDomains(ctx, tn, a.ID, domainsOf(added))
	s.notify(ctx, tn, a.ID)
	// A rename changes nothing a rule reads; new domains may link people.
	if len(added) > 0 || !reflect.DeepEqual(a.Traits, next.Traits) {
		Redecide(ctx, tn, s.segments, "account", nil, a.ID)
	}
	return &next, nil
}

func stale(id string, have, read int64) error {
	if have < 0 {
		return apperr.New(apperr.Conflict, "account %s changed since version %d was read: read it again", id, read)
	}
	return apperr.New(apperr.Conflict, "account %s is at version %d, not %d: read it again", id, have, read)
}

// Get reads account id (NOT_FOUND when there is none).
func (s *Service) Get(ctx context.Context, tn store.Tenant, id string) (*Account, error) {
	return get(ctx, tn, id)
}

func get(ctx context.Context, tn store.Tenant, id string) (*Account, error) {
	var a Account
	if err := tn.C(Accounts).Get(ctx, id, &a); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apperr.New(apperr.NotFound, "account %s not found", id)
		}
		return nil, fmt.Errorf("load account %s: %w", id, err)
	}
	a.Traits = userjson.PlainObject(a.Traits)
	if a.Domains == nil {
		a.Domains = []string{}
	}
	a.Identifiers = a.identifiers()
	return &a, nil
}

// ByIdentifier reads the account holding id (NOT_FOUND when none does; a
// malformed identifier is BAD_USER_INPUT on field).
func (s *Service) ByIdentifier(ctx context.Context, tn store.Tenant, field string, id Identifier) (*Account, error) {
	id, err := normalise(field, id)
	if err != nil {
		return nil, err
	}
	owner, err := ownerOf(ctx, tn, id)
	if err != nil {
		return nil, err
	}
	if owner == "" {
		return nil, apperr.New(apperr.NotFound, "no account holds that %s", id.Type)
	}
	return get(ctx, tn, owner)
}

// Page is a page of accounts.
type Page struct {
	Accounts []*Account
	Cursors  []string
	HasNext  bool
}

// Orders of List.
const (
	ByName      = "NAME"
	ByCreatedAt = "CREATED_AT"
	ByUpdatedAt = "UPDATED_AT"
)

// ListQuery picks and orders accounts; empty fields pick all. Errors
// name the fields of the accounts query (search, filter.…, orderBy).
type ListQuery struct {
	// Search matches the start of the name, case-insensitively (by name
	// only).
	Search string
	// Domain picks the account holding it (normalised as identifiers
	// are).
	Domain string
	// Traits must all hold on the account's traits (trait node
	// semantics).
	Traits []rule.TraitCond
	// CreatedFrom ≤ createdAt < CreatedTo (zero: unbounded).
	CreatedFrom, CreatedTo time.Time
	Order                  string // ByName (default), ByCreatedAt, ByUpdatedAt
	Desc                   bool
}

// Check validates q.
func (q *ListQuery) Check() error {
	if q.Order == "" {
		q.Order = ByName
	}
	switch {
	case !slices.Contains([]string{ByName, ByCreatedAt, ByUpdatedAt}, q.Order):
		return apperr.Invalid("orderBy.field", "unknown order %q", q.Order)
	case strings.TrimSpace(q.Search) != "" && q.Order != ByName:
		return apperr.Invalid("orderBy", "search matches the start of names: it lists by NAME only")
	case !q.CreatedFrom.IsZero() && !q.CreatedTo.IsZero() && !q.CreatedFrom.Before(q.CreatedTo):
		return apperr.Invalid("filter.createdTo", "must be after createdFrom")
	case len(q.Traits) > rule.MaxAccountConds:
		return apperr.Invalid("filter.traits", "lists at most %d conditions", rule.MaxAccountConds)
	}
	if q.Domain != "" {
		d, err := NormaliseDomain(q.Domain)
		if err != nil {
			return apperr.Invalid("filter.domain", "%v", err)
		}
		q.Domain = d
	}
	for i := range q.Traits {
		if err := rule.ValidTrait(&q.Traits[i], fmt.Sprintf("filter.traits[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

// index is the read that serves q: its order's index, bounded by the
// search prefix or the creation range where the order allows.
func (q *ListQuery) index() store.Query {
	switch q.Order {
	case ByCreatedAt:
		out := store.Query{Index: AccountsByCreated, Desc: q.Desc}
		if !q.CreatedFrom.IsZero() || !q.CreatedTo.IsZero() {
			out.Range = &store.Bound{}
			if !q.CreatedFrom.IsZero() {
				out.Range.Gte = q.CreatedFrom
			}
			if !q.CreatedTo.IsZero() {
				out.Range.Lt = q.CreatedTo
			}
		}
		return out
	case ByUpdatedAt:
		return store.Query{Index: AccountsByUpdated, Desc: q.Desc}
	}
	out := listQuery(q.Search)
	out.Desc = q.Desc
	return out
}

// keeps tells whether a passes the filters the index read does not.
func (q *ListQuery) keeps(a *Account) bool {
	if q.Domain != "" && !slices.Contains(a.Domains, q.Domain) {
		return false
	}
	if q.Order != ByCreatedAt && (!q.CreatedFrom.IsZero() && a.CreatedAt.Before(q.CreatedFrom) || !q.CreatedTo.IsZero() && !a.CreatedAt.Before(q.CreatedTo)) {
		return false
	}
	for i := range q.Traits {
		if !rule.MatchTrait(&q.Traits[i], a.Traits) {
			return false
		}
	}
	return true
}

// filtered tells whether q filters beyond its index read.
func (q *ListQuery) filtered() bool {
	return q.Domain != "" || len(q.Traits) > 0 || q.Order != ByCreatedAt && (!q.CreatedFrom.IsZero() || !q.CreatedTo.IsZero())
}

// List returns the accounts q picks, in its order, first at most, after a
// cursor of this list and order. Filters the order's index cannot serve
// (domain, traits, a creation range in another order) are checked on each
// account read in order.
func (s *Service) List(ctx context.Context, tn store.Tenant, q ListQuery, first int, after string) (Page, error) {
	var out Page
	if err := q.Check(); err != nil {
		return out, err
	}
	iq := q.index()
	iq.After = after
	for {
		iq.Limit = first + 1 - len(out.Accounts)
		docs, err := tn.C(Accounts).Find(ctx, iq)
		if err != nil {
			return out, fmt.Errorf("list accounts: %w", err)
		}
		for _, d := range docs {
			iq.After = d.Key
			var a Account
			if err := d.Decode(&a); err != nil {
				return out, fmt.Errorf("decode account: %w", err)
			}
			a.Traits = userjson.PlainObject(a.Traits)
			if !q.keeps(&a) {
				continue
			}
			if len(out.Accounts) == first {
				out.HasNext = true
				return out, nil
			}
			out.Accounts = append(out.Accounts, &a)
			out.Cursors = append(out.Cursors, d.Key)
		}
		if len(docs) < iq.Limit {
			return out, nil
		}
	}
}

// Count is how many accounts List pages through for q: an index count
// when the index read alone picks them, else a read of them all.
func (s *Service) Count(ctx context.Context, tn store.Tenant, q ListQuery) (int64, error) {
	if err := q.Check(); err != nil {
		return 0, err
	}
	iq := q.index()
	if !q.filtered() {
		n, err := tn.C(Accounts).Count(ctx, iq)
		if err != nil {
			return 0, fmt.Errorf("count accounts: %w", err)
		}
		return n, nil
	}
	var n int64
	err := tn.C(Accounts).Each(ctx, iq, func(raw bson.Raw) error {
		var a Account
		if err := bson.Unmarshal(raw, &a); err != nil {
			return fmt.Errorf("decode account: %w", err)
		}
		a.Traits = userjson.PlainObject(a.Traits)
		if q.keeps(&a) {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count accounts: %w", err)
	}
	return n, nil
}

func listQuery(search string) store.Query {
	q := store.Query{Index: AccountsByName}
	if p := strings.ToLower(strings.TrimSpace(search)); p != "" {
		q.Range = &store.Bound{Prefix: &p}
	}
	return q
}

func checkName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", apperr.Invalid(field, "must not be empty")
	case len(name) > MaxNameLen:
		return "", apperr.Invalid(field, "is longer than %d bytes", MaxNameLen)
	}
	return name, nil
}

// identifiersOf normalises an account's domains (as domain identifiers)
// and other identifiers, without repeats.
func identifiersOf(domains []string, others []Identifier) ([]Identifier, error) {
	var out []Identifier
	add := func(id Identifier) {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	for i, d := range domains {
		v, err := NormaliseDomain(d)
		if err != nil {
			return nil, apperr.Invalid(fmt.Sprintf("input.domains[%d]", i), "%s", err.Error())
		}
		add(Identifier{Type: Domain, Value: v})
	}
	for i, o := range others {
		id, err := normalise(fmt.Sprintf("input.identifiers[%d]", i), o)
		if err != nil {
			return nil, err
		}
		add(id)
	}
	if len(out) > MaxIdentifiers {
		return nil, apperr.Invalid("input", "an account holds at most %d domains and identifiers", MaxIdentifiers)
	}
	return out, nil
}

func domainsOf(ids []Identifier) []string {
	out := []string{}
	for _, id := range ids {
		if id.Type == Domain {
			out = append(out, id.Value)
		}
	}
	return out
}

// identifiers is what the account holds, its domains included.
func (a *Account) identifiers() []Identifier {
	if a.Identifiers != nil {
		return a.Identifiers
	}
	out := []Identifier{}
	for _, d := range a.Domains {
		out = append(out, Identifier{Type: Domain, Value: d})
	}
	return out
}

// Holds tells whether the account lists id.
func (a *Account) Holds(id Identifier) bool { return slices.Contains(a.identifiers(), id) }

// Exists reports NOT_FOUND when the workspace has no account id (other
// domains' links to an account check it).
func Exists(ctx context.Context, tn store.Tenant, id string) error {
	_, err := get(ctx, tn, id)
	return err
}
