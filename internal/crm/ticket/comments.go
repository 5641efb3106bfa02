package ticket

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

// Comment is a note on a ticket: public (the person sees it) or internal
// (agents only). A comment by the ticket's person names them in
// AuthorProfileID.
type Comment struct {
	ID              string    `bson:"_id"`
	WorkspaceID     string    `bson:"workspaceId"`
	TicketID        string    `bson:"ticketId"`
	Body            string    `bson:"body"`
	Author          string    `bson:"author"`
	AuthorProfileID string    `bson:"authorProfileId"`
	Internal        bool      `bson:"internal"`
	CreatedAt       time.Time `bson:"createdAt"`
	Version         int64     `bson:"version"`
}

// CommentInput is a new comment. ByCustomer marks the ticket's person as
// its author (their reply); otherwise Author is the agent.
type CommentInput struct {
	TicketID   string
	Body       string
	Author     string
	ByCustomer bool
	Internal   bool
}

// AddComment stores a comment and moves the ticket along: an agent's
// first public comment is its first response (and opens a NEW ticket); a
// reply by the person reopens a PENDING or RESOLVED one. A CLOSED ticket
// takes no comments.
func (s *Service) AddComment(ctx context.Context, tn store.Tenant, in CommentInput) (*Comment, *Ticket, error) {
	body, err := text("input.body", in.Body, MaxBodyLen, true)
	if err != nil {
		return nil, nil, err
	}
	agent, err := text("input.author", in.Author, MaxAssigneeLen, false)
	if err != nil {
		return nil, nil, err
	}
	if in.ByCustomer && in.Internal {
		return nil, nil, apperr.Invalid("input.internal", "a comment by the ticket's person is public")
	}
	// The ticket is written first, at the comment's time: an answer in
	// time is on the ticket before any sweep could take it for missed.
	var author string
	if !in.ByCustomer {
		author = agent
	}
	t, err := s.change(ctx, tn, in.TicketID, nil, func(t *Ticket, now time.Time) error {
		if err := commentable(t); err != nil {
			return err
		}
		switch {
		case in.ByCustomer && (t.Status == StatusPending || t.Status == StatusResolved):
			return t.move("input", StatusOpen, now, author)
		case !in.ByCustomer && !in.Internal:
			if t.FirstResponseAt.IsZero() {
				t.FirstResponseAt = now
			}
			t.AnsweredAt = cmp.Or(t.answeredAt(), now)
			if t.Status == StatusNew {
				return t.move("input", StatusOpen, now, author)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, notFound("input.ticketId", err)
	}
	c := &Comment{ID: store.NewID(), TicketID: t.ID, Body: body, Author: author, Internal: in.Internal, CreatedAt: t.UpdatedAt, Version: 1}
	if in.ByCustomer {
		c.AuthorProfileID = t.ProfileID
	}
	if err := tn.C(TicketComments).Insert(ctx, c); err != nil {
		// The ticket moved along (its first response, a reopening); the
		// text is what failed: sending it again adds it.
		return nil, nil, fmt.Errorf("store ticket comment: %w", err)
	}
	// An erasure of the person may have run between the ticket's write
	// and the comment's: a comment on their ticket may quote them.
	if now, err := s.Get(ctx, tn, t.ID); err != nil || now.ProfileID == "" && t.ProfileID != "" {
		if derr := tn.C(TicketComments).Delete(ctx, c.ID); derr != nil && !errors.Is(derr, store.ErrNotFound) {
			return nil, nil, errors.Join(err, fmt.Errorf("take back a comment on an erased ticket: %w", derr))
		}
		if err != nil {
			return nil, nil, err
		}
		return nil, nil, apperr.Invalid("input.ticketId", "ticket %s lost its person (erased) meanwhile", t.ID)
	}
	c.WorkspaceID = tn.Workspace()
	s.tell(ctx, tn, t, "commented", c.ID)
	return c, t, nil
}

func commentable(t *Ticket) error {
	if t.Status == StatusClosed {
		return apperr.Invalid("input.ticketId", "ticket %s is closed: reopen it first", t.ID)
	}
	if t.ProfileID == "" {
		return apperr.Invalid("input.ticketId", "ticket %s has no person (erased): it takes no comments", t.ID)
	}
	return nil
}

// CommentPage is a page of comments.
type CommentPage struct {
	Comments []*Comment
	Cursors  []string
	HasNext  bool
}

// CommentsList names the order Comments reads for internal, for its
// cursors.
func CommentsList(internal bool) string {
	if internal {
		return "ticket-comments"
	}
	return "ticket-comments-public"
}

// Comments pages through ticket id's comments, oldest first; internal
// false leaves the internal ones out.
func (s *Service) Comments(ctx context.Context, tn store.Tenant, id string, internal bool, first int, after string) (CommentPage, error) {
	var out CommentPage
	q := store.Query{Index: CommentsByTicket, Eq: []any{id}, After: after, Limit: first + 1}
	if !internal {
		q.Index, q.Eq = CommentsPublic, []any{id, false}
	}
	docs, err := tn.C(TicketComments).Find(ctx, q)
	if errors.Is(err, store.ErrBadCursor) {
		return out, apperr.Invalid("after", "malformed cursor")
	}
	if err != nil {
		return out, fmt.Errorf("comments of ticket %s: %w", id, err)
	}
	if len(docs) > first {
		docs, out.HasNext = docs[:first], true
	}
	for _, d := range docs {
		var c Comment
		if err := d.Decode(&c); err != nil {
			return out, fmt.Errorf("decode ticket comment: %w", err)
		}
		out.Comments = append(out.Comments, &c)
		out.Cursors = append(out.Cursors, d.Key)
	}
	return out, nil
}
