package main

// Hostile messageIds (issue 14, item 6). A messageId is unique per
// workspace: the idempotency key of one timeline item. A call that reuses
// another person's messageId must be refused (CONFLICT, naming no profile)
// and store nothing — not be answered as a duplicate with that person's
// profile and item, and not be silently swallowed. A genuine retry (same
// item, same person, also after a merge moved the item) still answers
// duplicate: true.

import (
	"strings"
	"testing"
	"time"
)

const (
	msgTrackQ = `mutation($in: TrackInput!) { track(input: $in) { duplicate profile { id } event { id } } }`
	msgBatchQ = `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { accepted duplicates results { profileId eventId duplicate } } }`
	msgLogQ   = `mutation($in: LogInteractionInput!) { logInteraction(input: $in) { id } }`
)

func msgTrackInput(messageID string, identifiers []map[string]any, traits map[string]any) map[string]any {
	in := map[string]any{"messageId": messageID, "identifiers": identifiers, "name": "order_completed",
		"occurredAt": time.Now().Add(-time.Minute).Format(time.RFC3339Nano), "properties": map[string]any{"revenue": 9}}
	if traits != nil {
		in["traits"] = traits
	}
	return in
}

// refusedMessageID asserts r is the CONFLICT for messageID on field, with
// no data and none of the owner's ids anywhere in the response.
func refusedMessageID(t *testing.T, r gqlResponse, messageID, field string, foreign ...string) {
	t.Helper()
	if len(r.Errors) != 1 {
		t.Fatalf("want exactly one error, got %s", r.Body)
	}
	e := r.Errors[0]
	if want := field + `: messageId "` + messageID + `" is already used by another item in this workspace`; e.Message != want {
		t.Errorf("message = %q, want %q", e.Message, want)
	}
	if f, _ := e.Extensions["field"].(string); f != field {
		t.Errorf("extensions.field = %q, want %q", f, field)
	}
	for _, id := range foreign {
		if strings.Contains(string(r.Body), id) {
			t.Errorf("the response reveals %s: %s", id, r.Body)
		}
	}
	if s := string(r.Data); s != "" && s != "null" {
		t.Errorf("data returned with the refusal: %s", r.Body)
	}
}

func TestSecurityMessageID(t *testing.T) {
	w := seedSecurity(t)
	s := w.s
	admin := s.token(t, "acme")
	ingest := s.token(t, "acme", "events:write")

	// B: a person with a tracked event (m1-B) and a logged interaction
	// (call-B). A2: another person of the same workspace.
	bEmail, a2Email := "bea@acme.test", "al@acme.test"
	bID, dup := track(t, s, admin, "m1-B", ids("email", bEmail, "anonymousId", "anon-bea"), "order_completed", time.Now().Add(-time.Hour))
	if dup {
		t.Fatal("seed event m1-B already stored")
	}
	var bItems struct {
		Track struct{ Event struct{ ID string } }
	}
	r := s.gql(t, admin, msgTrackQ, map[string]any{"in": msgTrackInput("m1-B", ids("email", bEmail), nil)})
	r.requireOK(t)
	r.decode(t, &bItems)
	bEvent := bItems.Track.Event.ID
	var bLog struct{ LogInteraction struct{ ID string } }
	r = s.gql(t, admin, msgLogQ, map[string]any{"in": map[string]any{"profileId": bID, "kind": "CALL", "subject": "renewal", "messageId": "call-B"}})
	r.requireOK(t)
	r.decode(t, &bLog)
	bCall := bLog.LogInteraction.ID
	a2 := identifyID(t, s, admin, a2Email)
	foreign := []string{bID, bEvent, bCall}

	t.Run("logInteraction on A2 with B's event messageId", func(t *testing.T) {
		r := w.hostile(t, ingest, msgLogQ, map[string]any{"in": map[string]any{"profileId": a2, "kind": "NOTE", "subject": "hello", "messageId": "m1-B"}}, "CONFLICT")
		refusedMessageID(t, r, "m1-B", "input.messageId", foreign...)
	})
	t.Run("logInteraction on A2 with B's interaction messageId", func(t *testing.T) {
		r := w.hostile(t, ingest, msgLogQ, map[string]any{"in": map[string]any{"profileId": a2, "kind": "CALL", "subject": "renewal", "messageId": "call-B"}}, "CONFLICT")
		refusedMessageID(t, r, "call-B", "input.messageId", foreign...)
	})
	t.Run("logInteraction on B with B's event messageId", func(t *testing.T) {
		// Same person, but another item: an interaction is not a replay
		// of a tracked event.
		r := w.hostile(t, ingest, msgLogQ, map[string]any{"in": map[string]any{"profileId": bID, "kind": "NOTE", "messageId": "m1-B"}}, "CONFLICT")
		refusedMessageID(t, r, "m1-B", "input.messageId", bEvent)
	})

	for _, c := range []struct {
		name        string
		identifiers []map[string]any
	}{
		{"new identifiers", ids("email", "mallory@evil.test", "anonymousId", "anon-mallory")},
		{"another person's identifiers", ids("email", a2Email)},
		{"another person's and new identifiers", ids("email", a2Email, "anonymousId", "anon-new")},
	} {
		t.Run("track with B's messageId and "+c.name, func(t *testing.T) {
			before := takeStoreDigest(t, w.st, "acme")
			r := w.hostile(t, ingest, msgTrackQ, map[string]any{"in": msgTrackInput("m1-B", c.identifiers, map[string]any{"owned": true})}, "CONFLICT")
			refusedMessageID(t, r, "m1-B", "input.messageId", foreign...)
			requireStoreDigest(t, w.st, "acme", before)
		})
	}

	t.Run("trackBatch with one event carrying B's messageId", func(t *testing.T) {
		before := takeStoreDigest(t, w.st, "acme")
		batch := []any{
			msgTrackInput("batch-new-1", ids("email", "mallory@evil.test"), nil),
			msgTrackInput("batch-new-2", ids("email", a2Email), nil),
			msgTrackInput("m1-B", ids("email", "mallory@evil.test"), map[string]any{"owned": true}),
		}
		r := w.hostile(t, ingest, msgBatchQ, map[string]any{"in": batch}, "CONFLICT")
		refusedMessageID(t, r, "m1-B", "inputs[2].messageId", foreign...)
		requireStoreDigest(t, w.st, "acme", before)
	})

	t.Run("trackBatch repeating a new messageId for another person", func(t *testing.T) {
		before := takeStoreDigest(t, w.st, "acme")
		batch := []any{
			msgTrackInput("batch-twice", ids("email", a2Email), nil),
			msgTrackInput("batch-twice", ids("email", "mallory@evil.test"), nil),
		}
		r := w.hostile(t, ingest, msgBatchQ, map[string]any{"in": batch}, "CONFLICT")
		refusedMessageID(t, r, "batch-twice", "inputs[1].messageId", foreign...)
		requireStoreDigest(t, w.st, "acme", before)
	})

	// Genuine retries.
	t.Run("track retry by the same person", func(t *testing.T) {
		for _, idents := range [][]map[string]any{
			ids("email", bEmail, "anonymousId", "anon-bea"),         // the same identifiers
			ids("anonymousId", "anon-bea"),                          // one of them
			ids("anonymousId", "anon-bea", "deviceId", "dev-bea-2"), // one of them and a new one
		} {
			before := takeStoreDigest(t, w.st, "acme")
			r := s.gql(t, ingest, msgTrackQ, map[string]any{"in": msgTrackInput("m1-B", idents, nil)})
			r.requireOK(t)
			var out struct {
				Track struct {
					Duplicate bool
					Profile   struct{ ID string }
					Event     struct{ ID string }
				}
			}
			r.decode(t, &out)
			if !out.Track.Duplicate || out.Track.Profile.ID != bID || out.Track.Event.ID != bEvent {
				t.Fatalf("retry with %v: %s, want duplicate on %s / %s", idents, r.Body, bID, bEvent)
			}
			requireStoreDigest(t, w.st, "acme", before)
		}
	})
	t.Run("logInteraction retry on the same profile", func(t *testing.T) {
		r := s.gql(t, ingest, msgLogQ, map[string]any{"in": map[string]any{"profileId": bID, "kind": "CALL", "subject": "again", "messageId": "call-B"}})
		r.requireOK(t)
		var out struct{ LogInteraction struct{ ID string } }
		r.decode(t, &out)
		if out.LogInteraction.ID != bCall {
			t.Fatalf("retry returned %s, want %s", r.Body, bCall)
		}
	})

	t.Run("retries after a merge moved the items", func(t *testing.T) {
		// Older survives: O is created first, then N tracks and logs, then
		// N is merged into O, which now holds N's items.
		old := identifyID(t, s, admin, "olga@acme.test")
		nID, _ := track(t, s, admin, "m-N", ids("email", "nina@acme.test"), "page_viewed", time.Now().Add(-time.Hour))
		var nLog struct{ LogInteraction struct{ ID string } }
		r := s.gql(t, admin, msgLogQ, map[string]any{"in": map[string]any{"profileId": nID, "kind": "NOTE", "messageId": "note-N"}})
		r.requireOK(t)
		r.decode(t, &nLog)
		mergeRecord(t, s, admin, nID, old)

		before := takeStoreDigest(t, w.st, "acme")
		pid, dup := track(t, s, ingest, "m-N", ids("email", "nina@acme.test"), "page_viewed", time.Now().Add(-time.Hour))
		if !dup || pid != old {
			t.Fatalf("track retry after merge: profile %s duplicate %v, want %s true", pid, dup, old)
		}
		for _, p := range []string{nID, old} { // the merged-away id resolves to the survivor
			r := s.gql(t, ingest, msgLogQ, map[string]any{"in": map[string]any{"profileId": p, "kind": "NOTE", "messageId": "note-N"}})
			r.requireOK(t)
			var out struct{ LogInteraction struct{ ID string } }
			r.decode(t, &out)
			if out.LogInteraction.ID != nLog.LogInteraction.ID {
				t.Fatalf("logInteraction retry on %s after merge: %s, want %s", p, r.Body, nLog.LogInteraction.ID)
			}
		}
		requireStoreDigest(t, w.st, "acme", before)

		// The survivor's other person still may not replay it.
		r = w.hostile(t, ingest, msgTrackQ, map[string]any{"in": msgTrackInput("m-N", ids("email", bEmail), nil)}, "CONFLICT")
		refusedMessageID(t, r, "m-N", "input.messageId", old, nID)
	})
}
