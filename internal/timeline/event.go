// Package timeline stores what people do — tracked events and CRM
// interactions — on their profile's timeline: idempotent ingest and
// newest-first reads with keyset cursors.
package timeline

import (
	"strings"

	"github.com/halo-cdp/halo/internal/identity"
	"time"

	"github.com/halo-cdp/halo/internal/platform/userjson"
)

// Kinds of timeline items.
const (
	KindEvent       = "EVENT"
	KindInteraction = "INTERACTION"
)

// Interaction kinds (CRM).
var InteractionKinds = []string{"CALL", "EMAIL", "MEETING", "NOTE", "TICKET", "DEAL", "TASK"}

// Event is one stored timeline item.
type Event struct {
	ID          string `bson:"_id"`
	WorkspaceID string `bson:"workspaceId"`
	ProfileID   string `bson:"profileId"`
	// OriginProfileID is the profile the item was first stored on; it
	// never changes, so an unmerge can give a profile back its own items.
	OriginProfileID string `bson:"originProfileId"`
	// Identifiers the item was tracked with (for unmerge: items that
	// arrive after a merge carrying a restored identifier go back too).
	Identifiers []identity.Identifier `bson:"identifiers,omitempty"`
	Kind        string                `bson:"kind"`
	Name        string                `bson:"name"`
	MessageID   string                `bson:"messageId"`
	Properties  map[string]any        `bson:"properties"`
	Channel     string                `bson:"channel,omitempty"`
	OccurredAt  time.Time             `bson:"occurredAt"`
	ReceivedAt  time.Time             `bson:"receivedAt"`
	// CRM interaction fields.
	InteractionKind string `bson:"interactionKind,omitempty"`
	Subject         string `bson:"subject,omitempty"`
	Body            string `bson:"body,omitempty"`
	Direction       string `bson:"direction,omitempty"`
	Actor           string `bson:"actor,omitempty"`
}

func (e *Event) normalise() {
	e.Properties = userjson.PlainObject(e.Properties)
	e.OccurredAt = e.OccurredAt.UTC()
	e.ReceivedAt = e.ReceivedAt.UTC()
}

// Limits on what one item may carry.
var (
	PropertyLimits = userjson.Limits{MaxDepth: 5, MaxBytes: 32 << 10}
	// MaxFuture is how far ahead of the server clock occurredAt may be
	// (client clocks drift; more than this is a bug on the client).
	MaxFuture = 24 * time.Hour
	// MaxBatch caps trackBatch.
	MaxBatch = 500
)

func lower(s string) string { return strings.ToLower(s) }
