package resolvers

import (
	"time"

	"github.com/halo-cdp/halo/graph/model"
	"github.com/halo-cdp/halo/internal/crm/task"
)

func toTask(t *task.Task, now time.Time) *model.Task {
	out := &model.Task{ID: t.ID, Subject: t.Subject, Assignee: optional(t.Assignee), Status: model.TaskStatus(t.Status),
		Overdue: t.Overdue(now), CreatedAt: t.CreatedAt, ProfileID: t.ProfileID, AccountID: t.AccountID, DealID: t.DealID}
	if !t.DueAt.Equal(task.NoDue) {
		due := t.DueAt
		out.DueAt = &due
	}
	if !t.CompletedAt.IsZero() {
		done := t.CompletedAt
		out.CompletedAt = &done
	}
	return out
}
