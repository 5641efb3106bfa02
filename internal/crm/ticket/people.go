package ticket

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// ticketsOf reads the tickets of profileID.
func ticketsOf(ctx context.Context, tn store.Tenant, profileID string) ([]Ticket, error) {
	docs, err := tn.C(Tickets).Find(ctx, store.Query{Index: TicketsByProfile, Eq: []any{profileID}})
	if err != nil {
		return nil, fmt.Errorf("tickets of %s: %w", profileID, err)
	}
	out := make([]Ticket, len(docs))
	for i, d := range docs {
		if err := d.Decode(&out[i]); err != nil {
			return nil, fmt.Errorf("decode ticket: %w", err)
		}
	}
	return out, nil
}

// rewrite applies fn to ticket t and writes it (store.Rewrite); fn
// returning false leaves it.
func rewrite(ctx context.Context, tn store.Tenant, t Ticket, fn func(*Ticket) bool) error {
	return store.Rewrite(ctx, tn.C(Tickets), t.ID, &t, func(t *Ticket) *int64 { return &t.Version }, fn)
}

// MoveProfile re-links sourceID's tickets and the comments they wrote to
// targetID (a merge). An unmerge leaves them on the survivor.
func MoveProfile(ctx context.Context, tn store.Tenant, sourceID, targetID string) error {
	err := store.RewriteAll(ctx, tn.C(Tickets), store.Query{Index: TicketsByProfile, Eq: []any{sourceID}},
		func(t *Ticket) string { return t.ID }, func(t *Ticket) *int64 { return &t.Version }, func(t *Ticket) bool {
			if t.ProfileID != sourceID {
				return false
			}
			t.ProfileID = targetID
			return true
		})
	if err != nil {
		return err
	}
	// By compare-and-swap, never an upsert: a comment an erasure deleted
	// meanwhile stays deleted, one another move changed stays as it is.
	return store.RewriteAll(ctx, tn.C(TicketComments), store.Query{Index: CommentsByProfile, Eq: []any{sourceID}},
		func(c *Comment) string { return c.ID }, func(c *Comment) *int64 { return &c.Version }, func(c *Comment) bool {
			if c.AuthorProfileID != sourceID {
				return false
			}
			c.AuthorProfileID = targetID
			return true
		})
}

// RestoreProfile gives restoredID back the tickets it opened (or a
// profile merged into it before, origins) that a merge brought to
// holderID, with the comments it wrote on them (an unmerge).
func RestoreProfile(ctx context.Context, tn store.Tenant, holderID, restoredID string, origins []string) error {
	ts, err := ticketsOf(ctx, tn, holderID)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if !slices.Contains(origins, t.OriginProfileID) {
			continue
		}
		if err := rewrite(ctx, tn, t, func(t *Ticket) bool {
			if t.ProfileID != holderID {
				return false
			}
			t.ProfileID = restoredID
			return true
		}); err != nil {
			return err
		}
		docs, err := tn.C(TicketComments).Find(ctx, store.Query{Index: CommentsByTicket, Eq: []any{t.ID}})
		if err != nil {
			return fmt.Errorf("comments of ticket %s: %w", t.ID, err)
		}
		for _, d := range docs {
			var c Comment
			if err := d.Decode(&c); err != nil {
				return fmt.Errorf("decode ticket comment: %w", err)
			}
			if c.AuthorProfileID == holderID {
				if err := reauthor(ctx, tn, c, restoredID); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// reauthor writes c as written by profileID instead of its author as
// read, by compare-and-swap: a comment an erasure deleted meanwhile stays
// deleted, one another move changed stays as it is.
func reauthor(ctx context.Context, tn store.Tenant, c Comment, profileID string) error {
	from := c.AuthorProfileID
	return store.Rewrite(ctx, tn.C(TicketComments), c.ID, &c, func(c *Comment) *int64 { return &c.Version }, func(c *Comment) bool {
		if c.AuthorProfileID != from {
			return false // moved by another merge or unmerge meanwhile
		}
		c.AuthorProfileID = profileID
		return true
	})
}

// EraseProfile removes profileID from its tickets (an erasure): every
// comment on them and every comment the person wrote is deleted, and
// each ticket keeps only what service reports count (priority, channel,
// status, times, breaches), its subject replaced by ErasedSubject and its
// body emptied.
func EraseProfile(ctx context.Context, tn store.Tenant, profileID string) error {
	ts, err := ticketsOf(ctx, tn, profileID)
	if err != nil {
		return err
	}
	for _, t := range ts {
		// Agents' answers quote the person: they go with the ticket's
		// text.
		if _, err := tn.C(TicketComments).DeleteMany(ctx, store.Query{Index: CommentsByTicket, Eq: []any{t.ID}}); err != nil {
			return fmt.Errorf("erase comments of ticket %s: %w", t.ID, err)
		}
		if err := rewrite(ctx, tn, t, func(t *Ticket) bool {
			if t.ProfileID != profileID {
				return false
			}
			t.ProfileID, t.OriginProfileID, t.Subject, t.Body = "", "", ErasedSubject, ""
			for i := range t.History {
				t.History[i].By = ""
			}
			return true
		}); err != nil {
			return err
		}
	}
	if _, err := tn.C(TicketComments).DeleteMany(ctx, store.Query{Index: CommentsByProfile, Eq: []any{profileID}}); err != nil {
		return fmt.Errorf("erase comments of %s: %w", profileID, err)
	}
	return nil
}

// Exported is a ticket as a person's data export shows it, with its
// public comments.
type Exported struct {
	TicketID  string            `json:"ticketId"`
	Subject   string            `json:"subject"`
	Body      string            `json:"body,omitempty"`
	Status    string            `json:"status"`
	Priority  string            `json:"priority"`
	Channel   string            `json:"channel"`
	CreatedAt string            `json:"createdAt"`
	Comments  []ExportedComment `json:"comments"`
}

// ExportedComment is a public comment in an export.
type ExportedComment struct {
	Body      string `json:"body"`
	ByYou     bool   `json:"byYou"`
	CreatedAt string `json:"createdAt"`
}

// ExportProfile lists the tickets of any of profileIDs (a person and the
// profiles merged into them) with their public comments: internal notes
// are the company's.
func ExportProfile(ctx context.Context, tn store.Tenant, profileIDs ...string) ([]Exported, error) {
	out := []Exported{}
	for _, id := range profileIDs {
		ts, err := ticketsOf(ctx, tn, id)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			e := Exported{TicketID: t.ID, Subject: t.Subject, Body: t.Body, Status: t.Status, Priority: t.Priority, Channel: t.Channel,
				CreatedAt: t.CreatedAt.Format(time.RFC3339), Comments: []ExportedComment{}}
			docs, err := tn.C(TicketComments).Find(ctx, store.Query{Index: CommentsByTicket, Eq: []any{t.ID}})
			if err != nil {
				return nil, fmt.Errorf("comments of ticket %s: %w", t.ID, err)
			}
			for _, d := range docs {
				var c Comment
				if err := d.Decode(&c); err != nil {
					return nil, fmt.Errorf("decode ticket comment: %w", err)
				}
				if !c.Internal {
					e.Comments = append(e.Comments, ExportedComment{Body: c.Body, ByYou: c.AuthorProfileID != "", CreatedAt: c.CreatedAt.Format(time.RFC3339)})
				}
			}
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Exported) int { return strings.Compare(a.TicketID, b.TicketID) })
	return out, nil
}

// MoveAccount re-links sourceID's tickets to targetID (a merge of
// accounts).
func MoveAccount(ctx context.Context, tn store.Tenant, sourceID, targetID string) error {
	return store.RewriteAll(ctx, tn.C(Tickets), store.Query{Index: TicketsByAccount, Eq: []any{sourceID}},
		func(t *Ticket) string { return t.ID }, func(t *Ticket) *int64 { return &t.Version }, func(t *Ticket) bool {
			if t.AccountID != sourceID {
				return false
			}
			t.AccountID = targetID
			return true
		})
}

// Facts lists what segment rules read of profileID's tickets.
func Facts(ctx context.Context, tn store.Tenant, profileID string) ([]rule.TicketFact, error) {
	ts, err := ticketsOf(ctx, tn, profileID)
	if err != nil {
		return nil, err
	}
	out := make([]rule.TicketFact, len(ts))
	for i, t := range ts {
		out[i] = rule.TicketFact{Status: t.Status, Priority: t.Priority, Breached: t.Breached}
	}
	return out, nil
}

// AllFacts lists what segment rules read of every ticket of the
// workspace, by person (one pass: a preview, an ad-hoc list).
func AllFacts(ctx context.Context, tn store.Tenant) (map[string][]rule.TicketFact, error) {
	out := map[string][]rule.TicketFact{}
	err := tn.C(Tickets).Each(ctx, store.Query{Index: TicketsByCreated}, func(raw bson.Raw) error {
		var t Ticket
		if err := bson.Unmarshal(raw, &t); err != nil {
			return fmt.Errorf("decode ticket: %w", err)
		}
		if t.ProfileID != "" {
			out[t.ProfileID] = append(out[t.ProfileID], rule.TicketFact{Status: t.Status, Priority: t.Priority, Breached: t.Breached})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read tickets: %w", err)
	}
	return out, nil
}

// AccountCounts are an account's open tickets and how many of them are
// breached, as account rule nodes read them.
type AccountCounts struct{ Open, Breached int64 }

func (c *AccountCounts) add(t *Ticket) {
	if t.Status == StatusResolved || t.Status == StatusClosed {
		return
	}
	c.Open++
	if t.Breached {
		c.Breached++
	}
}

// accountCount is what t adds to its account's counts.
func accountCount(t *Ticket) AccountCounts {
	var c AccountCounts
	c.add(t)
	return c
}

// CountsOf counts account accountID's open and breached tickets: two
// index counts.
func CountsOf(ctx context.Context, tn store.Tenant, accountID string) (AccountCounts, error) {
	var c AccountCounts
	open := []any{StatusNew, StatusOpen, StatusPending}
	var err error
	if c.Open, err = tn.C(Tickets).Count(ctx, store.Query{Index: TicketsByAccountStatus, Eq: []any{accountID}, In: open}); err != nil {
		return c, fmt.Errorf("count the tickets of account %s: %w", accountID, err)
	}
	if c.Breached, err = tn.C(Tickets).Count(ctx, store.Query{Index: TicketsByAccountBreached, Eq: []any{accountID, true}, In: open}); err != nil {
		return c, fmt.Errorf("count the tickets of account %s: %w", accountID, err)
	}
	return c, nil
}

// CountsByAccount counts every account's open and breached tickets (one
// pass: a preview, an ad-hoc list).
func CountsByAccount(ctx context.Context, tn store.Tenant) (map[string]AccountCounts, error) {
	out := map[string]AccountCounts{}
	err := tn.C(Tickets).Each(ctx, store.Query{Index: TicketsByCreated, Limit: 1000}, func(raw bson.Raw) error {
		var t Ticket
		if err := bson.Unmarshal(raw, &t); err != nil {
			return fmt.Errorf("decode ticket: %w", err)
		}
		if t.AccountID != "" {
			c := out[t.AccountID]
			c.add(&t)
			out[t.AccountID] = c
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count tickets by account: %w", err)
	}
	return out, nil
}
