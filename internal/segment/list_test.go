package segment_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits"
)

// listPerson is what the test gave one profile, to sort and filter it
// independently of the engine.
type listPerson struct {
	id     string
	rank   any // the "rank" trait; nil: none
	email  bool
	orders int
	events int
}

// refKey orders a person for a sort of "rank" by the documented rules:
// numbers, strings, booleans (reversed for DESC), missing (or an object)
// last either way, then id.
func refLess(a, b listPerson, asc bool) int {
	kind := func(v any) int {
		switch v.(type) {
		case float64, int64:
			return 0
		case string:
			return 1
		case bool:
			return 2
		}
		return 3
	}
	ka, kb := kind(a.rank), kind(b.rank)
	if (ka == 3) != (kb == 3) {
		return cmp.Compare(ka, kb) // missing last, whatever the direction
	}
	c := 0
	if ka != 3 {
		if c = cmp.Compare(ka, kb); c == 0 {
			ai, aInt := a.rank.(int64)
			bi, bInt := b.rank.(int64)
			switch x := a.rank.(type) {
			case float64, int64:
				if aInt && bInt {
					c = cmp.Compare(ai, bi)
				} else {
					c = cmp.Compare(asFloat(x), asFloat(b.rank))
				}
			case string:
				c = strings.Compare(x, b.rank.(string))
			case bool:
				c = cmp.Compare(fmt.Sprint(x), fmt.Sprint(b.rank))
			}
		}
		if !asc {
			c = -c
		}
	}
	if c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

func asFloat(v any) float64 {
	if i, ok := v.(int64); ok {
		return float64(i)
	}
	return v.(float64)
}

// TestListProfilesSortsFiltersAndPages: paging through an ad-hoc list
// with its cursors returns every matching profile once, in the
// documented order (mixed kinds, missing values last both ways, ties by
// id, integers past 2^53 apart), and totalCount counts them all, for
// trait, event count and score orders, with and without a filter (an
// identifier node among them), within one scan page and across several.
func TestListProfilesSortsFiltersAndPages(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewPCG(41, 7))
	var people []listPerson
	for i := 0; i < 37; i++ {
		who := fmt.Sprint("l", i)
		var rank any
		switch r.IntN(7) {
		case 0:
			rank = float64(r.IntN(5)) // ties on purpose
		case 1:
			rank = float64(r.IntN(100)) / 4
		case 5:
			// Integers past 2^53, equal as float64s.
			rank = int64(1<<60) + int64(r.IntN(3))
		case 2:
			rank = []string{"b", "a", "ab", "2026-01-01T00:00:00Z"}[r.IntN(4)]
		case 3:
			rank = r.IntN(2) == 0
		case 4:
			rank = map[string]any{"nested": 1} // not sortable: last
		}
		ids := anon(who)
		email := r.IntN(2) == 0
		if email {
			ids = append(ids, identity.Identifier{Type: identity.Email, Value: who + "@example.com"})
		}
		traitsIn := map[string]any{}
		if rank != nil {
			traitsIn["rank"] = rank
		}
		res, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: ids, Traits: traitsIn})
		if err != nil {
			t.Fatal(err)
		}
		p := listPerson{id: res.Profile.ID, email: email}
		if _, isMap := rank.(map[string]any); !isMap {
			p.rank = rank
		}
		for n := r.IntN(4); n > 0; n-- {
			name := "view"
			if r.IntN(2) == 0 {
				name = traits.DefaultOrderEvent
				p.orders++
			}
			e.track(t, who, name, map[string]any{"total": 10})
			p.events++
		}
		people = append(people, p)
	}

	collect := func(t *testing.T, q segment.ListQuery) ([]string, int64) {
		t.Helper()
		var got []string
		total := int64(-1)
		for pages := 0; ; pages++ {
			page, err := e.seg.ListProfiles(e.Ctx, e.Tenant, q, start)
			if err != nil {
				t.Fatal(err)
			}
			if total >= 0 && page.Total != total {
				t.Fatalf("total changed between pages: %d, then %d", total, page.Total)
			}
			total = page.Total
			for _, p := range page.Profiles {
				got = append(got, p.ID)
			}
			if len(page.Profiles) > q.First || (page.HasNext && len(page.Profiles) != q.First) {
				t.Fatalf("page of %d (first %d, hasNext %v)", len(page.Profiles), q.First, page.HasNext)
			}
			if !page.HasNext {
				return got, total
			}
			q.After = page.Cursors[len(page.Cursors)-1]
			if pages > 50 {
				t.Fatal("paging does not end")
			}
		}
	}
	ids := func(ps []listPerson) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.id
		}
		return out
	}
	withEmail := func(ps []listPerson) []listPerson {
		return slices.DeleteFunc(slices.Clone(ps), func(p listPerson) bool { return !p.email })
	}
	emailRule := rule.Rule{Identifier: &rule.IdentifierCond{Type: identity.Email}}

	for _, c := range []struct {
		name  string
		q     segment.ListQuery
		order func(a, b listPerson) int
		keep  func([]listPerson) []listPerson
	}{
		{"trait asc", segment.ListQuery{Sort: segment.Sort{Field: segment.SortTrait, Trait: "rank", Asc: true}}, func(a, b listPerson) int { return refLess(a, b, true) }, nil},
		{"trait desc", segment.ListQuery{Sort: segment.Sort{Field: segment.SortTrait, Trait: "rank"}}, func(a, b listPerson) int { return refLess(a, b, false) }, nil},
		{"trait desc, with an email", segment.ListQuery{Rule: &emailRule, Sort: segment.Sort{Field: segment.SortTrait, Trait: "rank"}}, func(a, b listPerson) int { return refLess(a, b, false) }, withEmail},
		{"event count", segment.ListQuery{Sort: segment.Sort{Field: segment.SortEventCount}}, func(a, b listPerson) int {
			return cmp.Or(cmp.Compare(b.events, a.events), strings.Compare(a.id, b.id))
		}, nil},
		{"orders score asc, with an email", segment.ListQuery{Rule: &emailRule, Sort: segment.Sort{Field: segment.SortScore, Score: "scores.orders", Asc: true}}, func(a, b listPerson) int {
			return cmp.Or(cmp.Compare(a.orders, b.orders), strings.Compare(a.id, b.id))
		}, withEmail},
		{"without an email, oldest first", segment.ListQuery{Rule: &rule.Rule{Identifier: &rule.IdentifierCond{Type: identity.Email, Exists: new(bool)}}, Sort: segment.Sort{Field: segment.SortCreatedAt, Asc: true}}, nil,
			func(ps []listPerson) []listPerson {
				return slices.DeleteFunc(slices.Clone(ps), func(p listPerson) bool { return p.email })
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := slices.Clone(people)
			if c.keep != nil {
				want = c.keep(want)
			}
			if c.order != nil {
				slices.SortFunc(want, c.order)
			}
			for _, first := range []int{1, 7, 100} {
				q := c.q
				q.First = first
				got, total := collect(t, q)
				if total != int64(len(want)) {
					t.Fatalf("first %d: total %d, want %d", first, total, len(want))
				}
				// People were made one after another: oldest first is
				// the order of the list people.
				if !slices.Equal(got, ids(want)) {
					t.Fatalf("first %d:\n got %v\nwant %v", first, got, ids(want))
				}
			}
		})
	}

	// Past one scan page (profile.ScanPage), pages are evaluated side by
	// side and their best merged: the order holds across them.
	for i := 0; i < profile.ScanPage+30; i++ {
		res, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: anon(fmt.Sprint("f", i)),
			Traits: map[string]any{"rank": float64(i % 7)}})
		if err != nil {
			t.Fatal(err)
		}
		people = append(people, listPerson{id: res.Profile.ID, rank: float64(i % 7)})
	}
	want := slices.Clone(people)
	slices.SortFunc(want, func(a, b listPerson) int { return refLess(a, b, false) })
	for _, first := range []int{100, 333} {
		got, total := collect(t, segment.ListQuery{First: first, Sort: segment.Sort{Field: segment.SortTrait, Trait: "rank"}})
		if total != int64(len(want)) || !slices.Equal(got, ids(want)) {
			t.Fatalf("across scan pages, first %d: %d of %d, order differs: %v", first, total, len(want), !slices.Equal(got, ids(want)))
		}
	}

	// Bad input names its field.
	for _, c := range []struct {
		q     segment.ListQuery
		field string
	}{
		{segment.ListQuery{First: 5, Sort: segment.Sort{Field: segment.SortTrait, Trait: "a..b"}}, "sortBy.trait"},
		{segment.ListQuery{First: 5, Sort: segment.Sort{Field: segment.SortScore, Score: "scores.rfm.label"}}, "sortBy.score"},
		{segment.ListQuery{First: 5, Sort: segment.Sort{Field: "AGE"}}, "sortBy.by"},
		{segment.ListQuery{First: 5, Sort: segment.Sort{Field: segment.SortCreatedAt, Trait: "rank"}}, "sortBy.trait"},
		{segment.ListQuery{First: 5, Sort: segment.Sort{Field: segment.SortCreatedAt}, After: "nonsense"}, "after"},
		{segment.ListQuery{First: 5, Sort: segment.Sort{Field: segment.SortCreatedAt}, After: "x~zzz"}, "after"},
		{segment.ListQuery{First: 5, Sort: segment.Sort{Field: segment.SortCreatedAt}, Rule: &rule.Rule{Identifier: &rule.IdentifierCond{Type: "fax"}}}, "rule.identifier.type"},
	} {
		_, err := e.seg.ListProfiles(e.Ctx, e.Tenant, c.q, start)
		if ae, ok := apperr.As(err); !ok || ae.Code != apperr.BadUserInput || ae.Field != c.field {
			t.Errorf("%+v: %v, want BAD_USER_INPUT on %s", c.q, err, c.field)
		}
	}
}

// TestPreviewIdentifierNode: the preview answers identifier nodes from
// the identifiers (emails are not traits: a trait node finds none).
func TestPreviewIdentifierNode(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 6; i++ {
		ids := anon(fmt.Sprint("v", i))
		if i%3 == 0 {
			ids = append(ids, identity.Identifier{Type: identity.Email, Value: fmt.Sprintf("v%d@example.com", i)})
		}
		if _, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: ids}); err != nil {
			t.Fatal(err)
		}
	}
	e.track(t, "v0", "view", nil)
	for _, c := range []struct {
		r    rule.Rule
		want int64
	}{
		{rule.Rule{Identifier: &rule.IdentifierCond{Type: identity.Email}}, 2},
		{rule.Rule{Not: &rule.Rule{Identifier: &rule.IdentifierCond{Type: identity.Email}}}, 4},
		{rule.Rule{Identifier: &rule.IdentifierCond{Type: identity.Phone}}, 0},
		{rule.Rule{And: []rule.Rule{{Identifier: &rule.IdentifierCond{Type: identity.Email}}, {Event: &rule.EventCond{Name: "view"}}}}, 1},
		{rule.Rule{Trait: &rule.TraitCond{Key: "email", Op: rule.Exists}}, 0},
	} {
		n, _, err := e.seg.Preview(e.Ctx, e.Tenant, c.r, start)
		if err != nil || n != c.want {
			t.Errorf("%+v: %d, %v; want %d", c.r, n, err, c.want)
		}
	}
}

// TestIdentifierAttachedWithoutItsWriteIsDecided: an identifier attached
// by a call whose own decision never comes (its trait write refused; the
// call's profile turning out to be another one) is decided by the
// sweeper, because the attach marked the profile due.
func TestIdentifierAttachedWithoutItsWriteIsDecided(t *testing.T) {
	e := newEnv(t)
	known := e.create(t, "known", rule.Rule{Identifier: &rule.IdentifierCond{Type: identity.Email}})
	withUser := e.create(t, "with a user id", rule.Rule{Identifier: &rule.IdentifierCond{Type: identity.UserID}})

	// P's traits are near the profile cap: a call adding an email and
	// more traits attaches the email, then fails.
	big := strings.Repeat("x", 60<<10)
	p := e.identify(t, "p", map[string]any{"notes": big})
	_, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{
		Identifiers: append(anon("p"), identity.Identifier{Type: identity.Email, Value: "p@example.com"}),
		Traits:      map[string]any{"more": strings.Repeat("y", 8<<10)}})
	if ae, ok := apperr.As(err); !ok || ae.Code != apperr.BadUserInput {
		t.Fatalf("the oversized write: %v, want BAD_USER_INPUT", err)
	}
	if e.members(t, known.ID)[p] {
		t.Fatal("decided without a write: the test no longer shows the gap")
	}

	// X holds crmId C-1; a call with {userId u-9, crmId C-2, X's device}
	// gives X the userId, then splits C-2 off to a new profile, which
	// becomes the call's profile (crmId outranks the device): the call
	// decides only that one.
	x := e.identify(t, "dev-1", nil)
	if _, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{
		Identifiers: append(anon("dev-1"), identity.Identifier{Type: identity.CRMID, Value: "C-1"})}); err != nil {
		t.Fatal(err)
	}
	res, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: append(anon("dev-1"),
		identity.Identifier{Type: identity.UserID, Value: "u-9"}, identity.Identifier{Type: identity.CRMID, Value: "C-2"})})
	if err != nil || res.Profile.ID == x {
		t.Fatalf("the split: %v, profile %s (X is %s)", err, res.Profile.ID, x)
	}
	if held, _ := identity.TypesHeld(e.Ctx, e.Tenant, x); !slices.Contains(held, identity.UserID) {
		t.Fatalf("X holds %v: the test no longer attaches the userId to X", held)
	}

	later := start.Add(2 * time.Second)
	e.Clock.Set(later)
	if _, err := e.seg.Sweep(e.Ctx, e.Tenant, later); err != nil {
		t.Fatal(err)
	}
	if !e.members(t, known.ID)[p] {
		t.Error("P holds an email and is not in the segment after the sweep")
	}
	if !e.members(t, withUser.ID)[x] {
		t.Error("X holds a userId and is not in the segment after the sweep")
	}
}
