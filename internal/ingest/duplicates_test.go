package ingest_test

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/timeline"
)

// A messageId is stored once: repeated in a later call or within one
// batch, it is reported as a duplicate of the stored event and not
// counted again.
func TestDuplicateMessageIDStoredOnce(t *testing.T) {
	e := apptest.New(t, start)
	who := ingest.Caller{Subject: "t"}
	user := []identity.Identifier{{Type: identity.UserID, Value: "u9"}}
	at := start.Add(-time.Minute)
	in := func(msg string) ingest.TrackInput {
		return ingest.TrackInput{TrackInput: timeline.TrackInput{MessageID: msg, Identifiers: user, Name: "click", OccurredAt: &at}}
	}
	track := func(field string, msgs ...string) []timeline.TrackResult {
		t.Helper()
		var batch []ingest.TrackInput
		for _, m := range msgs {
			batch = append(batch, in(m))
		}
		res, err := e.Services.Ingest.Track(e.Ctx, e.Tenant, who, field, batch)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := track("input", "same")[0]
	if first.Duplicate {
		t.Fatal("first track reported duplicate")
	}
	if again := track("input", "same")[0]; !again.Duplicate || again.Profile.ID != first.Profile.ID {
		t.Fatalf("second track: duplicate=%v profile=%s", again.Duplicate, again.Profile.ID)
	}
	// In a batch, with a repeat inside the batch too.
	accepted, duplicates := 0, 0
	for _, r := range track("inputs", "same", "b1", "b1", "b2") {
		if r.Duplicate {
			duplicates++
		} else {
			accepted++
		}
	}
	if accepted != 2 || duplicates != 2 {
		t.Fatalf("batch: %d accepted, %d duplicates; want 2 and 2", accepted, duplicates)
	}
	if p := e.Profile(t, first.Profile.ID); p.EventCount != 3 {
		t.Fatalf("eventCount = %d, want 3", p.EventCount)
	}
}
