package segment

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// PreviewSample is how many profiles Preview returns.
const PreviewSample = 20

// Preview counts the profiles matching rule at now, without saving, and
// returns the first PreviewSample of them in creation order (oldest
// first). Features the workspace already maintains are read from the
// profiles; others are counted from stored events in one pass.
//
// It streams the raw profile documents (profile.Scan) and decodes only
// what the rule reads (profile.DecodeFields): at 100,000 profiles a full
// decode was two thirds of the time.
func (e *Engine) Preview(ctx context.Context, tn store.Tenant, rl rule.Rule, now time.Time) (int64, []*profile.Profile, error) {
	l, err := e.lookups(ctx, tn)
	if err != nil {
		return 0, nil, err
	}
	if err := rule.ValidateWith("", rl, l); err != nil {
		return 0, nil, err
	}
	if err := e.limits.checkRuleSize(rl); err != nil {
		return 0, nil, err
	}
	// Feature keys are hashed once, not per profile evaluated.
	rule.Prepare(&rl)
	a, err := e.active(ctx, tn)
	if err != nil {
		return 0, nil, err
	}
	missing := newFeatures(rule.Features(rl), a.features)
	var counters map[string]map[string]rule.Counter
	if len(missing) > 0 {
		if counters, err = scanEvents(ctx, tn, missing); err != nil {
			return 0, nil, err
		}
	}
	byID := a.byID
	fields, staticIDs := fieldsOf(rl, byID)
	env, err := e.newEvalEnv(ctx, tn, fields.Consent, len(fields.Computed) > 0 || fields.Tally)
	if err != nil {
		return 0, nil, err
	}
	statics := map[string]map[string]bool{}
	for _, id := range staticIDs {
		if statics[id], err = staticMembers(ctx, tn, id); err != nil {
			return 0, nil, err
		}
	}
	// Pages are evaluated concurrently; the sample is the first matches in
	// page order, so each page keeps its own first PreviewSample.
	var (
		count   atomic.Int64
		mu      sync.Mutex
		matches = map[int][]bson.Raw{}
	)
	err = profile.Scan(ctx, tn, runtime.GOMAXPROCS(0), func(page int, docs []bson.Raw) error {
		var first []bson.Raw
		for _, d := range docs {
			p, err := profile.DecodeFields(d, fields)
			if err != nil {
				return err
			}
			if p.MergingInto != "" {
				continue
			}
			for _, f := range missing {
				if c, ok := counters[p.ID][f.Key]; ok {
					p.Features[f.Key] = c
				}
			}
			in := input(p, byID, func(id string) bool { return statics[id][p.ID] }, env)
			if ok, _ := rule.Evaluate(rl, in, now); ok {
				count.Add(1)
				if len(first) < PreviewSample {
					first = append(first, d)
				}
			}
		}
		mu.Lock()
		matches[page] = first
		mu.Unlock()
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	var sample []*profile.Profile
	for page := 0; len(sample) < PreviewSample && page < len(matches); page++ {
		for _, raw := range matches[page] {
			if len(sample) == PreviewSample {
				break
			}
			p, err := profile.Decode(raw)
			if err != nil {
				return 0, nil, err
			}
			sample = append(sample, p)
		}
	}
	return count.Load(), sample, nil
}

// fieldsOf lists what rule reads from a profile, and the static segments
// it reads the members of, following inSegment into the dynamic segments
// it nests.
func fieldsOf(rl rule.Rule, byID map[string]*Segment) (profile.Fields, []string) {
	var (
		f       profile.Fields
		statics []string
	)
	seen := map[string]bool{}
	var visit func(r rule.Rule)
	visit = func(r rule.Rule) {
		d := rule.DependsOn(r)
		f.Traits = append(f.Traits, d.TraitKeys...)
		f.Features = append(f.Features, d.Features...)
		f.Consent = f.Consent || len(d.Purposes) > 0
		for _, k := range d.Computed {
			if strings.HasPrefix(k, rule.ScoresPrefix) {
				f.Tally = true
			} else {
				f.Computed = append(f.Computed, k)
			}
		}
		for _, id := range d.Segments {
			s, ok := byID[id]
			if !ok || seen[id] {
				continue
			}
			seen[id] = true
			if s.Kind == Static {
				statics = append(statics, id)
			} else {
				visit(s.Rule)
			}
		}
	}
	visit(rl)
	return f, statics
}

// staticMembers reads the members of a segment (a static one's, for a
// preview; any one's, for MemberSet).
func staticMembers(ctx context.Context, tn store.Tenant, segmentID string) (map[string]bool, error) {
	m := map[string]bool{}
	err := tn.C(Memberships).Each(ctx, membersOf(segmentID), func(raw bson.Raw) error {
		pid, _ := raw.Lookup("profileId").StringValueOK()
		m[pid] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("members of segment %s: %w", segmentID, err)
	}
	return m, nil
}
