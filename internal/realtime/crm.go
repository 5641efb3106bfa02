package realtime

// Changes of the CRM objects, published by their packages with no
// ProfileID: subscribers read the object's current state when the change
// arrives.
const (
	// DealChanged: a deal was created, edited, moved or closed (payload
	// PayloadDealID, PayloadPipeline).
	DealChanged = "crm.deal"
	// TicketChanged: a ticket was opened, edited, commented on or
	// flagged breached (payload PayloadTicketID and the PayloadPrev*
	// fields: what it was before, so a queue learns that a ticket left it).
	TicketChanged = "crm.ticket"
	// AccountUpdated: an account was created or edited, or a person was
	// linked to or unlinked from it (payload PayloadAccountID).
	AccountUpdated = "crm.account"
)

// Payload keys of the CRM changes.
const (
	PayloadDealID       = "dealId"
	PayloadPipeline     = "pipeline"
	PayloadTicketID     = "ticketId"
	PayloadAccountID    = "accountId"
	PayloadPrevStatus   = "prevStatus"
	PayloadPrevPriority = "prevPriority"
	PayloadPrevAssignee = "prevAssignee"
	PayloadPrevBreached = "prevBreached"
	PayloadPrevAccount  = "prevAccountId"
)

// Bool returns the payload value at key as a bool (false when absent).
func (c Change) Bool(key string) bool {
	b, _ := c.Payload[key].(bool)
	return b
}

// KindWith returns a hub filter for changes of kind whose payload key holds
// value ("" value: every change of kind).
func KindWith(kind, key, value string) func(Change) bool {
	return func(c Change) bool { return c.Kind == kind && (value == "" || c.String(key) == value) }
}
