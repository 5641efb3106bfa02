package accountfeed_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/accountfeed"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/task"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/timeline"
)

var start = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// TestAccountTimeline pages an account's timeline two items at a time
// and compares it with every contact's items and the account's own,
// merged by hand: newest first, a deal's item once however many contacts
// it has, nothing of another account's people.
func TestAccountTimeline(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services
	acme, err := s.Accounts.Create(e.Ctx, e.Tenant, account.CreateInput{Name: "Acme", Domains: []string{"acme.com"}})
	if err != nil {
		t.Fatal(err)
	}
	track := func(email, name string, at time.Time) string {
		t.Helper()
		res, err := s.Ingest.TrackEvents(e.Ctx, e.Tenant, "tester", "input", []timeline.TrackInput{{MessageID: fmt.Sprint(email, name, at.Unix()),
			Identifiers: []identity.Identifier{{Type: identity.Email, Value: email}}, Name: name, OccurredAt: &at}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Event.ProfileID
	}
	var people []string
	for i, email := range []string{"ann@acme.com", "bob@acme.com", "cy@acme.com"} {
		for j := range 3 {
			track(email, fmt.Sprint("e", j), start.Add(-time.Duration(i*7+j*3)*time.Hour))
		}
		people = append(people, track(email, "last", start.Add(-time.Duration(i)*time.Minute)))
		if err := s.Accounts.LinkEmails(e.Ctx, e.Tenant, people[i], []string{email}); err != nil {
			t.Fatal(err)
		}
	}
	track("zed@other.org", "elsewhere", start) // not a contact
	if _, err := s.Deals.Create(e.Ctx, e.Tenant, deal.CreateInput{Name: "Big", Currency: "EUR", Amount: 10, AccountID: acme.ID, ContactIDs: people[:2]}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tasks.Create(e.Ctx, e.Tenant, task.CreateInput{Subject: "Call", AccountID: acme.ID}); err != nil {
		t.Fatal(err)
	}

	// By hand: every contact's items but the deal's and task's own, and
	// the account's own items.
	var want []string
	for _, p := range people {
		if err := timeline.EventsOf(e.Ctx, e.Tenant, p, func(ev *timeline.Event) error {
			if !accountfeed.Own(ev) {
				want = append(want, fmt.Sprintf("%d %s", ev.OccurredAt.UnixMilli(), ev.ID))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := accountfeed.Read(e.Ctx, e.Tenant, s.Accounts, acme.ID, 100, nil, e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	own := 0
	for _, ev := range all.Items {
		if ev.ProfileID == "" {
			own++
			want = append(want, fmt.Sprintf("%d %s", ev.OccurredAt.UnixMilli(), ev.ID))
		}
	}
	if own != 2 {
		t.Fatalf("the account's own items: %d, want the deal's and the task's", own)
	}
	slices.SortFunc(want, func(a, b string) int { return -strings.Compare(a, b) })
	var got []string
	var after *timeline.Position
	for range 50 {
		page, err := accountfeed.Read(e.Ctx, e.Tenant, s.Accounts, acme.ID, 2, after, e.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Items {
			got = append(got, fmt.Sprintf("%d %s", ev.OccurredAt.UnixMilli(), ev.ID))
		}
		if !page.HasNext {
			break
		}
		last := page.Items[len(page.Items)-1]
		after = &timeline.Position{At: last.OccurredAt, ID: last.ID}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged:\n%v\nwant\n%v", got, want)
	}
}
