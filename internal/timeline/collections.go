package timeline

import "github.com/halo-cdp/halo/store"

// The collections package timeline owns: the timeline items (events and
// interactions). Only this package reads or writes them
// (internal/app/ownership_test.go checks it); the others call its
// functions.
const (
	Events              = "events"
	EventsByMessage     = "by_message"      // unique (messageId)
	EventsByProfileTime = "by_profile_time" // (profileId, occurredAt)
)

// Collections declares them and their indexes; the store creates them
// idempotently at start (internal/app.Collections gathers every domain's).
var Collections = []store.CollectionSpec{
	{Name: Events, Indexes: []store.Index{
		{Name: EventsByMessage, Fields: []string{"messageId"}, Unique: true},
		{Name: EventsByProfileTime, Fields: []string{"profileId", "occurredAt"}},
	}},
}
