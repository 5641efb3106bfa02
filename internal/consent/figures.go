package consent

import (
	"context"
	"fmt"

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
		var r Record
		if err := bson.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("decode consent record: %w", err)
		}
		r.normalise()
		if r.ProfileID != cur {
			if err := flush(); err != nil {
				return err
			}
			cur, entries = r.ProfileID, entries[:0]
		}
		if r.Purpose == purpose {
			entries = append(entries, LogEntry{Channel: r.Channel, ConsentEntry: r.entry()})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("consent log: %w", err)
	}
	return flush()
}
