package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// ---- a graphql-transport-ws client ----

// wsMsg is one graphql-transport-ws message.
type wsMsg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type wsClient struct {
	conn   *websocket.Conn
	msgs   chan wsMsg
	closed chan error // the read error that ended the connection
	nextID atomic.Int64
}

func wsURL(s *testServer) string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/graphql" }

// dialWS connects with the graphql-transport-ws subprotocol and sends
// connection_init with payload. It does not wait for connection_ack.
func dialWS(t testing.TB, s *testServer, payload map[string]any) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, wsURL(s), &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL(s), err)
	}
	if conn.Subprotocol() != "graphql-transport-ws" {
		t.Fatalf("subprotocol %q", conn.Subprotocol())
	}
	c := &wsClient{conn: conn, msgs: make(chan wsMsg, 1024), closed: make(chan error, 1)}
	t.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
	go func() {
		for {
			var m wsMsg
			if err := wsjson.Read(context.Background(), conn, &m); err != nil {
				c.closed <- err
				close(c.msgs)
				return
			}
			if m.Type == "ping" {
				_ = wsjson.Write(context.Background(), conn, wsMsg{Type: "pong"})
				continue
			}
			if m.Type == "pong" {
				continue
			}
			c.msgs <- m
		}
	}()
	b, _ := json.Marshal(payload)
	c.send(t, wsMsg{Type: "connection_init", Payload: b})
	return c
}

// connectWS dials and waits for connection_ack.
func connectWS(t testing.TB, s *testServer, token string) *wsClient {
	t.Helper()
	c := dialWS(t, s, map[string]any{"Authorization": "Bearer " + token})
	if m := c.read(t, 10*time.Second); m.Type != "connection_ack" {
		t.Fatalf("want connection_ack, got %s %s", m.Type, m.Payload)
	}
	return c
}

func (c *wsClient) send(t testing.TB, m wsMsg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := wsjson.Write(ctx, c.conn, m); err != nil {
		t.Fatalf("ws write: %v", err)
	}
}

func (c *wsClient) read(t testing.TB, d time.Duration) wsMsg {
	t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			t.Fatalf("connection closed: %v", <-c.closed)
		}
		return m
	case <-time.After(d):
		t.Fatalf("no message within %v", d)
	}
	return wsMsg{}
}

// subscribe starts an operation and returns its id.
func (c *wsClient) subscribe(t testing.TB, query string, vars map[string]any) string {
	t.Helper()
	id := fmt.Sprint(c.nextID.Add(1))
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	c.send(t, wsMsg{ID: id, Type: "subscribe", Payload: b})
	return id
}

// next returns the data of operation id's next "next" message; an error
// or complete message fails the test.
func (c *wsClient) next(t testing.TB, id string, d time.Duration) json.RawMessage {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		m := c.read(t, time.Until(deadline))
		if m.ID != id {
			continue
		}
		switch m.Type {
		case "next":
			var p struct {
				Data   json.RawMessage `json:"data"`
				Errors []gqlError      `json:"errors"`
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 {
				t.Fatalf("next payload %s", m.Payload)
			}
			return p.Data
		default:
			t.Fatalf("operation %s: %s %s", id, m.Type, m.Payload)
		}
	}
}

// ---- helpers ----

const timelineSub = `subscription($p: ID!, $after: String) { timelineAppended(profileId: $p, after: $after) { id name kind profileId messageId } }`

type subItem struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	ProfileID string `json:"profileId"`
	MessageID string `json:"messageId"`
}

func decodeItem(t testing.TB, data json.RawMessage) subItem {
	t.Helper()
	var out struct {
		TimelineAppended subItem `json:"timelineAppended"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return out.TimelineAppended
}

var msgSeq atomic.Int64

// trackEvent tracks an event named name for the email and returns the
// stored item id.
func trackEvent(t testing.TB, s *testServer, tok, email, name string) string {
	t.Helper()
	r := s.gql(t, tok, `mutation($in: TrackInput!) { track(input: $in) { event { id } } }`, map[string]any{"in": map[string]any{
		"messageId": fmt.Sprintf("rt-%d-%d", time.Now().UnixNano(), msgSeq.Add(1)), "identifiers": ids("email", email), "name": name,
	}})
	r.requireOK(t)
	var out struct {
		Track struct{ Event struct{ ID string } }
	}
	r.decode(t, &out)
	return out.Track.Event.ID
}

// untilLive tracks "warmup" events until the subscription delivers one
// (a subscription becomes live shortly after the subscribe message; the
// protocol has no acknowledgement), then returns.
func untilLive(t testing.TB, s *testServer, tok, email string, recv func(time.Duration) (subItem, bool)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		trackEvent(t, s, tok, email, "warmup")
		if it, ok := recv(300 * time.Millisecond); ok && it.Name == "warmup" {
			for { // drain warmups still in flight
				if _, ok := recv(150 * time.Millisecond); !ok {
					return
				}
			}
		}
	}
	t.Fatal("subscription never became live")
}

// wsRecv adapts a websocket operation to untilLive.
func wsRecv(t testing.TB, c *wsClient, id string) func(time.Duration) (subItem, bool) {
	return func(d time.Duration) (subItem, bool) {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				t.Fatalf("connection closed: %v", <-c.closed)
			}
			if m.ID != id || m.Type != "next" {
				t.Fatalf("unexpected %s %s", m.Type, m.Payload)
			}
			var p struct{ Data json.RawMessage }
			_ = json.Unmarshal(m.Payload, &p)
			return decodeItem(t, p.Data), true
		case <-time.After(d):
			return subItem{}, false
		}
	}
}

func profileOf(t *testing.T, s *testServer, tok, email string) string {
	t.Helper()
	p, _ := identify(t, s, tok, ids("email", email), nil)
	return p.ID
}

// opFailed reports whether m ends an operation with an error of code:
// gqlgen sends a resolver's error as a "next" with errors (then
// "complete"), a validation error as "error".
func opFailed(m wsMsg, code string) bool {
	return (m.Type == "error" || m.Type == "next") && strings.Contains(string(m.Payload), `"code":"`+code+`"`)
}

// ---- tests ----

func TestRealtimeWebsocketTimelineAppended(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	pid := profileOf(t, s, tok, "ana@example.com")

	c := connectWS(t, s, tok)
	op := c.subscribe(t, timelineSub, map[string]any{"p": pid})
	untilLive(t, s, tok, "ana@example.com", wsRecv(t, c, op))

	itemID := trackEvent(t, s, tok, "ana@example.com", "order_completed")
	it := decodeItem(t, c.next(t, op, 5*time.Second))
	if it.ID != itemID || it.Name != "order_completed" || it.ProfileID != pid || it.Kind != "EVENT" {
		t.Fatalf("got %+v, want item %s", it, itemID)
	}

	// logInteraction and trackBatch arrive too, one item each, in order.
	s.gql(t, tok, `mutation($p: ID!) { logInteraction(input: {profileId: $p, kind: CALL, subject: "hi"}) { id } }`, map[string]any{"p": pid}).requireOK(t)
	if it := decodeItem(t, c.next(t, op, 5*time.Second)); it.Name != "call" || it.Kind != "INTERACTION" {
		t.Fatalf("interaction: got %+v", it)
	}
	batch := []any{}
	for i := range 3 {
		batch = append(batch, map[string]any{"messageId": fmt.Sprint("batch-", i), "identifiers": ids("email", "ana@example.com"), "name": fmt.Sprint("b", i)})
	}
	batch = append(batch, map[string]any{"messageId": "other", "identifiers": ids("email", "bob@example.com"), "name": "not-ana"})
	s.gql(t, tok, `mutation($in: [TrackInput!]!) { trackBatch(inputs: $in) { accepted } }`, map[string]any{"in": batch}).requireOK(t)
	for i := range 3 {
		if it := decodeItem(t, c.next(t, op, 5*time.Second)); it.Name != fmt.Sprint("b", i) {
			t.Fatalf("batch item %d: got %+v", i, it)
		}
	}

	// complete from the client ends the operation; nothing more arrives.
	c.send(t, wsMsg{ID: op, Type: "complete"})
	time.Sleep(200 * time.Millisecond) // the server reads it asynchronously
	trackEvent(t, s, tok, "ana@example.com", "after_complete")
	select {
	case m := <-c.msgs:
		if m.Type == "next" {
			t.Fatalf("got %s after complete", m.Payload)
		}
	case <-time.After(300 * time.Millisecond):
	}
}

func TestRealtimeWebsocketProfileUpdatedFollowsMerge(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	old, _ := identify(t, s, tok, ids("userId", "u-old"), map[string]any{"name": "Carl"})
	anon, _ := identify(t, s, tok, ids("anonymousId", "anon-1"), nil)
	c := connectWS(t, s, tok)
	op := c.subscribe(t, `subscription($id: ID!) { profileUpdated(id: $id) { id traits } }`, map[string]any{"id": anon.ID})
	type upd struct {
		ProfileUpdated struct {
			ID     string         `json:"id"`
			Traits map[string]any `json:"traits"`
		} `json:"profileUpdated"`
	}
	decode := func(data json.RawMessage) upd {
		var u upd
		if err := json.Unmarshal(data, &u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	// Live once the resolver has subscribed: set traits until one comes.
	var got upd
	deadline := time.Now().Add(10 * time.Second)
	for got.ProfileUpdated.ID == "" && time.Now().Before(deadline) {
		identify(t, s, tok, ids("anonymousId", "anon-1"), map[string]any{"plan": "free"})
		select {
		case m := <-c.msgs:
			if m.ID != op || m.Type != "next" {
				t.Fatalf("unexpected %s %s", m.Type, m.Payload)
			}
			var p struct{ Data json.RawMessage }
			_ = json.Unmarshal(m.Payload, &p)
			got = decode(p.Data)
		case <-time.After(300 * time.Millisecond):
		}
	}
	if got.ProfileUpdated.ID != anon.ID || got.ProfileUpdated.Traits["plan"] != "free" {
		t.Fatalf("got %+v", got)
	}
	for drained := false; !drained; {
		select {
		case <-c.msgs:
		case <-time.After(200 * time.Millisecond):
			drained = true
		}
	}
	// The older profile absorbs the subscribed one: the subscription
	// carries on with the survivor, which now has both traits.
	s.gql(t, tok, `mutation($a: ID!, $b: ID!) { mergeProfiles(sourceId: $a, targetId: $b) { id } }`,
		map[string]any{"a": anon.ID, "b": old.ID}).requireOK(t)
	after := decode(c.next(t, op, 5*time.Second))
	if after.ProfileUpdated.ID != old.ID || after.ProfileUpdated.Traits["name"] != "Carl" || after.ProfileUpdated.Traits["plan"] != "free" {
		t.Fatalf("after merge: %+v", after)
	}
	for drained := false; !drained; {
		select {
		case <-c.msgs:
		case <-time.After(200 * time.Millisecond):
			drained = true
		}
	}
	identify(t, s, tok, ids("userId", "u-old"), map[string]any{"plan": "pro"})
	if later := decode(c.next(t, op, 5*time.Second)); later.ProfileUpdated.ID != old.ID || later.ProfileUpdated.Traits["plan"] != "pro" {
		t.Fatalf("survivor update: %+v", later)
	}
}

func TestRealtimeWebsocketBadToken(t *testing.T) {
	s := startServer(t, serverOptions{})
	other := startServer(t, serverOptions{}) // a different secret
	for name, payload := range map[string]map[string]any{
		"missing":      {},
		"garbage":      {"Authorization": "Bearer nope"},
		"wrong secret": {"Authorization": "Bearer " + other.token(t, "acme")},
		"not bearer":   {"Authorization": "Basic abc"},
	} {
		t.Run(name, func(t *testing.T) {
			c := dialWS(t, s, payload)
			for {
				select {
				case m, ok := <-c.msgs:
					if ok {
						if m.Type == "connection_ack" {
							t.Fatal("bad token acknowledged")
						}
						continue
					}
					err := <-c.closed
					if code := websocket.CloseStatus(err); code != closeForbidden {
						t.Fatalf("closed with %v (%d), want %d", err, code, closeForbidden)
					}
					return
				case <-time.After(5 * time.Second):
					t.Fatal("connection not closed")
				}
			}
		})
	}
	// The token may also come as {"token": ...}.
	c := dialWS(t, s, map[string]any{"token": s.token(t, "acme")})
	if m := c.read(t, 5*time.Second); m.Type != "connection_ack" {
		t.Fatalf("token payload: %s", m.Type)
	}
	// A plain GET without a token is still refused by the HTTP middleware.
	if r := s.gqlGet(t, "", `{ viewer { workspace } }`, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("GET without token: %d", r.Status)
	}
}

func TestRealtimeWorkspaceIsolation(t *testing.T) {
	s := startServer(t, serverOptions{})
	acme, globex := s.token(t, "acme"), s.token(t, "globex")
	pid := profileOf(t, s, acme, "ana@example.com")

	// Another workspace cannot subscribe to acme's profile: NOT_FOUND.
	g := connectWS(t, s, globex)
	op := g.subscribe(t, timelineSub, map[string]any{"p": pid})
	if m := g.read(t, 5*time.Second); !opFailed(m, "NOT_FOUND") {
		t.Fatalf("cross-workspace subscribe: %s %s", m.Type, m.Payload)
	}
	_ = op
	// Same email in globex is another profile; its events do not reach acme.
	c := connectWS(t, s, acme)
	op = c.subscribe(t, timelineSub, map[string]any{"p": pid})
	untilLive(t, s, acme, "ana@example.com", wsRecv(t, c, op))
	trackEvent(t, s, globex, "ana@example.com", "globex_event")
	want := trackEvent(t, s, acme, "ana@example.com", "acme_event")
	if it := decodeItem(t, c.next(t, op, 5*time.Second)); it.ID != want {
		t.Fatalf("got %+v, want the acme event", it)
	}
}

func TestRealtimeResumeAfter(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	pid := profileOf(t, s, tok, "ana@example.com")
	var items []string
	for i := range 4 {
		items = append(items, trackEvent(t, s, tok, "ana@example.com", fmt.Sprint("e", i)))
	}
	c := connectWS(t, s, tok)
	op := c.subscribe(t, timelineSub, map[string]any{"p": pid, "after": items[1]})
	for _, want := range items[2:] {
		if it := decodeItem(t, c.next(t, op, 5*time.Second)); it.ID != want {
			t.Fatalf("replay: got %s, want %s", it.ID, want)
		}
	}
	live := trackEvent(t, s, tok, "ana@example.com", "live")
	if it := decodeItem(t, c.next(t, op, 5*time.Second)); it.ID != live {
		t.Fatalf("live: got %s", it.Name)
	}
	// A malformed `after` is bad input.
	op = c.subscribe(t, timelineSub, map[string]any{"p": pid, "after": "nope"})
	if m := c.read(t, 5*time.Second); !opFailed(m, "BAD_USER_INPUT") {
		t.Fatalf("bad after: %s %s", m.Type, m.Payload)
	}
}

// sseSubscribe POSTs a subscription with Accept: text/event-stream and
// returns the data of its "next" events.
func sseSubscribe(t testing.TB, s *testServer, token, query string, vars map[string]any) <-chan json.RawMessage {
	t.Helper()
	st := sseOpen(t, s, token, query, vars)
	out := make(chan json.RawMessage, 64)
	go func() {
		defer close(out)
		for e := range st.events {
			if e.event == "next" {
				var p struct{ Data json.RawMessage }
				_ = json.Unmarshal([]byte(e.data), &p)
				out <- p.Data
			}
		}
	}()
	return out
}

func sseRecv(t testing.TB, ch <-chan json.RawMessage) func(time.Duration) (subItem, bool) {
	return func(d time.Duration) (subItem, bool) {
		select {
		case data, ok := <-ch:
			if !ok {
				t.Fatal("SSE stream ended")
			}
			return decodeItem(t, data), true
		case <-time.After(d):
			return subItem{}, false
		}
	}
}

func TestRealtimeSSE(t *testing.T) {
	s := startServer(t, serverOptions{})
	tok := s.token(t, "acme")
	pid := profileOf(t, s, tok, "ana@example.com")

	// Without a token the HTTP middleware refuses it.
	body := `{"query":"subscription { timelineAppended(profileId: \"x\") { id } }"}`
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("SSE without token: %v %v", res, err)
	}

	ch := sseSubscribe(t, s, tok, timelineSub, map[string]any{"p": pid})
	recv := sseRecv(t, ch)
	untilLive(t, s, tok, "ana@example.com", recv)
	want := trackEvent(t, s, tok, "ana@example.com", "sse_event")
	it, ok := recv(5 * time.Second)
	if !ok || it.ID != want || it.Name != "sse_event" {
		t.Fatalf("got %+v %v", it, ok)
	}
}

// Two server processes on one data dir (SQLite in WAL mode) or one
// MongoDB database stand for two instances: a change made through the
// first reaches a subscriber of the second through the outbox.
func TestRealtimeSecondInstance(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		mongo := e.name == "mongodb"
		s1 := startServer(t, serverOptions{Mongo: mongo})
		s2 := startServer(t, serverOptions{DataDir: s1.DataDir, Mongo: mongo, MongoURI: s1.MongoURI, Env: map[string]string{"HALO_JWT_SECRET": string(s1.Secret)}})
		realtimeSecondInstance(t, s1, s2)
	})
}

func realtimeSecondInstance(t *testing.T, s1, s2 *testServer) {
	tok := s1.token(t, "acme")
	pid := profileOf(t, s1, tok, "ana@example.com")

	c := connectWS(t, s2, tok)
	op := c.subscribe(t, timelineSub, map[string]any{"p": pid})
	untilLive(t, s1, tok, "ana@example.com", wsRecv(t, c, op))
	for i := range 5 {
		want := trackEvent(t, s1, tok, "ana@example.com", fmt.Sprint("via-s1-", i))
		if it := decodeItem(t, c.next(t, op, 5*time.Second)); it.ID != want {
			t.Fatalf("got %+v, want %s", it, want)
		}
	}
	// And SSE on the first instance sees changes made through the second.
	ch := sseSubscribe(t, s1, tok, timelineSub, map[string]any{"p": pid})
	recv := sseRecv(t, ch)
	untilLive(t, s2, tok, "ana@example.com", recv)
	want := trackEvent(t, s2, tok, "ana@example.com", "via-s2")
	if it, ok := recv(5 * time.Second); !ok || it.ID != want {
		t.Fatalf("got %+v", it)
	}
}

// BenchmarkRealtimeDelivery: an event tracked (POST track) → the websocket
// subscriber receives it, measured from sending the mutation (so the
// figure includes the track itself), events at random moments. "local":
// subscriber and writer on one server; "cross-instance": two servers on one
// data dir, subscriber on the second (delivery by tailing the outbox).
//
//	go test ./server -run '^$' -bench RealtimeDelivery -benchtime 300x
func BenchmarkRealtimeDelivery(b *testing.B) {
	for _, name := range []string{"local", "cross-instance"} {
		b.Run(name, func(b *testing.B) {
			s1 := startServer(b, serverOptions{})
			sub := s1
			if name == "cross-instance" {
				sub = startServer(b, serverOptions{DataDir: s1.DataDir, Env: map[string]string{"HALO_JWT_SECRET": string(s1.Secret)}})
			}
			tok := s1.token(b, "bench")
			first := trackEvent(b, s1, tok, "bench@example.com", "first")
			r := s1.gql(b, tok, `{ profile(identifier: {type: "email", value: "bench@example.com"}) { id } }`, nil)
			var out struct{ Profile struct{ ID string } }
			r.decode(b, &out)
			c := connectWS(b, sub, tok)
			// Resuming after the first item makes the subscription gap-free
			// from the start; the first event delivered is the warm-up.
			op := c.subscribe(b, timelineSub, map[string]any{"p": out.Profile.ID, "after": first})
			trackEvent(b, s1, tok, "bench@example.com", "warmup")
			c.next(b, op, 10*time.Second)

			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// A random pause puts events at random phases of the
				// tailer's poll (a tight loop would lock onto it).
				b.StopTimer()
				time.Sleep(time.Duration(rand.Int64N(int64(60 * time.Millisecond))))
				b.StartTimer()
				start := time.Now()
				id := trackEvent(b, s1, tok, "bench@example.com", "bench")
				if it := decodeItem(b, c.next(b, op, 10*time.Second)); it.ID != id {
					b.Fatalf("got %s, want %s", it.ID, id)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
