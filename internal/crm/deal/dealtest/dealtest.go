// Package dealtest makes deals for benchmarks that store them directly
// (a hundred thousand through the API would take minutes).
package dealtest

import (
	"fmt"
	"time"

	"github.com/halo-cdp/halo/internal/crm/deal"
	"github.com/halo-cdp/halo/store"
)

// Spread is deal i of a set spread over the default pipeline's six
// stages (closed ones won or lost 30 days after their creation), created
// up to 300 days before now, in EUR and USD, owned by 20 reps.
func Spread(i int, now time.Time) deal.Deal {
	stages := []string{"qualification", "discovery", "proposal", "negotiation", "won", "lost"}
	outcome := map[string]string{"won": deal.Won, "lost": deal.Lost}
	stage := stages[i%len(stages)]
	status := deal.Open
	if o, ok := outcome[stage]; ok {
		status = o
	}
	created := now.Add(-time.Duration(i%300) * 24 * time.Hour).UTC().Truncate(time.Millisecond)
	d := deal.Deal{ID: store.NewID(), Name: fmt.Sprint("deal ", i), Pipeline: deal.DefaultKey, Stage: stage, Status: status,
		Amount: int64(1000 + i%9000*100), Currency: []string{"EUR", "USD"}[i%2], Digits: 2, ExpectedCloseAt: deal.NoClose,
		OwnerID: fmt.Sprint("rep-", i%20), ContactIDs: []string{}, CreatedAt: created, UpdatedAt: created,
		History: []deal.Visit{{Stage: stage, EnteredAt: created}}, Version: 1}
	if status != deal.Open {
		d.ClosedAt = created.Add(30 * 24 * time.Hour)
	}
	return d
}
