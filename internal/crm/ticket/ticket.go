package ticket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/story"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// Statuses.
const (
	StatusNew      = "NEW"
	StatusOpen     = "OPEN"
	StatusPending  = "PENDING"
	StatusResolved = "RESOLVED"
	StatusClosed   = "CLOSED"
)

// Priorities, most urgent first.
const (
	Urgent = "URGENT"
	High   = "HIGH"
	Normal = "NORMAL"
	Low    = "LOW"
)

// Priorities lists them, most urgent first.
var Priorities = []string{Urgent, High, Normal, Low}

// Channels a ticket arrives by.
var Channels = []string{"EMAIL", "CHAT", "PHONE", "WEB", "SOCIAL", "OTHER"}

// transitions are the statuses each status may move to. Nothing goes back
// to NEW; a CLOSED ticket only reopens, to OPEN.
var transitions = map[string][]string{
	StatusNew:      {StatusOpen, StatusPending, StatusResolved, StatusClosed},
	StatusOpen:     {StatusPending, StatusResolved, StatusClosed},
	StatusPending:  {StatusOpen, StatusResolved, StatusClosed},
	StatusResolved: {StatusOpen, StatusClosed},
	StatusClosed:   {StatusOpen},
}

// NoDue is a deadline that never falls (indexed: always set).
var NoDue = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// Limits.
const (
	MaxSubjectLen  = 512
	MaxBodyLen     = 64 << 10
	MaxAssigneeLen = 256
	// ErasedSubject replaces an erased person's ticket subject.
	ErasedSubject = "[erased]"
)

// Ticket is one request for service.
type Ticket struct {
	ID          string `bson:"_id"`
	WorkspaceID string `bson:"workspaceId"`
	Subject     string `bson:"subject"`
	Body        string `bson:"body"`
	Priority    string `bson:"priority"`
	Channel     string `bson:"channel"`
	Status      string `bson:"status"`
	// Assignee, ProfileID and AccountID are "" when none (indexed).
	Assignee  string `bson:"assignee"`
	ProfileID string `bson:"profileId"`
	// OriginProfileID is the profile that opened it, kept through merges
	// so that an unmerge gives the ticket back.
	OriginProfileID string    `bson:"originProfileId,omitempty"`
	AccountID       string    `bson:"accountId"`
	CreatedAt       time.Time `bson:"createdAt"`
	UpdatedAt       time.Time `bson:"updatedAt"`
	// FirstResponseAt is the first public answer by an agent.
	FirstResponseAt time.Time `bson:"firstResponseAt,omitempty"`
	// AnsweredAt is when the wait for a first response ended: the first
	// public answer, or the first resolution. A reopening leaves it.
	AnsweredAt time.Time `bson:"answeredAt,omitempty"`
	// ResolvedAt is set on RESOLVED (or CLOSED unresolved), cleared by a
	// reopening; ClosedAt likewise on CLOSED.
	ResolvedAt time.Time `bson:"resolvedAt,omitempty"`
	ClosedAt   time.Time `bson:"closedAt,omitempty"`
	// The targets' deadlines, counted from CreatedAt (NoDue: none).
	FirstResponseDue      time.Time `bson:"firstResponseDue"`
	ResolutionDue         time.Time `bson:"resolutionDue"`
	FirstResponseBreached bool      `bson:"firstResponseBreached"`
	ResolutionBreached    bool      `bson:"resolutionBreached"`
	Breached              bool      `bson:"breached"`
	// CheckAt is the next deadline still waited for (NoDue: none): the
	// sweeper flags the ticket once it passes.
	CheckAt time.Time `bson:"checkAt"`
	// History is every status the ticket was in, oldest first.
	History []Change `bson:"history"`
	Version int64    `bson:"version"`
}

// Change is a ticket's move to a status.
type Change struct {
	Status string    `bson:"status"`
	At     time.Time `bson:"at"`
	By     string    `bson:"by,omitempty"`
}

// Deps are what the service needs from outside the package.
type Deps struct {
	Now func() time.Time
	// Accounts gives a ticket its person's account when they have one.
	Accounts *account.Service
	// Timeline gets a ticket's opening, status moves and comments on its
	// person's timeline.
	Timeline story.Timeline
	// Changes is told of every ticket written (crm.ticket:
	// ticketChanged).
	Changes realtime.Publisher
	// Segments re-decides the person's segments that read tickets after
	// each write to one of theirs.
	Segments Segments
}

// Segments is what tickets need of the segment engine.
type Segments interface {
	AfterProfiles(ctx context.Context, tn store.Tenant, profiles []*profile.Profile, cause string, touched rule.Touched)
	// account.Segments: the account's contacts' account nodes count its
	// open and breached tickets.
	account.Segments
}

// Service is the tickets domain (New).
type Service struct {
	now      func() time.Time
	accounts *account.Service
	timeline story.Timeline
	changes  realtime.Publisher
	segments Segments
	// registered are the workspaces this process registered for the
	// sweeper (one write per workspace and process).
	registered sync.Map
}

// New builds the service.
func New(d Deps) *Service {
	now := d.Now
	if now == nil {
		now = time.Now
	}
	return &Service{now: now, accounts: d.Accounts, timeline: d.Timeline, changes: d.Changes, segments: d.Segments}
}

// Now is the service's clock (what the targets are judged at).
func (s *Service) Now() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// OpenInput is a new ticket (the person already resolved: identifiers go
// through identify first).
type OpenInput struct {
	ProfileID string
	Subject   string
	Body      string
	Priority  string // default NORMAL
	Channel   string // default OTHER
	Assignee  string
	// AccountID defaults to the person's account when they have exactly
	// one.
	AccountID string
	Actor     string
}

// Check validates in's own fields (not the person nor the account), so a
// caller that must first find or make the person refuses bad input
// before writing anything.
func Check(ctx context.Context, tn store.Tenant, in OpenInput) error {
	_, err := checked(in)
	if err == nil && in.AccountID != "" {
		err = notFound("input.accountId", account.Exists(ctx, tn, in.AccountID))
	}
	return err
}

// checked is in with its fields trimmed and defaulted, or the first
// field refused.
func checked(in OpenInput) (OpenInput, error) {
	var err error
	if in.Subject, err = text("input.subject", in.Subject, MaxSubjectLen, true); err != nil {
		return in, err
	}
	if in.Body, err = text("input.body", in.Body, MaxBodyLen, false); err != nil {
		return in, err
	}
	if in.Assignee, err = text("input.assignee", in.Assignee, MaxAssigneeLen, false); err != nil {
		return in, err
	}
	if in.Priority == "" {
		in.Priority = Normal
	}
	if !slices.Contains(Priorities, in.Priority) {
		return in, apperr.Invalid("input.priority", "unknown priority %q", in.Priority)
	}
	if in.Channel == "" {
		in.Channel = "OTHER"
	}
	if !slices.Contains(Channels, in.Channel) {
		return in, apperr.Invalid("input.channel", "unknown channel %q", in.Channel)
	}
	return in, nil
}

// Open stores a NEW ticket with its targets' deadlines (errors name
// fields of openTicket's input).
func (s *Service) Open(ctx context.Context, tn store.Tenant, in OpenInput) (*Ticket, error) {
	in, err := checked(in)
	if err != nil {
		return nil, err
	}
	subject, body, assignee := in.Subject, in.Body, in.Assignee
	p, err := profile.Resolve(ctx, tn, in.ProfileID, identity.Redirect)
	if err != nil {
		return nil, notFound("input.profileId", err)
	}
	accountID := in.AccountID
	if accountID != "" {
		if err := account.Exists(ctx, tn, accountID); err != nil {
			return nil, notFound("input.accountId", err)
		}
	} else if s.accounts != nil {
		links, err := s.accounts.AccountsOf(ctx, tn, p.ID)
		if err != nil {
			return nil, err
		}
		if len(links) == 1 {
			accountID = links[0].AccountID
		}
	}
	targets, err := s.Targets(ctx, tn)
	if err != nil {
		return nil, err
	}
	if err := s.register(ctx, tn); err != nil {
		return nil, err
	}
	now := s.Now()
	tg := targetOf(targets, in.Priority)
	t := &Ticket{ID: store.NewID(), Subject: subject, Body: body, Priority: in.Priority, Channel: in.Channel, Status: StatusNew,
		Assignee: assignee, ProfileID: p.ID, OriginProfileID: p.ID, AccountID: accountID, CreatedAt: now, UpdatedAt: now,
		FirstResponseDue: due(now, tg.FirstResponse), ResolutionDue: due(now, tg.Resolution),
		History: []Change{{Status: StatusNew, At: now, By: in.Actor}}, Version: 1}
	t.settle(now)
	if err := tn.C(Tickets).Insert(ctx, t); err != nil {
		return nil, fmt.Errorf("store ticket: %w", err)
	}
	// A merge's move or an erasure may have run between the resolution
	// and the insert: the ticket must not stay on a retired profile.
	retired, err := profile.Retired(ctx, tn, t.ProfileID)
	if err != nil {
		return nil, err
	}
	if retired {
		if err := tn.C(Tickets).Delete(ctx, t.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("remove a ticket on a retired profile: %w", err)
		}
		return nil, apperr.New(apperr.NotFound, "input.profileId: profile %s was merged or erased meanwhile: try again", t.ProfileID)
	}
	t.WorkspaceID = tn.Workspace()
	s.notify(ctx, tn, t, nil)
	s.tell(ctx, tn, t, "opened", "")
	return t, nil
}

// notify tells subscribers that t was written, and what it was before
// (prev; nil for a new ticket), so that a queue it left hears of it; and
// re-decides the person's segments that read tickets.
func (s *Service) notify(ctx context.Context, tn store.Tenant, t, prev *Ticket) {
	s.decide(ctx, tn, t)
	if prev == nil || prev.AccountID != t.AccountID || accountCount(prev) != accountCount(t) {
		was := ""
		if prev != nil {
			was = prev.AccountID
		}
		account.Redecide(ctx, tn, s.segments, "ticket", nil, t.AccountID, was)
	}
	payload := map[string]any{realtime.PayloadTicketID: t.ID}
	if prev != nil {
		payload[realtime.PayloadPrevStatus], payload[realtime.PayloadPrevPriority] = prev.Status, prev.Priority
		payload[realtime.PayloadPrevAssignee], payload[realtime.PayloadPrevBreached] = prev.Assignee, prev.Breached
		payload[realtime.PayloadPrevAccount] = prev.AccountID
	}
	realtime.Notify(ctx, s.changes, tn, realtime.Change{Kind: realtime.TicketChanged, Payload: payload})
}

// tell puts what happened to t on its person's timeline: opened, moved
// (a status change, from the status before) or commented (about).
func (s *Service) tell(ctx context.Context, tn store.Tenant, t *Ticket, action, about string) {
	props := map[string]any{"action": action, "ticketId": t.ID, "status": t.Status, "priority": t.Priority}
	subject := "Ticket opened: " + t.Subject
	key := fmt.Sprintf("ticket:%s:v%d", t.ID, t.Version)
	switch action {
	case "moved":
		props["fromStatus"] = about
		subject = fmt.Sprintf("Ticket %s: %s", strings.ToLower(t.Status), t.Subject)
	case "commented":
		props["commentId"] = about
		subject = "Comment on ticket: " + t.Subject
		key = "ticket-comment:" + about
	}
	story.Post(ctx, tn, s.timeline, story.Item{Kind: "TICKET", Subject: subject, Actor: t.Assignee, Key: key, Properties: props}, t.ProfileID)
}

// decide re-decides the segments of t's person that read tickets. A
// failure is logged by the engine; the ticket is stored.
func (s *Service) decide(ctx context.Context, tn store.Tenant, t *Ticket) {
	if s.segments == nil || t.ProfileID == "" {
		return
	}
	p, err := profile.Get(ctx, tn, t.ProfileID)
	if err != nil {
		if apperr.CodeOf(err) != apperr.NotFound && !errors.Is(err, store.ErrNotFound) {
			slog.ErrorContext(ctx, "tickets: read the person to decide their segments", "ticket", t.ID, "err", err)
		}
		return
	}
	s.segments.AfterProfiles(context.WithoutCancel(ctx), tn, []*profile.Profile{p}, "ticket", rule.Touched{Tickets: true})
}

func text(field, s string, limit int, required bool) (string, error) {
	s = strings.TrimSpace(s)
	if required && s == "" {
		return "", apperr.Invalid(field, "is required")
	}
	if len(s) > limit {
		return "", apperr.Invalid(field, "is longer than %d bytes", limit)
	}
	return s, nil
}

func notFound(field string, err error) error {
	if err != nil && apperr.CodeOf(err) == apperr.NotFound {
		return apperr.New(apperr.NotFound, "%s: %s", field, err.Error())
	}
	return err
}

// UpdateInput changes a ticket; nil fields stay. ExpectedVersion, when
// given, is the version read: another is CONFLICT.
type UpdateInput struct {
	Status          *string
	Priority        *string
	Assignee        *string
	ExpectedVersion *int64
	Actor           string
}

// Update applies in to ticket id. A status must be one the current one
// may move to (nothing goes back to NEW; a CLOSED ticket reopens to OPEN
// only); a new priority re-counts the deadlines from the opening with
// the current targets.
func (s *Service) Update(ctx context.Context, tn store.Tenant, id string, in UpdateInput) (*Ticket, error) {
	var assignee string
	if in.Assignee != nil {
		var err error
		if assignee, err = text("input.assignee", *in.Assignee, MaxAssigneeLen, false); err != nil {
			return nil, err
		}
	}
	if in.Priority != nil && !slices.Contains(Priorities, *in.Priority) {
		return nil, apperr.Invalid("input.priority", "unknown priority %q", *in.Priority)
	}
	var targets []Target
	if in.Priority != nil {
		var err error
		if targets, err = s.Targets(ctx, tn); err != nil {
			return nil, err
		}
	}
	var was string
	t, err := s.change(ctx, tn, id, in.ExpectedVersion, func(t *Ticket, now time.Time) error {
		was = t.Status
		if in.Status != nil && *in.Status != t.Status {
			if err := t.move("input.status", *in.Status, now, in.Actor); err != nil {
				return err
			}
		}
		if in.Priority != nil && *in.Priority != t.Priority {
			tg := targetOf(targets, *in.Priority)
			t.Priority, t.FirstResponseDue, t.ResolutionDue = *in.Priority, due(t.CreatedAt, tg.FirstResponse), due(t.CreatedAt, tg.Resolution)
		}
		if in.Assignee != nil {
			t.Assignee = assignee
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if t.Status != was {
		s.tell(ctx, tn, t, "moved", was)
	}
	return t, nil
}

// move changes the status, if the current one may go there.
func (t *Ticket) move(field, to string, now time.Time, actor string) error {
	if _, known := transitions[to]; !known {
		return apperr.Invalid(field, "unknown status %q", to)
	}
	if !slices.Contains(transitions[t.Status], to) {
		hint := ""
		if t.Status == StatusClosed || t.Status == StatusResolved {
			hint = " (reopening goes to OPEN)"
		}
		return apperr.Invalid(field, "a %s ticket cannot move to %s%s", t.Status, to, hint)
	}
	// Kept before the times below change (a ticket from before
	// AnsweredAt ended the wait at its answer or resolution).
	t.AnsweredAt = t.answeredAt()
	switch to {
	case StatusResolved:
		t.ResolvedAt = now
	case StatusClosed:
		t.ClosedAt = now
		if t.ResolvedAt.IsZero() {
			t.ResolvedAt = now
		}
	}
	if (to == StatusResolved || to == StatusClosed) && t.AnsweredAt.IsZero() {
		t.AnsweredAt = now
	}
	switch to {
	case StatusOpen:
		// A reopening: the resolution is waited for again, against the
		// same deadline.
		t.ResolvedAt, t.ClosedAt = time.Time{}, time.Time{}
	}
	t.Status = to
	t.History = append(t.History, Change{Status: to, At: now, By: actor})
	return nil
}

// change reads ticket id, applies fn at now, settles the targets and
// writes it back: against expected when given (CONFLICT when stale),
// else re-reading on a concurrent write.
func (s *Service) change(ctx context.Context, tn store.Tenant, id string, expected *int64, fn func(t *Ticket, now time.Time) error) (*Ticket, error) {
	for range 10 {
		t, err := s.Get(ctx, tn, id)
		if err != nil {
			return nil, err
		}
		if expected != nil && *expected != t.Version {
			return nil, stale(id, t.Version, *expected)
		}
		prev, before := t.Version, *t
		now := s.Now()
		if err := fn(t, now); err != nil {
			return nil, err
		}
		t.settle(now)
		t.UpdatedAt, t.Version = now, prev+1
		err = tn.C(Tickets).Replace(ctx, t, prev)
		if err == nil {
			t.WorkspaceID = tn.Workspace()
			s.notify(ctx, tn, t, &before)
			return t, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("update ticket %s: %w", id, err)
		}
		if expected != nil {
			return nil, stale(id, -1, *expected)
		}
	}
	return nil, apperr.New(apperr.Conflict, "ticket %s changed meanwhile: try again", id)
}

func stale(id string, have, read int64) error {
	if have < 0 {
		return apperr.New(apperr.Conflict, "ticket %s changed since version %d: read it again", id, read)
	}
	return apperr.New(apperr.Conflict, "ticket %s is at version %d, not %d: read it again", id, have, read)
}

// Get reads ticket id (NOT_FOUND when none).
func (s *Service) Get(ctx context.Context, tn store.Tenant, id string) (*Ticket, error) {
	var t Ticket
	if err := tn.C(Tickets).Get(ctx, id, &t); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apperr.New(apperr.NotFound, "ticket %s not found", id)
		}
		return nil, fmt.Errorf("load ticket %s: %w", id, err)
	}
	return &t, nil
}

// Exists tells whether the workspace has ticket id (NOT_FOUND when not).
func Exists(ctx context.Context, tn store.Tenant, id string) error {
	var t struct {
		ID string `bson:"_id"`
	}
	if err := tn.C(Tickets).Get(ctx, id, &t); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return apperr.New(apperr.NotFound, "ticket %s not found", id)
		}
		return fmt.Errorf("load ticket %s: %w", id, err)
	}
	return nil
}
