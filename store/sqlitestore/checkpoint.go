package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// Checkpoints. In WAL mode every commit appends pages to the log, and a
// checkpoint copies them back into the database file. SQLite runs one by
// default inside the commit that crosses 1,000 pages, on the writer: the
// single writer then stops for the copy and its fsyncs, and every queued
// write waits. Here a goroutine of its own checkpoints up to twenty
// times a second (checkpointEvery, when there were commits), on a
// connection of its own, in PASSIVE mode, which never blocks
// the writer or readers: the copy runs on another core while the writer
// goes on. The writer's automatic checkpoint stays as a backstop at a
// much larger log (walBackstopPages), for a checkpointer that falls behind.
//
// A PASSIVE checkpoint copies the log but never rewinds it: SQLite starts
// the log over only when a write begins after every frame was copied and
// no reader still reads from the log, which under steady reads and writes
// almost never happens. The log then grew past the backstop, and from
// there every commit checkpointed on the writer, two fsyncs each. So the
// writer restarts the log itself, between two groups (a RESTART
// checkpoint needs the write lock, which a writer with a queue takes back
// at once after each commit: another connection would hardly ever get
// it). A restart copies what the PASSIVE left (frames a reader still
// needed), fsyncs, waits for the readers still in the log (at most
// restartWait; reads are pages of a query, short), and the next commit
// writes from the start of the log again. On a disk busy with the
// checkpointer's copying its fsyncs are slow: at 100,000 profiles under a
// full queue a restart took 100 to 300 ms whatever the log's length: restarting at
// every 16 MB cost a quarter of the writer's time, and taking one whenever
// the queue was empty for an instant slowed segment builds (which write
// in bursts) by a third. So the writer restarts a long log
// (walRestartPages) once it has been idle for idleRestart, and under
// writes that never pause for that long only once the log is very long
// (walForcePages): readers never search frames already copied, so a long
// log costs disk space, not reads.

const (
	// checkpointEvery is how often the checkpointer looks for new commits.
	checkpointEvery = 50 * time.Millisecond
	// walBackstopPages is the writer's own automatic checkpoint threshold
	// (pages of the default 4 KiB: about 512 MB of log), past the forced
	// restart: it acts only if restarts keep failing.
	walBackstopPages = 131072
	// walRestartPages is the log length (frames) from which the writer
	// restarts the log when idle: about 16 MB.
	walRestartPages = 4000
	// idleRestart is how long the writer must have had nothing to do
	// before it restarts a long log.
	idleRestart = 20 * time.Millisecond
	// restartBackoff is how long the writer waits after a restart a
	// reader held off before it tries again (each try holds writes back
	// up to restartWait).
	restartBackoff = time.Second
	// walForcePages is the log length from which it restarts the log
	// between any two groups: about 256 MB.
	walForcePages = 65536
	// restartWait bounds how long a restart holds writes back waiting
	// for readers.
	restartWait = 50 * time.Millisecond
	// busyTimeout is how long a connection waits for a lock another
	// process or a checkpoint holds.
	busyTimeout = 10 * time.Second
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
		if err := b.checkpoint(ctx, db); err != nil {
			slog.Warn("sqlite: checkpoint", "err", err)
		}
		cancel()
	}
}

// checkpoint copies the log into the database file (PASSIVE) and tells
// the writer how long the log is.
func (b *Backend) checkpoint(ctx context.Context, db *sql.DB) error {
	b.ckMu.Lock()
	defer b.ckMu.Unlock()
	var busy, frames, copied int
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
		return err
	}
	b.logFrames.Store(int64(frames))
	if int64(frames) >= b.restartFrames {
		select {
		case b.longLog <- struct{}{}: // an idle writer arms its restart
		default:
		}
	}
	return nil
}

// restartDue reports whether the log is at least frames long and no
// restart readers held off is being backed off from.
func (b *Backend) restartDue(frames int64) bool {
	return b.logFrames.Load() >= frames && time.Now().After(b.restartAfter)
}

// restart runs a RESTART checkpoint on the writer's connection, between
// groups, never beside the checkpointer's (SQLite would answer busy at
// once). A busy answer (a reader stayed past restartWait) is not a
// failure: the log stays long, and the writer tries again after
// restartBackoff.
func (b *Backend) restart() {
	b.ckMu.Lock()
	defer b.ckMu.Unlock()
	ctx := context.Background()
	conn, err := b.w.Conn(ctx)
	if err == nil {
		defer conn.Close()
		_, err = conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, restartWait.Milliseconds()))
	}
	if err == nil {
		var busy, frames, copied int
		start := time.Now()
		err = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &copied)
		slog.Debug("sqlite: restart the log", "busy", busy, "frames", frames, "copied", copied, "ms", time.Since(start).Milliseconds())
		if err == nil && busy == 0 {
			b.logFrames.Store(0) // until the checkpointer looks again
		} else {
			b.restartAfter = time.Now().Add(restartBackoff)
		}
		if _, rerr := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, busyTimeout.Milliseconds())); err == nil {
			err = rerr
		}
	}
	if err != nil {
		slog.Warn("sqlite: restart the log", "err", err)
	}
}
