package resolvers

import (
	"strings"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
)

func toConflicts(cs []identity.Conflict) []model.IdentityConflict {
	out := make([]model.IdentityConflict, len(cs))
	for i, c := range cs {
		out[i] = model.IdentityConflict{Type: c.Type, Values: nonNil(c.Values), ProfileIds: nonNil(c.ProfileIDs)}
	}
	return out
}

func toMergeRecord(rec identity.Record) *model.MergeRecord {
	out := &model.MergeRecord{
		ID: rec.ID, Kind: model.MergeRecordKind(rec.Kind), Status: rec.Status, At: rec.At.UTC(),
		Reason: optional(rec.Reason), Actor: optional(rec.Actor), SourceID: rec.SourceID, TargetID: rec.TargetID,
		Identifiers: make([]model.Identifier, len(rec.Moved)), Traits: make([]model.TraitDecision, len(rec.Traits)),
		Conflicts: toConflicts(rec.Conflicts), MergeID: optional(rec.MergeOf), UndoneAt: rec.UndoneAt,
	}
	for i, id := range rec.Moved {
		out.Identifiers[i] = model.Identifier{Type: id.Type, Value: id.Value, FirstSeenAt: rec.At.UTC()}
	}
	for i, t := range rec.Traits {
		out.Traits[i] = model.TraitDecision{Key: t.Key, Winner: t.Winner, Won: t.Won, Lost: t.Lost}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// text checks a free-text argument.
func text(field, v string, max int) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) > max {
		return "", apperr.Invalid(field, "longer than %d bytes", max)
	}
	return v, nil
}
