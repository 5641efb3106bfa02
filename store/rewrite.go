package store

import (
	"context"
	"errors"
	"fmt"
)

// MaxRewrites bounds Rewrite's attempts.
const MaxRewrites = 20

// Rewrite applies change to document id of c and writes it by
// compare-and-swap, reading it again when a concurrent write landed
// first. It starts from seed when given (a copy the caller read), else
// reads it. change returns false to leave the document as it is; a
// document gone meanwhile is left too. version points at the document's
// version field, which Rewrite moves on. It is for the writes that must
// land whatever else changed (a merge's move, an erasure's edit), not for
// those a stale read must refuse (CONFLICT).
func Rewrite[T any](ctx context.Context, c Collection, id string, seed *T, version func(*T) *int64, change func(*T) bool) error {
	var doc T
	if seed != nil {
		doc = *seed
	} else if err := c.Get(ctx, id, &doc); errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read %s/%s: %w", c.spec.Name, id, err)
	}
	for range MaxRewrites {
		prev := *version(&doc)
		if !change(&doc) {
			return nil
		}
		*version(&doc) = prev + 1
		err := c.Replace(ctx, &doc, prev)
		if err == nil || errors.Is(err, ErrNotFound) {
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return fmt.Errorf("rewrite %s/%s: %w", c.spec.Name, id, err)
		}
		var zero T
		doc = zero
		if err := c.Get(ctx, id, &doc); errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read %s/%s: %w", c.spec.Name, id, err)
		}
	}
	return fmt.Errorf("rewrite %s/%s: too much contention: %w", c.spec.Name, id, ErrConflict)
}

// RewriteAll applies change to every document q reads, each by Rewrite,
// a page at a time (after the last document read, so a document change
// leaves where it was, or lets stand, is never read twice).
func RewriteAll[T any](ctx context.Context, c Collection, q Query, id func(*T) string, version func(*T) *int64, change func(*T) bool) error {
	q.Limit = 200
	for {
		docs, err := c.Find(ctx, q)
		if err != nil {
			return fmt.Errorf("read %s: %w", c.spec.Name, err)
		}
		for _, d := range docs {
			var doc T
			if err := d.Decode(&doc); err != nil {
				return fmt.Errorf("decode %s: %w", c.spec.Name, err)
			}
			if err := Rewrite(ctx, c, id(&doc), &doc, version, change); err != nil {
				return err
			}
			q.After = d.Key
		}
		if len(docs) < q.Limit {
			return nil
		}
	}
}
