package consent

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/store"
)

// AnonymiseLog keeps a profile's consent_log entries as proof that consent
// existed (purpose, channel, status, source, capturedAt, recordedAt,
// expiresAt) while removing the person (GDPR erasure): profileId becomes
// pseudonym and everything else is dropped — proof (an IP address, free
// text), the profile the entry was first stored on (originProfileId), and
// any field added later: an allow-list, so a new field cannot leak the
// person by default. Idempotent; returns how many entries pseudonym holds
// in all.
func AnonymiseLog(ctx context.Context, tn store.Tenant, profileIDs []string, pseudonym string) (int, error) {
	c := tn.C(ConsentLog)
	for _, pid := range profileIDs {
		for {
			// Rewritten entries leave the range: each pass reads from the start.
			docs, _, err := c.Scan(ctx, store.Query{Index: ConsentByProfile, Eq: []any{pid}, Limit: 500})
			if err != nil {
				return 0, fmt.Errorf("consent log of %s: %w", pid, err)
			}
			if len(docs) == 0 {
				break
			}
			for _, raw := range docs {
				var doc bson.D
				if err := bson.Unmarshal(raw, &doc); err != nil {
					return 0, fmt.Errorf("decode consent entry: %w", err)
				}
				out := make(bson.D, 0, len(doc))
				for _, e := range doc {
					switch e.Key {
					case "profileId":
						e.Value = pseudonym
					case "_id", "workspaceId", "purpose", "channel", "status", "source", "capturedAt", "recordedAt", "expiresAt":
					default:
						continue
					}
					out = append(out, e)
				}
				if err := c.Put(ctx, out); err != nil {
					return 0, fmt.Errorf("anonymise consent entry: %w", err)
				}
			}
		}
	}
	n, err := c.Count(ctx, store.Query{Index: ConsentByProfile, Eq: []any{pseudonym}})
	if err != nil {
		return 0, fmt.Errorf("count anonymised consent entries: %w", err)
	}
	return int(n), nil
}
