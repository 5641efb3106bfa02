package consent

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// LogEntry is one consent_log record of a purpose, without its proof.
type LogEntry struct {
	Channel string
	rule.ConsentEntry
}

// EachLog calls fn once per profile holding records of purpose, with
// those records in log order (recordedAt): one walk of the whole log by
// profile. The profile id of an erased person's kept records is the
// erasure's pseudonym.
func EachLog(ctx context.Context, tn store.Tenant, purpose string, fn func(profileID string, entries []LogEntry) error) error {
	var (
		cur     string
		entries []LogEntry
	)
	flush := func() error {
		if len(entries) == 0 {
			return nil
		}
		return fn(cur, entries)
	}
	err := tn.C(ConsentLog).Each(ctx, store.Query{Index: ConsentByProfile}, func(raw bson.Raw) error {
		// The record without its proof, which the decoder skips.
		var r struct {
			ID         string     `bson:"_id"`
			ProfileID  string     `bson:"profileId"`
			Purpose    string     `bson:"purpose"`
			Channel    string     `bson:"channel"`
			Status     string     `bson:"status"`
			Source     string     `bson:"source"`
			CapturedAt time.Time  `bson:"capturedAt"`
			RecordedAt time.Time  `bson:"recordedAt"`
			ExpiresAt  *time.Time `bson:"expiresAt"`
		}
		if err := bson.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("decode consent record: %w", err)
		}
		if r.ProfileID != cur {
			if err := flush(); err != nil {
				return err
			}
			cur, entries = r.ProfileID, entries[:0]
		}
		if r.Purpose == purpose {
			rec := Record{ID: r.ID, Status: r.Status, Source: r.Source, CapturedAt: r.CapturedAt, RecordedAt: r.RecordedAt, ExpiresAt: r.ExpiresAt}
			rec.normalise()
			entries = append(entries, LogEntry{Channel: r.Channel, ConsentEntry: rec.entry()})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("consent log: %w", err)
	}
	return flush()
}
