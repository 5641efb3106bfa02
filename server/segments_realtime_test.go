package main

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app"
)

// E2E tests of segmentMembershipChanged: ENTERED while the order that
// causes it is ingested, EXITED when the manual clock moves past the window
// and the sweeper re-evaluates; over websocket, SSE and across two server
// processes.

const membershipSub = `subscription($s: ID, $p: ID, $after: String) {
  segmentMembershipChanged(segmentId: $s, profileId: $p, after: $after) { id kind at cause segment { id } profile { id } }
}`

type memChange struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	At      time.Time `json:"at"`
	Cause   string    `json:"cause"`
	Segment struct {
		ID string `json:"id"`
	} `json:"segment"`
	Profile *struct {
		ID string `json:"id"`
	} `json:"profile"`
}

func (m memChange) profileID() string {
	if m.Profile == nil {
		return ""
	}
	return m.Profile.ID
}

func decodeMemChange(t testing.TB, data json.RawMessage) memChange {
	t.Helper()
	var out struct {
		SegmentMembershipChanged memChange `json:"segmentMembershipChanged"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return out.SegmentMembershipChanged
}

// memRecv receives the next membership change (false on timeout).
type memRecv func(time.Duration) (memChange, bool)

func wsMemRecv(t testing.TB, c *wsClient, id string) memRecv {
	return func(d time.Duration) (memChange, bool) {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				t.Fatalf("connection closed: %v", <-c.closed)
			}
			if m.ID != id || m.Type != "next" {
				t.Fatalf("unexpected %s %s", m.Type, m.Payload)
			}
			var p struct {
				Data   json.RawMessage
				Errors []gqlError
			}
			_ = json.Unmarshal(m.Payload, &p)
			if len(p.Errors) > 0 {
				t.Fatalf("errors %s", m.Payload)
			}
			return decodeMemChange(t, p.Data), true
		case <-time.After(d):
			return memChange{}, false
		}
	}
}

func sseMemRecv(t testing.TB, ch <-chan json.RawMessage) memRecv {
	return func(d time.Duration) (memChange, bool) {
		select {
		case data, ok := <-ch:
			if !ok {
				t.Fatal("SSE stream ended")
			}
			return decodeMemChange(t, data), true
		case <-time.After(d):
			return memChange{}, false
		}
	}
}

// ordersRule is "≥ n order_completed in the last 7 days".
func ordersRule(n int) map[string]any {
	return map[string]any{"event": map[string]any{
		"name": "order_completed", "count": map[string]any{"op": "GTE", "value": n},
		"window": map[string]any{"last": map[string]any{"amount": 7, "unit": "DAYS"}},
	}}
}

var warmSeq atomic.Int64

// untilSegmentLive sends fresh "warm-up" profiles into the segment (n
// orders each, through writer) until the subscription delivers one's
// ENTERED, drains the rest and returns the last change id received.
func untilSegmentLive(t testing.TB, writer *testServer, tok string, orders int, recv memRecv) string {
	t.Helper()
	last := ""
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		email := fmt.Sprintf("warm-%d@example.com", warmSeq.Add(1))
		for range orders {
			trackEvent(t, writer, tok, email, "order_completed")
		}
		if m, ok := recv(300 * time.Millisecond); ok {
			if m.Kind != "ENTERED" {
				t.Fatalf("warm-up got %+v", m)
			}
			last = m.ID
			for {
				m, ok := recv(200 * time.Millisecond)
				if !ok {
					return last
				}
				last = m.ID
			}
		}
	}
	t.Fatal("subscription never became live")
	return ""
}

// enterThenExit: two orders for ana → ENTERED (cause track) on recv; the
// clock moves 8 days → the sweeper's EXITED (cause time). Other profiles'
// changes (the warm-ups exit too) are skipped when skipOthers.
func enterThenExit(t *testing.T, writer *testServer, clock *app.ManualClock, tok, segID, pid string, recvs ...memRecv) {
	t.Helper()
	start := clock.Now()
	trackEvent(t, writer, tok, "ana@example.com", "order_completed")
	for _, recv := range recvs {
		if m, ok := recv(300 * time.Millisecond); ok {
			t.Fatalf("one order: unexpected %+v", m)
		}
	}
	trackEvent(t, writer, tok, "ana@example.com", "order_completed")
	for i, recv := range recvs {
		m, ok := recv(5 * time.Second)
		if !ok {
			t.Fatalf("subscription %d: no ENTERED", i)
		}
		if m.Kind != "ENTERED" || m.Cause != "track" || m.Segment.ID != segID || m.profileID() != pid || m.ID == "" {
			t.Fatalf("subscription %d: got %+v", i, m)
		}
		if d := m.At.Sub(start); d < -time.Millisecond || d > time.Second {
			t.Fatalf("at %v, clock %v", m.At, start)
		}
	}

	clock.Set(start.Add(8 * 24 * time.Hour))
	for i, recv := range recvs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			m, ok := recv(time.Until(deadline))
			if !ok {
				t.Fatalf("subscription %d: no EXITED for %s", i, pid)
			}
			if m.Kind != "EXITED" || m.Cause != "time" || m.Segment.ID != segID {
				t.Fatalf("subscription %d: got %+v", i, m)
			}
			if m.profileID() == pid {
				break
			}
		}
	}
}

func TestSegmentMembershipWebsocket(t *testing.T) {
	clock := app.NewManualClock(time.Now().UTC())
	s := startServer(t, serverOptions{Clock: clock})
	tok := s.token(t, "acme")
	seg := createSegment(t, s, tok, map[string]any{"name": "repeat buyers", "rule": ordersRule(2)})

	bySeg := connectWS(t, s, tok)
	opSeg := bySeg.subscribe(t, membershipSub, map[string]any{"s": seg.ID})
	recvSeg := wsMemRecv(t, bySeg, opSeg)
	lastWarm := untilSegmentLive(t, s, tok, 2, recvSeg)

	// A profile-only subscription, made gap-free by resuming after the
	// last change seen (the protocol does not acknowledge a subscribe).
	pid := profileOf(t, s, tok, "ana@example.com")
	byProfile := connectWS(t, s, tok)
	opProfile := byProfile.subscribe(t, membershipSub, map[string]any{"p": pid, "after": lastWarm})
	// Both ids: only ana in this segment.
	both := connectWS(t, s, tok)
	opBoth := both.subscribe(t, membershipSub, map[string]any{"s": seg.ID, "p": pid, "after": lastWarm})

	enterThenExit(t, s, clock, tok, seg.ID, pid, recvSeg, wsMemRecv(t, byProfile, opProfile), wsMemRecv(t, both, opBoth))

	// Resume: after the warm-up, the profile's history replays (ENTERED, EXITED).
	again := connectWS(t, s, tok)
	op := again.subscribe(t, membershipSub, map[string]any{"p": pid, "after": lastWarm})
	recv := wsMemRecv(t, again, op)
	for _, kind := range []string{"ENTERED", "EXITED"} {
		if m, ok := recv(5 * time.Second); !ok || m.Kind != kind || m.profileID() != pid {
			t.Fatalf("replay: got %+v %v, want %s", m, ok, kind)
		}
	}
	if m, ok := recv(300 * time.Millisecond); ok {
		t.Fatalf("replay: extra %+v", m)
	}
}

func TestSegmentMembershipBadInput(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	seg := createSegment(t, s, tok, map[string]any{"name": "buyers", "rule": ordersRule(1)})
	other := s.token(t, "globex")
	for _, tc := range []struct {
		name, tok string
		vars      map[string]any
		code      string
	}{
		{"neither id", tok, map[string]any{}, "BAD_USER_INPUT"},
		{"bad after", tok, map[string]any{"s": seg.ID, "after": "nope"}, "BAD_USER_INPUT"},
		{"unknown segment", tok, map[string]any{"s": "no-such-segment"}, "NOT_FOUND"},
		{"unknown profile", tok, map[string]any{"p": "no-such-profile"}, "NOT_FOUND"},
		{"other workspace's segment", other, map[string]any{"s": seg.ID}, "NOT_FOUND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := connectWS(t, s, tc.tok)
			c.subscribe(t, membershipSub, tc.vars)
			if m := c.read(t, 5*time.Second); !opFailed(m, tc.code) {
				t.Fatalf("got %s %s, want %s", m.Type, m.Payload, tc.code)
			}
		})
	}

	// Isolation: a globex subscriber to its own same-named segment sees
	// nothing of acme's entries.
	gseg := createSegment(t, s, other, map[string]any{"name": "buyers", "rule": ordersRule(1)})
	gc := connectWS(t, s, other)
	gop := gc.subscribe(t, membershipSub, map[string]any{"s": gseg.ID})
	grecv := wsMemRecv(t, gc, gop)
	untilSegmentLive(t, s, other, 1, grecv)
	trackEvent(t, s, tok, "ana@example.com", "order_completed")
	if m, ok := grecv(500 * time.Millisecond); ok {
		t.Fatalf("globex got %+v", m)
	}
}

func TestSegmentMembershipSSE(t *testing.T) {
	clock := app.NewManualClock(time.Now().UTC())
	s := startServer(t, serverOptions{Clock: clock})
	tok := s.token(t, "acme")
	seg := createSegment(t, s, tok, map[string]any{"name": "repeat buyers", "rule": ordersRule(2)})
	recv := sseMemRecv(t, sseSubscribe(t, s, tok, membershipSub, map[string]any{"s": seg.ID}))
	untilSegmentLive(t, s, tok, 2, recv)
	pid := profileOf(t, s, tok, "ana@example.com")
	enterThenExit(t, s, clock, tok, seg.ID, pid, recv)
}

// Two server processes on one data dir: subscribers on the second see the
// changes made through the first (ENTERED by track on s1; EXITED by
// whichever instance's sweeper gets there first — both run on the clock).
func TestSegmentMembershipSecondInstance(t *testing.T) {
	secondInstance(t, false)
}

// The same on the MongoDB engine (in-process FerretDB, or the server in
// HALO_TEST_MONGODB_URI): two instances on one database.
func TestSegmentMembershipSecondInstanceMongo(t *testing.T) {
	if testing.Short() {
		t.Skip("MongoDB engine: not in -short")
	}
	secondInstance(t, true)
}

func secondInstance(t *testing.T, mongo bool) {
	clock := app.NewManualClock(time.Now().UTC())
	s1 := startServer(t, serverOptions{Clock: clock, Mongo: mongo})
	s2 := startServer(t, serverOptions{Clock: clock, DataDir: s1.DataDir, Mongo: mongo, MongoURI: s1.MongoURI, Env: map[string]string{"HALO_JWT_SECRET": string(s1.Secret)}})
	tok := s1.token(t, "acme")
	seg := createSegment(t, s1, tok, map[string]any{"name": "repeat buyers", "rule": ordersRule(2)})

	c := connectWS(t, s2, tok)
	op := c.subscribe(t, membershipSub, map[string]any{"s": seg.ID})
	recvWS := wsMemRecv(t, c, op)
	untilSegmentLive(t, s1, tok, 2, recvWS)
	recvSSE := sseMemRecv(t, sseSubscribe(t, s2, tok, membershipSub, map[string]any{"s": seg.ID}))
	untilSegmentLive(t, s1, tok, 2, recvSSE)
	// The websocket subscriber saw the SSE warm-ups too.
	for {
		if _, ok := recvWS(300 * time.Millisecond); !ok {
			break
		}
	}
	pid := profileOf(t, s1, tok, "ana@example.com")
	enterThenExit(t, s1, clock, tok, seg.ID, pid, recvWS, recvSSE)
}
