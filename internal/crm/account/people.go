package account

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/store"
)

// A person's links follow them through merges and unmerges, and go with
// them on erasure. The account stays: it is the company's, not the
// person's.

// allLinksOf reads every link of profileID.
func allLinksOf(ctx context.Context, tn store.Tenant, profileID string) ([]LinkDoc, error) {
	var out []LinkDoc
	err := tn.C(AccountLinks).Each(ctx, store.Query{Index: AccountLinksByProfile, Eq: []any{profileID}}, func(raw bson.Raw) error {
		var l LinkDoc
		if err := bson.Unmarshal(raw, &l); err != nil {
			return fmt.Errorf("decode link: %w", err)
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("links of profile %s: %w", profileID, err)
	}
	return out, nil
}

// from is the profiles a link stands for.
func (l *LinkDoc) from() []string {
	if len(l.From) == 0 {
		return []string{l.ProfileID}
	}
	return l.From
}

// MoveLinks moves sourceID's links to targetID (a merge). Where both are
// linked to one account the target's link stays (its role, its source:
// a hand-made link wins over a domain's) and remembers the source's.
// Idempotent: a resumed merge moves what is left.
func MoveLinks(ctx context.Context, tn store.Tenant, sourceID, targetID string) error {
	links, err := allLinksOf(ctx, tn, sourceID)
	if err != nil {
		return err
	}
	c := tn.C(AccountLinks)
	for _, l := range links {
		moved := l
		moved.ID, moved.ProfileID, moved.From, moved.Version = linkID(l.AccountID, targetID), targetID, l.from(), 1
		var cur LinkDoc
		switch err := c.Get(ctx, moved.ID, &cur); {
		case errors.Is(err, store.ErrNotFound):
			if err := c.Insert(ctx, moved); err != nil && !errors.Is(err, store.ErrDuplicateKey) {
				return fmt.Errorf("move link to %s: %w", targetID, err)
			}
		case err != nil:
			return fmt.Errorf("read link: %w", err)
		default:
			next := cur
			next.From = union(cur.from(), l.from())
			if cur.Source != Manual && l.Source == Manual {
				next.Role, next.Source = l.Role, Manual
			}
			if !slices.Equal(next.From, cur.From) || next.Source != cur.Source {
				next.Version = cur.Version + 1
				if err := c.Replace(ctx, next, cur.Version); err != nil {
					return fmt.Errorf("join links on %s: %w", targetID, err)
				}
			}
		}
		if err := c.Delete(ctx, l.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("remove moved link: %w", err)
		}
	}
	return nil
}

// RestoreLinks gives restoredID back, on an unmerge, the links the merge
// brought from it: those of holderID standing for one of origins (the
// restored profile and the profiles merged into it before).
func RestoreLinks(ctx context.Context, tn store.Tenant, holderID, restoredID string, origins []string) error {
	links, err := allLinksOf(ctx, tn, holderID)
	if err != nil {
		return err
	}
	c := tn.C(AccountLinks)
	for _, l := range links {
		var back, stay []string
		for _, p := range l.from() {
			if slices.Contains(origins, p) {
				back = append(back, p)
			} else {
				stay = append(stay, p)
			}
		}
		if len(back) == 0 {
			continue
		}
		r := l
		r.ID, r.ProfileID, r.From, r.Version = linkID(l.AccountID, restoredID), restoredID, back, 1
		if len(back) == 1 && back[0] == restoredID {
			r.From = nil
		}
		if err := c.Insert(ctx, r); err != nil && !errors.Is(err, store.ErrDuplicateKey) {
			return fmt.Errorf("restore link of %s: %w", restoredID, err)
		}
		if len(stay) == 0 {
			if err := c.Delete(ctx, l.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("remove restored link: %w", err)
			}
			continue
		}
		if err := keepOnly(ctx, tn, l.ID, holderID, origins); err != nil {
			return err
		}
	}
	return nil
}

// keepOnly takes origins off the holder's link linkID (an unmerge),
// re-reading it when a concurrent write changed it.
func keepOnly(ctx context.Context, tn store.Tenant, linkID, holderID string, origins []string) error {
	c := tn.C(AccountLinks)
	for range 10 {
		var l LinkDoc
		if err := c.Get(ctx, linkID, &l); errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read the holder's link: %w", err)
		}
		stay := slices.DeleteFunc(slices.Clone(l.from()), func(p string) bool { return slices.Contains(origins, p) })
		if len(stay) == 0 {
			stay = []string{holderID} // linked by hand since: its own now
		}
		next := l
		next.From, next.Version = stay, l.Version+1
		if len(stay) == 1 && stay[0] == holderID {
			next.From = nil
		}
		err := c.Replace(ctx, next, l.Version)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("keep the holder's link: %w", err)
		}
	}
	return fmt.Errorf("keep the holder's link %s: too much contention", linkID)
}

// LinkedAccountIDs lists the accounts profileID has links to, for a
// merge, unmerge or erasure to re-decide their contacts after it changed
// their counts (Redecide).
func LinkedAccountIDs(ctx context.Context, tn store.Tenant, profileID string) ([]string, error) {
	links, err := allLinksOf(ctx, tn, profileID)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = l.AccountID
	}
	return out, nil
}

// EraseProfile removes profileID's links (an erasure).
func EraseProfile(ctx context.Context, tn store.Tenant, profileID string) error {
	if _, err := tn.C(AccountLinks).DeleteMany(ctx, store.Query{Index: AccountLinksByProfile, Eq: []any{profileID}}); err != nil {
		return fmt.Errorf("erase links of %s: %w", profileID, err)
	}
	return nil
}

// Exported is one of a person's links as their data export shows it.
type Exported struct {
	AccountID   string `json:"accountId"`
	AccountName string `json:"accountName"`
	Role        string `json:"role,omitempty"`
	Source      string `json:"source"`
	LinkedAt    string `json:"linkedAt"`
}

// ExportProfile lists profileID's links with their accounts' names (a
// data export).
func ExportProfile(ctx context.Context, tn store.Tenant, profileID string) ([]Exported, error) {
	links, err := allLinksOf(ctx, tn, profileID)
	if err != nil {
		return nil, err
	}
	out := []Exported{}
	for _, l := range links {
		e := Exported{AccountID: l.AccountID, Role: l.Role, Source: l.Source, LinkedAt: l.LinkedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")}
		if a, err := get(ctx, tn, l.AccountID); err == nil {
			e.AccountName = a.Name
		}
		out = append(out, e)
	}
	return out, nil
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}
