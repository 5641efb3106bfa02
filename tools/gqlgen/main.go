// Command gqlgen generates graph/ from schema/ as `gqlgen generate` does
// (gqlgen.yml is its configuration), with one change to the generated
// code: lists whose elements need no goroutine of their own are
// marshalled element by element in the caller's goroutine.
//
// gqlgen marshals every list of objects with a goroutine per element,
// so that element resolvers doing I/O run side by side. For a profile
// 360 (50 timeline items, a dozen memberships, consents, identifiers)
// that is about 80 goroutines per request whose work is copying fields,
// and starting them and growing their stacks cost a third of the
// request's CPU (BENCHMARKS.md). No gqlgen setting turns it off
// (`exec.worker_limit` only bounds how many run at once), so after gqlgen
// has written graph/generated.go this command rewrites, in the marshal
// functions of such lists, the call to graphql.MarshalSliceConcurrently
// into graph.marshalSliceSerial, which has the same signature and the
// same per-element panic handling.
//
// A list is marshalled serially when its element type is an enum, or an
// object with no resolver field whose object fields are serial too
// (nothing in it can block), or when the type carries
// @goSerialList: its resolvers do no I/O (a field read from the object, a
// cached setting).
//
//	go generate ./...   (graph/generate.go runs this command)
package main

import (
	"bytes"
	"fmt"
	goast "go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"log"
	"os"

	"github.com/99designs/gqlgen/api"
	"github.com/99designs/gqlgen/codegen"
	"github.com/99designs/gqlgen/codegen/config"
	"github.com/vektah/gqlparser/v2/ast"
)

// serialDirective marks an object type whose resolvers do no I/O.
const serialDirective = "goSerialList"

// serialFunc is the function generated code calls instead of
// graphql.MarshalSliceConcurrently (graph/serial.go).
const serialFunc = "marshalSliceSerial"

func main() {
	log.SetFlags(0)
	cfg, err := config.LoadConfigFromDefaultLocations()
	if err != nil {
		log.Fatalf("gqlgen: load config: %v", err)
	}
	p := &serialLists{}
	if err := api.Generate(cfg, api.AddPlugin(p)); err != nil {
		log.Fatalf("gqlgen: generate: %v", err)
	}
	n, err := rewriteFile(cfg.Exec.Filename, p.funcs)
	if err != nil {
		log.Fatalf("gqlgen: %v", err)
	}
	if n == 0 && len(p.funcs) > 0 {
		// gqlgen changed how it marshals lists: say so rather than quietly
		// generating the slow form.
		log.Fatalf("gqlgen: none of the %d serial list marshallers calls graphql.MarshalSliceConcurrently", len(p.funcs))
	}
	log.Printf("gqlgen: %d of the generated list marshallers are serial", n)
}

// serialLists is a gqlgen plugin that records, from the codegen data, the
// names of the marshal functions of the lists to marshal serially.
type serialLists struct {
	funcs map[string]bool
}

func (*serialLists) Name() string { return "seriallists" }

// GenerateCode implements plugin.CodeGenerator; gqlgen calls it with the
// complete codegen data before it writes the executable schema.
func (p *serialLists) GenerateCode(data *codegen.Data) error {
	p.funcs = serialMarshallers(data)
	return nil
}

// serialMarshallers returns the marshal function names of the lists whose
// element type is serial.
func serialMarshallers(data *codegen.Data) map[string]bool {
	out := map[string]bool{}
	for _, ref := range data.ReferencedTypes {
		if !ref.IsSlice() || ref.Definition == nil {
			continue
		}
		if ref.Definition.Kind == ast.Enum || serialType(data.Objects, ref.Definition.Name, map[string]bool{}) {
			out[ref.MarshalFunc()] = true
		}
	}
	return out
}

// serialType reports whether lists of the named object type need no
// goroutine per element (enums are the caller's case): it is marked
// @goSerialList, or it has no resolver field and its object fields are
// all serial too (a connection's edge holding a Profile is not: the profile's
// resolvers read the store, and each edge would wait for them in turn).
// seen breaks cycles (a type reached again is taken as not serial).
func serialType(objects codegen.Objects, name string, seen map[string]bool) bool {
	o := objects.ByName(name)
	if o == nil {
		// A scalar or enum needs nothing; an interface or union is
		// decided by its objects at run time, so it stays concurrent.
		return false
	}
	if o.Definition.Directives.ForName(serialDirective) != nil {
		return true
	}
	if seen[name] || o.IsConcurrent() {
		return false
	}
	seen[name] = true
	for _, f := range o.Fields {
		if f.TypeReference == nil || f.TypeReference.Definition == nil {
			continue
		}
		switch f.TypeReference.Definition.Kind {
		case ast.Scalar, ast.Enum:
		case ast.Object:
			if !serialType(objects, f.TypeReference.Definition.Name, seen) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// rewriteFile rewrites, in the functions of file named in funcs, each
// call to graphql.MarshalSliceConcurrently into serialFunc. It returns how
// many functions it changed.
func rewriteFile(file string, funcs map[string]bool) (int, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	out, n, err := rewrite(src, funcs)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", file, err)
	}
	if n == 0 {
		return 0, nil
	}
	return n, os.WriteFile(file, out, 0o644)
}

// rewrite is rewriteFile on source text.
func rewrite(src []byte, funcs map[string]bool) ([]byte, int, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, parser.ParseComments)
	if err != nil {
		return nil, 0, err
	}
	n := 0
	for _, d := range f.Decls {
		fn, ok := d.(*goast.FuncDecl)
		if !ok || fn.Body == nil || !funcs[fn.Name.Name] {
			continue
		}
		changed := false
		goast.Inspect(fn.Body, func(node goast.Node) bool {
			call, ok := node.(*goast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*goast.SelectorExpr); ok && sel.Sel.Name == "MarshalSliceConcurrently" {
				if pkg, ok := sel.X.(*goast.Ident); ok && pkg.Name == "graphql" {
					call.Fun = &goast.Ident{Name: serialFunc, NamePos: sel.Pos()}
					changed = true
				}
			}
			return true
		})
		if changed {
			n++
		}
	}
	if n == 0 {
		return src, 0, nil
	}
	var buf bytes.Buffer
	if err := format.Node(&buf, fset, f); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), n, nil
}
