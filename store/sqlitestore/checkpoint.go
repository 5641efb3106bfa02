package sqlitestore

import (
	"context"
	"database/sql"
	"log/slog"
	"time"
)

// Checkpoints. In WAL mode every commit appends pages to the log, and a
// checkpoint copies them back into the database file. SQLite runs one by
// default inside the commit that crosses 1,000 pages, on the writer: the
// single writer then stops for the copy and its fsyncs, and every queued
// write waits. Here a goroutine of its own checkpoints a few times a
// second on a connection of its own, in PASSIVE mode, which never blocks
// the writer or readers: the copy runs on another core while the writer
// goes on. The writer's automatic checkpoint stays as a backstop at a
// much larger log (walBackstopPages), for a checkpointer that falls behind.

const (
	// checkpointEvery is how often the checkpointer looks for new commits.
	checkpointEvery = 200 * time.Millisecond
	// walBackstopPages is the writer's own automatic checkpoint threshold
	// (pages of the default 4 KiB: about 80 MB of log).
	walBackstopPages = 20000
)

// checkpointer checkpoints the log after commits, until Close.
func (b *Backend) checkpointer(db *sql.DB) {
	defer close(b.checkpointDone)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	var seen int64
	for {
		select {
		case <-t.C:
		case <-b.quit:
			return
		}
		n := b.groups.Load()
		if n == seen {
			continue
		}
		seen = n
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
			slog.Warn("sqlite: checkpoint", "err", err)
		}
		cancel()
	}
}
