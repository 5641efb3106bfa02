package app_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Each domain package declares the collections it owns: constants of its
// own for the names, and a Collections list of store.CollectionSpec that
// internal/app gathers. Only the owner may read or write a collection;
// the others call its functions. These tests check that from the code.

// access is one Tenant.C(...) call in non-test code: collection is the
// argument's name when it is a bare identifier (a constant of the calling
// package), "" for anything else (another package's constant, a string, a
// field).
type access struct {
	pkg, collection, at string
}

// goFiles calls fn with each non-test Go file under root (generated code,
// test data and the git directory aside) and its package directory,
// relative to root.
func goFiles(t *testing.T, root string, fn func(rel string, fset *token.FileSet, f *ast.File)) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "graph", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		fn(filepath.ToSlash(rel), fset, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// accesses finds every `x.C(arg)` call.
func accesses(t *testing.T, root string) []access {
	t.Helper()
	var out []access
	goFiles(t, root, func(rel string, fset *token.FileSet, f *ast.File) {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "C" {
				return true
			}
			name := ""
			if id, ok := call.Args[0].(*ast.Ident); ok {
				name = id.Name
			}
			out = append(out, access{pkg: rel, collection: name, at: fset.Position(call.Pos()).String()})
			return true
		})
	})
	return out
}

// declared returns, for each package, the collection constants its
// []store.CollectionSpec lists name.
func declared(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	goFiles(t, root, func(rel string, _ *token.FileSet, f *ast.File) {
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			arr, ok := lit.Type.(*ast.ArrayType)
			if !ok {
				return true
			}
			if sel, ok := arr.Elt.(*ast.SelectorExpr); !ok || sel.Sel.Name != "CollectionSpec" {
				return true
			}
			for _, el := range lit.Elts {
				spec, ok := el.(*ast.CompositeLit)
				if !ok {
					continue
				}
				for _, field := range spec.Elts {
					kv, ok := field.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Name" {
						if v, ok := kv.Value.(*ast.Ident); ok {
							out[rel] = append(out[rel], v.Name)
						}
					}
				}
			}
			return true
		})
	})
	return out
}

// owners maps each declared collection constant to its package, failing
// the test on a collection declared twice.
func owners(t *testing.T, root string) map[string]string {
	t.Helper()
	owner := map[string]string{}
	for pkg, names := range declared(t, root) {
		for _, n := range names {
			if other, dup := owner[n]; dup {
				t.Errorf("collection %s is declared by both %s and %s", n, other, pkg)
			}
			owner[n] = pkg
		}
	}
	return owner
}

// repoRoot is the module's root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s", root)
	}
	return root
}

// exempt are the packages that may reach any collection: the store itself
// and its conformance suite, and test helpers that read every document
// (privacy's leftover scan, the test wiring).
var exempt = []string{"store", "store/storetest", "internal/privacy/privacytest", "internal/app/apptest"}

// violations are the accesses of found that break ownership.
func violations(found []access, owner map[string]string) []string {
	var out []string
	for _, a := range found {
		if slices.Contains(exempt, a.pkg) {
			continue
		}
		switch own, ok := owner[a.collection]; {
		case a.collection == "":
			out = append(out, a.at+": "+a.pkg+" names a collection through something other than a constant of its own; call the owning package's function")
		case !ok || own != a.pkg:
			out = append(out, a.at+": "+a.pkg+" touches "+a.collection+", which it does not declare (owner: "+own+"); call the owner's function instead")
		}
	}
	return out
}

// TestCollectionOwnership fails when non-test code reads or writes a
// collection its package does not declare. Fix a failure by calling the
// owner's function (adding one if needed).
func TestCollectionOwnership(t *testing.T) {
	root := repoRoot(t)
	owner := owners(t, root)
	if len(owner) < 15 {
		t.Fatalf("found only %d collection declarations (%v): the scan is broken", len(owner), owner)
	}
	found := accesses(t, root)
	if len(found) < 50 {
		t.Fatalf("found only %d collection accesses: the scan is broken", len(found))
	}
	for _, v := range violations(found, owner) {
		t.Error(v)
	}
}

// The check sees violations: a package that reaches another domain's
// collection through its constant, through a string, or through a name it
// does not declare is reported, once each.
func TestCollectionOwnershipCatchesViolation(t *testing.T) {
	dir := t.TempDir()
	pkg := filepath.Join(dir, "internal", "segment")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	src := "package segment\n\nfunc f(tn tenant) { tn.C(timeline.Events).Get(nil, \"x\", nil); tn.C(\"events\"); tn.C(Events) }\n"
	if err := os.WriteFile(filepath.Join(pkg, "bad.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	owner := owners(t, repoRoot(t))
	if owner["Events"] != "internal/timeline" {
		t.Fatalf("Events declared by %q", owner["Events"])
	}
	got := violations(accesses(t, dir), owner)
	if len(got) != 3 {
		t.Fatalf("violations %q, want 3", got)
	}
}
