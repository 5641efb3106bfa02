package resolvers

import (
	"context"
	"fmt"
	"strings"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// Cursor lists of segments.
const (
	segmentsList = "segments"
	membersList  = "members"
	historyList  = "history"
)

// toRule converts the typed GraphQL rule tree, checking that each node
// sets exactly one field; everything else is checked by rule.Validate.
func toRule(in *model.SegmentRuleInput, path string) (rule.Rule, error) {
	var (
		r   rule.Rule
		set []string
	)
	if in.And != nil {
		set = append(set, "and")
		r.And = make([]rule.Rule, len(in.And))
		for i := range in.And {
			c, err := toRule(&in.And[i], fmt.Sprintf("%s.and[%d]", path, i))
			if err != nil {
				return r, err
			}
			r.And[i] = c
		}
	}
	if in.Or != nil {
		set = append(set, "or")
		r.Or = make([]rule.Rule, len(in.Or))
		for i := range in.Or {
			c, err := toRule(&in.Or[i], fmt.Sprintf("%s.or[%d]", path, i))
			if err != nil {
				return r, err
			}
			r.Or[i] = c
		}
	}
	if in.Not != nil {
		set = append(set, "not")
		c, err := toRule(in.Not, path+".not")
		if err != nil {
			return r, err
		}
		r.Not = &c
	}
	if in.Trait != nil {
		set = append(set, "trait")
		r.Trait = toCond(in.Trait)
	}
	if in.Event != nil {
		set = append(set, "event")
		ev := &rule.EventCond{Name: in.Event.Name}
		for i := range in.Event.Where {
			ev.Where = append(ev.Where, *toCond(&in.Event.Where[i]))
		}
		if c := in.Event.Count; c != nil {
			ev.Count = &rule.CountCond{Op: rule.Op(c.Op), Value: c.Value}
		}
		ev.Window = toWindow(in.Event.Window)
		r.Event = ev
	}
	if in.LastEvent != nil {
		set = append(set, "lastEvent")
		r.LastEvent = &rule.InactivityCond{Name: in.LastEvent.Name}
		if l := in.LastEvent.NotWithin; l != nil {
			r.LastEvent.NotWithin = rule.Last{Amount: l.Amount, Unit: rule.Unit(l.Unit)}
		}
	}
	if in.Profile != nil {
		set = append(set, "profile")
		r.Profile = &rule.ProfileCond{Field: rule.ProfileField(in.Profile.Field), Op: rule.Op(in.Profile.Op), Value: in.Profile.Value}
	}
	if in.InSegment != nil {
		set = append(set, "inSegment")
		r.InSegment = *in.InSegment
		if r.InSegment == "" {
			return r, apperr.Invalid(path+".inSegment", "must not be empty")
		}
	}
	if in.Consent != nil {
		set = append(set, "consent")
		r.Consent = &rule.ConsentCond{Purpose: in.Consent.Purpose, Channel: string(in.Consent.Channel), Status: string(in.Consent.Status)}
	}
	if in.Computed != nil {
		set = append(set, "computed")
		r.Computed = &rule.ComputedCond{Key: in.Computed.Key, Op: rule.Op(in.Computed.Op), Value: in.Computed.Value, Values: in.Computed.Values}
	}
	if in.Identifier != nil {
		set = append(set, "identifier")
		r.Identifier = &rule.IdentifierCond{Type: in.Identifier.Type, Exists: in.Identifier.Exists}
	}
	if in.LifecycleStage != nil {
		set = append(set, "lifecycleStage")
		stages := make([]string, len(in.LifecycleStage.In))
		for i, st := range in.LifecycleStage.In {
			stages[i] = string(st)
		}
		r.Lifecycle = &rule.LifecycleCond{In: stages}
	}
	if in.Ticket != nil {
		set = append(set, "ticket")
		c := &rule.TicketCond{Open: in.Ticket.Open, Breached: in.Ticket.Breached}
		for _, st := range in.Ticket.Statuses {
			c.Statuses = append(c.Statuses, string(st))
		}
		for _, pr := range in.Ticket.Priorities {
			c.Priorities = append(c.Priorities, string(pr))
		}
		r.Ticket = c
	}
	if in.Deal != nil {
		set = append(set, "deal")
		c := &rule.DealCond{Pipeline: deref(in.Deal.Pipeline), Stages: in.Deal.Stages, Currency: deref(in.Deal.Currency)}
		for _, st := range in.Deal.Statuses {
			c.Statuses = append(c.Statuses, string(st))
		}
		if in.Deal.Amount != nil {
			c.Amount = &rule.AmountCond{Op: rule.Op(in.Deal.Amount.Op), Value: in.Deal.Amount.Value}
		}
		r.Deal = c
	}
	if in.Account != nil {
		set = append(set, "account")
		c := &rule.AccountCond{}
		for i := range in.Account.Traits {
			c.Traits = append(c.Traits, *toCond(&in.Account.Traits[i]))
		}
		for _, rc := range in.Account.Rollups {
			c.Rollups = append(c.Rollups, rule.RollupCond{Field: rule.RollupField(rc.Field), Op: rule.Op(rc.Op), Value: rc.Value})
		}
		r.Account = c
	}
	switch len(set) {
	case 0:
		return r, apperr.Invalid(path, "set exactly one of and, or, not, trait, event, lastEvent, profile, inSegment, consent, computed, identifier, lifecycleStage, ticket, deal, account")
	case 1:
		return r, nil
	}
	return r, apperr.Invalid(path, "set exactly one field, not %s", strings.Join(set, " and "))
}

// toWindow converts a time window (nil stays nil).
func toWindow(w *model.WindowInput) *rule.Window {
	if w == nil {
		return nil
	}
	out := &rule.Window{}
	if w.Last != nil {
		out.Last = &rule.Last{Amount: w.Last.Amount, Unit: rule.Unit(w.Last.Unit)}
	}
	if w.Between != nil {
		out.Between = &rule.Between{From: w.Between.From.UTC(), To: w.Between.To.UTC()}
	}
	return out
}

func toCond(in *model.TraitConditionInput) *rule.TraitCond {
	return &rule.TraitCond{Key: in.Key, Op: rule.Op(in.Op), Value: in.Value, Values: in.Values}
}

func toSegment(s *segment.Segment) *model.Segment {
	out := &model.Segment{
		ID: s.ID, Name: s.Name, Kind: model.SegmentKind(s.Kind), Status: model.SegmentStatus(s.Status),
		Version: int(s.Version), CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
		Description: optional(s.Description),
	}
	if s.Kind == segment.Dynamic {
		out.Rule = s.Rule
	}
	return out
}

func toBuild(b *segment.Build) *model.SegmentBuild {
	out := &model.SegmentBuild{Status: model.SegmentBuildStatus(b.Status), Processed: int(b.Processed), Total: int(b.Total), StartedAt: b.StartedAt}
	if !b.FinishedAt.IsZero() {
		out.FinishedAt = &b.FinishedAt
	}
	out.Error = optional(b.Error)
	return out
}

func toChange(c segment.Change) model.MembershipChange {
	return model.MembershipChange{
		ID: c.ID, Kind: model.MembershipChangeKind(c.Kind), At: c.At, Cause: c.Cause,
		Segment: &model.Segment{ID: c.SegmentID}, Profile: &model.Profile{ID: c.ProfileID},
	}
}

// loadProfile returns the live profile for id (following merges), or nil;
// its document stays in the query's memo for the profile's fields.
func (r *Resolver) loadProfile(ctx context.Context, tn store.Tenant, id string) (*model.Profile, error) {
	p, err := profile.Resolve(ctx, tn, id, r.identity.Redirect)
	if apperr.CodeOf(err) == apperr.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return remember(ctx, p), nil
}

// segmentByID loads a segment of the caller's workspace (NOT_FOUND if none).
func (r *Resolver) segmentByID(ctx context.Context, id string) (*model.Segment, error) {
	tn, _, err := r.tenant(ctx)
	if err != nil {
		return nil, err
	}
	s, err := r.segments.Get(ctx, tn, id)
	if err != nil {
		return nil, err
	}
	return toSegment(s), nil
}

// toTargets maps a static-segment call's profile ids and identifiers.
func toTargets(profileIDs []string, identifiers []model.IdentifierInput) segment.Targets {
	return segment.Targets{ProfileIDs: profileIDs, Identifiers: toIdentifiers(identifiers)}
}
