// Package consent records and answers consent per purpose and channel:
// purposes (built-in and per workspace), the append-only consent log, the
// current state kept on the profile document, and the contact decision
// that segment rules and exports enforce.
//
// # Purposes
//
// Five purposes are built in: analytics, personalization, marketing,
// advertising and profiling, all with the lawful basis CONSENT (a
// workspace cannot redefine them). A workspace defines its own
// (DefinePurpose, at most MaxPurposes) with a description and a basis:
// CONSENT, CONTRACT, LEGITIMATE_INTEREST or LEGAL_OBLIGATION; redefining
// one may change both. A changed basis re-evaluates every profile for the
// segments that read the purpose.
//
// # Records and state
//
// Every decision is one record (purpose, channel, status GRANTED, DENIED
// or WITHDRAWN, source, capturedAt, expiresAt, proof), appended to the
// consent_log and never changed (except by merges, which re-point it, and
// erasure). The state of a (purpose, channel) key at t is its latest
// record by capturedAt (ties: recordedAt) that has not expired at t (a
// record counts while t < expiresAt). A record captured before the key's
// current one is logged but does not change the state now — it may
// become current later, when newer records expire. The profile document
// keeps, per key, only the entries that are or can still become current
// (rule.InsertConsent), so reads and segment rules never touch the
// log.
//
// Whether purpose p may be used on channel c at t (CanContact, the
// consent segment node, exportSegment): the channel's own state if it has
// one, else the ANY state, else the basis (allowed unless CONSENT);
// allowed iff that state is GRANTED.
//
// Checks: purposes must exist; channel and status are enums; capturedAt
// defaults to now and is at most MaxFuture ahead; expiresAt must be after
// capturedAt and after now (an already expired record would change
// nothing); source at most MaxSource bytes; proof a JSON object within
// ProofLimits. Every choice of a call is checked before anything is
// written.
//
// # Writes
//
// Recording a batch for one profile: the records go to the log first,
// then the profile's state changes in one compare-and-swap; then the
// profile's segments that read one of the purposes are re-evaluated
// (before the call returns) and consent.changed is published once per
// record. A profile being merged away is written through to the survivor.
// Expiry is not a write: it publishes nothing, but segment membership
// follows it (the evaluator reports the expiry as nextEvalAt and the
// sweeper re-evaluates then).
//
// # Merges
//
// Mover.MoveConsent (a step of every merge, internal/merge) re-points the source's log records to
// the survivor (keeping originProfileId) and rebuilds the survivor's state
// from its whole log: the union, each key resolved by the rules above.
// Mover.UnmoveConsent gives the records of the restored profile's origins back
// and rebuilds both states.
package consent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/wscache"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// Identity is what consent needs of identity resolution (package
// identity's Resolver provides it): the person a choice names by
// identifier, and where a merged-away profile went.
type Identity interface {
	Resolve(ctx context.Context, tn store.Tenant, req identity.Request) (identity.Result, error)
	Redirect(ctx context.Context, tn store.Tenant, id string) (string, error)
}

// Segments is what consent needs of the segment engine: memberships are
// re-evaluated after a consent change or a purpose's new lawful basis,
// and exports read a segment's members.
type Segments interface {
	Rebuild(ctx context.Context, tn store.Tenant, cause string) error
	AfterProfiles(ctx context.Context, tn store.Tenant, profiles []*profile.Profile, cause string, touched rule.Touched)
	Get(ctx context.Context, tn store.Tenant, id string) (*segment.Segment, error)
	Members(ctx context.Context, tn store.Tenant, segmentID string, first int, after string) ([]segment.Member, []string, bool, error)
}

// Deps are what the service needs from outside the package; every field
// may be left out (tests, tools).
type Deps struct {
	Now      func() time.Time
	Identity Identity
	Segments Segments
	// Catalog is the workspace purposes cache, shared with the segment
	// engine (which is built before the service: it evaluates consent
	// nodes with Catalog.Allowances). Nil: a catalog of its own.
	Catalog *Catalog
	// Changes is told of every consent change (consent.changed).
	Changes realtime.Publisher
}

// New builds the consent service.
func New(d Deps) *Service {
	c := d.Catalog
	if c == nil {
		c = NewCatalog()
	}
	return &Service{clock: d.Now, identity: d.Identity, segments: d.Segments, catalog: c, changes: d.Changes}
}

// Service records consent and answers questions about it (New; the zero
// Service works without identity, segments or notifications).
type Service struct {
	clock    func() time.Time
	identity Identity
	segments Segments
	catalog  *Catalog
	changes  realtime.Publisher
}

// Catalog is a process's cached copy of each workspace's purposes
// (CacheTTL). The segment engine reads it (segment.Purposes) and the
// consent service, which defines purposes, invalidates it.
type Catalog struct {
	cache wscache.Cache[[]Purpose]
}

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog { return &Catalog{} }

func (s *Service) purposes() *Catalog {
	if s.catalog == nil {
		return &zeroCatalog
	}
	return s.catalog
}

// zeroCatalog serves a zero Service.
var zeroCatalog Catalog

// CacheTTL is how long a process trusts its copy of a workspace's purposes
// (a definition made through another instance is seen this late).
const CacheTTL = time.Second

// Lawful bases (GDPR Art. 6).
const (
	BasisConsent            = "CONSENT"
	BasisContract           = "CONTRACT"
	BasisLegitimateInterest = "LEGITIMATE_INTEREST"
	BasisLegalObligation    = "LEGAL_OBLIGATION"
)

// Bases lists the lawful bases.
var Bases = []string{BasisConsent, BasisContract, BasisLegitimateInterest, BasisLegalObligation}

// Limits.
const (
	MaxPurposes       = 100
	MaxKey            = 64
	MaxDescription    = 1000
	MaxSource         = 200
	MaxChoices        = 50
	MaxFuture         = 24 * time.Hour
	MaxExportFirst    = 1000
	DefaultExportSize = 100
)

// Purpose is a processing purpose: built in, or a consent_purposes
// document.
type Purpose struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	Key         string    `bson:"key"`
	Description string    `bson:"description,omitempty"`
	LawfulBasis string    `bson:"lawfulBasis"`
	BuiltIn     bool      `bson:"-"`
	UpdatedAt   time.Time `bson:"updatedAt"`
	Version     int64     `bson:"version"`
}

// AllowedWithoutRecord tells whether processing for the purpose is lawful
// without a consent record (any basis but CONSENT).
func (p Purpose) AllowedWithoutRecord() bool { return p.LawfulBasis != BasisConsent }

// BuiltIn are the purposes every workspace has.
var BuiltIn = []Purpose{
	{Key: "analytics", Description: "Measuring and analysing use of the service.", LawfulBasis: BasisConsent, BuiltIn: true},
	{Key: "personalization", Description: "Tailoring content and experience to the person.", LawfulBasis: BasisConsent, BuiltIn: true},
	{Key: "marketing", Description: "Marketing communication.", LawfulBasis: BasisConsent, BuiltIn: true},
	{Key: "advertising", Description: "Advertising, including targeted ads.", LawfulBasis: BasisConsent, BuiltIn: true},
	{Key: "profiling", Description: "Automated profiling and scoring.", LawfulBasis: BasisConsent, BuiltIn: true},
}

func (s *Service) now() time.Time { return stamp(s.clock) }

// stamp reads now (time.Now if nil) at millisecond precision, in UTC.
func stamp(now func() time.Time) time.Time {
	if now == nil {
		return time.Now().UTC().Truncate(time.Millisecond)
	}
	return now().UTC().Truncate(time.Millisecond)
}

// Purposes lists the workspace's purposes: the built-in ones first, then
// the custom ones by key.
func (s *Service) Purposes(ctx context.Context, tn store.Tenant) ([]Purpose, error) {
	return s.purposes().List(ctx, tn)
}

// List lists the workspace's purposes: the built-in ones first, then the
// custom ones by key.
func (c *Catalog) List(ctx context.Context, tn store.Tenant) ([]Purpose, error) {
	list, _, err := c.cache.Get(tn.Workspace(), CacheTTL, func() ([]Purpose, error) {
		docs, err := tn.C(ConsentPurposes).Find(ctx, store.Query{Index: ConsentPurposesKey, Limit: MaxPurposes + 1})
		if err != nil {
			return nil, fmt.Errorf("load consent purposes: %w", err)
		}
		list := slices.Clone(BuiltIn)
		for _, d := range docs {
			var p Purpose
			if err := d.Decode(&p); err != nil {
				return nil, fmt.Errorf("decode consent purpose: %w", err)
			}
			p.UpdatedAt = p.UpdatedAt.UTC()
			list = append(list, p)
		}
		return list, nil
	})
	return list, err
}

// Purpose returns one purpose, or BAD_USER_INPUT naming field.
func (s *Service) Purpose(ctx context.Context, tn store.Tenant, field, key string) (Purpose, error) {
	list, err := s.Purposes(ctx, tn)
	if err != nil {
		return Purpose{}, err
	}
	for _, p := range list {
		if p.Key == key {
			return p, nil
		}
	}
	return Purpose{}, apperr.Invalid(field, "unknown purpose %q (see consentPurposes)", truncate(key))
}

// Allowances returns every purpose of the workspace, true when it is
// allowed without a record: what the segment engine evaluates consent
// nodes with (segment.Purposes).
func (c *Catalog) Allowances(ctx context.Context, tn store.Tenant) (map[string]bool, error) {
	list, err := c.List(ctx, tn)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(list))
	for _, p := range list {
		out[p.Key] = p.AllowedWithoutRecord()
	}
	return out, nil
}

// PurposeInput defines or redefines a custom purpose.
type PurposeInput struct {
	Key         string
	Description *string // nil keeps the current one
	LawfulBasis string  // "" is CONSENT
}

// ValidKey tells whether key is a well-formed purpose key: lower-case
// letters, digits, _ and -, starting with a letter, at most MaxKey bytes.
func ValidKey(key string) bool {
	if key == "" || len(key) > MaxKey || key[0] < 'a' || key[0] > 'z' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// DefinePurpose creates a custom purpose or changes its description and
// basis. Field paths of errors start at input. A changed basis
// re-evaluates the workspace's profiles (segments reading the purpose
// may change their answer for people without a record).
func (s *Service) DefinePurpose(ctx context.Context, tn store.Tenant, in PurposeInput) (*Purpose, error) {
	if !ValidKey(in.Key) {
		return nil, apperr.Invalid("input.key", "must be lower-case letters, digits, _ and -, starting with a letter, at most %d bytes", MaxKey)
	}
	for _, b := range BuiltIn {
		if b.Key == in.Key {
			return nil, apperr.Invalid("input.key", "%q is a built-in purpose and cannot be redefined", in.Key)
		}
	}
	basis := in.LawfulBasis
	if basis == "" {
		basis = BasisConsent
	}
	if !slices.Contains(Bases, basis) {
		return nil, apperr.Invalid("input.lawfulBasis", "must be one of CONSENT, CONTRACT, LEGITIMATE_INTEREST, LEGAL_OBLIGATION")
	}
	if in.Description != nil && (len(*in.Description) > MaxDescription || !validText(*in.Description)) {
		return nil, apperr.Invalid("input.description", "must be text of at most %d bytes", MaxDescription)
	}
	c := tn.C(ConsentPurposes)
	var cur Purpose
	err := c.FindOne(ctx, store.Query{Index: ConsentPurposesKey, Eq: []any{in.Key}}, &cur)
	p := Purpose{Key: in.Key, LawfulBasis: basis, UpdatedAt: s.now()}
	switch {
	case errors.Is(err, store.ErrNotFound):
		list, lerr := s.Purposes(ctx, tn)
		if lerr != nil {
			return nil, lerr
		}
		if len(list)-len(BuiltIn) >= MaxPurposes {
			return nil, apperr.Invalid("input.key", "a workspace defines at most %d purposes", MaxPurposes)
		}
		if in.Description != nil {
			p.Description = *in.Description
		}
		p.ID, p.Version = store.NewID(), 1
		err = c.Insert(ctx, p)
		if errors.Is(err, store.ErrDuplicateKey) {
			return nil, apperr.New(apperr.Conflict, "purpose %q was defined concurrently; retry", in.Key)
		}
	case err != nil:
		return nil, fmt.Errorf("load purpose %s: %w", in.Key, err)
	default:
		p.Description = cur.Description
		if in.Description != nil {
			p.Description = *in.Description
		}
		p.ID, p.Version = cur.ID, cur.Version+1
		err = c.Replace(ctx, p, cur.Version)
		if errors.Is(err, store.ErrConflict) {
			return nil, apperr.New(apperr.Conflict, "purpose %q was changed concurrently; retry", in.Key)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("save purpose %s: %w", in.Key, err)
	}
	s.purposes().cache.Invalidate(tn.Workspace())
	if cur.LawfulBasis != "" && cur.LawfulBasis != basis && s.segments != nil {
		if err := s.segments.Rebuild(ctx, tn, "consent.purpose"); err != nil {
			return nil, fmt.Errorf("re-evaluate segments after purpose %s: %w", in.Key, err)
		}
	}
	return &p, nil
}
