package realtime

import (
	"fmt"
	"testing"
	"time"

	"github.com/halo-cdp/halo/store"
)

// One Publish is one outbox document, whatever its number of changes:
// another instance receives them all, in order, and a resume from a
// change inside a batch replays only those after it.
func TestPublishWritesOneDocumentPerCall(t *testing.T) {
	st := openStore(t)
	h1 := newHub(t, st, Options{})
	h2 := newHub(t, st, Options{})
	tn := st.Tenant("ws1")
	ch, cancel := h2.Subscribe("ws1", nil, "")
	defer cancel()

	cs := make([]Change, 50)
	for i := range cs {
		cs[i] = Change{Kind: TimelineAppended, ProfileID: fmt.Sprintf("p%02d", i)}
	}
	if err := h1.Publish(t.Context(), tn, cs...); err != nil {
		t.Fatal(err)
	}
	if n := outboxDocs(t, tn); n != 1 {
		t.Fatalf("%d outbox documents, want 1", n)
	}
	var ids []string
	for i := range cs {
		c := recv(t, ch, 2*time.Second)
		if want := fmt.Sprintf("p%02d", i); c.ProfileID != want {
			t.Fatalf("change %d is %s, want %s", i, c.ProfileID, want)
		}
		if len(ids) > 0 && c.ID <= ids[len(ids)-1] {
			t.Fatalf("ids out of order: %s after %s", c.ID, ids[len(ids)-1])
		}
		ids = append(ids, c.ID)
	}
	quiet(t, ch, 700*time.Millisecond) // past a sweep: nothing comes twice

	resumed, cancelResume := h2.Subscribe("ws1", nil, ids[39])
	defer cancelResume()
	for i := 40; i < 50; i++ {
		if c := recv(t, resumed, 2*time.Second); c.ID != ids[i] {
			t.Fatalf("resumed with %s, want %s (change %d)", c.ID, ids[i], i)
		}
	}
	quiet(t, resumed, 300*time.Millisecond)
}

// Erasure removes the changes naming the erased profiles from the
// batches that hold them and keeps the others'; a batch left empty is
// deleted, as is a document written before batches.
func TestEraseInsideBatches(t *testing.T) {
	st := openStore(t)
	h := newHub(t, st, Options{PruneEvery: -1})
	tn := st.Tenant("ws1")
	if err := h.Publish(t.Context(), tn,
		Change{Kind: ProfileUpdated, ProfileID: "gone"},
		Change{Kind: ProfileUpdated, ProfileID: "stays"},
		Change{Kind: ProfileUpdated, ProfileID: "other", Payload: map[string]any{PayloadMergedFrom: []string{"gone"}}},
	); err != nil {
		t.Fatal(err)
	}
	if err := h.Publish(t.Context(), tn, Change{Kind: ProfileUpdated, ProfileID: "gone"}); err != nil {
		t.Fatal(err)
	}
	oldChanges(t, tn, 1, time.Minute) // a single-change document, about "old"
	n, err := EraseProfiles(t.Context(), tn, []string{"gone", "old"})
	if err != nil || n != 4 {
		t.Fatalf("erased %d changes (%v), want 4", n, err)
	}
	docs, err := tn.C(Changes).Find(t.Context(), store.Query{Index: ChangesBySeq})
	if err != nil || len(docs) != 1 {
		t.Fatalf("%d outbox documents left (%v), want the first batch", len(docs), err)
	}
	b, err := decodeBatch(docs[0].Raw)
	if err != nil || len(b.Changes) != 1 || b.Changes[0].ProfileID != "stays" {
		t.Fatalf("left %+v (%v), want only the change of stays", b.Changes, err)
	}
}

// A Publish of more than maxBatch changes makes several documents, in
// one store call, delivered in order.
func TestPublishSplitsLargeBatches(t *testing.T) {
	st := openStore(t)
	h1 := newHub(t, st, Options{})
	h2 := newHub(t, st, Options{Buffer: 3 * maxBatch})
	tn := st.Tenant("ws1")
	ch, cancel := h2.Subscribe("ws1", nil, "")
	defer cancel()
	cs := make([]Change, 2*maxBatch+1)
	for i := range cs {
		cs[i] = Change{Kind: MembershipChanged, ProfileID: fmt.Sprintf("p%05d", i)}
	}
	if err := h1.Publish(t.Context(), tn, cs...); err != nil {
		t.Fatal(err)
	}
	if n := outboxDocs(t, tn); n != 3 {
		t.Fatalf("%d outbox documents, want 3", n)
	}
	for i := range cs {
		if c := recv(t, ch, 2*time.Second); c.ProfileID != fmt.Sprintf("p%05d", i) {
			t.Fatalf("change %d is %s", i, c.ProfileID)
		}
	}
}

// Change ids sort as their batches do, and in order within one: a batch
// minted later sorts after every change of an earlier one, however long
// that one is.
func TestChangeIDsSortAsBatches(t *testing.T) {
	a, b := store.NewID(), store.NewID()
	ids := []string{a, changeID(a, 0), changeID(a, 9), changeID(a, 10), changeID(a, maxBatch-1), b, changeID(b, 0)}
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			t.Fatalf("%s does not sort before %s", ids[i-1], ids[i])
		}
	}
}
