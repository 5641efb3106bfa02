package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

func TestRewriteChangesOnlyTheNamedFunctions(t *testing.T) {
	src := `package graph

func (ec *executionContext) marshalNA2ᚕA(ctx context.Context, v []A) graphql.Marshaler {
	ret := graphql.MarshalSliceConcurrently(ctx, len(v), 0, false, func(ctx context.Context, i int) graphql.Marshaler {
		return nil
	})
	return ret
}

func (ec *executionContext) marshalNB2ᚕB(ctx context.Context, v []B) graphql.Marshaler {
	ret := graphql.MarshalSliceConcurrently(ctx, len(v), 0, false, func(ctx context.Context, i int) graphql.Marshaler {
		return nil
	})
	return ret
}
`
	out, n, err := rewrite([]byte(src), map[string]bool{"marshalNA2ᚕA": true, "missing": true})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("rewrote %d functions, want 1", n)
	}
	calls := callsByFunc(t, out)
	if calls["marshalNA2ᚕA"] != serialFunc || calls["marshalNB2ᚕB"] != "graphql.MarshalSliceConcurrently" {
		t.Fatalf("calls after rewrite: %v\n%s", calls, out)
	}

	same, n, err := rewrite([]byte(src), map[string]bool{"missing": true})
	if err != nil || n != 0 || string(same) != src {
		t.Fatalf("nothing to rewrite: n=%d err=%v, source changed: %v", n, err, string(same) != src)
	}
}

// TestGeneratedCodeIsThisGenerators checks graph/generated.go as committed:
// the timeline's items (a @goSerialList type) and identifiers (no
// resolver fields) are marshalled serially, profiles (whose resolvers
// read the store) and the edges holding them a goroutine per element. It fails when graph/ was
// generated with plain gqlgen.
func TestGeneratedCodeIsThisGenerators(t *testing.T) {
	src, err := os.ReadFile("../../graph/generated.go")
	if err != nil {
		t.Fatal(err)
	}
	calls := callsByFunc(t, src)
	want := map[string]string{
		"TimelineItem": serialFunc,
		"Identifier":   serialFunc,
		"Profile":      "graphql.MarshalSliceConcurrently",
		// Edges hold objects whose resolvers read the store.
		"ProfileEdge": "graphql.MarshalSliceConcurrently",
		"SegmentEdge": "graphql.MarshalSliceConcurrently",
	}
	for typ, call := range want {
		found := false
		for fn, got := range calls {
			// The marshal function of a non-null list of non-null typ.
			if strings.HasPrefix(fn, "marshalN"+typ+"2ᚕ") && strings.HasSuffix(fn, "ᚐ"+typ+"ᚄ") {
				found = true
				if got != call {
					t.Errorf("%s lists call %s, want %s", typ, got, call)
				}
			}
		}
		if !found {
			t.Errorf("no marshal function for lists of %s", typ)
		}
	}
}

// callsByFunc maps each function of src that marshals a slice to the
// function it marshals it with.
func callsByFunc(t *testing.T, src []byte) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch f := call.Fun.(type) {
			case *ast.Ident:
				if f.Name == serialFunc {
					out[fn.Name.Name] = serialFunc
				}
			case *ast.SelectorExpr:
				if x, ok := f.X.(*ast.Ident); ok && x.Name == "graphql" && f.Sel.Name == "MarshalSliceConcurrently" {
					out[fn.Name.Name] = "graphql.MarshalSliceConcurrently"
				}
			}
			return true
		})
	}
	return out
}
