package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/halo-cdp/halo/store"
)

// Group commit. Every write runs on the single writer connection, and a
// SQLite commit costs far more than the statement it commits (the dirty
// pages go to the WAL, the WAL index is updated, locks are taken and
// released). So the writer goroutine takes every write waiting in the
// queue and runs them in one transaction: under concurrent load, one
// commit serves many callers. Nobody waits for a group to fill: a write
// that finds the writer idle runs at once, alone.
//
// Each write still behaves as if it ran alone:
//   - its caller returns only after the commit that holds it, so what it
//     wrote is visible to any read that follows;
//   - an outcome that changes nothing (a duplicate key, a stale version, a
//     missing document) is that write's answer and the group goes on: a
//     failing statement is undone by SQLite alone, the transaction stays;
//   - any other failure (I/O, a full disk) rolls the group back and runs
//     its other writes again, each in a transaction of its own, so one
//     write's failure is never another's.
//
// Statements run under the writer's context, not the caller's: cancelling
// a statement inside a transaction makes SQLite roll the whole
// transaction back, which would undo the other callers' writes. A caller
// whose context ends before its write starts gets its context's error and
// nothing is written; once started, a write completes.

// maxGroup bounds the writes of one transaction, so that a long queue
// still commits (and answers its callers) regularly.
const maxGroup = 256

// errClosed answers writes submitted after Close.
var errClosed = errors.New("sqlite: store closed")

// writeOp is one caller's write, run by the writer goroutine.
type writeOp struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error
}

// write runs fn in the writer's next transaction and returns its outcome
// once that transaction committed (or failed). fn must not touch b.w
// other than through tx: the writer holds its only connection.
//
// The first write of each fn of a store.Together is held, and the held
// writes are queued as one: they run in the same group.
func (b *Backend) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	if !store.Held(ctx, b, op, b.submitHeld) {
		b.waiting.Add(1)
		select {
		case b.ops <- []*writeOp{op}:
			b.waiting.Add(-1)
		case <-ctx.Done():
			b.waiting.Add(-1)
			return ctx.Err()
		case <-b.quit:
			b.waiting.Add(-1)
			return errClosed
		}
	}
	// Once queued, wait for the answer even if ctx ends: the write may be
	// running, and its caller must learn whether it landed.
	return <-op.done
}

// submitHeld queues the writes a store.Together held as one entry of the
// queue (one per maxGroup of them). A write whose caller's context ends
// meanwhile is answered by the writer, which checks it before running it.
func (b *Backend) submitHeld(held []any) {
	ops := make([]*writeOp, len(held))
	for i, w := range held {
		ops[i] = w.(*writeOp)
	}
	b.waiting.Add(int64(len(ops)))
	defer b.waiting.Add(-int64(len(ops)))
	for chunk := range slices.Chunk(ops, maxGroup) {
		select {
		case b.ops <- chunk:
		case <-b.quit:
			for _, op := range chunk {
				op.done <- errClosed
			}
		}
	}
}

// writer runs queued writes in groups until Close.
func (b *Backend) writer() {
	defer close(b.writerDone)
	group := make([]*writeOp, 0, maxGroup)
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	for {
		// A long log is restarted once the writer has been idle a moment
		// (checkpoint.go); a write arriving meanwhile waits for it.
		if b.restartDue(b.restartFrames) {
			idle.Reset(idleRestart)
		}
		select {
		case ops := <-b.ops:
			idle.Stop()
			group = append(group[:0], ops...)
		case <-b.longLog:
			continue // the log grew long while the writer waited: arm the restart
		case <-idle.C:
			b.restart()
			continue
		case <-b.quit:
			return
		}
	fill:
		for len(group) < maxGroup {
			select {
			case ops := <-b.ops:
				group = append(group, ops...)
			default:
				break fill
			}
		}
		b.runGroup(group)
		clear(group)
		if b.restartDue(b.forceFrames) {
			b.restart()
		}
	}
}

// runGroup runs ops in one transaction (see the file comment) and answers
// each of them.
func (b *Backend) runGroup(ops []*writeOp) {
	results := make([]error, len(ops))
	if failed := b.tryGroup(ops, results); failed >= 0 {
		// The group was rolled back: the failing write keeps its error,
		// every other one runs again alone (those after it had not run).
		for i, op := range ops {
			if i != failed {
				results[i] = b.runAlone(op)
			}
		}
	}
	// Counted before answering, so that a caller sees its write counted.
	b.groups.Add(1)
	b.grouped.Add(int64(len(ops)))
	for i, op := range ops {
		op.done <- results[i]
	}
}

// tryGroup runs ops in one transaction and commits it. It returns -1 when
// the group is over (committed, or failed as a whole: results hold each
// write's answer), else the index of the write whose failure rolled the
// transaction back, results[i] holding its error; the other writes are
// then undone or not run.
func (b *Backend) tryGroup(ops []*writeOp, results []error) int {
	ctx := context.Background()
	tx, err := b.w.BeginTx(ctx, nil)
	if err != nil {
		for i := range ops {
			results[i] = fmt.Errorf("sqlite: begin: %w", err)
		}
		return -1
	}
	for i, op := range ops {
		if err := op.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		err := op.fn(tx)
		if err != nil && !outcome(err) {
			tx.Rollback() //nolint:errcheck // the failure reported is err
			results[i] = err
			return i
		}
		results[i] = err
	}
	if err := tx.Commit(); err != nil {
		tx.Rollback() //nolint:errcheck // the failure reported is err
		for i := range ops {
			if results[i] == nil || outcome(results[i]) {
				results[i] = fmt.Errorf("sqlite: commit: %w", err)
			}
		}
	}
	return -1
}

// runAlone runs one write in a transaction of its own.
func (b *Backend) runAlone(op *writeOp) error {
	results := make([]error, 1)
	b.tryGroup([]*writeOp{op}, results)
	return results[0]
}

// outcome tells a write's answer that leaves the transaction usable (the
// failing statement changed nothing) from a failure of the engine.
func outcome(err error) bool {
	return errors.Is(err, store.ErrDuplicateKey) || errors.Is(err, store.ErrConflict) ||
		errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrBadQuery)
}

// Waiting is the number of writes queued for the writer right now.
func (b *Backend) Waiting() int64 { return b.waiting.Load() }

// GroupStats reports how many write transactions the store committed or
// attempted and how many writes they held (their ratio is the average
// group size).
func (b *Backend) GroupStats() (groups, writes int64) {
	return b.groups.Load(), b.grouped.Load()
}
