package deal

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

// Stage outcomes: a deal in an OPEN stage is open; moving it to a WON or
// LOST stage closes it.
const (
	Open = "OPEN"
	Won  = "WON"
	Lost = "LOST"
)

// Stage is one step of a pipeline.
type Stage struct {
	Key         string  `bson:"key"`
	Name        string  `bson:"name"`
	Probability float64 `bson:"probability"`
	Outcome     string  `bson:"outcome"`
}

// Pipeline is a workspace's sequence of stages, by key.
type Pipeline struct {
	ID        string    `bson:"_id"`
	Key       string    `bson:"key"`
	Name      string    `bson:"name"`
	Stages    []Stage   `bson:"stages"`
	CreatedAt time.Time `bson:"createdAt"`
	UpdatedAt time.Time `bson:"updatedAt"`
	Version   int64     `bson:"version"`
}

// Stage returns the stage of key.
func (p *Pipeline) Stage(key string) (Stage, bool) {
	for _, s := range p.Stages {
		if s.Key == key {
			return s, true
		}
	}
	return Stage{}, false
}

// closing is the first stage of outcome (WON or LOST).
func (p *Pipeline) closing(outcome string) (Stage, bool) {
	for _, s := range p.Stages {
		if s.Outcome == outcome {
			return s, true
		}
	}
	return Stage{}, false
}

// firstOpen is the first OPEN stage: where a new deal starts.
func (p *Pipeline) firstOpen() (Stage, bool) { return p.closing(Open) }

// DefaultKey is the pipeline every workspace has until it defines its own
// of that key.
const DefaultKey = "sales"

// defaultPipeline is the "Sales" pipeline.
func defaultPipeline() Pipeline {
	return Pipeline{Key: DefaultKey, Name: "Sales", Stages: []Stage{
		{Key: "qualification", Name: "Qualification", Probability: 0.1, Outcome: Open},
		{Key: "discovery", Name: "Discovery", Probability: 0.2, Outcome: Open},
		{Key: "proposal", Name: "Proposal", Probability: 0.5, Outcome: Open},
		{Key: "negotiation", Name: "Negotiation", Probability: 0.8, Outcome: Open},
		{Key: "won", Name: "Closed won", Probability: 1, Outcome: Won},
		{Key: "lost", Name: "Closed lost", Probability: 0, Outcome: Lost},
	}}
}

// Limits of a pipeline.
const (
	MaxStages  = 30
	MaxNameLen = 256
)

var keyPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// Define stores pipeline key with its stages in order (a new definition
// of a key replaces the stages: reordered, renamed, probabilities
// changed). A stage that deals are in cannot be removed (CONFLICT, with
// how many). Errors name fields of definePipeline's arguments.
func (s *Service) Define(ctx context.Context, tn store.Tenant, key, name string, stages []Stage) (*Pipeline, error) {
	if !keyPattern.MatchString(key) {
		return nil, apperr.Invalid("key", "must be a lower-case letter, then lower-case letters, digits, _ or - (at most 64)")
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > MaxNameLen {
		return nil, apperr.Invalid("name", "must be 1 to %d bytes", MaxNameLen)
	}
	if len(stages) == 0 || len(stages) > MaxStages {
		return nil, apperr.Invalid("stages", "a pipeline has 1 to %d stages", MaxStages)
	}
	stages = slices.Clone(stages)
	for i := range stages {
		stages[i].Name = strings.TrimSpace(stages[i].Name)
	}
	seen, open := map[string]bool{}, false
	for i, st := range stages {
		f := fmt.Sprintf("stages[%d]", i)
		switch {
		case !keyPattern.MatchString(st.Key):
			return nil, apperr.Invalid(f+".key", "must be a lower-case letter, then lower-case letters, digits, _ or - (at most 64)")
		case seen[st.Key]:
			return nil, apperr.Invalid(f+".key", "stage %q appears twice", st.Key)
		case strings.TrimSpace(st.Name) == "" || len(st.Name) > MaxNameLen:
			return nil, apperr.Invalid(f+".name", "must be 1 to %d bytes", MaxNameLen)
		case !(st.Probability >= 0 && st.Probability <= 1):
			return nil, apperr.Invalid(f+".probability", "must be between 0 and 1")
		case st.Outcome != Open && st.Outcome != Won && st.Outcome != Lost:
			return nil, apperr.Invalid(f+".outcome", "must be OPEN, WON or LOST")
		}
		seen[st.Key], open = true, open || st.Outcome == Open
	}
	if !open {
		return nil, apperr.Invalid("stages", "a pipeline needs at least one OPEN stage")
	}
	now := s.clock()
	for range 5 {
		cur, err := s.stored(ctx, tn, key)
		if err != nil {
			return nil, err
		}
		before := cur
		if before == nil && key == DefaultKey {
			d := defaultPipeline()
			before = &d // deals may sit in the default's stages
		}
		if err := s.checkStages(ctx, tn, key, before, stages); err != nil {
			return nil, err
		}
		if cur == nil {
			p := &Pipeline{ID: store.NewID(), Key: key, Name: name, Stages: stages, CreatedAt: now, UpdatedAt: now, Version: 1}
			err := tn.C(Pipelines).Insert(ctx, p)
			if errors.Is(err, store.ErrDuplicateKey) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("store pipeline %s: %w", key, err)
			}
			return p, nil
		}
		next := *cur
		next.Name, next.Stages, next.UpdatedAt, next.Version = name, stages, now, cur.Version+1
		err = tn.C(Pipelines).Replace(ctx, &next, cur.Version)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store pipeline %s: %w", key, err)
		}
		return &next, nil
	}
	return nil, apperr.New(apperr.Conflict, "pipeline %s changed meanwhile: try again", key)
}

// checkStages refuses a new definition of pipeline key that removes a
// stage holding deals, or changes its outcome (its deals' status would
// no longer say where they are). before is the definition in force (nil:
// none).
//
// Known gap: a deal created or moved into a stage between this count and
// the definition's write lands in a stage that is gone; the deal keeps
// its status and can be moved out (a stage check inside the deals' own
// writes, against the pipeline's version, is the fix).
func (s *Service) checkStages(ctx context.Context, tn store.Tenant, key string, before *Pipeline, stages []Stage) error {
	if before == nil {
		return nil
	}
	for _, old := range before.Stages {
		i := slices.IndexFunc(stages, func(st Stage) bool { return st.Key == old.Key })
		if i >= 0 && stages[i].Outcome == old.Outcome {
			continue
		}
		n, err := tn.C(Deals).Count(ctx, store.Query{Index: DealsByStage, Eq: []any{key, old.Key}})
		if err != nil {
			return fmt.Errorf("count deals in %s: %w", old.Key, err)
		}
		if n == 0 {
			continue
		}
		if i < 0 {
			return apperr.New(apperr.Conflict, "stage %q holds %d deals: move them before removing it", old.Key, n)
		}
		return apperr.New(apperr.Conflict, "stage %q holds %d deals: move them before changing its outcome", old.Key, n)
	}
	return nil
}

// stored reads pipeline key as stored (nil when none, the default
// included until something stores it).
func (s *Service) stored(ctx context.Context, tn store.Tenant, key string) (*Pipeline, error) {
	var p Pipeline
	err := tn.C(Pipelines).FindOne(ctx, store.Query{Index: PipelinesByKey, Eq: []any{key}}, &p)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load pipeline %s: %w", key, err)
	}
	return &p, nil
}

// Get reads pipeline key; the default one exists until redefined.
// BAD_USER_INPUT on field when there is no such pipeline.
func (s *Service) Get(ctx context.Context, tn store.Tenant, field, key string) (*Pipeline, error) {
	p, err := s.stored(ctx, tn, key)
	if err != nil || p != nil {
		return p, err
	}
	if key == DefaultKey {
		d := defaultPipeline()
		return &d, nil
	}
	return nil, apperr.Invalid(field, "unknown pipeline %q", key)
}

// Pipelines returns the workspace's pipelines by key, the default among them.
func (s *Service) Pipelines(ctx context.Context, tn store.Tenant) ([]*Pipeline, error) {
	return AllPipelines(ctx, tn)
}

// AllPipelines is Pipelines for other domains (the segment rules' deal
// nodes name pipelines and stages).
func AllPipelines(ctx context.Context, tn store.Tenant) ([]*Pipeline, error) {
	var out []*Pipeline
	hasDefault := false
	err := tn.C(Pipelines).Each(ctx, store.Query{Index: PipelinesByKey}, func(raw bson.Raw) error {
		var p Pipeline
		if err := bson.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("decode pipeline: %w", err)
		}
		hasDefault = hasDefault || p.Key == DefaultKey
		out = append(out, &p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list pipelines: %w", err)
	}
	if !hasDefault {
		d := defaultPipeline()
		out = append(out, &d)
		slices.SortFunc(out, func(a, b *Pipeline) int { return strings.Compare(a.Key, b.Key) })
	}
	return out, nil
}
