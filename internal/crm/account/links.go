package account

import (
	"context"
	"errors"
	"fmt"
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
	switch err := tn.C(AccountLinks).Get(ctx, l.ID, &cur); {
	case err == nil:
		// Linked already: the role and source change, the link's age
		// and history stay.
		l.LinkedAt, l.From, l.Version = cur.LinkedAt, cur.From, cur.Version+1
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
	default:
		return nil, fmt.Errorf("read link: %w", err)
	}
	l.WorkspaceID = tn.Workspace()
	return l, nil
}

// Unlink removes the link between profileID (following merges) and
// accountID; false when there was none. A domain link removed stays
// removed until the person's email or the account's domains change.
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
	return true, nil
}

// linkAuto links profileID to accountID by a domain, unless they are
// linked already (by hand or by a domain).
func (s *Service) linkAuto(ctx context.Context, tn store.Tenant, profileID, accountID string) error {
	l := LinkDoc{ID: linkID(accountID, profileID), AccountID: accountID, ProfileID: profileID, Source: DomainMatch, LinkedAt: s.clock(), Version: 1}
	if err := tn.C(AccountLinks).Insert(ctx, l); err != nil && !errors.Is(err, store.ErrDuplicateKey) {
		return fmt.Errorf("link profile %s to account %s: %w", profileID, accountID, err)
	}
	return nil
}

// linkDomains links to accountID the people with emails at domains (or at
// names under them), skipping free-mail domains.
func (s *Service) linkDomains(ctx context.Context, tn store.Tenant, accountID string, domains []string) error {
	if len(domains) == 0 {
		return nil
	}
	free, err := s.FreeMail(ctx, tn)
	if err != nil {
		return err
	}
	for _, d := range domains {
		if slices.Contains(free, d) {
			continue
		}
		if err := identity.EmailsAt(ctx, tn, d, func(pid string) error { return s.linkAuto(ctx, tn, pid, accountID) }); err != nil {
			return fmt.Errorf("link the people at %s: %w", d, err)
		}
	}
	return nil
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
				if err := s.linkAuto(ctx, tn, profileID, owner); err != nil {
					return err
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

// CountContacts counts account accountID's links (an index count).
func (s *Service) CountContacts(ctx context.Context, tn store.Tenant, accountID string) (int64, error) {
	n, err := tn.C(AccountLinks).Count(ctx, store.Query{Index: AccountLinksByAccount, Eq: []any{accountID}})
	if err != nil {
		return 0, fmt.Errorf("count contacts of account %s: %w", accountID, err)
	}
	return n, nil
}

// MaxAccountsPerProfile caps what AccountsOf returns.
const MaxAccountsPerProfile = 100

// AccountsOf lists profileID's links, oldest first.
func (s *Service) AccountsOf(ctx context.Context, tn store.Tenant, profileID string) ([]*LinkDoc, error) {
	return linksOf(ctx, tn, profileID)
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
