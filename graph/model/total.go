package model

import (
	"context"
	"errors"
)

// Total is embedded in every connection model (gqlgen.yml,
// embedExtraFields). The resolver that reads a page sets Count to count
// the whole list under the page's arguments; totalCount's resolver runs
// it (Of), so a query that does not select totalCount counts nothing.
type Total struct {
	Count func(ctx context.Context) (int64, error)
}

// Of is the connection's totalCount.
func (t Total) Of(ctx context.Context) (int, error) {
	if t.Count == nil {
		// Every resolver that builds a connection sets it: a bug, said so.
		return 0, errors.New("totalCount: this connection has no count")
	}
	n, err := t.Count(ctx)
	return int(n), err
}
