package realtime

// ConsentChanged is published (package consent) after each consent record
// that is stored, with ProfileID set and the payload keys
// PayloadPurpose and PayloadChannel naming the state that changed.
const ConsentChanged = "consent.changed"

// Payload keys of consent.changed.
const (
	PayloadPurpose = "purpose"
	PayloadChannel = "channel"
)
