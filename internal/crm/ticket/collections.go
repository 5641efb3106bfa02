// Package ticket holds CRM service tickets: a person's request with a
// priority, a status that moves through NEW, OPEN, PENDING, RESOLVED and
// CLOSED, comments (public or internal), and service-level targets per
// priority whose breaches the sweeper flags as time passes.
package ticket

import "github.com/halo-cdp/halo/store"

// The collections package ticket owns (internal/app/ownership_test.go
// checks that only this package reads or writes them).
const (
	Tickets           = "tickets"
	TicketsByStatus   = "by_status"   // (status, createdAt): a queue, oldest first
	TicketsByAssignee = "by_assignee" // (assignee, status, createdAt)
	TicketsByPriority = "by_priority" // (priority, status, createdAt)
	TicketsByBreached = "by_breached" // (breached, status, createdAt)
	TicketsByCreated  = "by_created"  // (createdAt)
	// Without a status: each queue oldest first.
	TicketsByAssigneeAge = "by_assignee_age" // (assignee, createdAt)
	TicketsByPriorityAge = "by_priority_age" // (priority, createdAt)
	TicketsByBreachedAge = "by_breached_age" // (breached, createdAt)
	TicketsByCheck       = "by_check"        // (checkAt): the sweeper's, the next deadline not yet met nor breached
	TicketsByProfile     = "by_profile"      // (profileId)
	TicketsByAccount     = "by_account"      // (accountId, createdAt)
	// An account's open and breached tickets, counted (account rule
	// nodes, for every contact re-decided).
	TicketsByAccountStatus   = "by_account_status"   // (accountId, status)
	TicketsByAccountBreached = "by_account_breached" // (accountId, breached, status)

	TicketComments    = "ticket_comments"
	CommentsByTicket  = "by_ticket"         // (ticketId, createdAt)
	CommentsPublic    = "by_ticket_public"  // (ticketId, internal, createdAt)
	CommentsByProfile = "by_author_profile" // (authorProfileId): what a person wrote

	// TicketWorkspaces lists, in the system workspace, the workspaces
	// that have tickets: the sweeper of every instance visits them.
	TicketWorkspaces    = "ticket_workspaces"
	TicketWorkspacesAll = "by_ws" // (ws)
)

// Collections declares them and their indexes.
var Collections = []store.CollectionSpec{
	{Name: Tickets, Indexes: []store.Index{
		{Name: TicketsByStatus, Fields: []string{"status", "createdAt"}},
		{Name: TicketsByAssignee, Fields: []string{"assignee", "status", "createdAt"}},
		{Name: TicketsByPriority, Fields: []string{"priority", "status", "createdAt"}},
		{Name: TicketsByBreached, Fields: []string{"breached", "status", "createdAt"}},
		{Name: TicketsByCreated, Fields: []string{"createdAt"}},
		{Name: TicketsByAssigneeAge, Fields: []string{"assignee", "createdAt"}},
		{Name: TicketsByPriorityAge, Fields: []string{"priority", "createdAt"}},
		{Name: TicketsByBreachedAge, Fields: []string{"breached", "createdAt"}},
		{Name: TicketsByCheck, Fields: []string{"checkAt"}},
		{Name: TicketsByProfile, Fields: []string{"profileId", "createdAt"}},
		{Name: TicketsByAccount, Fields: []string{"accountId", "createdAt"}},
		{Name: TicketsByAccountStatus, Fields: []string{"accountId", "status"}},
		{Name: TicketsByAccountBreached, Fields: []string{"accountId", "breached", "status"}},
	}},
	{Name: TicketComments, Indexes: []store.Index{
		{Name: CommentsByTicket, Fields: []string{"ticketId", "createdAt"}},
		{Name: CommentsPublic, Fields: []string{"ticketId", "internal", "createdAt"}},
		{Name: CommentsByProfile, Fields: []string{"authorProfileId"}},
	}},
	{Name: TicketWorkspaces, Indexes: []store.Index{
		{Name: TicketWorkspacesAll, Fields: []string{"ws"}},
	}},
}
