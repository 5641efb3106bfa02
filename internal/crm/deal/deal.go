package deal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/story"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// Deal is one opportunity in a pipeline.
type Deal struct {
	ID          string `bson:"_id"`
	WorkspaceID string `bson:"workspaceId"`
	Name        string `bson:"name"`
	Pipeline    string `bson:"pipeline"`
	Stage       string `bson:"stage"`
	// Status follows the stage's outcome: OPEN, WON or LOST.
	Status string `bson:"status"`
	// Amount is in Currency's minor units; Digits is how many the
	// currency had when the deal was priced.
	Amount   int64  `bson:"amount"`
	Currency string `bson:"currency"`
	Digits   int    `bson:"digits"`
	// ExpectedCloseAt is always set (indexed): NoClose when unknown.
	ExpectedCloseAt time.Time `bson:"expectedCloseAt"`
	OwnerID         string    `bson:"ownerId"`
	AccountID       string    `bson:"accountId"`
	ContactIDs      []string  `bson:"contactIds"`
	CreatedAt       time.Time `bson:"createdAt"`
	UpdatedAt       time.Time `bson:"updatedAt"`
	ClosedAt        time.Time `bson:"closedAt,omitempty"`
	CloseReason     string    `bson:"closeReason,omitempty"`
	// History is every stage the deal was in, oldest first; the last is
	// the current one (no LeftAt).
	History []Visit `bson:"history"`
	Version int64   `bson:"version"`
}

// Visit is a deal's time in one stage.
type Visit struct {
	Stage     string    `bson:"stage"`
	EnteredAt time.Time `bson:"enteredAt"`
	LeftAt    time.Time `bson:"leftAt,omitempty"`
	Reason    string    `bson:"reason,omitempty"`
}

// NoClose is ExpectedCloseAt when none was given.
var NoClose = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// AmountUnits is the amount in units of its currency.
func (d *Deal) AmountUnits() float64 { return fromMinor(d.Amount, d.Digits) }

// Lifecycle moves the contacts' lifecycle stages forward: an open deal
// makes them opportunities, a won one customers.
type Lifecycle interface {
	Advance(ctx context.Context, tn store.Tenant, profileIDs []string, stage, cause, actor string) ([]string, error)
}

// Deps are what the service needs from outside the package.
type Deps struct {
	Now       func() time.Time
	Lifecycle Lifecycle
	// Timeline gets a deal's creation, stage moves and closing on its
	// contacts' timelines.
	Timeline story.Timeline
	// Changes is told of every deal written (crm.deal: dealChanged).
	Changes realtime.Publisher
	// Segments re-decides the contacts' segments that read deals after
	// each write.
	Segments Segments
}

// Segments is what deals need of the segment engine: their contacts'
// deal nodes, and their accounts' contacts' account nodes (deal counts).
type Segments interface {
	AfterProfiles(ctx context.Context, tn store.Tenant, profiles []*profile.Profile, cause string, touched rule.Touched)
	account.Segments
}

// Service is the deals domain (New).
type Service struct {
	now       func() time.Time
	lifecycle Lifecycle
	timeline  story.Timeline
	changes   realtime.Publisher
	segments  Segments
	redirect  profile.Redirector
}

// New builds the service.
func New(d Deps) *Service {
	now := d.Now
	if now == nil {
		now = time.Now
	}
	return &Service{now: now, lifecycle: d.Lifecycle, timeline: d.Timeline, changes: d.Changes, segments: d.Segments, redirect: identity.Redirect}
}

// notify tells subscribers that d was written.
func (s *Service) notify(ctx context.Context, tn store.Tenant, d *Deal) {
	realtime.Notify(ctx, s.changes, tn, realtime.Change{Kind: realtime.DealChanged,
		Payload: map[string]any{realtime.PayloadDealID: d.ID, realtime.PayloadPipeline: d.Pipeline}})
}

// tell puts what happened to d on its contacts' timelines: action is
// created, moved, won, lost or reopened.
func (s *Service) tell(ctx context.Context, tn store.Tenant, d *Deal, action, from string) {
	subject := map[string]string{
		"created": "Deal created: %s (%s)", "moved": "Deal %s moved to %s", "won": "Deal won: %s (%s)",
		"lost": "Deal lost: %s (%s)", "reopened": "Deal %s reopened in %s",
	}[action]
	props := map[string]any{"action": action, "dealId": d.ID, "pipeline": d.Pipeline, "stage": d.Stage, "status": d.Status,
		"amount": d.AmountUnits(), "currency": d.Currency}
	if from != "" {
		props["fromStage"] = from
	}
	story.Post(ctx, tn, s.timeline, story.Item{Kind: "DEAL", Subject: fmt.Sprintf(subject, d.Name, d.Stage),
		Key: fmt.Sprintf("deal:%s:v%d", d.ID, d.Version), Properties: props, Account: d.AccountID, At: d.UpdatedAt}, d.ContactIDs...)
}

// stageAction names a move from status was to d's.
func stageAction(was string, d *Deal) string {
	switch {
	case d.Status == Won:
		return "won"
	case d.Status == Lost:
		return "lost"
	case was != Open:
		return "reopened"
	}
	return "moved"
}

// advance moves d's contacts forward: to OPPORTUNITY while it is open, to
// CUSTOMER once won (never backwards; a contact there already stays). A
// failure is logged: the deal is stored, and the stage is the contacts'.
func (s *Service) advance(ctx context.Context, tn store.Tenant, d *Deal) {
	if s.lifecycle == nil || len(d.ContactIDs) == 0 {
		return
	}
	stage, cause := profile.Opportunity, "deal.opened"
	switch d.Status {
	case Won:
		stage, cause = profile.Customer, "deal.won"
	case Lost:
		return
	}
	if _, err := s.lifecycle.Advance(context.WithoutCancel(ctx), tn, d.ContactIDs, stage, cause, ""); err != nil {
		slog.ErrorContext(ctx, "deals: move the contacts' lifecycle stage", "deal", d.ID, "stage", stage, "err", err)
	}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Limits of a deal.
const (
	MaxContacts  = 100
	MaxReasonLen = 1024
)

// CreateInput is a new deal. Pipeline defaults to DefaultKey and Stage to
// its first stage; Currency is required with an amount.
type CreateInput struct {
	Name            string
	Pipeline        string
	Stage           string
	Amount          float64
	Currency        string
	ExpectedCloseAt *time.Time
	OwnerID         string
	AccountID       string
	ContactIDs      []string
}

// Create stores a new deal (errors name fields of createDeal's input).
func (s *Service) Create(ctx context.Context, tn store.Tenant, in CreateInput) (*Deal, error) {
	name, err := checkText("input.name", in.Name, MaxNameLen, true)
	if err != nil {
		return nil, err
	}
	if in.Pipeline == "" {
		in.Pipeline = DefaultKey
	}
	p, err := s.Get(ctx, tn, "input.pipeline", in.Pipeline)
	if err != nil {
		return nil, err
	}
	st, ok := p.firstOpen()
	if !ok {
		return nil, apperr.Invalid("input.pipeline", "pipeline %s has no open stage", p.Key)
	}
	if in.Stage != "" {
		var ok bool
		if st, ok = p.Stage(in.Stage); !ok {
			return nil, apperr.Invalid("input.stage", "pipeline %s has no stage %q", p.Key, in.Stage)
		}
	}
	cur, scale, err := parseCurrency("input.currency", in.Currency)
	if err != nil {
		return nil, err
	}
	amount, err := toMinor("input.amount", in.Amount, scale)
	if err != nil {
		return nil, err
	}
	owner, err := checkText("input.ownerId", in.OwnerID, MaxNameLen, false)
	if err != nil {
		return nil, err
	}
	if err := checkAccount(ctx, tn, "input.accountId", in.AccountID); err != nil {
		return nil, err
	}
	contacts, err := liveContacts(ctx, tn, "input.contactIds", in.ContactIDs)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	d := &Deal{ID: store.NewID(), Name: name, Pipeline: p.Key, Stage: st.Key, Status: st.Outcome, Amount: amount, Currency: cur, Digits: scale,
		ExpectedCloseAt: NoClose, OwnerID: owner, AccountID: in.AccountID, ContactIDs: contacts, CreatedAt: now, UpdatedAt: now,
		History: []Visit{{Stage: st.Key, EnteredAt: now}}, Version: 1}
	if in.ExpectedCloseAt != nil {
		d.ExpectedCloseAt = in.ExpectedCloseAt.UTC().Truncate(time.Millisecond)
	}
	if st.Outcome != Open {
		d.ClosedAt = now
	}
	// The index first: a row whose deal never lands is ignored (Facts
	// checks the deal), a deal without its rows would be missed.
	if err := indexContacts(ctx, tn, d.ID, d.ContactIDs); err != nil {
		return nil, err
	}
	err = s.tallied(ctx, tn, nil, d, func() error {
		if err := tn.C(Deals).Insert(ctx, d); err != nil {
			return fmt.Errorf("store deal: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.WorkspaceID = tn.Workspace()
	s.notify(ctx, tn, d)
	s.decide(ctx, tn, d, nil)
	account.Redecide(ctx, tn, s.segments, "deal", nil, d.AccountID)
	s.advance(ctx, tn, d)
	s.tell(ctx, tn, d, "created", "")
	return d, nil
}

// UpdateInput changes a deal's fields (nil: unchanged). ExpectedVersion
// is the version read: another is CONFLICT.
type UpdateInput struct {
	Name            *string
	Amount          *float64
	Currency        *string
	ExpectedCloseAt *time.Time
	OwnerID         *string
	AccountID       *string
	ContactIDs      []string
	SetContacts     bool
	ExpectedVersion int64
}

// Update changes deal id's fields (not its stage: Move, Close).
func (s *Service) Update(ctx context.Context, tn store.Tenant, id string, in UpdateInput) (*Deal, error) {
	return s.change(ctx, tn, id, in.ExpectedVersion, func(d *Deal) error {
		if in.Name != nil {
			n, err := checkText("input.name", *in.Name, MaxNameLen, true)
			if err != nil {
				return err
			}
			d.Name = n
		}
		var err error
		// The stored amount stays as it is unless the amount or the
		// currency changes (no round trip through a float).
		if in.Amount != nil || in.Currency != nil {
			cur, scale := d.Currency, d.Digits
			if in.Currency != nil {
				if cur, scale, err = parseCurrency("input.currency", *in.Currency); err != nil {
					return err
				}
			}
			units := d.AmountUnits()
			if in.Amount != nil {
				units = *in.Amount
			}
			if d.Amount, err = toMinor("input.amount", units, scale); err != nil {
				return err
			}
			d.Currency, d.Digits = cur, scale
		}
		if in.ExpectedCloseAt != nil {
			d.ExpectedCloseAt = in.ExpectedCloseAt.UTC().Truncate(time.Millisecond)
		}
		if in.OwnerID != nil {
			if d.OwnerID, err = checkText("input.ownerId", *in.OwnerID, MaxNameLen, false); err != nil {
				return err
			}
		}
		if in.AccountID != nil {
			if err := checkAccount(ctx, tn, "input.accountId", *in.AccountID); err != nil {
				return err
			}
			d.AccountID = *in.AccountID
		}
		if in.SetContacts {
			if d.ContactIDs, err = liveContacts(ctx, tn, "input.contactIds", in.ContactIDs); err != nil {
				return err
			}
		}
		return nil
	})
}

// Move moves deal id to stage, with a reason: the current visit ends and
// a new one starts. A WON or LOST stage closes the deal; an OPEN stage
// reopens a closed one.
func (s *Service) Move(ctx context.Context, tn store.Tenant, id, stage, reason string, expectedVersion int64) (*Deal, error) {
	reason, err := checkText("reason", reason, MaxReasonLen, false)
	if err != nil {
		return nil, err
	}
	var was, from string
	d, err := s.change(ctx, tn, id, expectedVersion, func(d *Deal) error {
		was, from = d.Status, d.Stage
		p, err := s.Get(ctx, tn, "stage", d.Pipeline)
		if err != nil {
			return err
		}
		st, ok := p.Stage(stage)
		if !ok {
			return apperr.Invalid("stage", "pipeline %s has no stage %q", p.Key, stage)
		}
		if st.Key == d.Stage {
			return apperr.Invalid("stage", "the deal is in %q already", stage)
		}
		s.enter(d, st, reason)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.tell(ctx, tn, d, stageAction(was, d), from)
	return d, nil
}

// Close closes deal id as outcome (WON or LOST) in the pipeline's first
// stage of that outcome. A closed deal is refused (reopen it with Move).
func (s *Service) Close(ctx context.Context, tn store.Tenant, id, outcome, reason string, expectedVersion int64) (*Deal, error) {
	if outcome != Won && outcome != Lost {
		return nil, apperr.Invalid("outcome", "must be WON or LOST")
	}
	reason, err := checkText("reason", reason, MaxReasonLen, false)
	if err != nil {
		return nil, err
	}
	var from string
	d, err := s.change(ctx, tn, id, expectedVersion, func(d *Deal) error {
		from = d.Stage
		if d.Status != Open {
			return apperr.Invalid("id", "deal %s is closed already (%s): move it to an open stage to reopen it", d.ID, d.Status)
		}
		p, err := s.Get(ctx, tn, "id", d.Pipeline)
		if err != nil {
			return err
		}
		st, ok := p.closing(outcome)
		if !ok {
			return apperr.Invalid("outcome", "pipeline %s has no %s stage", p.Key, outcome)
		}
		s.enter(d, st, reason)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.tell(ctx, tn, d, stageAction(Open, d), from)
	return d, nil
}

// enter ends d's current visit and starts one in st.
func (s *Service) enter(d *Deal, st Stage, reason string) {
	now := s.clock()
	if n := len(d.History); n > 0 && d.History[n-1].LeftAt.IsZero() {
		d.History[n-1].LeftAt = now
	}
	d.History = append(d.History, Visit{Stage: st.Key, EnteredAt: now, Reason: reason})
	d.Stage, d.Status = st.Key, st.Outcome
	if st.Outcome == Open {
		d.ClosedAt, d.CloseReason = time.Time{}, ""
	} else {
		d.ClosedAt, d.CloseReason = now, reason
	}
}

// change applies fn to deal id if it is at expectedVersion, in one
// compare-and-swap: a stale version, or a write that lands first, is
// CONFLICT, and nothing changes.
func (s *Service) change(ctx context.Context, tn store.Tenant, id string, expectedVersion int64, fn func(*Deal) error) (*Deal, error) {
	d, err := s.Deal(ctx, tn, id)
	if err != nil {
		return nil, err
	}
	if d.Version != expectedVersion {
		return nil, apperr.New(apperr.Conflict, "deal %s is at version %d, not %d: read it again", id, d.Version, expectedVersion)
	}
	next := *d
	next.History = slices.Clone(d.History)
	next.ContactIDs = slices.Clone(d.ContactIDs)
	if err := fn(&next); err != nil {
		return nil, err
	}
	next.UpdatedAt, next.Version = s.clock(), d.Version+1
	if err := indexContacts(ctx, tn, next.ID, next.ContactIDs); err != nil {
		return nil, err
	}
	err = s.tallied(ctx, tn, d, &next, func() error {
		if err := tn.C(Deals).Replace(ctx, &next, d.Version); err != nil {
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				return apperr.New(apperr.Conflict, "deal %s changed since version %d was read: read it again", id, expectedVersion)
			}
			return fmt.Errorf("store deal %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.notify(ctx, tn, &next)
	s.decide(ctx, tn, &next, d.ContactIDs)
	if next.Status != d.Status || next.AccountID != d.AccountID {
		account.Redecide(ctx, tn, s.segments, "deal", nil, d.AccountID, next.AccountID)
	}
	if next.Status != d.Status || !slices.Equal(next.ContactIDs, d.ContactIDs) {
		s.advance(ctx, tn, &next)
	}
	return &next, nil
}

// Deal reads deal id (NOT_FOUND when there is none).
func (s *Service) Deal(ctx context.Context, tn store.Tenant, id string) (*Deal, error) {
	return get(ctx, tn, id)
}

// Exists reports NOT_FOUND when the workspace has no deal id (other
// domains' links to a deal check it).
func Exists(ctx context.Context, tn store.Tenant, id string) error {
	_, err := get(ctx, tn, id)
	return err
}

func get(ctx context.Context, tn store.Tenant, id string) (*Deal, error) {
	var d Deal
	if err := tn.C(Deals).Get(ctx, id, &d); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apperr.New(apperr.NotFound, "deal %s not found", id)
		}
		return nil, fmt.Errorf("load deal %s: %w", id, err)
	}
	if d.ContactIDs == nil {
		d.ContactIDs = []string{}
	}
	return &d, nil
}

func checkText(field, v string, max int, required bool) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case required && v == "":
		return "", apperr.Invalid(field, "must not be empty")
	case len(v) > max:
		return "", apperr.Invalid(field, "is longer than %d bytes", max)
	}
	return v, nil
}

// checkAccount: an account id given must be the workspace's.
func checkAccount(ctx context.Context, tn store.Tenant, field, id string) error {
	if id == "" {
		return nil
	}
	err := account.Exists(ctx, tn, id)
	if apperr.CodeOf(err) == apperr.NotFound {
		return apperr.New(apperr.NotFound, "%s: account %s not found", field, id)
	}
	return err
}

// liveContacts resolves contact ids to live profiles (following merges),
// without repeats: NOT_FOUND for one the workspace does not have.
func liveContacts(ctx context.Context, tn store.Tenant, field string, ids []string) ([]string, error) {
	if len(ids) > MaxContacts {
		return nil, apperr.Invalid(field, "a deal has at most %d contacts", MaxContacts)
	}
	out := []string{}
	for i, id := range ids {
		p, err := profile.Resolve(ctx, tn, id, identity.Redirect)
		if apperr.CodeOf(err) == apperr.NotFound {
			return nil, apperr.New(apperr.NotFound, "%s[%d]: profile %s not found", field, i, id)
		}
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, p.ID) {
			out = append(out, p.ID)
		}
	}
	return out, nil
}

// Now is the service's clock: the end of a current stage visit as shown.
func (s *Service) Now() time.Time { return s.clock() }

// EraseProfile takes profileID off every deal's contacts (an erasure);
// the deals and their amounts stay, as the company's books.
func EraseProfile(ctx context.Context, tn store.Tenant, profileID string) error {
	if _, err := tn.C(DealContacts).DeleteMany(ctx, store.Query{Index: DealContactsByProfile, Eq: []any{profileID}}); err != nil {
		return fmt.Errorf("erase the deal contacts of %s: %w", profileID, err)
	}
	var ids []string
	err := tn.C(Deals).Each(ctx, store.Query{Index: store.ByID}, func(raw bson.Raw) error {
		v, err := raw.LookupErr("contactIds")
		if err != nil {
			return nil
		}
		arr, ok := v.ArrayOK()
		if !ok {
			return nil
		}
		vals, _ := arr.Values()
		for _, x := range vals {
			if s, _ := x.StringValueOK(); s == profileID {
				id, _ := raw.Lookup("_id").StringValueOK()
				ids = append(ids, id)
				break
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deals of %s: %w", profileID, err)
	}
	for _, id := range ids {
		err := store.Rewrite(ctx, tn.C(Deals), id, nil, func(d *Deal) *int64 { return &d.Version }, func(d *Deal) bool {
			if !slices.Contains(d.ContactIDs, profileID) {
				return false
			}
			d.ContactIDs = slices.DeleteFunc(slices.Clone(d.ContactIDs), func(c string) bool { return c == profileID })
			return true
		})
		if err != nil {
			return fmt.Errorf("take %s off deal %s: %w", profileID, id, err)
		}
	}
	return nil
}

// ExportedDeal is a deal a person is a contact of, as their data export
// shows it.
type ExportedDeal struct {
	DealID string `json:"dealId"`
	Name   string `json:"name"`
	Stage  string `json:"stage"`
	Status string `json:"status"`
}

// ExportProfile lists the deals any of profileIDs (a person and the
// profiles merged into them) is a contact of.
func ExportProfile(ctx context.Context, tn store.Tenant, profileIDs ...string) ([]ExportedDeal, error) {
	out := []ExportedDeal{}
	err := tn.C(Deals).Each(ctx, store.Query{Index: store.ByID}, func(raw bson.Raw) error {
		var d Deal
		if err := bson.Unmarshal(raw, &d); err != nil {
			return fmt.Errorf("decode deal: %w", err)
		}
		if slices.ContainsFunc(d.ContactIDs, func(c string) bool { return slices.Contains(profileIDs, c) }) {
			out = append(out, ExportedDeal{DealID: d.ID, Name: d.Name, Stage: d.Stage, Status: d.Status})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deals of %v: %w", profileIDs, err)
	}
	return out, nil
}

// MoveAccount re-links sourceID's deals to targetID (a merge of
// accounts), re-reading a deal a concurrent write changed.
func MoveAccount(ctx context.Context, tn store.Tenant, sourceID, targetID string) error {
	return store.RewriteAll(ctx, tn.C(Deals), store.Query{Index: DealsByAccount, Eq: []any{sourceID}},
		func(d *Deal) string { return d.ID }, func(d *Deal) *int64 { return &d.Version }, func(d *Deal) bool {
			if d.AccountID != sourceID {
				return false
			}
			d.AccountID = targetID
			return true
		})
}
