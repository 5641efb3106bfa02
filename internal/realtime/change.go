// Package realtime delivers changes to subscribers: an outbox collection
// (store.Changes) that every write appends to, and a per-process Hub that
// fans changes out to subscribers — immediately for changes published in
// this process, by tailing the outbox for changes published by other
// instances.
//
// # Cursor design
//
// The outbox holds one document per Publish call (a batch of changes, in
// order): a trackBatch of 100 events publishes some 500 changes in one
// document, where one document per change cost the single writer a sixth
// of its time. A batch's id (and its seq) is store.NewID(), a UUIDv7: its
// first 48 bits are the writer's clock in milliseconds, and ids from one
// process increase strictly. Its changes' ids are the batch's with their
// position (changeID), so they sort as the batches do: a subscriber
// resumes after one, with no gap and no repeat, however batches minted
// side by side were committed. Ids from several instances interleave by
// time but are not committed in id order:
// a writer takes its id, then waits for the store (SQLite's single writer,
// another process's lock, network), so a batch with a smaller id can become
// visible after one with a larger id was read.
//
// Tailers therefore never trust "seq > last seen" alone. Every Poll they read
// seq > highest seen (cheap: only new batches), and every Sweep they re-read
// seq >= (highest seen − Overlap), de-duplicating by batch id against the
// ids seen in that window. A change is delivered as long as it becomes visible within
// Overlap (default 2 s) of the newest change the tailer has seen, counted in
// id time (which includes clock skew between instances). A late change found
// by a sweep arrives up to Sweep (default 500 ms) after it became visible.
//
// A per-workspace counter document with compare-and-swap would give dense
// sequence numbers but the same visibility problem (seq taken, insert
// later) plus one contended write per change; the id-time window costs only
// reads and needs no coordination.
//
// # Retention
//
// The outbox is pruned by Prune (the Hub prunes workspaces it wrote to every
// PruneEvery, entries older than Retention, default DefaultRetention).
// Resuming with `after` works within the retention; an older resume point
// is refused (Hub.CheckResume), since what followed it may be gone.
package realtime

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/store"
)

// Kinds of change.
const (
	ProfileUpdated    = "profile.updated"
	TimelineAppended  = "timeline.appended"
	MembershipChanged = "membership.changed"
	// SegmentBuildProgressed: the build of segment SegmentID took a step
	// (its state is read from segment_builds).
	SegmentBuildProgressed = "segment.build"
)

// Payload keys used by Halo's writers.
const (
	// PayloadItemIDs (timeline.appended): the new timeline item ids.
	PayloadItemIDs = "itemIds"
	// PayloadMergedInto (profile.updated on a merged-away profile): the
	// survivor; subscribers of the source follow it.
	PayloadMergedInto = "mergedInto"
	// PayloadMergedFrom (profile.updated on a survivor): the merged profiles.
	PayloadMergedFrom = "mergedFrom"
	// PayloadCause: what made the change (identify, track, merge, ...).
	PayloadCause = "cause"
	// PayloadKind (membership.changed): ENTERED or EXITED.
	PayloadKind = "kind"
	// PayloadChangeID (membership.changed): the membership_changes
	// record's id.
	PayloadChangeID = "changeId"
)

// Change is one change delivered to subscribers. The outbox stores them
// in batches, one document per Publish call (batch); ID and Seq are the
// change's own (changeID), not its document's.
type Change struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	Seq         string    `bson:"seq"` // = ID; indexed
	At          time.Time `bson:"at"`
	Kind        string    `bson:"kind"`
	ProfileID   string    `bson:"profileId"`
	SegmentID   string    `bson:"segmentId,omitempty"`
	// Origin is the Hub (process) that published the change: its own
	// tailer skips it, it was delivered locally already.
	Origin  string         `bson:"origin"`
	Payload map[string]any `bson:"payload,omitempty"`
}

// batch is one outbox document: the changes of one Publish call, in
// order, their ids the batch's id with their position (changeID).
type batch struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	Seq         string    `bson:"seq"`
	At          time.Time `bson:"at"`
	Origin      string    `bson:"origin"`
	// Version counts rewrites (erasure removing changes): 1 when written.
	Version int64    `bson:"version"`
	Changes []Change `bson:"changes"`
}

// decodeBatch reads one outbox document: a batch, or a single change as
// documents were written before batches (read while the retention still
// holds them).
func decodeBatch(raw bson.Raw) (batch, error) {
	var b batch
	if err := bson.Unmarshal(raw, &b); err != nil {
		return b, fmt.Errorf("decode outbox document: %w", err)
	}
	if _, err := raw.LookupErr("changes"); err == nil {
		return b, nil
	}
	var c Change
	if err := bson.Unmarshal(raw, &c); err != nil {
		return b, fmt.Errorf("decode outbox change: %w", err)
	}
	b.Changes = []Change{c}
	return b, nil
}

// String returns the payload value at key as a string ("" if absent).
func (c Change) String(key string) string {
	s, _ := c.Payload[key].(string)
	return s
}

// Strings returns the payload value at key as a list of strings, whether
// it was built locally ([]string) or decoded from the store (bson.A).
func (c Change) Strings(key string) []string {
	switch v := c.Payload[key].(type) {
	case []string:
		return v
	case bson.A:
		return toStrings(v)
	case []any:
		return toStrings(v)
	}
	return nil
}

func toStrings(v []any) []string {
	out := make([]string, 0, len(v))
	for _, x := range v {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Publisher is what writers publish changes through.
type Publisher interface {
	// Publish appends cs, in order, in one store call where it can.
	Publish(ctx context.Context, tn store.Tenant, cs ...Change) error
}

// Notify publishes cs through p if p is set, and only logs a failure: the
// write that caused the change has succeeded already and must not fail
// because of its notification. It ignores ctx's cancellation (a client
// that hung up after its write still causes the change).
func Notify(ctx context.Context, p Publisher, tn store.Tenant, cs ...Change) {
	if p == nil || len(cs) == 0 {
		return
	}
	if err := p.Publish(context.WithoutCancel(ctx), tn, cs...); err != nil {
		slog.WarnContext(ctx, "publish changes", "kind", cs[0].Kind, "profile", cs[0].ProfileID, "changes", len(cs), "err", err)
	}
}

// idTime is the millisecond timestamp of a UUIDv7 id (false if id is not
// one: too short or not hex).
func idTime(id string) (int64, bool) {
	if len(id) < 13 || id[8] != '-' {
		return 0, false
	}
	hi, err1 := strconv.ParseUint(id[:8], 16, 32)
	lo, err2 := strconv.ParseUint(id[9:13], 16, 16)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return int64(hi<<16 | lo), true
}

// floorID is a string that sorts before (or equal to) every UUIDv7 id
// minted at or after ms, and after every id minted before it.
func floorID(ms int64) string {
	if ms < 0 {
		ms = 0
	}
	return fmt.Sprintf("%08x-%04x", uint64(ms)>>16, uint64(ms)&0xffff)
}

// pruneBatch bounds one prune write, in documents (each up to maxBatch
// changes, a few hundred kB): the outbox shares the writer with ingest,
// and a long delete would hold everyone's commits behind it.
const pruneBatch = 50

// Prune deletes the workspace's outbox documents older than before, at
// most limit of them (0: no limit), in batches of pruneBatch; it returns
// how many it deleted. Between batches it rests as long as the last one took, so that
// a backlog (a retention shortened, a first start after an upgrade) takes
// at most half of the writer's time from ingest while it is worked off.
func Prune(ctx context.Context, tn store.Tenant, before time.Time, limit int) (int, error) {
	n := 0
	for limit == 0 || n < limit {
		page := pruneBatch
		if limit > 0 && limit-n < page {
			page = limit - n
		}
		t0 := time.Now()
		k, err := tn.C(Changes).DeleteMany(ctx, store.Query{
			Index: ChangesBySeq, Range: &store.Bound{Lt: floorID(before.UnixMilli())}, Limit: page,
		})
		n += int(k)
		if err != nil {
			return n, fmt.Errorf("prune changes: %w", err)
		}
		if int(k) < page || limit > 0 && n >= limit {
			break
		}
		select {
		case <-time.After(time.Since(t0)):
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
	return n, nil
}

// IDTime is the time a UUIDv7 id (a change's or a timeline item's) was
// minted, to the millisecond; false if id is not one.
func IDTime(id string) (time.Time, bool) {
	ms, ok := idTime(id)
	if !ok {
		return time.Time{}, false
	}
	return time.UnixMilli(ms).UTC(), true
}

// Floor is a change id bound that sorts before every id minted at or after
// t and after every id minted before it: Subscribe(ws, f, Floor(t))
// replays the changes since t.
func Floor(t time.Time) string { return floorID(t.UnixMilli()) }
