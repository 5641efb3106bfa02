package segment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// Segment builds. A new rule (createSegment, updateSegment) needs every
// profile evaluated, and the events of the features it counts first
// counted; at 100,000 profiles that is seconds of work, which no HTTP
// request should wait for. So the save marks the segment BUILDING and a
// build runs in the background, a page of profiles at a time, recording
// its progress (processed / total) in a document of its own (the
// segment's stays as its owner saved it), under a lease so that
// one instance runs it and another takes over if that one dies; a
// restart resumes it from the last page done. The save waits for the
// build a short while (Deps.BuildWait) so that a small workspace answers
// READY at once.
//
// Exactness while ingest runs beside the build rests on the profile
// document (decide.go): the build visits each profile in a
// compare-and-swap that counts the new features from the profile's
// stored events, marks the profile built (Profile.Built) and decides its
// memberships. Until its mark, no write decides the building segment for
// that profile; from it, every write does. So each profile enters (or
// not) exactly once, whether its first decision is the build's or a
// later write's. The counting bumps ComputedEpoch, which tells an ingest
// write in flight (events stored before the build counted them, counted
// after) to recount instead of adding them twice.
//
// That gate is needed only when the build counts features (a profile's
// counters are partial until its visit) or the rule reads other segments,
// which may be building too (gated). Any other rule reads only what every
// write keeps current, so every write whose engine knows the segment
// decides it (this engine's at once, another instance's within its cache
// lifetime: a write there in that first second can leave a profile the
// build visited before it undecided until its next write, as it could
// before for a gated build without features), and the build's visit
// writes only a profile whose memberships (or next evaluation) it
// changes: a trait rule's build at 100,000 profiles writes its members,
// not every profile. A write beside the visit decides the same profile
// from the document it read; the compare-and-swap lets one of them move
// it, once.

// Build statuses.
const (
	Building   = "BUILDING"
	Ready      = "READY"
	Failed     = "FAILED"
	Superseded = "SUPERSEDED" // a newer rule's build replaced it
)

// buildPage is the profiles a build visits per step (and per progress
// write).
const buildPage = 200

// BuildLeaseTTL is how long a build's runner holds it without progress;
// after that another instance (or the next start) takes it over.
const BuildLeaseTTL = 30 * time.Second

// DefaultBuildWait is how long a save waits for its build (Deps.BuildWait):
// long enough for a small workspace's build to finish (the answer is
// then READY), short enough that a save answers in under 200 ms at any
// scale, BUILDING with its progress.
const DefaultBuildWait = 100 * time.Millisecond

// Build is the state of one build of a segment's rule (segment_builds).
// It is the segment's current build while the segment's BuildID names
// it: a newer rule's build supersedes it.
type Build struct {
	ID          string `bson:"_id"`
	WorkspaceID string `bson:"workspaceId"`
	SegmentID   string `bson:"segmentId"`
	Status      string `bson:"status"`
	// Cause is what the membership history says of the build's moves
	// (segment.created, segment.updated).
	Cause     string `bson:"cause"`
	Processed int64  `bson:"processed"`
	Total     int64  `bson:"total"`
	// Features are the ones the build counts from events (those no other
	// segment had: every other one is maintained already).
	Features []rule.Feature `bson:"features,omitempty"`
	// After is where the next page starts (profiles by creation).
	After      string    `bson:"after,omitempty"`
	Owner      string    `bson:"owner,omitempty"`
	LeaseUntil time.Time `bson:"leaseUntil,omitempty"`
	StartedAt  time.Time `bson:"startedAt"`
	FinishedAt time.Time `bson:"finishedAt,omitempty"`
	Error      string    `bson:"error,omitempty"`
	Version    int64     `bson:"version"`
}

// saveBuild records a new build of s (whose BuildID it sets) counting
// feats. Called before s is saved: a build its segment does not name is
// never read, and its runner finds it superseded.
func (e *Engine) saveBuild(ctx context.Context, tn store.Tenant, s *Segment, feats []rule.Feature, cause string) error {
	total, err := profile.Count(ctx, tn)
	if err != nil {
		return fmt.Errorf("count profiles: %w", err)
	}
	s.BuildID = store.NewID()
	b := Build{SegmentID: s.ID, ID: s.BuildID, Status: Building, Cause: cause, Total: total, Features: feats, StartedAt: e.now().Truncate(time.Millisecond), Version: 1}
	if err := tn.C(SegmentBuilds).Insert(ctx, b); err != nil {
		return fmt.Errorf("save segment build: %w", err)
	}
	return nil
}

// loadBuild reads the current build of s (nil: none, a segment saved
// before builds existed, which is ready).
func loadBuild(ctx context.Context, tn store.Tenant, s *Segment) (*Build, error) {
	if s.BuildID == "" {
		return nil, nil
	}
	var b Build
	err := tn.C(SegmentBuilds).Get(ctx, s.BuildID, &b)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load segment build: %w", err)
	}
	return &b, nil
}

// BuildOf returns the current build of s: nil for a static segment, or
// one saved before builds existed (both are ready).
func (e *Engine) BuildOf(ctx context.Context, tn store.Tenant, s *Segment) (*Build, error) {
	return loadBuild(ctx, tn, s)
}

// bornBuilt is when profiles created during build b need no visit: every
// engine knew the segment by then (its cache lifetime, twice over, after
// the build was recorded), so ingest counted all their events into the
// segment's features and may decide it for them at once.
func bornBuilt(b *Build) time.Time { return b.StartedAt.Add(2 * CacheTTL) }

// buildingSet lists the segments of the workspace whose current build is
// under way, with bornBuilt.
func buildingSet(ctx context.Context, tn store.Tenant, segs map[string]*Segment) (map[string]time.Time, error) {
	docs, err := tn.C(SegmentBuilds).Find(ctx, store.Query{Index: BuildsByStatus, Eq: []any{Building}})
	if err != nil {
		return nil, fmt.Errorf("load segment builds: %w", err)
	}
	out := map[string]time.Time{}
	for _, d := range docs {
		var b Build
		if err := d.Decode(&b); err != nil {
			return nil, fmt.Errorf("decode segment build: %w", err)
		}
		if s, ok := segs[b.SegmentID]; ok && s.BuildID == b.ID && gated(&b, s) {
			out[b.SegmentID] = bornBuilt(&b)
		}
	}
	return out, nil
}

// gated reports whether writes must leave segment s to its build b until
// b has visited (marked) the profile: when b counts features or s reads
// other segments (see the top of this file).
func gated(b *Build, s *Segment) bool {
	return len(b.Features) > 0 || len(s.Deps.Segments) > 0
}

// startBuild runs build buildID of segment id in the background unless
// this engine runs it already, and returns a channel closed when that run
// ends.
func (e *Engine) startBuild(tn store.Tenant, id, buildID string) <-chan struct{} {
	key := tn.Workspace() + "/" + buildID
	e.buildsMu.Lock()
	defer e.buildsMu.Unlock()
	if done, ok := e.builds[key]; ok {
		return done
	}
	if e.builds == nil {
		e.builds = map[string]chan struct{}{}
	}
	done := make(chan struct{})
	e.builds[key] = done
	e.runs.Add(1)
	go func() {
		defer e.runs.Done()
		defer func() {
			e.buildsMu.Lock()
			delete(e.builds, key)
			e.buildsMu.Unlock()
			close(done)
		}()
		ctx := context.Background()
		if err := e.build(ctx, tn, id, buildID); err != nil && !errors.Is(err, errSuperseded) {
			slog.Error("segments: build", "workspace", tn.Workspace(), "segment", id, "err", err)
			_ = e.progress(ctx, tn, id, buildID, func(b *Build) {
				b.Status, b.Error, b.FinishedAt = Failed, err.Error(), e.now().Truncate(time.Millisecond)
			})
		}
	}()
	return done
}

// WaitBuilds waits for the builds this engine runs to end (tests, tools).
func (e *Engine) WaitBuilds() { e.runs.Wait() }

// awaitBuild waits for the build of s a while (Deps.BuildWait) and
// returns s as stored then.
func (e *Engine) awaitBuild(ctx context.Context, tn store.Tenant, s *Segment) (*Segment, error) {
	done := e.startBuild(tn, s.ID, s.BuildID)
	t := time.NewTimer(e.buildWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
	return e.Get(ctx, tn, s.ID)
}

// errSuperseded ends a build whose segment changed, or whose lease
// another engine holds.
var errSuperseded = errors.New("superseded")

// progress updates build buildID of segment id in a compare-and-swap,
// and extends the lease while it runs (errSuperseded when the build is
// not current, or not this engine's).
func (e *Engine) progress(ctx context.Context, tn store.Tenant, id, buildID string, fn func(*Build)) error {
	c := tn.C(SegmentBuilds)
	for attempt := 0; attempt < 20; attempt++ {
		var b Build
		if err := c.Get(ctx, buildID, &b); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return errSuperseded
			}
			return err
		}
		if b.Status != Building {
			return errSuperseded
		}
		var s Segment
		err := tn.C(Segments).Get(ctx, id, &s)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err != nil || s.BuildID != buildID || s.Status != Active {
			// Replaced by a newer rule, archived, or never saved: this
			// build ends here and is not resumed again.
			b.Status, b.FinishedAt = Superseded, e.now().Truncate(time.Millisecond)
			if err == nil && s.BuildID == buildID {
				b.Status, b.Error = Failed, "the segment was archived before its build finished"
			}
			prev := b.Version
			b.Version++
			err := c.Replace(ctx, b, prev)
			if err != nil && !errors.Is(err, store.ErrConflict) {
				return err
			}
			if err == nil {
				e.notifyBuild(ctx, tn, id)
			}
			return errSuperseded
		}
		now := time.Now()
		if b.Owner != "" && b.Owner != e.owner && now.Before(b.LeaseUntil) {
			return errSuperseded
		}
		fn(&b)
		if b.Status == Building {
			b.Owner, b.LeaseUntil = e.owner, now.Add(BuildLeaseTTL).Truncate(time.Millisecond)
		} else {
			b.Owner, b.LeaseUntil = "", time.Time{}
		}
		prev := b.Version
		b.Version++
		err = c.Replace(ctx, b, prev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err == nil {
			if b.Status != Building {
				e.invalidate(tn.Workspace()) // no longer building: every write decides it
			}
			e.notifyBuild(ctx, tn, id)
		}
		return err
	}
	return fmt.Errorf("build progress of segment %s: %w", id, store.ErrConflict)
}

// notifyBuild tells segmentBuildProgress subscribers that the build of
// segment id took a step.
func (e *Engine) notifyBuild(ctx context.Context, tn store.Tenant, id string) {
	realtime.Notify(ctx, e.publisher, tn, realtime.Change{Kind: realtime.SegmentBuildProgressed, SegmentID: id})
}

// build runs build buildID of segment id from where it stands.
func (e *Engine) build(ctx context.Context, tn store.Tenant, id, buildID string) error {
	var b Build
	if err := e.progress(ctx, tn, id, buildID, func(cur *Build) { b = *cur }); err != nil {
		return err
	}
	// Count nothing before every engine counts the new features on ingest
	// (they learn of the segment within their cache lifetime): a profile
	// counted from its events earlier could then miss an event that an
	// engine not knowing the feature yet stored and counted.
	if wait := time.Until(b.StartedAt.Add(e.buildSettle)); wait > 0 && b.Processed == 0 && len(b.Features) > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// A build's rule never changes (a new rule is a new build), so the
	// segment read now says whether writes wait for this build.
	s, err := e.Get(ctx, tn, id)
	if err != nil {
		return err
	}
	if s.BuildID != buildID {
		return errSuperseded // a newer rule's build runs instead
	}
	// An ungated build's visit only decides: it neither counts nor marks.
	var prep func(*Decider, *profile.Profile) (bool, error)
	if gated(&b, s) {
		prep = func(d *Decider, p *profile.Profile) (bool, error) {
			return d.buildStep(ctx, tn, p, buildID, b.Features)
		}
	}
	// Decide from a fresh view of the builds under way (this one
	// included), whoever started it.
	e.invalidate(tn.Workspace())
	// Only this segment's rule is new to the profiles visited (and to
	// the segments reading it); a profile due anyway is decided in full.
	touched := rule.Touched{Segments: []string{id}}
	after := b.After
	bound := bornBuilt(&b)
	for {
		page, err := profile.List(ctx, tn, profile.CreatedAsc, buildPage, after)
		if err != nil {
			return err
		}
		// Profiles born built end the pass (ingest decides them).
		for i, p := range page.Profiles {
			if p.CreatedAt.After(bound) {
				page.Profiles, page.Cursors, page.HasNext = page.Profiles[:i], page.Cursors[:i], false
				break
			}
		}
		ids := make([]string, len(page.Profiles))
		for i, p := range page.Profiles {
			ids[i] = p.ID
		}
		if err := e.settle(ctx, tn, ids, page.Profiles, b.Cause, touched, prep); err != nil {
			return err
		}
		if len(page.Cursors) > 0 {
			after = page.Cursors[len(page.Cursors)-1]
		}
		n := int64(len(page.Profiles))
		last := !page.HasNext
		if err := e.progress(ctx, tn, id, buildID, func(cur *Build) {
			cur.Processed += n
			cur.After = after
			if cur.Processed > cur.Total {
				cur.Total = cur.Processed // profiles created since the count
			}
			if last {
				cur.Status, cur.FinishedAt, cur.Total = Ready, e.now().Truncate(time.Millisecond), cur.Processed
			}
		}); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

// buildStep is a build's change to profile p, in the write that then
// decides p's memberships: count a gated build's features from p's
// stored events, and mark p built by build buildID. It returns whether it
// changed p.
func (d *Decider) buildStep(ctx context.Context, tn store.Tenant, p *profile.Profile, buildID string, feats []rule.Feature) (bool, error) {
	if slices.Contains(p.Built, buildID) {
		return false, nil // visited before a restart
	}
	if len(feats) > 0 {
		counters, err := countEvents(ctx, tn, p.ID, feats)
		if err != nil {
			return false, err
		}
		setCounters(p, feats, counters)
		p.ComputedEpoch++ // an ingest write in flight recounts (see the top of this file)
	}
	p.Built = append(p.Built, buildID)
	return true, nil
}

// ResumeBuilds starts, in the background, every build left BUILDING
// whose runner is gone (no live lease). Safe to call periodically. It
// returns how many it started.
func (e *Engine) ResumeBuilds(ctx context.Context, st *store.Store) (int, error) {
	wss, err := Workspaces(ctx, st)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ws := range wss {
		tn := st.Tenant(ws)
		docs, err := tn.C(SegmentBuilds).Find(ctx, store.Query{Index: BuildsByStatus, Eq: []any{Building}})
		if err != nil {
			return n, fmt.Errorf("load segment builds: %w", err)
		}
		for _, d := range docs {
			var b Build
			if err := d.Decode(&b); err != nil {
				return n, fmt.Errorf("decode segment build: %w", err)
			}
			if b.Owner == "" || !time.Now().Before(b.LeaseUntil) {
				e.startBuild(tn, b.SegmentID, b.ID)
				n++
			}
		}
	}
	return n, nil
}
