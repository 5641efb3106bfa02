package resolvers

import (
	"github.com/halo-cdp/halo/internal/traits"

	"context"
	"fmt"
	"time"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/halo-cdp/halo/graph"
	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/consent"
	"github.com/halo-cdp/halo/internal/crm/deal"
)

// Limits bounds what one operation may ask for, before any resolver runs.
// Every refusal is a GraphQL error with code GRAPHQL_VALIDATION_FAILED
// (HTTP 200 with application/json, 400 with
// application/graphql-response+json, like the other static checks of an
// operation) and
// extensions.limit naming the limit.
//
// Fields are counted as executed: a fragment spread counts its fields each
// time it is spread (computed once per fragment, so a fragment bomb costs
// the check nothing), introspection subtrees (__schema, __type) are not
// counted when introspection is allowed, and @skip/@include are ignored
// (the worst case counts).
type Limits struct {
	// MaxDepth is the deepest field nesting (a root field is depth 1).
	MaxDepth int
	// MaxAliases caps the aliased fields of an operation.
	MaxAliases int
	// MaxFields caps the fields of an operation, fragments expanded.
	MaxFields int
	// MaxComplexity caps the cost from ComplexityRoot.
	MaxComplexity int
	// Introspection allows __schema and __type (dev mode only).
	Introspection bool

	es graphql.ExecutableSchema
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = &Limits{}

// ExtensionName implements graphql.HandlerExtension.
func (l *Limits) ExtensionName() string { return "Limits" }

// Validate implements graphql.HandlerExtension.
func (l *Limits) Validate(es graphql.ExecutableSchema) error {
	if l.MaxDepth < 1 || l.MaxAliases < 0 || l.MaxFields < 1 || l.MaxComplexity < 1 {
		return fmt.Errorf("limits: every limit must be positive: %+v", *l)
	}
	l.es = es
	return nil
}

// MutateOperationContext implements graphql.OperationContextMutator.
func (l *Limits) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	op := oc.Operation
	if op == nil {
		return nil
	}
	if l.Introspection {
		// gqlgen refuses introspection unless told otherwise.
		oc.DisableIntrospection = false
	}
	c := counter{doc: oc.Doc, skipIntrospection: l.Introspection, frags: map[string]*shape{}}
	s := c.set(op.SelectionSet)
	switch {
	case !l.Introspection && s.introspects:
		return limitError("introspection", "introspection is disabled")
	case s.depth > l.MaxDepth:
		return limitError("depth", "the operation is nested %d levels deep; the limit is %d", s.depth, l.MaxDepth)
	case s.aliases > int64(l.MaxAliases):
		return limitError("aliases", "the operation has %d aliased fields; the limit is %d", s.aliases, l.MaxAliases)
	case s.fields > int64(l.MaxFields):
		return limitError("fields", "the operation selects %d fields (fragments expanded); the limit is %d", s.fields, l.MaxFields)
	}
	// The field count above bounds this walk: gqlgen's calculator expands
	// fragments without memoising.
	cost := complexity.Calculate(ctx, l.es, op, oc.Variables)
	if cost > l.MaxComplexity {
		return limitError("complexity", "the operation costs %d; the limit is %d (lists cost their page size times their fields: ask for smaller pages or fewer nested lists)", cost, l.MaxComplexity)
	}
	return nil
}

func limitError(limit, format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	errcode.Set(err, errcode.ValidationFailed)
	err.Extensions["limit"] = limit
	return err
}

// shape is what a selection set expands to.
type shape struct {
	depth       int
	fields      int64
	aliases     int64
	introspects bool
}

// counter measures selection sets, memoising fragments. Validation has
// already refused fragment cycles and unknown fragments; a spread met
// while its own fragment is being measured (only possible for an invalid
// document) counts as empty.
type counter struct {
	doc               *ast.QueryDocument
	skipIntrospection bool
	frags             map[string]*shape
}

// saturating keeps counts of fragment bombs (2^n fields) from overflowing.
const saturating = int64(1) << 40

func (c *counter) set(sel ast.SelectionSet) shape {
	var out shape
	add := func(s shape) {
		out.depth = max(out.depth, s.depth)
		out.fields = min(out.fields+s.fields, saturating)
		out.aliases = min(out.aliases+s.aliases, saturating)
		out.introspects = out.introspects || s.introspects
	}
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				out.introspects = true
				if c.skipIntrospection {
					continue
				}
			}
			child := c.set(s.SelectionSet)
			f := shape{depth: child.depth + 1, fields: child.fields + 1, aliases: child.aliases, introspects: child.introspects}
			if s.Alias != "" && s.Alias != s.Name {
				f.aliases++
			}
			add(f)
		case *ast.InlineFragment:
			add(c.set(s.SelectionSet))
		case *ast.FragmentSpread:
			add(c.fragment(s))
		}
	}
	return out
}

func (c *counter) fragment(s *ast.FragmentSpread) shape {
	if got, ok := c.frags[s.Name]; ok {
		if got == nil {
			return shape{}
		}
		return *got
	}
	def := s.Definition
	if def == nil && c.doc != nil {
		def = c.doc.Fragments.ForName(s.Name)
	}
	if def == nil {
		return shape{}
	}
	c.frags[s.Name] = nil // in progress
	got := c.set(def.SelectionSet)
	c.frags[s.Name] = &got
	return got
}

// seriesCost is what an analytics series costs besides its selection.
const seriesCost = 20

// walkCost is what a funnel, a retention grid or top values cost: each
// walks the workspace's events (at most a few fit in one operation).
const walkCost = 1000

// scanCost is what a profile list that reads every profile (a filter, a
// sort by a trait or a score) costs besides its page.
const scanCost = 200

// logCost is what a series that walks a whole log costs (profileGrowth
// the identifiers, consentRates the consent log).
const logCost = 200

// Complexity is the cost model: every field costs 1 plus what it selects,
// and a list costs what one element selects times how many elements it
// can return. Connections multiply by first (their default page size when
// first is absent or null), so profiles(first: 100) { nodes { timeline(first:
// 100) { ... } } } is refused while the 360 screen of one profile with a
// page of its timeline costs a few hundred.
func Complexity() graph.ComplexityRoot {
	var c graph.ComplexityRoot
	page := func(child int, first *int, def, most int) int {
		n := def
		if first != nil {
			// Out-of-range sizes are refused by the resolver with a
			// precise message; the cost counts what could be returned.
			n = min(max(*first, 0), most)
		}
		return 1 + max(n, 1)*child
	}
	c.Query.Profiles = func(child int, first *int, _ *string, _ *string, _ *model.ProfileOrder, byScore *model.ProfileScoreOrder, scoreFilter []model.ScoreRangeInput, filter *model.SegmentRuleInput, sortBy *model.ProfileSortInput) int {
		n := page(child, first, defaultFirst, maxFirst)
		if byScore != nil || scoreFilter != nil || filter != nil || sortBy != nil {
			n += scanCost // every profile read for the page
		}
		return n
	}
	c.Query.Segments = func(child int, first *int, _ *string) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	c.Query.ExportSegment = func(child int, _ string, _ string, _ model.ConsentChannel, first *int, _ *string, _ []string, _ []string) int {
		// An export is read a hundred members per store call, not member
		// by member: it costs a tenth of its page.
		n := page(child, first, consent.DefaultExportSize, consent.MaxExportFirst)
		return 1 + n/10
	}
	c.Profile.Timeline = func(child int, first *int, _ *string, _ []model.TimelineKind, _ []string, _ *time.Time, _ *time.Time) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	c.Profile.ConsentHistory = func(child int, first *int, _ *string) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	c.Segment.Members = func(child int, first *int, _ *string) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	c.Query.Accounts = func(child int, first *int, _ *string, _ *string, _ *model.AccountFilterInput, _ *model.AccountOrderInput) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	c.Account.Contacts = func(child int, first *int, _ *string) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	c.Query.Deals = func(child int, _ *model.DealFilter, first *int, _ *string) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	c.Deal.Contacts = func(child int) int { return 1 + deal.MaxContacts*child }
	c.Query.Tasks = func(child int, _ *string, _ *model.TaskStatus, _ *time.Time, first *int, _ *string) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	c.Query.Tickets = func(child int, _ *model.TicketFilter, first *int, _ *string) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	c.Account.Tickets = func(child int, _ *model.TicketStatus, first *int, _ *string) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	c.Profile.Tickets = func(child int, _ *model.TicketStatus, first *int, _ *string) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	c.Account.Deals = func(child int, _ *model.DealStatus, first *int, _ *string) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	// Roll-ups read the account's people (up to rollup.MaxContacts),
	// deals and tickets: priced like a long page.
	c.Account.Rollups = func(child int) int { return 500 + child }
	c.Account.Timeline = func(child int, first *int, _ *string) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	c.Ticket.Comments = func(child int, _ *bool, first *int, _ *string) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	// A summary reads the pipeline's deals once.
	c.Query.PipelineSummary = func(child int, _ string) int { return logCost + child }
	c.Segment.History = func(child int, first *int, _ *string) int {
		return page(child, first, defaultFirst, maxFirst)
	}
	// A series reads its rollups once, whatever it selects: a fixed
	// price, like a page of 20, plus its selection once per bucket kind.
	c.Query.EventVolume = func(child int, _ time.Time, _ time.Time, _ model.Interval, _ *string, _ []string, _ []string, groupBy *model.EventVolumeGroupBy, _ *string, _ *int) int {
		if groupBy != nil && *groupBy == model.EventVolumeGroupByProperty {
			return walkCost + child // the stored events, not the rollups
		}
		return seriesCost + child
	}
	c.Query.ActiveProfiles = func(child int, _ time.Time, _ time.Time, _ model.Interval, _ *string) int {
		return seriesCost + child
	}
	c.Query.Revenue = func(child int, _ time.Time, _ time.Time, _ model.Interval, _ *string) int {
		return seriesCost + child
	}
	c.Query.SegmentSize = func(child int, _ string, _ time.Time, _ time.Time, _ model.Interval, _ *string) int {
		return seriesCost + child
	}
	c.Query.ProfileGrowth = func(child int, _ time.Time, _ time.Time, _ model.Interval, _ *string) int {
		return logCost + child
	}
	// Funnels, retention and top values walk the workspace's events
	// once, whatever they select.
	c.Query.Funnel = func(child int, _ []model.EventFilter, _ *model.RelativeWindowInput, _ time.Time, _ time.Time, _ *string, _ *string) int {
		return walkCost + child
	}
	c.Query.Retention = func(child int, _ model.EventFilter, _ model.EventFilter, _ time.Time, _ time.Time, _ model.Interval, _ *string, _ *int) int {
		return walkCost + child
	}
	c.Query.TopValues = func(child int, _ string, _ string, _ *int, _ time.Time, _ time.Time) int {
		return walkCost + child
	}
	c.Subscription.EventVolumeLive = func(child int, _ model.Interval, _ *string, _ []string, _ []string, _ *model.EventVolumeGroupBy, _ *int) int {
		return seriesCost + child
	}
	c.Query.ConsentRates = func(child int, _ string, _ *model.ConsentChannel, _ time.Time, _ time.Time, _ model.Interval, _ *string) int {
		return logCost + child
	}
	// Lists without first: their typical size, as a multiplier.
	c.Profile.Segments = func(child int) int { return 1 + 10*child }
	c.Profile.Merges = func(child int) int { return 1 + 10*child }
	c.Profile.Accounts = func(child int) int { return 1 + 10*child }
	c.Profile.Consent = func(child int) int { return 1 + 10*child }
	c.SegmentPreview.Sample = func(child int) int { return 1 + 20*child }
	c.Query.IdentifierTypes = func(child int) int { return 1 + 10*child }
	c.Query.ConsentPurposes = func(child int) int { return 1 + 10*child }
	c.Query.ComputedTraits = func(child int) int { return 1 + traits.MaxDefinitions*child }
	return c
}
