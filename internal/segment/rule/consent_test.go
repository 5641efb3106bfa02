package rule

import (
	"testing"
	"time"
)

func TestConsentNode(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e := func(id, status string, captured, expires time.Duration) ConsentEntry {
		x := ConsentEntry{ID: id, Status: status, CapturedAt: now.Add(captured), RecordedAt: now.Add(captured)}
		if expires != 0 {
			x.ExpiresAt = now.Add(expires)
		}
		return x
	}
	in := Input{Consent: map[string][]ConsentEntry{
		ConsentKey("marketing", AnyChannel): {e("1", Granted, -time.Hour, 0)},
		ConsentKey("marketing", "EMAIL"):    {e("2", Denied, -time.Minute, 2*time.Hour)},
	}, ConsentDefaults: map[string]bool{"service": true}}
	for _, c := range []struct {
		cond  ConsentCond
		match bool
		next  time.Duration
	}{
		{ConsentCond{Purpose: "marketing"}, true, 0},
		{ConsentCond{Purpose: "marketing", Channel: "SMS"}, true, 0},
		{ConsentCond{Purpose: "marketing", Channel: "EMAIL"}, false, 2 * time.Hour}, // DENIED expires: ANY's GRANTED shows
		{ConsentCond{Purpose: "marketing", Channel: "EMAIL", Status: Denied}, true, 2 * time.Hour},
		{ConsentCond{Purpose: "marketing", Channel: "SMS", Status: Withdrawn}, false, 0},
		{ConsentCond{Purpose: "analytics"}, false, 0},
		{ConsentCond{Purpose: "service", Channel: "PUSH"}, true, 0},
		{ConsentCond{Purpose: "service", Status: Denied}, false, 0},
	} {
		got, next := Evaluate(Rule{Consent: &c.cond}, in, now)
		wantNext := time.Time{}
		if c.next != 0 {
			wantNext = now.Add(c.next)
		}
		if got != c.match || !next.Equal(wantNext) {
			t.Errorf("%+v: got %v next %v, want %v next %v", c.cond, got, next, c.match, wantNext)
		}
	}
	d := DependsOn(Rule{And: []Rule{{Consent: &ConsentCond{Purpose: "marketing"}}, {Trait: &TraitCond{Key: "plan", Op: EQ, Value: "pro"}}}})
	if !d.Affected(Touched{Purposes: []string{"marketing"}}) || d.Affected(Touched{Purposes: []string{"analytics"}}) || !d.Timed {
		t.Fatalf("deps %+v", d)
	}
}

func TestInsertConsentKeepsWhatCanBecomeCurrent(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return now.Add(time.Duration(h) * time.Hour) }
	var list []ConsentEntry
	list = InsertConsent(list, ConsentEntry{ID: "a", Status: Granted, CapturedAt: at(-3)}, now)                   // never expires
	list = InsertConsent(list, ConsentEntry{ID: "b", Status: Denied, CapturedAt: at(-2), ExpiresAt: at(5)}, now)  // current until 5h
	list = InsertConsent(list, ConsentEntry{ID: "c", Status: Granted, CapturedAt: at(-1), ExpiresAt: at(1)}, now) // current until 1h
	list = InsertConsent(list, ConsentEntry{ID: "c", Status: Granted, CapturedAt: at(-1), ExpiresAt: at(1)}, now) // repeat: no-op
	if len(list) != 3 {
		t.Fatalf("%+v", list)
	}
	for _, c := range []struct {
		h    int
		want string
	}{{0, "c"}, {2, "b"}, {6, "a"}} {
		if cur, _ := CurrentConsent(list, at(c.h)); cur.ID != c.want {
			t.Errorf("at +%dh current %s, want %s", c.h, cur.ID, c.want)
		}
	}
	// Older than the current one and expiring sooner than a newer one: it can never be current.
	list = InsertConsent(list, ConsentEntry{ID: "d", Status: Withdrawn, CapturedAt: at(-4), ExpiresAt: at(3)}, now)
	if len(list) != 3 {
		t.Fatalf("d kept: %+v", list)
	}
	// A newer record that never expires makes every older one unreachable.
	list = InsertConsent(list, ConsentEntry{ID: "e", Status: Withdrawn, CapturedAt: now}, now)
	if len(list) != 1 || list[0].ID != "e" {
		t.Fatalf("%+v", list)
	}
	if got := PruneConsent([]ConsentEntry{{ID: "x", ExpiresAt: now}}, now); len(got) != 0 {
		t.Fatalf("expired kept: %+v", got)
	}
}
