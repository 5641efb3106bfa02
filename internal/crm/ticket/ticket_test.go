package ticket_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/task"
	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
)

var start = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func TestOpenAndTransitions(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services.Tickets
	acme, err := e.Services.Accounts.Create(e.Ctx, e.Tenant, account.CreateInput{Name: "Acme", Domains: []string{"acme.com"}})
	if err != nil {
		t.Fatal(err)
	}
	ann := e.Person(t, "ann@acme.com")
	if err := e.Services.Accounts.LinkEmails(e.Ctx, e.Tenant, ann, []string{"ann@acme.com"}); err != nil {
		t.Fatal(err)
	}
	tk, err := s.Open(e.Ctx, e.Tenant, ticket.OpenInput{ProfileID: ann, Subject: " Cannot log in ", Body: "Since Monday", Priority: ticket.Urgent, Channel: "EMAIL"})
	if err != nil {
		t.Fatal(err)
	}
	if tk.Subject != "Cannot log in" || tk.Status != ticket.StatusNew || tk.AccountID != acme.ID ||
		!tk.FirstResponseDue.Equal(start.Add(time.Hour)) || !tk.ResolutionDue.Equal(start.Add(4*time.Hour)) || !tk.CheckAt.Equal(tk.FirstResponseDue) {
		t.Fatalf("opened: %+v", tk)
	}
	for _, c := range []struct {
		in    ticket.OpenInput
		code  apperr.Code
		field string
	}{
		{ticket.OpenInput{ProfileID: ann, Subject: " "}, apperr.BadUserInput, "input.subject"},
		{ticket.OpenInput{ProfileID: ann, Subject: "x", Priority: "SOON"}, apperr.BadUserInput, "input.priority"},
		{ticket.OpenInput{ProfileID: ann, Subject: "x", Channel: "FAX"}, apperr.BadUserInput, "input.channel"},
		{ticket.OpenInput{ProfileID: "nope", Subject: "x"}, apperr.NotFound, ""},
		{ticket.OpenInput{ProfileID: ann, Subject: "x", AccountID: "nope"}, apperr.NotFound, ""},
	} {
		_, err := s.Open(e.Ctx, e.Tenant, c.in)
		apptest.WantCode(t, err, c.code, c.field)
	}
	if n, _ := s.Count(e.Ctx, e.Tenant, ticket.Filter{}); n != 1 {
		t.Fatalf("refused opens stored tickets: %d", n)
	}

	move := func(to string) (*ticket.Ticket, error) {
		return s.Update(e.Ctx, e.Tenant, tk.ID, ticket.UpdateInput{Status: ptr(to)})
	}
	if _, err := move(ticket.StatusPending); err != nil {
		t.Fatal(err)
	}
	_, err = move(ticket.StatusNew)
	apptest.WantCode(t, err, apperr.BadUserInput, "input.status")
	_, err = move("LATER")
	apptest.WantCode(t, err, apperr.BadUserInput, "input.status")
	closed, err := move(ticket.StatusClosed)
	if err != nil || closed.ResolvedAt.IsZero() || closed.ClosedAt.IsZero() {
		t.Fatalf("closed: %+v %v", closed, err)
	}
	for _, to := range []string{ticket.StatusNew, ticket.StatusPending, ticket.StatusResolved} {
		_, err = move(to)
		apptest.WantCode(t, err, apperr.BadUserInput, "input.status")
	}
	if got, _ := s.Get(e.Ctx, e.Tenant, tk.ID); got.Version != closed.Version || got.Status != ticket.StatusClosed {
		t.Fatalf("a refused move wrote: %+v", got)
	}
	reopened, err := move(ticket.StatusOpen)
	if err != nil || !reopened.ResolvedAt.IsZero() || !reopened.ClosedAt.IsZero() || len(reopened.History) != 4 {
		t.Fatalf("reopened: %+v %v", reopened, err)
	}
	_, err = s.Update(e.Ctx, e.Tenant, tk.ID, ticket.UpdateInput{Assignee: ptr("agent-1"), ExpectedVersion: ptr(closed.Version)})
	apptest.WantCode(t, err, apperr.Conflict, "")
	up, err := s.Update(e.Ctx, e.Tenant, tk.ID, ticket.UpdateInput{Assignee: ptr("agent-1"), Priority: ptr(ticket.Low), ExpectedVersion: ptr(reopened.Version)})
	if err != nil || up.Assignee != "agent-1" || !up.ResolutionDue.Equal(start.Add(7*24*time.Hour)) {
		t.Fatalf("update: %+v %v", up, err)
	}
	_, err = s.Update(e.Ctx, e.Tenant, "nope", ticket.UpdateInput{Assignee: ptr("x")})
	apptest.WantCode(t, err, apperr.NotFound, "")
}

func TestCommentsAndFirstResponse(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services.Tickets
	ann := e.Person(t, "ann@example.org")
	tk, err := s.Open(e.Ctx, e.Tenant, ticket.OpenInput{ProfileID: ann, Subject: "Refund"})
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Set(start.Add(time.Minute))
	_, after, err := s.AddComment(e.Ctx, e.Tenant, ticket.CommentInput{TicketID: tk.ID, Body: "Looks like fraud?", Author: "agent-1", Internal: true})
	if err != nil || !after.FirstResponseAt.IsZero() || after.Status != ticket.StatusNew {
		t.Fatalf("an internal note is no response: %+v %v", after, err)
	}
	e.Clock.Set(start.Add(2 * time.Minute))
	_, after, err = s.AddComment(e.Ctx, e.Tenant, ticket.CommentInput{TicketID: tk.ID, Body: "We are on it", Author: "agent-1"})
	if err != nil || !after.FirstResponseAt.Equal(start.Add(2*time.Minute)) || after.Status != ticket.StatusOpen {
		t.Fatalf("first response: %+v %v", after, err)
	}
	if d, ok := after.FirstResponseTime(); !ok || d != 2*time.Minute {
		t.Fatalf("first response time %v", d)
	}
	if _, err := s.Update(e.Ctx, e.Tenant, tk.ID, ticket.UpdateInput{Status: ptr(ticket.StatusPending)}); err != nil {
		t.Fatal(err)
	}
	_, after, err = s.AddComment(e.Ctx, e.Tenant, ticket.CommentInput{TicketID: tk.ID, Body: "Any news?", ByCustomer: true})
	if err != nil || after.Status != ticket.StatusOpen {
		t.Fatalf("the person's reply reopens: %+v %v", after, err)
	}
	_, _, err = s.AddComment(e.Ctx, e.Tenant, ticket.CommentInput{TicketID: tk.ID, Body: "x", ByCustomer: true, Internal: true})
	apptest.WantCode(t, err, apperr.BadUserInput, "input.internal")
	_, _, err = s.AddComment(e.Ctx, e.Tenant, ticket.CommentInput{TicketID: tk.ID, Body: " "})
	apptest.WantCode(t, err, apperr.BadUserInput, "input.body")
	_, _, err = s.AddComment(e.Ctx, e.Tenant, ticket.CommentInput{TicketID: "nope", Body: "x"})
	apptest.WantCode(t, err, apperr.NotFound, "")
	if _, err := s.Update(e.Ctx, e.Tenant, tk.ID, ticket.UpdateInput{Status: ptr(ticket.StatusClosed)}); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.AddComment(e.Ctx, e.Tenant, ticket.CommentInput{TicketID: tk.ID, Body: "x"})
	apptest.WantCode(t, err, apperr.BadUserInput, "input.ticketId")
	public, _ := s.Comments(e.Ctx, e.Tenant, tk.ID, false, 10, "")
	all, _ := s.Comments(e.Ctx, e.Tenant, tk.ID, true, 2, "")
	if len(public.Comments) != 2 || len(all.Comments) != 2 || !all.HasNext || all.Comments[0].Body != "Looks like fraud?" || public.Comments[1].AuthorProfileID != ann {
		t.Fatalf("comments: %+v public, %+v in all", public, all)
	}
	rest, _ := s.Comments(e.Ctx, e.Tenant, tk.ID, true, 2, all.Cursors[1])
	if len(rest.Comments) != 1 || rest.HasNext || rest.Comments[0].Body != "Any news?" {
		t.Fatalf("second page: %+v", rest)
	}
}

// TestSweeperFlagsBreaches moves the clock past each target: the sweeper
// alone flags the ticket, a late answer stays a breach, and a resolution
// in time is no breach.
func TestSweeperFlagsBreaches(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services.Tickets
	ann := e.Person(t, "ann@example.org")
	urgent, err := s.Open(e.Ctx, e.Tenant, ticket.OpenInput{ProfileID: ann, Subject: "Down", Priority: ticket.Urgent})
	if err != nil {
		t.Fatal(err)
	}
	calm, err := s.Open(e.Ctx, e.Tenant, ticket.OpenInput{ProfileID: ann, Subject: "Question", Priority: ticket.Low})
	if err != nil {
		t.Fatal(err)
	}
	breached := func(want int) {
		t.Helper()
		n, err := s.Count(e.Ctx, e.Tenant, ticket.Filter{Breached: ptr(true)})
		if err != nil || n != int64(want) {
			t.Fatalf("breached: %d, want %d (%v)", n, want, err)
		}
	}
	sweep := func(at time.Duration, want int) {
		t.Helper()
		got, err := s.Sweep(e.Ctx, e.Tenant, start.Add(at))
		if err != nil || len(got) != want {
			t.Fatalf("sweep at %v: %d flagged, want %d (%v)", at, len(got), want, err)
		}
	}
	sweep(time.Hour, 0) // due at the hour: not late yet
	breached(0)
	sweep(time.Hour+time.Second, 1)
	breached(1)
	got, _ := s.Get(e.Ctx, e.Tenant, urgent.ID)
	if !got.FirstResponseBreached || got.ResolutionBreached || !got.CheckAt.Equal(start.Add(4*time.Hour)) {
		t.Fatalf("after the first response target: %+v", got)
	}
	sweep(time.Hour+2*time.Second, 0) // nothing new
	// A late answer stays a breach.
	e.Clock.Set(start.Add(2 * time.Hour))
	if _, after, err := s.AddComment(e.Ctx, e.Tenant, ticket.CommentInput{TicketID: urgent.ID, Body: "Sorry", Author: "a"}); err != nil || !after.FirstResponseBreached {
		t.Fatalf("late answer: %+v %v", after, err)
	}
	sweep(4*time.Hour+time.Second, 1)
	if got, _ := s.Get(e.Ctx, e.Tenant, urgent.ID); !got.ResolutionBreached || !got.CheckAt.Equal(ticket.NoDue) {
		t.Fatalf("after the resolution target: %+v", got)
	}
	// Resolved in time: no breach, nothing left to check.
	e.Clock.Set(start.Add(5 * time.Hour))
	res, err := s.Update(e.Ctx, e.Tenant, calm.ID, ticket.UpdateInput{Status: ptr(ticket.StatusResolved)})
	if err != nil || res.Breached || !res.CheckAt.Equal(ticket.NoDue) {
		t.Fatalf("resolved in time: %+v %v", res, err)
	}
	sweep(30*24*time.Hour, 0)
	breached(1)
	// Reopened after its deadline: the resolution is late at once.
	e.Clock.Set(start.Add(8 * 24 * time.Hour))
	// (Its first response was not missed: the resolution in time ended
	// that wait, and a reopening does not bring it back.)
	if re, err := s.Update(e.Ctx, e.Tenant, calm.ID, ticket.UpdateInput{Status: ptr(ticket.StatusOpen)}); err != nil || !re.ResolutionBreached || re.FirstResponseBreached {
		t.Fatalf("reopened late: %+v %v", re, err)
	}
	breached(2)
}

func TestTargets(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services.Tickets
	got, err := s.SetTargets(e.Ctx, e.Tenant, []ticket.Target{{Priority: ticket.High, FirstResponse: 10 * time.Minute, Resolution: 0}})
	if err != nil || got[1].Priority != ticket.High || got[1].FirstResponse != 10*time.Minute || got[1].Resolution != 0 || got[0].FirstResponse != time.Hour {
		t.Fatalf("set: %+v %v", got, err)
	}
	for _, c := range []struct {
		in    []ticket.Target
		field string
	}{
		{[]ticket.Target{{Priority: "SOON"}}, "targets[0].priority"},
		{[]ticket.Target{{Priority: ticket.Low}, {Priority: ticket.Low}}, "targets[1].priority"},
		{[]ticket.Target{{Priority: ticket.Low, FirstResponse: -time.Minute}}, "targets[0].firstResponseMinutes"},
		{[]ticket.Target{{Priority: ticket.Low, Resolution: 2 * ticket.MaxTarget}}, "targets[0].resolutionMinutes"},
		{[]ticket.Target{{Priority: ticket.Low, FirstResponse: 2 * time.Hour, Resolution: time.Hour}}, "targets[0].firstResponseMinutes"},
	} {
		_, err := s.SetTargets(e.Ctx, e.Tenant, c.in)
		apptest.WantCode(t, err, apperr.BadUserInput, c.field)
	}
	ann := e.Person(t, "ann@example.org")
	tk, err := s.Open(e.Ctx, e.Tenant, ticket.OpenInput{ProfileID: ann, Subject: "x", Priority: ticket.High})
	if err != nil || !tk.FirstResponseDue.Equal(start.Add(10*time.Minute)) || !tk.ResolutionDue.Equal(ticket.NoDue) {
		t.Fatalf("opened with the workspace's targets: %+v %v", tk, err)
	}
}

// TestListsAgreeWithAScan checks every filter's page and count against
// the tickets filtered by hand.
func TestListsAgreeWithAScan(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services.Tickets
	ann := e.Person(t, "ann@example.org")
	r := rand.New(rand.NewPCG(1, 2))
	statuses := []string{ticket.StatusOpen, ticket.StatusPending, ticket.StatusResolved}
	var all []*ticket.Ticket
	for i := range 40 {
		e.Clock.Set(start.Add(time.Duration(i) * time.Minute))
		tk, err := s.Open(e.Ctx, e.Tenant, ticket.OpenInput{ProfileID: ann, Subject: fmt.Sprint("t", i),
			Priority: ticket.Priorities[r.IntN(4)], Assignee: []string{"", "a1", "a2"}[r.IntN(3)]})
		if err != nil {
			t.Fatal(err)
		}
		if st := r.IntN(4); st < 3 {
			if tk, err = s.Update(e.Ctx, e.Tenant, tk.ID, ticket.UpdateInput{Status: ptr(statuses[st])}); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, tk)
	}
	breached, err := s.Sweep(e.Ctx, e.Tenant, start.Add(2*time.Hour))
	if err != nil || len(breached) == 0 {
		t.Fatalf("sweep: %d %v", len(breached), err)
	}
	for _, b := range breached {
		for i := range all {
			if all[i].ID == b.ID {
				all[i] = b
			}
		}
	}
	for _, f := range []ticket.Filter{
		{}, {Status: ticket.StatusOpen}, {Priority: ticket.High}, {Priority: ticket.High, Status: ticket.StatusPending},
		{Assignee: ptr("")}, {Assignee: ptr("a1"), Status: ticket.StatusOpen}, {Assignee: ptr("a2"), Priority: ticket.Low},
		{Breached: ptr(true)}, {Breached: ptr(false), Status: ticket.StatusOpen}, {Breached: ptr(true), Priority: ticket.Urgent, Assignee: ptr("a1")},
	} {
		var want []string
		for _, tk := range all {
			if (f.Status == "" || tk.Status == f.Status) && (f.Priority == "" || tk.Priority == f.Priority) &&
				(f.Assignee == nil || tk.Assignee == *f.Assignee) && (f.Breached == nil || tk.Breached == *f.Breached) {
				want = append(want, tk.Subject)
			}
		}
		n, err := s.Count(e.Ctx, e.Tenant, f)
		if err != nil || n != int64(len(want)) {
			t.Fatalf("%+v: count %d, want %d (%v)", f, n, len(want), err)
		}
		// Paged three at a time, oldest first.
		var got []string
		after := ""
		for {
			page, err := s.List(e.Ctx, e.Tenant, f, 3, after)
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range page.Tickets {
				got = append(got, tk.Subject)
			}
			if !page.HasNext {
				break
			}
			after = page.Cursors[len(page.Cursors)-1]
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%+v: listed %v, want %v", f, got, want)
		}
	}
}

func TestEraseAndExport(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services.Tickets
	ann := e.Person(t, "ann@example.org")
	bob := e.Person(t, "bob@example.org")
	tk, err := s.Open(e.Ctx, e.Tenant, ticket.OpenInput{ProfileID: ann, Subject: "Ann's refund", Body: "Order 42"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Open(e.Ctx, e.Tenant, ticket.OpenInput{ProfileID: bob, Subject: "Bob's question"})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []ticket.CommentInput{
		{TicketID: tk.ID, Body: "Hello Ann", Author: "agent"},
		{TicketID: tk.ID, Body: "Ann's card ends 1234", Author: "agent", Internal: true},
		{TicketID: tk.ID, Body: "Thanks, Ann", ByCustomer: true},
		{TicketID: other.ID, Body: "Hello Bob", Author: "agent"},
	} {
		if _, _, err := s.AddComment(e.Ctx, e.Tenant, in); err != nil {
			t.Fatal(err)
		}
	}
	ex, err := ticket.ExportProfile(e.Ctx, e.Tenant, ann)
	if err != nil || len(ex) != 1 || ex[0].Body != "Order 42" || len(ex[0].Comments) != 2 || !ex[0].Comments[1].ByYou {
		t.Fatalf("export: %+v %v", ex, err)
	}
	if err := ticket.EraseProfile(e.Ctx, e.Tenant, ann); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(e.Ctx, e.Tenant, tk.ID)
	if got.ProfileID != "" || got.Subject != ticket.ErasedSubject || got.Body != "" || got.Status != ticket.StatusOpen || got.FirstResponseAt.IsZero() {
		t.Fatalf("erased ticket: %+v", got)
	}
	if cs, _ := s.Comments(e.Ctx, e.Tenant, tk.ID, true, 10, ""); len(cs.Comments) != 0 {
		t.Fatalf("comments left: %+v", cs)
	}
	if cs, _ := s.Comments(e.Ctx, e.Tenant, other.ID, true, 10, ""); len(cs.Comments) != 1 {
		t.Fatalf("another person's comments went: %+v", cs)
	}
	if ex, _ := ticket.ExportProfile(e.Ctx, e.Tenant, ann); len(ex) != 0 {
		t.Fatalf("exported after erasure: %+v", ex)
	}
	// Merges carry tickets along.
	if err := ticket.MoveProfile(e.Ctx, e.Tenant, bob, ann); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(e.Ctx, e.Tenant, other.ID); got.ProfileID != ann {
		t.Fatalf("moved: %+v", got)
	}
}

// TestUnmergeGivesBack: a merge brings the source's tickets (with the
// comments it wrote), tasks and lifecycle stage to the survivor; the
// unmerge gives them back, and the survivor its own stage.
func TestUnmergeGivesBack(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services
	older := e.Person(t, "old@example.org")
	newer := e.Person(t, "new@example.org")
	if _, err := s.Lifecycle.Set(e.Ctx, e.Tenant, older, profile.Lead, "rep"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lifecycle.Set(e.Ctx, e.Tenant, newer, profile.Customer, "rep"); err != nil {
		t.Fatal(err)
	}
	tk, err := s.Tickets.Open(e.Ctx, e.Tenant, ticket.OpenInput{ProfileID: newer, Subject: "Newer's problem"})
	if err != nil {
		t.Fatal(err)
	}
	mine, err := s.Tickets.Open(e.Ctx, e.Tenant, ticket.OpenInput{ProfileID: older, Subject: "Older's problem"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Tickets.AddComment(e.Ctx, e.Tenant, ticket.CommentInput{TicketID: tk.ID, Body: "Still broken", ByCustomer: true}); err != nil {
		t.Fatal(err)
	}
	ta, err := s.Tasks.Create(e.Ctx, e.Tenant, task.CreateInput{Subject: "Call newer", ProfileID: newer})
	if err != nil {
		t.Fatal(err)
	}
	survivor, err := s.Identity.Merge(e.Ctx, e.Tenant, older, newer, "same person", "t")
	if err != nil || survivor.ID != older || survivor.Lifecycle != profile.Customer {
		t.Fatalf("merge: %+v %v", survivor, err)
	}
	if got, _ := s.Tickets.Get(e.Ctx, e.Tenant, tk.ID); got.ProfileID != older {
		t.Fatalf("merged: ticket on %s", got.ProfileID)
	}
	recs, err := identity.History(e.Ctx, e.Tenant, older)
	if err != nil || len(recs) == 0 {
		t.Fatal(err)
	}
	if _, err := s.Identity.Unmerge(e.Ctx, e.Tenant, recs[0].ID, "t"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Tickets.Get(e.Ctx, e.Tenant, tk.ID); got.ProfileID != newer {
		t.Fatalf("unmerged: the ticket stays on %s", got.ProfileID)
	}
	if got, _ := s.Tickets.Get(e.Ctx, e.Tenant, mine.ID); got.ProfileID != older {
		t.Fatalf("unmerged: the survivor's own ticket moved to %s", got.ProfileID)
	}
	cs, _ := s.Tickets.Comments(e.Ctx, e.Tenant, tk.ID, true, 10, "")
	if len(cs.Comments) != 1 || cs.Comments[0].AuthorProfileID != newer {
		t.Fatalf("unmerged: comments %+v", cs.Comments)
	}
	if got, _ := s.Tasks.Get(e.Ctx, e.Tenant, ta.ID); got.ProfileID != newer {
		t.Fatalf("unmerged: the task stays on %s", got.ProfileID)
	}
	if a, b := e.Profile(t, older).Lifecycle, e.Profile(t, newer).Lifecycle; a != profile.Lead || b != profile.Customer {
		t.Fatalf("unmerged stages: survivor %s, restored %s", a, b)
	}
}
