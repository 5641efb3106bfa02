package traits

import (
	"context"
	"fmt"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// scopePIIRead is the scope that shows personal data in clear (auth's
// name for it, repeated here so that traits' messages need no auth).
const scopePIIRead = "pii:read"

// ScoreOrder orders profiles by the score Key now, highest first unless
// Asc.
type ScoreOrder struct {
	Key string
	Asc bool
}

// ProfileQuery asks for a page of the workspace's profiles, read one of
// three ways: ranked by a score (ByScore, or with only ScoreFilter the
// first filter's score, highest first) within every ScoreFilter range;
// else matched by Search (profile.Search); else listed in Order.
type ProfileQuery struct {
	First       int
	Search      *string
	Order       profile.Order // zero: newest first
	ByScore     *ScoreOrder
	ScoreFilter []Range
	// MayReadPII tells whether the caller sees personal data in clear
	// (scope pii:read); Search needs it.
	MayReadPII bool
	// After returns the key of the caller's cursor if it belongs to list,
	// the list the query reads (ProfilePage.List), so that a cursor of one
	// list or order is refused by another instead of silently positioning
	// it. nil: the first page.
	After func(list string) (string, error)
}

// ProfilePage is a page of profiles and the list its cursors belong to.
type ProfilePage struct {
	profile.Page
	List string
}

// List names: one per way of reading and order, so the cursors already
// handed out under these names keep working.
const searchList = "s"

var orderLists = map[profile.Order]string{
	profile.CreatedDesc:  "pCREATED_AT_DESC",
	profile.CreatedAsc:   "pCREATED_AT_ASC",
	profile.UpdatedDesc:  "pUPDATED_AT_DESC",
	profile.LastSeenDesc: "pLAST_SEEN_AT_DESC",
}

func rankList(q RankQuery) string {
	if q.Asc {
		return "r" + q.Key + "+"
	}
	return "r" + q.Key
}

// Profiles returns the page of profiles q asks for (query profiles).
func (e *Engine) Profiles(ctx context.Context, tn store.Tenant, q ProfileQuery) (ProfilePage, error) {
	var out ProfilePage
	if q.Search != nil && !q.MayReadPII {
		// Search matches identifier values and names: a prefix search
		// would tell a masked caller, letter by letter, which emails exist,
		// and its cursors carry the matched term.
		return out, apperr.New(apperr.Forbidden, "profiles(search) needs scope %s: it matches personal data", scopePIIRead)
	}
	// The way of reading fixes the list, and the list the cursor: the
	// cursor is read only once both are known.
	var read func(after string) (profile.Page, error)
	switch rq, ranked := q.rank(); {
	case ranked:
		if q.Search != nil {
			return out, apperr.Invalid("search", "cannot be combined with byScore or scoreFilter")
		}
		out.List = rankList(rq)
		read = func(after string) (profile.Page, error) {
			rq.After = after
			return e.Rank(ctx, tn, rq)
		}
	case q.Search != nil:
		out.List = searchList
		read = func(after string) (profile.Page, error) { return profile.Search(ctx, tn, *q.Search, q.First, after) }
	default:
		list, ok := orderLists[q.Order]
		if !ok {
			return out, apperr.Invalid("orderBy", "unknown order %d", q.Order)
		}
		out.List = list
		read = func(after string) (profile.Page, error) { return profile.List(ctx, tn, q.Order, q.First, after) }
	}
	after, err := q.after(out.List)
	if err != nil {
		return out, err
	}
	if out.Page, err = read(after); err != nil {
		return out, fmt.Errorf("read profiles (list %s): %w", out.List, err)
	}
	return out, nil
}

// CountProfiles is how many profiles the list q reads holds, all pages
// together: the profiles within every ScoreFilter range (a read of every
// profile, as each of the ranking's pages is), those Search matches, or
// every profile of the workspace (an index count). It checks nothing
// Profiles has not: call it for a query Profiles answered.
func (e *Engine) CountProfiles(ctx context.Context, tn store.Tenant, q ProfileQuery) (int64, error) {
	if rq, ranked := q.rank(); ranked {
		return e.countRanked(ctx, tn, rq)
	}
	if q.Search != nil {
		return profile.CountSearch(ctx, tn, *q.Search)
	}
	return profile.Count(ctx, tn)
}

// rank is q as a ranking; false when it sets neither ByScore nor
// ScoreFilter.
func (q ProfileQuery) rank() (RankQuery, bool) {
	rq := RankQuery{First: q.First, Ranges: q.ScoreFilter}
	switch {
	case q.ByScore != nil:
		rq.Key, rq.Asc = q.ByScore.Key, q.ByScore.Asc
	case len(q.ScoreFilter) > 0:
		rq.Key = q.ScoreFilter[0].Key
	default:
		return rq, false
	}
	return rq, true
}

func (q ProfileQuery) after(list string) (string, error) {
	if q.After == nil {
		return "", nil
	}
	return q.After(list)
}

// ProfileLoader loads the live profile id (following merges), NOT_FOUND
// when it is gone; a caller may serve it from what it has read already.
type ProfileLoader func(ctx context.Context, tn store.Tenant, id string) (*profile.Profile, error)

// ScoresOf returns the scores now of the profile id, created at created,
// loaded by load, and the input they were computed from (Profile.scores).
// A profile erased since the caller saw it scores as a new one with no
// tally: the caller is answered, and nothing of the person is shown.
func (e *Engine) ScoresOf(ctx context.Context, tn store.Tenant, id string, created time.Time, load ProfileLoader) (scores.Scores, scores.Input, error) {
	p, err := load(ctx, tn, id)
	if apperr.CodeOf(err) == apperr.NotFound {
		p = profile.New(id, created)
	} else if err != nil {
		return scores.Scores{}, scores.Input{}, fmt.Errorf("load profile %s for its scores: %w", id, err)
	}
	return e.Scores(ctx, tn, p, time.Time{})
}
