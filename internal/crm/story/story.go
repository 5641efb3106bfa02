// Package story puts the CRM's events (a deal created, moved, closed; a
// ticket opened, moved, commented; a task created, completed) on the
// timelines of the people involved, as interactions, so a person's
// timeline tells the CRM story beside their web events.
package story

import (
	"context"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/halo-cdp/halo/internal/crm/accountfeed"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// Timeline is what posting needs of the write path (ingest's
// LogInteraction: the item is counted, segments decided, subscribers
// told, as for any interaction).
type Timeline interface {
	LogInteraction(ctx context.Context, tn store.Tenant, in timeline.InteractionInput) (*timeline.Event, error)
}

// Item is one CRM event. Kind is an interaction kind (DEAL, TICKET,
// TASK); Key names the event uniquely in the workspace (e.g.
// "deal:<id>:v3"): each person's item gets the messageId Key:<person>, so
// posting the same event twice stores it once.
type Item struct {
	Kind       string
	Subject    string
	Actor      string
	Key        string
	Properties map[string]any
	// Account, when set, also gets the item on its own timeline
	// (accountfeed), About naming the person the object is about ("" for
	// none), so that an erasure takes it away.
	Account, About string
	// At is when it happened (the object's write), for the account's
	// item.
	At time.Time
}

// Post puts it on the timeline of each of people (merged-away ids go to
// their survivor; erased people are skipped). The CRM object is stored
// already and is the record: a failure is logged, never returned.
func Post(ctx context.Context, tn store.Tenant, tl Timeline, it Item, people ...string) {
	ctx = context.WithoutCancel(ctx)
	if it.Account != "" {
		err := accountfeed.Add(ctx, tn, accountfeed.Item{AccountID: it.Account, Key: it.Key, Kind: it.Kind, Subject: clip(it.Subject, maxSubject),
			Actor: clip(it.Actor, maxActor), Properties: it.Properties, ProfileID: it.About, At: it.At.UTC()})
		if err != nil {
			slog.ErrorContext(ctx, "crm: put an item on an account's timeline", "kind", it.Kind, "key", it.Key, "account", it.Account, "err", err)
		}
	}
	if tl == nil {
		return
	}
	seen := map[string]bool{}
	for _, id := range people {
		if id == "" {
			continue
		}
		// Two ids of one person (a deal names a profile merged away
		// since, and its survivor) get one item.
		live, err := profile.Resolve(ctx, tn, id, identity.Redirect)
		if err != nil {
			if apperr.CodeOf(err) != apperr.NotFound {
				slog.ErrorContext(ctx, "crm: find a person for their timeline", "kind", it.Kind, "key", it.Key, "profile", id, "err", err)
			}
			continue
		}
		p := live.ID
		if seen[p] {
			continue
		}
		seen[p] = true
		_, err = tl.LogInteraction(ctx, tn, timeline.InteractionInput{ProfileID: p, Kind: it.Kind, Subject: clip(it.Subject, maxSubject), Actor: clip(it.Actor, maxActor),
			Properties: it.Properties, MessageID: it.Key + ":" + p})
		if err != nil && apperr.CodeOf(err) != apperr.NotFound {
			slog.ErrorContext(ctx, "crm: put an item on a timeline", "kind", it.Kind, "key", it.Key, "profile", p, "err", err)
		}
	}
}

// The interaction limits (timeline.NewInteraction): a CRM object's name
// may be longer than an item's subject.
const (
	maxSubject = 500
	maxActor   = 200
)

// clip cuts s to at most n bytes on a character boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
