package profile

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/rawbson"
	"github.com/halo-cdp/halo/internal/platform/userjson"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// Fields names the parts of a profile document a reader needs: top-level
// trait keys (a dot path counts by its first segment) and feature keys.
// The id, activity times, event count and merge state are always read.
type Fields struct {
	Traits   []string
	Features []string
	// Consent: decode the consent state too.
	Consent bool
	// Computed are the computed trait keys to decode.
	Computed []string
	// Tally: decode the scores' tally too.
	Tally bool
	// MergedFrom: decode the ids merged into the profile too.
	MergedFrom bool
}

// Decode decodes a whole stored profile document.
func Decode(raw bson.Raw) (*Profile, error) {
	var p Profile
	if err := bson.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	p.normalise()
	p.stored = raw
	return &p, nil
}

// DecodeFields decodes only f (and the fields always read) of a stored
// profile document. The result is a partial profile: enough to evaluate a
// segment rule that reads f, cheaper than Decode by the size of what it
// skips (other traits, other counters, identifiers, merge history).
func DecodeFields(raw bson.Raw, f Fields) (*Profile, error) {
	p := &Profile{Traits: map[string]any{}, Features: map[string]rule.Counter{}}
	err := rawbson.Each(raw, func(key []byte, v bson.RawValue) error {
		switch string(key) {
		case "_id":
			p.ID, _ = v.StringValueOK()
		case "mergingInto":
			p.MergingInto, _ = v.StringValueOK()
		case "lifecycleStage":
			p.Lifecycle, _ = v.StringValueOK()
		case "mergedFrom":
			if f.MergedFrom {
				if err := v.Unmarshal(&p.MergedFrom); err != nil {
					return err
				}
			}
		case "eventCount":
			p.EventCount, _ = v.AsInt64OK()
		case "createdAt":
			p.CreatedAt = dateTime(v)
		case "updatedAt":
			p.UpdatedAt = dateTime(v)
		case "firstSeenAt":
			p.FirstSeenAt = dateTime(v)
		case "lastSeenAt":
			p.LastSeenAt = dateTime(v)
		case "nextEvalAt":
			p.NextEvalAt = dateTime(v)
		case "traits":
			doc, ok := v.DocumentOK()
			if !ok {
				return nil
			}
			for _, k := range f.Traits {
				k, _, _ = strings.Cut(k, ".")
				if _, done := p.Traits[k]; done {
					continue
				}
				if tv, err := doc.LookupErr(k); err == nil {
					p.Traits[k] = userjson.PlainRaw(tv)
				}
			}
		case "consent":
			if !f.Consent {
				return nil
			}
			if err := v.Unmarshal(&p.Consent); err != nil {
				return fmt.Errorf("consent: %w", err)
			}
		case "computed":
			if len(f.Computed) == 0 {
				return nil
			}
			states, err := agg.DecodeStates(v, f.Computed)
			if err != nil {
				return err
			}
			if len(states) > 0 {
				p.Computed = states
			}
		case "tally":
			if !f.Tally {
				return nil
			}
			p.Tally = new(scores.Tally)
			if err := p.Tally.UnmarshalBSON(v.Value); err != nil {
				return fmt.Errorf("tally: %w", err)
			}
		case "features":
			doc, ok := v.DocumentOK()
			if !ok {
				return nil
			}
			for _, k := range f.Features {
				cv, err := doc.LookupErr(k)
				if err != nil {
					continue
				}
				var c rule.Counter
				if err := c.UnmarshalBSON(cv.Value); err != nil {
					return fmt.Errorf("feature %s: %w", k, err)
				}
				p.Features[k] = c
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	return p, nil
}

func dateTime(v bson.RawValue) time.Time {
	if dt, ok := v.DateTimeOK(); ok {
		return time.UnixMilli(dt).UTC()
	}
	return time.Time{}
}

// ScanPage is how many documents Scan reads per store call.
const ScanPage = 1000

// MaxScans is how many Scans run at once in a process; more wait their
// turn (or give up with their context). Each scan already keeps every
// core busy: running more at once only multiplies their memory and makes
// all of them slower, and a burst of previews or score rankings, which
// each read the whole workspace, must not starve ingest.
const MaxScans = 2

var scanSlots = make(chan struct{}, MaxScans)

// Scan streams the workspace's stored profile documents, oldest first,
// skipping none (merged-away ones included: callers decide), to fn, one
// page at a time: page is the page's position (0, 1, ...). One goroutine
// reads ahead while workers goroutines call fn concurrently, so reading,
// decoding and evaluating overlap. fn's error, or a read error, ends the
// scan.
func Scan(ctx context.Context, tn store.Tenant, workers int, fn func(page int, docs []bson.Raw) error) error {
	select {
	case scanSlots <- struct{}{}:
		defer func() { <-scanSlots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type job struct {
		n    int
		docs []bson.Raw
	}
	jobs := make(chan job, workers)
	var readErr error
	go func() {
		defer close(jobs)
		after := ""
		for n := 0; ; n++ {
			docs, last, err := tn.C(Profiles).Scan(ctx, store.Query{Index: ProfilesByCreated, After: after, Limit: ScanPage})
			if err != nil {
				readErr = fmt.Errorf("scan profiles: %w", err)
				return
			}
			select {
			case jobs <- job{n, docs}:
			case <-ctx.Done():
				return
			}
			if len(docs) < ScanPage {
				return
			}
			after = last
		}
	}()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for range max(1, workers) {
		wg.Go(func() {
			for j := range jobs {
				if err := fn(j.n, j.docs); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	// The reader has closed jobs (workers only stop early after cancel,
	// and the reader then stops too); readErr is set before that close.
	for range jobs {
	}
	switch {
	case firstErr != nil:
		return firstErr
	case readErr != nil:
		return readErr
	}
	return ctx.Err()
}

// EachLivePage streams the workspace's live profiles (merged-away ones
// skipped), oldest first, a page of up to 100 decoded documents at a time.
// fn's error ends it.
func EachLivePage(ctx context.Context, tn store.Tenant, fn func([]*Profile) error) error {
	return EachLivePageAfter(ctx, tn, "", func(page []*Profile, _ string) error { return fn(page) })
}

// EachLivePageAfter is EachLivePage resuming after cursor after (""
// from the start); fn also gets the cursor to resume after its page.
func EachLivePageAfter(ctx context.Context, tn store.Tenant, after string, fn func(page []*Profile, cursor string) error) error {
	for {
		page, err := List(ctx, tn, CreatedAsc, 100, after)
		if err != nil {
			return err
		}
		live := make([]*Profile, 0, len(page.Profiles))
		for i, p := range page.Profiles {
			after = page.Cursors[i]
			if p.MergingInto == "" {
				live = append(live, p)
			}
		}
		if len(live) > 0 {
			if err := fn(live, after); err != nil {
				return err
			}
		}
		if !page.HasNext {
			return nil
		}
	}
}

// EachLive is EachLivePage one profile at a time.
func EachLive(ctx context.Context, tn store.Tenant, fn func(*Profile) error) error {
	return EachLivePage(ctx, tn, func(page []*Profile) error {
		for _, p := range page {
			if err := fn(p); err != nil {
				return err
			}
		}
		return nil
	})
}
