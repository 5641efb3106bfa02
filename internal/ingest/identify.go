package ingest

import (
	"context"
	"log/slog"

	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/auth"
	"github.com/halo-cdp/halo/internal/platform/userjson"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/store"
)

// IdentifyInput is an identify call.
type IdentifyInput struct {
	Identifiers []identity.Identifier
	Traits      any
	Consent     []consent.Choice
}

// Identify finds or creates the person of in's identifiers, stitching
// and merging profiles, applies the traits, re-evaluates the segments the
// write touched and records the consent it carries.
func (p *Pipeline) Identify(ctx context.Context, tn store.Tenant, who Caller, in IdentifyInput) (identity.Result, error) {
	types, err := identity.LoadTypes(ctx, tn)
	if err != nil {
		return identity.Result{}, err
	}
	ids, err := types.Normalise("input.identifiers", in.Identifiers)
	if err != nil {
		return identity.Result{}, err
	}
	traits, err := userjson.Object(in.Traits, profile.TraitLimits)
	if err != nil {
		return identity.Result{}, apperr.Invalid("input.traits", "%s", err.Error())
	}
	// Step 1: the consent it carries, before anything is written.
	choices, err := p.prepareConsent(ctx, tn, who, "input.consent", in.Consent)
	if err != nil {
		return identity.Result{}, err
	}
	// Steps 4 and 7: memberships are decided in the write that applies
	// the traits, then handed off.
	decider, err := p.segments.Decider(ctx, tn, "identify")
	if err != nil {
		return identity.Result{}, err
	}
	req := identity.Request{Identifiers: ids, Traits: traits, SeenAt: p.now(), Actor: who.Subject, Types: types, Quiet: true, Decide: decider}
	res, err := p.identity.Resolve(ctx, tn, req)
	if err != nil {
		return identity.Result{}, err
	}
	if res.Decided {
		// Decided and stored: a failed hand-off stays pending on the
		// profile, for the sweeper to finish. The profile's own change
		// rides in the hand-off's outbox write.
		if err := p.segments.HandOff(context.WithoutCancel(ctx), tn, []*profile.Profile{res.Profile}, res.Changes...); err != nil {
			slog.ErrorContext(ctx, "segments: hand off memberships", "profile", res.Profile.ID, "cause", "identify", "err", err)
		}
	} else {
		realtime.Notify(ctx, p.changes, tn, res.Changes...)
		p.segments.AfterWrite(context.WithoutCancel(ctx), tn, []string{res.Profile.ID}, "identify", identity.IdentifyTouched(req, res))
	}
	p.joinAccounts(ctx, tn, res.Profile.ID, ids)
	// Step 9.
	if _, err := p.consent.Apply(ctx, tn, res.Profile.ID, choices); err != nil {
		return identity.Result{}, err
	}
	return res, nil
}

// prepareConsent checks consent carried by identify or track. It is a
// consent write: the argument, not the field, needs the scope, so the
// schema's @hasScope cannot say it.
func (p *Pipeline) prepareConsent(ctx context.Context, tn store.Tenant, who Caller, field string, choices []consent.Choice) (consent.Batch, error) {
	if len(choices) == 0 {
		return consent.Batch{}, nil
	}
	if !who.ConsentWrite {
		return consent.Batch{}, apperr.New(apperr.Forbidden, "%s needs scope %s", field, auth.ScopeConsentWrite)
	}
	return p.consent.Prepare(ctx, tn, field, choices)
}
