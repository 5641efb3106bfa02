package task_test

import (
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/crm/task"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
)

var start = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func TestTasks(t *testing.T) {
	e := apptest.New(t, start)
	s := e.Services.Tasks
	res, err := e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: []identity.Identifier{{Type: identity.Email, Value: "ann@acme.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	ann := res.Profile.ID
	due := func(d time.Duration) *time.Time { at := start.Add(d); return &at }
	a, err := s.Create(e.Ctx, e.Tenant, task.CreateInput{Subject: " Call Ann ", DueAt: due(time.Hour), Assignee: "rep-1", ProfileID: ann})
	if err != nil || a.Subject != "Call Ann" || a.Status != task.Open || a.ProfileID != ann {
		t.Fatalf("create: %+v %v", a, err)
	}
	if _, err := s.Create(e.Ctx, e.Tenant, task.CreateInput{Subject: "Send the quote", DueAt: due(-time.Hour), Assignee: "rep-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(e.Ctx, e.Tenant, task.CreateInput{Subject: "Someday", Assignee: "rep-2"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in    task.CreateInput
		code  apperr.Code
		field string
	}{
		{task.CreateInput{Subject: " "}, apperr.BadUserInput, "input.subject"},
		{task.CreateInput{Subject: "x", ProfileID: "nope"}, apperr.NotFound, ""},
		{task.CreateInput{Subject: "x", AccountID: "nope"}, apperr.NotFound, ""},
		{task.CreateInput{Subject: "x", DealID: "nope"}, apperr.NotFound, ""},
	} {
		_, err := s.Create(e.Ctx, e.Tenant, c.in)
		apptest.WantCode(t, err, c.code, c.field)
	}
	rep1 := "rep-1"
	count := func(f task.Filter, want int) {
		t.Helper()
		n, err := s.Count(e.Ctx, e.Tenant, f)
		page, perr := s.List(e.Ctx, e.Tenant, f, 100, "")
		if err != nil || perr != nil || n != int64(want) || len(page.Tasks) != want {
			t.Fatalf("%+v: count %d, listed %d, want %d (%v %v)", f, n, len(page.Tasks), want, err, perr)
		}
	}
	count(task.Filter{}, 3)
	// Without a status, still soonest due first, undated last.
	all, _ := s.List(e.Ctx, e.Tenant, task.Filter{}, 10, "")
	if len(all.Tasks) != 3 || all.Tasks[0].Subject != "Send the quote" || all.Tasks[2].Subject != "Someday" {
		t.Fatalf("all tasks: %v", all.Tasks)
	}
	_, err = s.Create(e.Ctx, e.Tenant, task.CreateInput{Subject: "x", DueAt: &task.NoDue})
	apptest.WantCode(t, err, apperr.BadUserInput, "input.dueAt")
	count(task.Filter{Assignee: &rep1}, 2)
	count(task.Filter{Status: task.Open, DueBefore: start}, 1)
	count(task.Filter{Assignee: &rep1, DueBefore: start}, 1)
	count(task.Filter{DueBefore: start.Add(2 * time.Hour)}, 2)
	page, _ := s.List(e.Ctx, e.Tenant, task.Filter{Assignee: &rep1, Status: task.Open}, 10, "")
	if len(page.Tasks) != 2 || page.Tasks[0].Subject != "Send the quote" || !page.Tasks[0].Overdue(start) || page.Tasks[1].Overdue(start) {
		t.Fatalf("rep-1's open tasks, soonest first, the past one overdue: %+v", page.Tasks)
	}
	done, err := s.Complete(e.Ctx, e.Tenant, a.ID)
	if err != nil || done.Status != task.Done || done.CompletedAt.IsZero() || done.Overdue(start.Add(48*time.Hour)) {
		t.Fatalf("complete: %+v %v", done, err)
	}
	_, err = s.Complete(e.Ctx, e.Tenant, a.ID)
	apptest.WantCode(t, err, apperr.BadUserInput, "id")
	_, err = s.Complete(e.Ctx, e.Tenant, "nope")
	apptest.WantCode(t, err, apperr.NotFound, "")
	count(task.Filter{Status: task.Done}, 1)
	// rep-1's tasks, done ones among them: still by due date.
	mine, _ := s.List(e.Ctx, e.Tenant, task.Filter{Assignee: &rep1}, 10, "")
	if len(mine.Tasks) != 2 || mine.Tasks[0].Subject != "Send the quote" || mine.Tasks[1].Status != task.Done {
		t.Fatalf("rep-1's tasks: %v", mine.Tasks)
	}

	// A merge re-links the person's tasks to the survivor; an erasure
	// deletes them.
	res, err = e.Services.Identity.Resolve(e.Ctx, e.Tenant, identity.Request{Identifiers: []identity.Identifier{{Type: identity.AnonymousID, Value: "newer"}}})
	if err != nil {
		t.Fatal(err)
	}
	newer := res.Profile.ID
	b, err := s.Create(e.Ctx, e.Tenant, task.CreateInput{Subject: "Follow up", ProfileID: newer})
	if err != nil {
		t.Fatal(err)
	}
	surv, err := e.Services.Identity.Merge(e.Ctx, e.Tenant, newer, ann, "same", "t")
	if err != nil || surv.ID != ann {
		t.Fatalf("merge: %v %v", surv, err)
	}
	if got, _ := s.Get(e.Ctx, e.Tenant, b.ID); got.ProfileID != ann {
		t.Fatalf("after the merge the task names %s, want the survivor %s", got.ProfileID, ann)
	}
	if _, err := e.Services.Privacy.Erase(e.Ctx, e.Tenant, ann, "asked", "t"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a.ID, b.ID} {
		_, err = s.Get(e.Ctx, e.Tenant, id)
		apptest.WantCode(t, err, apperr.NotFound, "")
	}
	count(task.Filter{}, 2)
}
