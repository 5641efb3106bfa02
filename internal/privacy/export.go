package privacy

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/lifecycle"
	"github.com/halo-cdp/halo/internal/crm/task"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/userjson"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// Export returns everything stored about a person (GDPR Art. 15/20) as one
// JSON-ready document (maps, slices, strings, numbers; times as RFC 3339
// strings). profileID may be a merged-away id: it stands for its survivor,
// and the documents of every profile merged into it are included.
//
// Keys: exportedAt, profileId, requestedId, mergedProfileIds, profile (the
// stored profile document), traits, identifiers, events, interactions,
// consentLog, memberships (each with its segment's name), membershipHistory
// (ENTERED/EXITED records), merges (merge, unmerge and conflict records,
// with their snapshots), accounts (the person's account links, with the
// accounts' names), deals (those the person is a contact of), tasks
// (those linked to the person), and counts of each list. Stored documents appear
// whole, minus workspaceId and the internal version counter, so nothing
// stored about the person is left out. Timeline items are read a page at a
// time; the whole document is built in memory (10,000 events are a few MB).
func (s *Service) Export(ctx context.Context, tn store.Tenant, profileID string) (map[string]any, error) {
	p, err := s.live(ctx, tn, profileID)
	if err != nil {
		return nil, err
	}
	ids := append([]string{p.ID}, p.MergedFrom...)
	out := map[string]any{
		"exportedAt":       s.now().Format(time.RFC3339Nano),
		"profileId":        p.ID,
		"requestedId":      profileID,
		"mergedProfileIds": slices.Clone(p.MergedFrom),
	}

	var prof map[string]any
	switch raw, err := profile.Raw(ctx, tn, p.ID); {
	case err == nil:
		prof = plainDoc(raw)
	case !store.IsNotFound(err):
		return nil, fmt.Errorf("export %s: %w", p.ID, err)
	}
	if s.derived != nil {
		derived, err := s.derived(ctx, tn, p)
		if err != nil {
			return nil, err
		}
		for k, v := range derived {
			out[k] = v
		}
		// Their stored forms are packed binaries, unreadable in an export.
		delete(prof, "computed")
		delete(prof, "tally")
	}
	out["profile"] = prof
	out["traits"] = userjson.PlainObject(p.Traits)

	identifiers := []any{}
	for _, id := range ids {
		held, err := identity.Identifiers(ctx, tn, id)
		if err != nil {
			return nil, err
		}
		for _, h := range held {
			identifiers = append(identifiers, map[string]any{"type": h.Type, "value": h.Value, "firstSeenAt": h.FirstSeenAt.UTC().Format(time.RFC3339Nano)})
		}
	}
	out["identifiers"] = identifiers

	events, interactions := []any{}, []any{}
	for _, id := range ids {
		err := timeline.RawOf(ctx, tn, id, func(raw bson.Raw) error {
			doc := plainDoc(raw)
			if kind, _ := doc["kind"].(string); kind == timeline.KindInteraction {
				interactions = append(interactions, doc)
			} else {
				events = append(events, doc)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out["events"], out["interactions"] = events, interactions

	lists := []struct {
		key  string
		read func(context.Context, store.Tenant, string, func(bson.Raw) error) error
	}{
		{"consentLog", consent.RecordsOf},
		{"memberships", segment.MembershipsOf},
		{"membershipHistory", segment.HistoryOf},
	}
	counts := map[string]any{"identifiers": len(identifiers), "events": len(events), "interactions": len(interactions)}
	for _, l := range lists {
		docs := []any{}
		for _, id := range ids {
			if err := l.read(ctx, tn, id, func(raw bson.Raw) error { docs = append(docs, plainDoc(raw)); return nil }); err != nil {
				return nil, err
			}
		}
		out[l.key], counts[l.key] = docs, len(docs)
	}
	s.nameSegments(ctx, tn, out["memberships"].([]any))

	merges, seen := []any{}, map[string]bool{}
	for _, id := range ids {
		err := identity.MergesOf(ctx, tn, id, func(raw bson.Raw) error {
			doc := plainDoc(raw)
			if rid, _ := doc["_id"].(string); !seen[rid] {
				seen[rid] = true
				merges = append(merges, doc)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out["merges"], counts["merges"] = merges, len(merges)
	links, err := account.ExportProfile(ctx, tn, p.ID)
	if err != nil {
		return nil, err
	}
	out["accounts"], counts["accounts"] = links, len(links)
	deals, err := deal.ExportProfile(ctx, tn, ids...)
	if err != nil {
		return nil, err
	}
	out["deals"], counts["deals"] = deals, len(deals)
	tasks, err := task.ExportProfile(ctx, tn, ids...)
	if err != nil {
		return nil, err
	}
	out["tasks"], counts["tasks"] = tasks, len(tasks)
	tickets, err := ticket.ExportProfile(ctx, tn, ids...)
	if err != nil {
		return nil, err
	}
	out["tickets"], counts["tickets"] = tickets, len(tickets)
	stages, err := lifecycle.History(ctx, tn, ids...)
	if err != nil {
		return nil, err
	}
	history := make([]map[string]any, len(stages))
	for i, c := range stages {
		history[i] = map[string]any{"from": c.From, "to": c.To, "cause": c.Cause, "at": c.At.Format(time.RFC3339Nano)}
	}
	out["lifecycleStage"], out["lifecycleHistory"], counts["lifecycleHistory"] = p.Lifecycle, history, len(history)
	out["counts"] = counts
	return out, nil
}

// nameSegments adds each membership's segment name (best effort: a
// segment that cannot be read is left unnamed).
func (s *Service) nameSegments(ctx context.Context, tn store.Tenant, memberships []any) {
	names := map[string]string{}
	for _, m := range memberships {
		doc, _ := m.(map[string]any)
		sid, _ := doc["segmentId"].(string)
		if sid == "" {
			continue
		}
		name, ok := names[sid]
		if !ok {
			name, _ = segment.NameOf(ctx, tn, sid)
			names[sid] = name
		}
		if name != "" {
			doc["segmentName"] = name
		}
	}
}

// plainDoc is a stored document as plain JSON values, without the
// workspace stamp and the internal version counter.
func plainDoc(raw bson.Raw) map[string]any {
	doc, _ := userjson.PlainRaw(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: raw}).(map[string]any)
	if doc == nil {
		doc = map[string]any{}
	}
	delete(doc, "workspaceId")
	delete(doc, "version")
	return doc
}
