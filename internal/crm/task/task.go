// Package task holds CRM tasks: next steps with a due date and an
// assignee, linked to a person, an account or a deal, flagged overdue
// once their due date passes open.
package task

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/internal/crm/story"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/store"
)

// The collection package task owns.
const (
	Tasks              = "tasks"
	TasksByAssignee    = "by_assignee"     // (assignee, status, dueAt): my open tasks, soonest due first
	TasksByStatus      = "by_status"       // (status, dueAt)
	TasksByAssigneeDue = "by_assignee_due" // (assignee, dueAt): all my tasks, soonest due first
	TasksByDue         = "by_due"          // (dueAt)
	TasksByProfile     = "by_profile"      // (profileId)
	TasksByAccountID   = "by_account"      // (accountId)
	TasksByDealID      = "by_deal"         // (dealId)
	maxSubjectLen      = 512
	maxAssigneeLen     = 256
)

// Collections declares it and its indexes.
var Collections = []store.CollectionSpec{
	{Name: Tasks, Indexes: []store.Index{
		{Name: TasksByAssignee, Fields: []string{"assignee", "status", "dueAt"}},
		{Name: TasksByStatus, Fields: []string{"status", "dueAt"}},
		{Name: TasksByAssigneeDue, Fields: []string{"assignee", "dueAt"}},
		{Name: TasksByDue, Fields: []string{"dueAt"}},
		{Name: TasksByProfile, Fields: []string{"profileId"}},
		{Name: TasksByAccountID, Fields: []string{"accountId"}},
		{Name: TasksByDealID, Fields: []string{"dealId"}},
	}},
}

// Statuses.
const (
	Open = "OPEN"
	Done = "DONE"
)

// NoDue is DueAt when a task has no due date (indexed: always set).
var NoDue = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// Task is one next step.
type Task struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	Subject     string    `bson:"subject"`
	Assignee    string    `bson:"assignee"`
	Status      string    `bson:"status"`
	DueAt       time.Time `bson:"dueAt"`
	// Links: "" when none (indexed: always set).
	ProfileID string `bson:"profileId"`
	// OriginProfileID is the profile the task was made for, kept through
	// merges so that an unmerge gives the task back.
	OriginProfileID string    `bson:"originProfileId,omitempty"`
	AccountID       string    `bson:"accountId"`
	DealID          string    `bson:"dealId"`
	CreatedAt       time.Time `bson:"createdAt"`
	UpdatedAt       time.Time `bson:"updatedAt"`
	CompletedAt     time.Time `bson:"completedAt,omitempty"`
	Version         int64     `bson:"version"`
}

// Overdue tells whether the task is open past its due date at now.
func (t *Task) Overdue(now time.Time) bool {
	return t.Status == Open && !t.DueAt.Equal(NoDue) && t.DueAt.Before(now)
}

// Deps are what the service needs from outside the package.
type Deps struct {
	Now func() time.Time
	// Timeline gets a task's creation and completion on its person's
	// timeline.
	Timeline story.Timeline
}

// Service is the tasks domain (New).
type Service struct {
	now      func() time.Time
	timeline story.Timeline
}

// New builds the service (Now: time.Now when nil).
func New(d Deps) *Service {
	now := d.Now
	if now == nil {
		now = time.Now
	}
	return &Service{now: now, timeline: d.Timeline}
}

// tell puts what happened to t (created, completed) on its person's
// timeline.
func (s *Service) tell(ctx context.Context, tn store.Tenant, t *Task, action string) {
	props := map[string]any{"action": action, "taskId": t.ID, "status": t.Status}
	if t.DealID != "" {
		props["dealId"] = t.DealID
	}
	if t.AccountID != "" {
		props["accountId"] = t.AccountID
	}
	subject := "Task created: "
	if action == "completed" {
		subject = "Task completed: "
	}
	story.Post(ctx, tn, s.timeline, story.Item{Kind: "TASK", Subject: subject + t.Subject, Actor: t.Assignee,
		Key: fmt.Sprintf("task:%s:v%d", t.ID, t.Version), Properties: props, Account: t.AccountID, About: t.ProfileID, At: t.UpdatedAt}, t.ProfileID)
}

// Now is the service's clock (what overdue is judged at).
func (s *Service) Now() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// CreateInput is a new task.
type CreateInput struct {
	Subject   string
	DueAt     *time.Time
	Assignee  string
	ProfileID string
	AccountID string
	DealID    string
}

// Create stores a new open task (errors name fields of createTask's
// input; a link to something the workspace does not have is NOT_FOUND).
func (s *Service) Create(ctx context.Context, tn store.Tenant, in CreateInput) (*Task, error) {
	subject := strings.TrimSpace(in.Subject)
	if subject == "" || len(subject) > maxSubjectLen {
		return nil, apperr.Invalid("input.subject", "must be 1 to %d bytes", maxSubjectLen)
	}
	assignee := strings.TrimSpace(in.Assignee)
	if len(assignee) > maxAssigneeLen {
		return nil, apperr.Invalid("input.assignee", "is longer than %d bytes", maxAssigneeLen)
	}
	now := s.Now()
	t := &Task{ID: store.NewID(), Subject: subject, Assignee: assignee, Status: Open, DueAt: NoDue, AccountID: in.AccountID, DealID: in.DealID,
		CreatedAt: now, UpdatedAt: now, Version: 1}
	if in.DueAt != nil {
		t.DueAt = in.DueAt.UTC().Truncate(time.Millisecond)
		if !t.DueAt.Before(NoDue) {
			return nil, apperr.Invalid("input.dueAt", "must be before 9999-12-31")
		}
	}
	if in.ProfileID != "" {
		p, err := profile.Resolve(ctx, tn, in.ProfileID, identity.Redirect)
		if err != nil {
			return nil, notFound("input.profileId", err)
		}
		t.ProfileID, t.OriginProfileID = p.ID, p.ID
	}
	if in.AccountID != "" {
		if err := account.Exists(ctx, tn, in.AccountID); err != nil {
			return nil, notFound("input.accountId", err)
		}
	}
	if in.DealID != "" {
		if err := deal.Exists(ctx, tn, in.DealID); err != nil {
			return nil, notFound("input.dealId", err)
		}
	}
	if err := tn.C(Tasks).Insert(ctx, t); err != nil {
		return nil, fmt.Errorf("store task: %w", err)
	}
	if t.ProfileID != "" {
		// A merge's move or an erasure may have run between the
		// resolution and the insert: the task must not stay on a
		// retired or erased profile.
		retired, err := profile.Retired(ctx, tn, t.ProfileID)
		if err != nil {
			return nil, err
		}
		if retired {
			if err := tn.C(Tasks).Delete(ctx, t.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, fmt.Errorf("remove a task on a retired profile: %w", err)
			}
			return nil, apperr.New(apperr.NotFound, "input.profileId: profile %s was merged or erased meanwhile: try again", t.ProfileID)
		}
	}
	t.WorkspaceID = tn.Workspace()
	s.tell(ctx, tn, t, "created")
	return t, nil
}

func notFound(field string, err error) error {
	if apperr.CodeOf(err) == apperr.NotFound {
		return apperr.New(apperr.NotFound, "%s: %s", field, err.Error())
	}
	return err
}

// Complete marks task id done (NOT_FOUND for none; BAD_USER_INPUT on id
// when it is done already).
func (s *Service) Complete(ctx context.Context, tn store.Tenant, id string) (*Task, error) {
	for range 10 {
		t, err := s.Get(ctx, tn, id)
		if err != nil {
			return nil, err
		}
		if t.Status == Done {
			return nil, apperr.Invalid("id", "task %s is done already", id)
		}
		next := *t
		now := s.Now()
		next.Status, next.CompletedAt, next.UpdatedAt, next.Version = Done, now, now, t.Version+1
		err = tn.C(Tasks).Replace(ctx, &next, t.Version)
		if err == nil {
			s.tell(ctx, tn, &next, "completed")
			return &next, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("complete task %s: %w", id, err)
		}
	}
	return nil, apperr.New(apperr.Conflict, "task %s changed meanwhile: try again", id)
}

// Get reads task id (NOT_FOUND when none).
func (s *Service) Get(ctx context.Context, tn store.Tenant, id string) (*Task, error) {
	var t Task
	if err := tn.C(Tasks).Get(ctx, id, &t); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apperr.New(apperr.NotFound, "task %s not found", id)
		}
		return nil, fmt.Errorf("load task %s: %w", id, err)
	}
	return &t, nil
}

// Filter picks tasks: by assignee and status, due before a time
// (zero: any); empty fields pick all.
type Filter struct {
	Assignee  *string
	Status    string
	DueBefore time.Time
}

func (f Filter) query() store.Query {
	var q store.Query
	switch {
	case f.Assignee != nil && f.Status != "":
		q = store.Query{Index: TasksByAssignee, Eq: []any{*f.Assignee, f.Status}}
	case f.Assignee != nil:
		q = store.Query{Index: TasksByAssigneeDue, Eq: []any{*f.Assignee}}
	case f.Status != "":
		q = store.Query{Index: TasksByStatus, Eq: []any{f.Status}}
	default:
		q = store.Query{Index: TasksByDue}
	}
	// Every index ends with the due date: the range reads only what is
	// due before.
	if !f.DueBefore.IsZero() {
		q.Range = &store.Bound{Lt: store.DateTime(f.DueBefore)}
	}
	return q
}

// ListName names the order a filter reads, for its cursors.
func (f Filter) ListName() string { return "tasks-" + f.query().Index }

// Page is a page of tasks.
type Page struct {
	Tasks   []*Task
	Cursors []string
	HasNext bool
}

// List pages through the tasks f picks, soonest due first: one read of
// the index that answers f alone.
func (s *Service) List(ctx context.Context, tn store.Tenant, f Filter, first int, after string) (Page, error) {
	var out Page
	q := f.query()
	q.After, q.Limit = after, first+1
	docs, err := tn.C(Tasks).Find(ctx, q)
	if errors.Is(err, store.ErrBadCursor) {
		return out, apperr.Invalid("after", "malformed cursor")
	}
	if err != nil {
		return out, fmt.Errorf("list tasks: %w", err)
	}
	if len(docs) > first {
		docs, out.HasNext = docs[:first], true
	}
	for _, d := range docs {
		var t Task
		if err := d.Decode(&t); err != nil {
			return out, fmt.Errorf("decode task: %w", err)
		}
		out.Tasks = append(out.Tasks, &t)
		out.Cursors = append(out.Cursors, d.Key)
	}
	return out, nil
}

// Count is how many tasks f picks: an index count (every filter has an
// index that answers it alone).
func (s *Service) Count(ctx context.Context, tn store.Tenant, f Filter) (int64, error) {
	n, err := tn.C(Tasks).Count(ctx, f.query())
	if err != nil {
		return 0, fmt.Errorf("count tasks: %w", err)
	}
	return n, nil
}

// EraseProfile deletes the tasks linked to profileID (an erasure): a
// task about a person ("call Ann") is the person's data.
func EraseProfile(ctx context.Context, tn store.Tenant, profileID string) error {
	if _, err := tn.C(Tasks).DeleteMany(ctx, store.Query{Index: TasksByProfile, Eq: []any{profileID}}); err != nil {
		return fmt.Errorf("erase tasks of %s: %w", profileID, err)
	}
	return nil
}

// MoveProfile re-links sourceID's tasks to targetID (a merge). An unmerge
// leaves them on the survivor.
func MoveProfile(ctx context.Context, tn store.Tenant, sourceID, targetID string) error {
	return rewriteAll(ctx, tn, store.Query{Index: TasksByProfile, Eq: []any{sourceID}}, func(t *Task) bool {
		if t.ProfileID != sourceID {
			return false
		}
		t.ProfileID = targetID
		return true
	})
}

// rewriteAll applies change to every task q reads (store.RewriteAll).
func rewriteAll(ctx context.Context, tn store.Tenant, q store.Query, change func(*Task) bool) error {
	return store.RewriteAll(ctx, tn.C(Tasks), q, func(t *Task) string { return t.ID }, func(t *Task) *int64 { return &t.Version }, change)
}

// RestoreProfile gives restoredID back the tasks made for it (or for a
// profile merged into it before, origins) that a merge brought to
// holderID (an unmerge).
func RestoreProfile(ctx context.Context, tn store.Tenant, holderID, restoredID string, origins []string) error {
	return rewriteAll(ctx, tn, store.Query{Index: TasksByProfile, Eq: []any{holderID}}, func(t *Task) bool {
		if t.ProfileID != holderID || !slices.Contains(origins, t.OriginProfileID) {
			return false
		}
		t.ProfileID = restoredID
		return true
	})
}

// Exported is a task as a person's data export shows it.
type Exported struct {
	TaskID  string `json:"taskId"`
	Subject string `json:"subject"`
	Status  string `json:"status"`
	DueAt   string `json:"dueAt,omitempty"`
}

// ExportProfile lists the tasks linked to any of profileIDs (a person and
// the profiles merged into them).
func ExportProfile(ctx context.Context, tn store.Tenant, profileIDs ...string) ([]Exported, error) {
	var docs []store.Doc
	for _, id := range profileIDs {
		ds, err := tn.C(Tasks).Find(ctx, store.Query{Index: TasksByProfile, Eq: []any{id}})
		if err != nil {
			return nil, fmt.Errorf("tasks of %s: %w", id, err)
		}
		docs = append(docs, ds...)
	}
	out := []Exported{}
	for _, d := range docs {
		var t Task
		if err := d.Decode(&t); err != nil {
			return nil, fmt.Errorf("decode task: %w", err)
		}
		e := Exported{TaskID: t.ID, Subject: t.Subject, Status: t.Status}
		if !t.DueAt.Equal(NoDue) {
			e.DueAt = t.DueAt.Format(time.RFC3339)
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Exported) int { return strings.Compare(a.TaskID, b.TaskID) })
	return out, nil
}

// MoveAccount re-links sourceID's tasks to targetID (a merge of
// accounts), re-reading a task a concurrent write changed.
func MoveAccount(ctx context.Context, tn store.Tenant, sourceID, targetID string) error {
	return rewriteAll(ctx, tn, store.Query{Index: TasksByAccountID, Eq: []any{sourceID}}, func(t *Task) bool {
		if t.AccountID != sourceID {
			return false
		}
		t.AccountID = targetID
		return true
	})
}
