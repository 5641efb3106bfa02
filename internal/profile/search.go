package profile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

// term is one searchable token of a profile (an identifier value or a name
// word), kept in its own collection so search is an indexed prefix read on
// both engines instead of a scan.
type term struct {
	ID          string `bson:"_id"` // profileId|term: one document per pair
	WorkspaceID string `bson:"workspaceId"`
	ProfileID   string `bson:"profileId"`
	Term        string `bson:"term"`
}

// SyncTerms makes the profile's search terms exactly terms (lower-cased).
// Idempotent: safe to repeat after a crash.
func SyncTerms(ctx context.Context, tn store.Tenant, profileID string, terms []string) error {
	return syncTerms(ctx, tn, profileID, terms, false)
}

// NewTerms is SyncTerms for a profile just created, which has none yet:
// it only adds them, without reading (a new visitor's track).
func NewTerms(ctx context.Context, tn store.Tenant, profileID string, terms []string) error {
	return syncTerms(ctx, tn, profileID, terms, true)
}

func syncTerms(ctx context.Context, tn store.Tenant, profileID string, terms []string, fresh bool) error {
	want := map[string]bool{}
	for _, t := range terms {
		t = strings.ToLower(strings.TrimSpace(t))
		if t != "" && len(t) <= 256 {
			want[t] = true
		}
	}
	c := tn.C(SearchTerms)
	var docs []store.Doc
	var err error
	if !fresh {
		docs, err = c.Find(ctx, store.Query{Index: TermsByProfile, Eq: []any{profileID}})
	}
	if err != nil {
		return fmt.Errorf("read search terms of %s: %w", profileID, err)
	}
	for _, d := range docs {
		var t term
		if err := d.Decode(&t); err != nil {
			return fmt.Errorf("decode search term: %w", err)
		}
		if want[t.Term] {
			delete(want, t.Term)
			continue
		}
		if err := c.Delete(ctx, t.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("drop search term of %s: %w", profileID, err)
		}
	}
	for t := range want {
		doc := term{ID: profileID + "|" + t, ProfileID: profileID, Term: t}
		if err := c.Put(ctx, doc); err != nil {
			return fmt.Errorf("add search term of %s: %w", profileID, err)
		}
	}
	return nil
}

// DropTerms removes all of a profile's search terms.
func DropTerms(ctx context.Context, tn store.Tenant, profileID string) error {
	return SyncTerms(ctx, tn, profileID, nil)
}

// Search returns profiles with a term starting with q (case-insensitive),
// ordered by the matching term. A profile appears once per page; one with
// several matching terms may appear again on a later page.
func Search(ctx context.Context, tn store.Tenant, q string, first int, after string) (Page, error) {
	q = strings.ToLower(strings.TrimSpace(q))
	if q == "" {
		return Page{}, apperr.Invalid("search", "must not be blank")
	}
	if len(q) > 256 {
		return Page{}, apperr.Invalid("search", "longer than 256 bytes")
	}
	var page Page
	seen := map[string]bool{}
	for {
		docs, err := tn.C(SearchTerms).Find(ctx, store.Query{
			Index: TermsByTerm, Range: &store.Bound{Prefix: &q}, After: after, Limit: first + 1,
		})
		if err != nil {
			return Page{}, cursorErr(err, "search profiles")
		}
		for _, d := range docs {
			var t term
			if err := d.Decode(&t); err != nil {
				return Page{}, fmt.Errorf("decode search term: %w", err)
			}
			after = d.Key
			if seen[t.ProfileID] {
				continue
			}
			if len(page.Profiles) == first {
				page.HasNext = true
				return page, nil
			}
			p, err := Get(ctx, tn, t.ProfileID)
			if errors.Is(err, store.ErrNotFound) {
				continue // a term left behind by an interrupted merge
			}
			if err != nil {
				return Page{}, fmt.Errorf("load profile %s: %w", t.ProfileID, err)
			}
			seen[t.ProfileID] = true
			page.Profiles = append(page.Profiles, p)
			page.Cursors = append(page.Cursors, d.Key)
		}
		if len(docs) < first+1 {
			return page, nil
		}
	}
}

// CountSearch is how many distinct profiles Search(q) pages through: the
// profiles of every term starting with q that still exist. It reads the
// matching terms (an index range, a thousand per store call), then
// counts the profiles they name over the primary key.
func CountSearch(ctx context.Context, tn store.Tenant, q string) (int64, error) {
	q = strings.ToLower(strings.TrimSpace(q))
	ids := map[string]bool{}
	err := tn.C(SearchTerms).Each(ctx, store.Query{Index: TermsByTerm, Range: &store.Bound{Prefix: &q}}, func(raw bson.Raw) error {
		if id, ok := raw.Lookup("profileId").StringValueOK(); ok {
			ids[id] = true
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count searched profiles: %w", err)
	}
	var n int64
	for in := range store.InLists(slices.Collect(maps.Keys(ids))) {
		// Terms an interrupted merge left behind name profiles that are
		// gone: Search skips them, and so does the count.
		c, err := tn.C(Profiles).Count(ctx, store.Query{Index: store.ByID, In: in})
		if err != nil {
			return 0, fmt.Errorf("count searched profiles: %w", err)
		}
		n += c
	}
	return n, nil
}
