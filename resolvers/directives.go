package resolvers

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/auth"
)

// hasScopeDirective is the schema directive that names the scope a field
// needs: `@hasScope(scope: "profiles:read")`.
const hasScopeDirective = "hasScope"

// HasScope implements @hasScope: it runs before the field's resolver and
// refuses the field with FORBIDDEN, naming field and scope, when the token
// lacks the scope. The schema is thereby the one place that says who may
// do what.
func HasScope(ctx context.Context, _ any, next graphql.Resolver, scope string) (any, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, apperr.New(apperr.Unauthenticated, "authentication required")
	}
	if !p.Has(scope) {
		name := "field"
		if fc := graphql.GetFieldContext(ctx); fc != nil {
			name = fieldName(fc.Object, fc.Field.Name)
		}
		return nil, apperr.New(apperr.Forbidden, "%s needs scope %s", name, scope)
	}
	return next(ctx)
}

// fieldName is how errors name a field: root fields by their name
// (mergeProfiles), others as Type.field (Profile.traits).
func fieldName(object, field string) string {
	switch object {
	case "Query", "Mutation", "Subscription":
		return field
	}
	return object + "." + field
}

// ScopeOf returns the scope @hasScope asks of a field definition, or "".
func ScopeOf(def *ast.FieldDefinition) string {
	if def == nil {
		return ""
	}
	d := def.Directives.ForName(hasScopeDirective)
	if d == nil {
		return ""
	}
	if a := d.Arguments.ForName("scope"); a != nil && a.Value != nil {
		return a.Value.Raw
	}
	return ""
}

// ScopeCheck refuses a mutation or subscription as a whole, before it runs,
// when any field it selects (fragments included) needs a scope the token
// lacks. Field by field enforcement alone would let a mutation write and
// then fail on its payload (an ingest key asking identify for traits): the
// client would see FORBIDDEN for a call that was stored. Queries keep the
// field-level answer (partial data, FORBIDDEN on the fields refused).
type ScopeCheck struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = ScopeCheck{}

// ExtensionName implements graphql.HandlerExtension.
func (ScopeCheck) ExtensionName() string { return "ScopeCheck" }

// Validate implements graphql.HandlerExtension.
func (ScopeCheck) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (ScopeCheck) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	op := oc.Operation
	if op == nil || op.Operation == ast.Query {
		return nil
	}
	p, ok := auth.FromContext(ctx)
	if !ok {
		// The transports authenticate first; without a principal every
		// resolver refuses anyway.
		return nil
	}
	w := scopeWalker{p: p, doc: oc.Doc, seen: map[string]bool{}}
	if err := w.walk(op.SelectionSet, string(op.Operation)); err != nil {
		out := gqlerror.Errorf("%s", err.Error())
		out.Err = err
		out.Extensions = map[string]any{"code": string(apperr.Forbidden)}
		return out
	}
	return nil
}

type scopeWalker struct {
	p    auth.Principal
	doc  *ast.QueryDocument
	seen map[string]bool // fragments already checked: each is walked once
}

func (w *scopeWalker) walk(set ast.SelectionSet, parent string) error {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if scope := ScopeOf(s.Definition); scope != "" && !w.p.Has(scope) {
				obj := parent
				if s.ObjectDefinition != nil {
					obj = s.ObjectDefinition.Name
				}
				return apperr.New(apperr.Forbidden, "%s needs scope %s", fieldName(capitalise(obj), s.Name), scope)
			}
			if err := w.walk(s.SelectionSet, ""); err != nil {
				return err
			}
		case *ast.InlineFragment:
			if err := w.walk(s.SelectionSet, parent); err != nil {
				return err
			}
		case *ast.FragmentSpread:
			if w.seen[s.Name] {
				continue
			}
			w.seen[s.Name] = true
			def := s.Definition
			if def == nil && w.doc != nil {
				def = w.doc.Fragments.ForName(s.Name)
			}
			if def != nil {
				if err := w.walk(def.SelectionSet, parent); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// capitalise maps an operation type (mutation) to its root type name.
func capitalise(s string) string {
	switch s {
	case "mutation":
		return "Mutation"
	case "subscription":
		return "Subscription"
	case "query":
		return "Query"
	}
	return s
}
