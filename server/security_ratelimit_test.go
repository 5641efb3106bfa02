package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/platform/auth"
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

// A request the workspace limit refuses costs its subject nothing (issue
// 15.1a): with the workspace drained by others, ana's refused requests must
// leave her own bucket full, so the moment the workspace has tokens again
// she gets her whole burst, before her own bucket could have refilled.
func TestSecurityRateLimiterWorkspaceRefusalKeepsSubjectToken(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	// Subject: 1/s, burst 2. Workspace: 10/s, burst 20.
	l := newRateLimiter(1, 10, func() time.Time { return now })
	for i := range 10 { // 10 others × 2 drain the workspace
		p := auth.Principal{Workspace: "acme", Subject: fmt.Sprintf("other%d", i)}
		for range 2 {
			if ok, _ := l.allow(p); !ok {
				t.Fatalf("%s refused within the bursts", p.Subject)
			}
		}
	}
	ana := auth.Principal{Workspace: "acme", Subject: "ana"}
	for i := range 3 {
		if ok, _ := l.allow(ana); ok {
			t.Fatalf("ana's request %d passed a drained workspace", i)
		}
	}
	// 0.25 s: the workspace has 2.5 tokens again; ana's bucket, had the
	// refusals spent it, would hold 0.25.
	now = now.Add(250 * time.Millisecond)
	for i := range 2 {
		if ok, retry := l.allow(ana); !ok {
			t.Fatalf("ana's request %d refused (retry %v) after the workspace refilled: the workspace's refusals spent her own tokens", i, retry)
		}
	}
	if ok, _ := l.allow(ana); ok {
		t.Fatal("ana passed beyond her burst")
	}
}

// The subject bucket is per workspace and subject (issue 15.1b): the same
// subject in another workspace (subjects are unique only per issuer; tokens
// without sub share "") and a workspace/subject pair that concatenates to
// the same string have their own buckets.
func TestSecurityRateLimiterSubjectKeyedByWorkspace(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newRateLimiter(1, 0, func() time.Time { return now }) // burst 2, no workspace limit
	pairs := [][2]auth.Principal{
		{{Workspace: "acme", Subject: "ana"}, {Workspace: "globex", Subject: "ana"}},
		{{Workspace: "acme", Subject: ""}, {Workspace: "globex", Subject: ""}},
		{{Workspace: "ab", Subject: "c"}, {Workspace: "a", Subject: "bc"}},
	}
	for _, pair := range pairs {
		a, b := pair[0], pair[1]
		for range 2 {
			if ok, _ := l.allow(a); !ok {
				t.Fatalf("%q/%q refused within its burst", a.Workspace, a.Subject)
			}
		}
		if ok, _ := l.allow(a); ok {
			t.Fatalf("%q/%q passed beyond its burst", a.Workspace, a.Subject)
		}
		for i := range 2 {
			if ok, _ := l.allow(b); !ok {
				t.Fatalf("%q/%q request %d refused: it shares the bucket of %q/%q", b.Workspace, b.Subject, i, a.Workspace, a.Subject)
			}
		}
	}
	if n := l.subject.size(); n != 6 {
		t.Fatalf("%d subject buckets, want 6", n)
	}
}
