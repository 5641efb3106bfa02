package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

const liveTileSub = `subscription($z: String) { eventVolumeLive(interval: HOUR, timeZone: $z, groupBy: NAME) {
  timeZone groups { key total } bucket { start end total counts } } }`

type gqlTile struct {
	TimeZone string
	Groups   []struct {
		Key   string
		Total int
	}
	Bucket struct {
		Start, End time.Time
		Total      int
		Counts     []int
	}
}

// A live tile over the websocket, on every engine, with two server
// instances: the bucket under way arrives at once, then moves when events
// are tracked through the other instance, at most once a second; an event
// of another hour moves nothing; another workspace's events are not
// counted; an unknown zone is refused.
func TestE2EEventVolumeLive(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		mongo := e.name == "mongodb"
		s1 := startServer(t, serverOptions{Mongo: mongo})
		s2 := startServer(t, serverOptions{DataDir: s1.DataDir, Mongo: mongo, MongoURI: s1.MongoURI, Env: map[string]string{"HALO_JWT_SECRET": string(s1.Secret)}})
		tok := s1.token(t, "acme")
		c := connectWS(t, s1, tok)
		// Kolkata: hours begin at half past the UTC hour.
		op := c.subscribe(t, liveTileSub, map[string]any{"z": "Asia/Kolkata"})
		next := func(d time.Duration) (gqlTile, time.Time) {
			t.Helper()
			var got struct{ EventVolumeLive gqlTile }
			if err := json.Unmarshal(c.next(t, op, d), &got); err != nil {
				t.Fatal(err)
			}
			return got.EventVolumeLive, time.Now()
		}
		first, _ := next(10 * time.Second)
		now := time.Now()
		if first.TimeZone != "Asia/Kolkata" || first.Bucket.Total != 0 || first.Bucket.Start.After(now) || !first.Bucket.End.After(now) || first.Bucket.Start.UTC().Minute() != 30 { // Kolkata hours begin at half past
			t.Fatalf("first tile: %+v", first)
		}
		// Through the other instance: 3 tile_a, 1 tile_b, now; another
		// workspace's; one of two days ago.
		send := func(tok, msg, name string, at time.Time) {
			t.Helper()
			s2.gql(t, tok, `mutation($in: TrackInput!) { track(input: $in) { duplicate } }`, map[string]any{"in": map[string]any{
				"messageId": msg, "identifiers": ids("anonymousId", "tile"), "name": name, "occurredAt": at.Format(time.RFC3339Nano)}}).requireOK(t)
		}
		send(s1.token(t, "globex"), "g1", "tile_a", time.Now())
		for i := range 3 {
			send(tok, fmt.Sprint("a", i), "tile_a", time.Now())
		}
		send(tok, "b0", "tile_b", time.Now())
		var (
			tile gqlTile
			at   []time.Time
		)
		for tile.Bucket.Total < 4 {
			var when time.Time
			tile, when = next(15 * time.Second)
			at = append(at, when)
			if tile.Bucket.Total > 4 {
				t.Fatalf("tile counts another workspace's event: %+v", tile)
			}
		}
		if len(tile.Groups) != 2 || tile.Groups[0].Key != "tile_a" || tile.Groups[0].Total != 3 || tile.Groups[1].Key != "tile_b" || tile.Bucket.Counts[0] != 3 || tile.Bucket.Counts[1] != 1 {
			t.Fatalf("tile after 4 events: %+v", tile)
		}
		for i := 1; i < len(at); i++ {
			if d := at[i].Sub(at[i-1]); d < 900*time.Millisecond {
				t.Fatalf("two tiles %s apart: at most one a second", d)
			}
		}
		// Another hour's event changes nothing in this bucket: no tile
		// (one comes only if the hour itself turns).
		send(tok, "old", "tile_a", time.Now().Add(-48*time.Hour))
		deadline := time.Now().Add(2500 * time.Millisecond)
		for {
			m, ok := c.tryRead(time.Until(deadline))
			if !ok {
				break
			}
			if m.ID == op && m.Type == "next" && time.Now().Truncate(time.Hour).Equal(tile.Bucket.Start.Truncate(time.Hour)) {
				t.Fatalf("a tile for an event of another hour: %s", m.Payload)
			}
		}

		// Bad input: an error message for the operation.
		bad := c.subscribe(t, liveTileSub, map[string]any{"z": "Mars/Olympus"})
		for {
			m := c.read(t, 10*time.Second)
			if m.ID != bad {
				continue
			}
			// gqlgen reports a subscription resolver's error in a next
			// message's errors, with no data.
			var p struct {
				Data   json.RawMessage
				Errors []gqlError
			}
			if m.Type != "next" || json.Unmarshal(m.Payload, &p) != nil || len(p.Errors) == 0 || p.Errors[0].Code() != "BAD_USER_INPUT" || string(p.Data) != "null" {
				t.Fatalf("unknown zone: %s %s", m.Type, m.Payload)
			}
			break
		}
	})
}

// tryRead is read without failing: false when nothing came within d.
func (c *wsClient) tryRead(d time.Duration) (wsMsg, bool) {
	if d <= 0 {
		return wsMsg{}, false
	}
	select {
	case m, ok := <-c.msgs:
		return m, ok
	case <-time.After(d):
		return wsMsg{}, false
	}
}
