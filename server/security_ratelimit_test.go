package main

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/auth"
)

// The limiter on a manual clock: burst, refill, the retry hint, a refusal
// by one limit not costing the other, and idle buckets dropped.
func TestSecurityRateLimiterUnit(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newRateLimiter(2, 3, func() time.Time { return now })
	ana := auth.Principal{Workspace: "acme", Subject: "ana"}
	bob := auth.Principal{Workspace: "acme", Subject: "bob"}

	for i := range 4 { // subject burst: 2 × 2/s
		if ok, _ := l.allow(ana); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, retry := l.allow(ana)
	if ok || retry <= 0 || retry > 500*time.Millisecond || retrySeconds(retry) != 1 {
		t.Fatalf("over the subject burst: ok %v retry %v", ok, retry)
	}
	// Workspace burst is 6: ana used 4, bob gets 2, then the workspace
	// refuses him although his own bucket is full.
	for range 2 {
		if ok, _ := l.allow(bob); !ok {
			t.Fatal("bob refused within the workspace burst")
		}
	}
	if ok, _ := l.allow(bob); ok {
		t.Fatal("workspace limit not applied")
	}
	// Both refill with time.
	now = now.Add(2 * time.Second)
	for i := range 4 {
		if ok, _ := l.allow(bob); !ok {
			t.Fatalf("bob request %d after refill refused", i)
		}
	}
	if l.subject.size() != 2 || l.workspace.size() != 1 {
		t.Fatalf("buckets %d/%d", l.subject.size(), l.workspace.size())
	}
	// Idle long enough to be full again: dropped at the next sweep.
	now = now.Add(sweepEvery + time.Second)
	l.allow(auth.Principal{Workspace: "globex", Subject: "x"})
	if l.subject.size() != 1 || l.workspace.size() != 1 {
		t.Fatalf("after sweep: buckets %d/%d", l.subject.size(), l.workspace.size())
	}
	// Off.
	off := newRateLimiter(0, 0, time.Now)
	for range 1000 {
		if ok, _ := off.allow(ana); !ok {
			t.Fatal("limit 0 refused a request")
		}
	}
}
