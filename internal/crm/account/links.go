package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/store"
)

// People link to accounts with a role: by hand (Link), or by the domain of
// an email they hold (source DOMAIN: when the email arrives, or when an
// account gains the domain). A link is one document per account and
// person, its id accountId/profileId, so linking twice changes one link.
// A hand-made link is never replaced by a domain's.

// Link sources.
const (
	Manual      = "MANUAL"
	DomainMatch = "DOMAIN"
)

// MaxRoleLen bounds a link's role.
const MaxRoleLen = 128

// LinkDoc is one person's link to one account.
type LinkDoc struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	AccountID   string    `bson:"accountId"`
	ProfileID   string    `bson:"profileId"`
	Role        string    `bson:"role,omitempty"`
	Source      string    `bson:"source"`
	LinkedAt    time.Time `bson:"linkedAt"`
	// From lists the profiles whose link this is, when merges brought it
	// together (nil: the profile's own): an unmerge gives the restored
	// profile back the links it brought.
	From    []string `bson:"from,omitempty"`
	Version int64    `bson:"version"`
}

// live is the live profile standing for profileID (following merges),
// NOT_FOUND when there is none.
func live(ctx context.Context, tn store.Tenant, profileID string) (string, error) {
	p, err := profile.Resolve(ctx, tn, profileID, identity.Redirect)
	if err != nil {
		return "", err
	}
	return p.ID, nil
}

func linkID(accountID, profileID string) string { return accountID + "/" + profileID }

// Link links the live profile profileID (following merges) to account
// accountID with role, by hand: NOT_FOUND for a profile or account the
// workspace does not have.
func (s *Service) Link(ctx context.Context, tn store.Tenant, profileID, accountID, role string) (*LinkDoc, error) {
	role = strings.TrimSpace(role)
	if len(role) > MaxRoleLen {
		return nil, apperr.Invalid("role", "is longer than %d bytes", MaxRoleLen)
	}
	if _, err := get(ctx, tn, accountID); err != nil {
		return nil, err
	}
	pid, err := live(ctx, tn, profileID)
	if err != nil {
		return nil, err
	}
	l := &LinkDoc{ID: linkID(accountID, pid), AccountID: accountID, ProfileID: pid, Role: role, Source: Manual, LinkedAt: s.clock(), Version: 1}
	var cur LinkDoc
	inserted := false
	switch err := tn.C(AccountLinks).Get(ctx, l.ID, &cur); {
	case err == nil:
		// Linked already: the role and source change, the link's age
		// stays, and the link is now this profile's own too (an
		// unmerge leaves it here).
		l.LinkedAt, l.Version = cur.LinkedAt, cur.Version+1
		if len(cur.From) > 0 {
			l.From = union(cur.From, []string{pid})
		}
		if err := tn.C(AccountLinks).Replace(ctx, l, cur.Version); err != nil {
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				return nil, apperr.New(apperr.Conflict, "the link changed meanwhile: try again")
			}
			return nil, fmt.Errorf("store link: %w", err)
		}
	case errors.Is(err, store.ErrNotFound):
		if err := tn.C(AccountLinks).Insert(ctx, l); err != nil {
			if errors.Is(err, store.ErrDuplicateKey) {
				return nil, apperr.New(apperr.Conflict, "the link changed meanwhile: try again")
			}
			return nil, fmt.Errorf("store link: %w", err)
		}
		inserted = true
	default:
		return nil, fmt.Errorf("read link: %w", err)
	}
	l.WorkspaceID = tn.Workspace()
	if inserted {
		// An existing link on a profile being merged is moved by the
		// merge; only one this call made may be stranded.
		if err := settleOnLive(ctx, tn, l.ID, pid); err != nil {
			return nil, err
		}
	}
	s.notify(ctx, tn, accountID)
	Redecide(ctx, tn, s.segments, "account link", nil, accountID)
	return l, nil
}

// settleOnLive removes link linkID if profileID was merged away or erased
// while it was being written (a merge's move or an erasure may have run
// before the link landed): NOT_FOUND then, for the caller to try again
// on the live profile.
func settleOnLive(ctx context.Context, tn store.Tenant, linkID, profileID string) error {
	if retired, err := profile.Retired(ctx, tn, profileID); err != nil || !retired {
		return err
	}
	if err := tn.C(AccountLinks).Delete(ctx, linkID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("remove a link to a retired profile: %w", err)
	}
	return apperr.New(apperr.NotFound, "profile %s was merged or erased meanwhile: try again", profileID)
}

// Unlink removes the link between profileID (following merges) and
// accountID; false when there was none. A domain link removed comes back
// when the person identifies with such an email again, or the account
// gains a domain.
func (s *Service) Unlink(ctx context.Context, tn store.Tenant, profileID, accountID string) (bool, error) {
	if _, err := get(ctx, tn, accountID); err != nil {
		return false, err
	}
	pid, err := live(ctx, tn, profileID)
	if err != nil {
		return false, err
	}
	err = tn.C(AccountLinks).Delete(ctx, linkID(accountID, pid))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove link: %w", err)
	}
	s.notify(ctx, tn, accountID)
	Redecide(ctx, tn, s.segments, "account link", []string{pid}, accountID)
	return true, nil
}

// linkAuto links profileID to accountID by a domain, unless they are
// linked already (by hand or by a domain); a link a merge brought is
// made this profile's own too. A profile retired meanwhile gets no link.
// It tells whether it made a link.
func (s *Service) linkAuto(ctx context.Context, tn store.Tenant, profileID, accountID string) (bool, error) {
	c := tn.C(AccountLinks)
	l := LinkDoc{ID: linkID(accountID, profileID), AccountID: accountID, ProfileID: profileID, Source: DomainMatch, LinkedAt: s.clock(), Version: 1}
	err := c.Insert(ctx, l)
	if errors.Is(err, store.ErrDuplicateKey) {
		var cur LinkDoc
		if err := c.Get(ctx, l.ID, &cur); err != nil || len(cur.From) == 0 || slices.Contains(cur.From, profileID) {
			return false, nil
		}
		next := cur
		next.From, next.Version = union(cur.From, []string{profileID}), cur.Version+1
		if err := c.Replace(ctx, next, cur.Version); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			return false, fmt.Errorf("link profile %s to account %s: %w", profileID, accountID, err)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("link profile %s to account %s: %w", profileID, accountID, err)
	}
	if err := settleOnLive(ctx, tn, l.ID, profileID); err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			return false, nil
		}
		return false, err
	}
	s.notify(ctx, tn, accountID)
	return true, nil
}

// linkDomains links to accountID the people with emails at domains (or at
// names under them), skipping free-mail domains. The account is stored
// by then: a failure is logged, not returned (the call that made the
// account must not be retried into a CONFLICT with itself), and the
// people it missed join when they next identify.
func (s *Service) linkDomains(ctx context.Context, tn store.Tenant, accountID string, domains []string) {
	if len(domains) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	free, err := s.FreeMail(ctx, tn)
	if err != nil {
		slog.ErrorContext(ctx, "accounts: link the people at new domains", "account", accountID, "err", err)
		return
	}
	for _, d := range domains {
		if slices.Contains(free, d) {
			continue
		}
		at, under := "@"+d, "."+d
		match := func(email string) bool {
			ed := EmailDomain(email)
			return ed == d || strings.HasSuffix(ed, under) || strings.HasSuffix(email, at)
		}
		err := identity.EmailsAt(ctx, tn, match, func(pid string) error {
			_, err := s.linkAuto(ctx, tn, pid, accountID)
			return err
		})
		if err != nil {
			slog.ErrorContext(ctx, "accounts: link the people at a new domain", "account", accountID, "domain", d, "err", err)
		}
	}
}

// LinkEmails links profileID to the accounts holding the domains of
// emails (or a domain they are under: ann@eu.acme.com joins acme.com),
// free-mail domains excepted: a person gives an email, and joins their
// company. Called by ingest when a profile gains an email.
func (s *Service) LinkEmails(ctx context.Context, tn store.Tenant, profileID string, emails []string) error {
	if len(emails) == 0 {
		return nil
	}
	free, err := s.FreeMail(ctx, tn)
	if err != nil {
		return err
	}
	for _, e := range emails {
		d := EmailDomain(e)
		if d == "" || slices.Contains(free, d) {
			continue
		}
		for d != "" {
			owner, err := ownerOf(ctx, tn, Identifier{Type: Domain, Value: d})
			if err != nil {
				return err
			}
			if owner != "" {
				linked, err := s.linkAuto(ctx, tn, profileID, owner)
				if err != nil {
					return err
				}
				if linked {
					Redecide(ctx, tn, s.segments, "account link", nil, owner)
				}
				break
			}
			_, parent, ok := strings.Cut(d, ".")
			if !ok || !strings.Contains(parent, ".") {
				break
			}
			d = parent
		}
	}
	return nil
}

// ContactPage is a page of an account's contacts, oldest link first.
type ContactPage struct {
	Links   []*LinkDoc
	Cursors []string
	HasNext bool
}

// Contacts pages through account accountID's links.
func (s *Service) Contacts(ctx context.Context, tn store.Tenant, accountID string, first int, after string) (ContactPage, error) {
	var out ContactPage
	docs, err := tn.C(AccountLinks).Find(ctx, store.Query{Index: AccountLinksByAccount, Eq: []any{accountID}, After: after, Limit: first + 1})
	if err != nil {
		return out, fmt.Errorf("contacts of account %s: %w", accountID, err)
	}
	if len(docs) > first {
		docs, out.HasNext = docs[:first], true
	}
	for _, d := range docs {
		var l LinkDoc
		if err := d.Decode(&l); err != nil {
			return out, fmt.Errorf("decode link: %w", err)
		}
		out.Links = append(out.Links, &l)
		out.Cursors = append(out.Cursors, d.Key)
	}
	return out, nil
}

// ContactIDs lists the profiles linked to account accountID, oldest link
// first, at most limit.
func (s *Service) ContactIDs(ctx context.Context, tn store.Tenant, accountID string, limit int) ([]string, error) {
	return contactIDs(ctx, tn, accountID, limit)
}

func contactIDs(ctx context.Context, tn store.Tenant, accountID string, limit int) ([]string, error) {
	// A link's id names its person (linkID): the ids alone are read, from
	// the index (an account timeline reads a thousand of them).
	ids, err := tn.C(AccountLinks).IDs(ctx, store.Query{Index: AccountLinksByAccount, Eq: []any{accountID}, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("contacts of account %s: %w", accountID, err)
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		acc, pid, ok := strings.Cut(id, "/")
		if !ok || acc != accountID || pid == "" {
			return nil, fmt.Errorf("link %s of account %s names no person", id, accountID)
		}
		out[i] = pid
	}
	return out, nil
}

// CountContacts counts account accountID's links (an index count).
func (s *Service) CountContacts(ctx context.Context, tn store.Tenant, accountID string) (int64, error) {
	return contactCount(ctx, tn, accountID)
}

// MaxAccountsPerProfile caps what AccountsOf returns.
const MaxAccountsPerProfile = 100

// AccountsOf lists profileID's links, oldest first.
// Links to an account that is gone (none are made, but one could have
// been before its account was stored) are left out.
func (s *Service) AccountsOf(ctx context.Context, tn store.Tenant, profileID string) ([]*LinkDoc, error) {
	links, err := linksOf(ctx, tn, profileID)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(links, func(l *LinkDoc) bool { return apperr.CodeOf(Exists(ctx, tn, l.AccountID)) == apperr.NotFound }), nil
}

func linksOf(ctx context.Context, tn store.Tenant, profileID string) ([]*LinkDoc, error) {
	docs, err := tn.C(AccountLinks).Find(ctx, store.Query{Index: AccountLinksByProfile, Eq: []any{profileID}, Limit: MaxAccountsPerProfile})
	if err != nil {
		return nil, fmt.Errorf("accounts of profile %s: %w", profileID, err)
	}
	out := make([]*LinkDoc, 0, len(docs))
	for _, d := range docs {
		var l LinkDoc
		if err := d.Decode(&l); err != nil {
			return nil, fmt.Errorf("decode link: %w", err)
		}
		out = append(out, &l)
	}
	slices.SortFunc(out, func(a, b *LinkDoc) int { return a.LinkedAt.Compare(b.LinkedAt) })
	return out, nil
}
