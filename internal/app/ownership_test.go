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

// owners says which package owns each collection: only it may read or
// write the collection; others call its functions. Settings is one
// key-value collection shared by three domains, each reading and writing
// only its own keys (the suppression salt, the PII settings, the score
// settings and summary).
var owners = map[string][]string{
	"Profiles":          {"internal/profile"},
	"SearchTerms":       {"internal/profile"},
	"Identities":        {"internal/identity"},
	"Merges":            {"internal/identity"},
	"MergeQueue":        {"internal/identity"},
	"IdentifierTypes":   {"internal/identity"},
	"Suppressions":      {"internal/identity"},
	"Events":            {"internal/timeline"},
	"Segments":          {"internal/segment"},
	"Memberships":       {"internal/segment"},
	"MembershipChanges": {"internal/segment"},
	"SegmentWorkspaces": {"internal/segment"},
	"ConsentLog":        {"internal/consent"},
	"ConsentPurposes":   {"internal/consent"},
	"ComputedTraits":    {"internal/traits"},
	"TraitWorkspaces":   {"internal/traits"},
	"Changes":           {"internal/realtime"},
	"Erasures":          {"internal/privacy"},
	"Settings":          {"internal/identity", "internal/privacy", "internal/traits"},
}

// access is one Tenant.C(...) call in non-test code.
type access struct {
	pkg, collection, at string
}

// accesses finds every `x.C(arg)` call in the non-test Go files under
// root (generated code aside). arg is store.<Name> for a declared
// collection; anything else (a variable, a string) is reported with the
// collection "?", so it cannot hide an access.
func accesses(t *testing.T, root string) []access {
	t.Helper()
	var out []access
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
		rel = filepath.ToSlash(rel)
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "C" {
				return true
			}
			name := "?"
			if s, ok := call.Args[0].(*ast.SelectorExpr); ok {
				if x, ok := s.X.(*ast.Ident); ok && x.Name == "store" {
					name = s.Sel.Name
				}
			}
			out = append(out, access{pkg: rel, collection: name, at: fset.Position(call.Pos()).String()})
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
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

// TestCollectionOwnership fails when a package reads or writes a
// collection another domain owns. Fix a failure by calling the owner's
// function (adding one if needed), not by adding an owner here.
func TestCollectionOwnership(t *testing.T) {
	root := repoRoot(t)
	found := accesses(t, root)
	if len(found) < 50 {
		t.Fatalf("found only %d collection accesses: the scan is broken", len(found))
	}
	for _, a := range found {
		if slices.Contains(exempt, a.pkg) {
			continue
		}
		own, ok := owners[a.collection]
		switch {
		case a.collection == "?":
			t.Errorf("%s: %s reaches a collection through something other than store.<Name>; name the collection so ownership can be checked", a.at, a.pkg)
		case !ok:
			t.Errorf("%s: collection store.%s has no owner in this test; add it to owners", a.at, a.collection)
		case !slices.Contains(own, a.pkg):
			t.Errorf("%s: %s touches store.%s, which %s owns: call the owner's function instead", a.at, a.pkg, a.collection, strings.Join(own, ", "))
		}
	}
}

// The scan sees a violation: a file that reaches another domain's
// collection is reported.
func TestCollectionOwnershipCatchesViolation(t *testing.T) {
	dir := t.TempDir()
	pkg := filepath.Join(dir, "internal", "segment")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	src := "package segment\n\nfunc f(tn tenant) { tn.C(store.Events).Get(nil, \"x\", nil); tn.C(\"events\") }\n"
	if err := os.WriteFile(filepath.Join(pkg, "bad.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := accesses(t, dir)
	want := []access{{pkg: "internal/segment", collection: "Events"}, {pkg: "internal/segment", collection: "?"}}
	if len(got) != len(want) {
		t.Fatalf("found %+v", got)
	}
	for i := range want {
		if got[i].pkg != want[i].pkg || got[i].collection != want[i].collection {
			t.Fatalf("found %+v, want %+v", got, want)
		}
		if own := owners[got[i].collection]; slices.Contains(own, got[i].pkg) {
			t.Fatalf("%+v would pass", got[i])
		}
	}
}
