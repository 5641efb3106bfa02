package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/halo-cdp/halo/internal/crm/ticket"
	"github.com/halo-cdp/halo/internal/realtime"
	"github.com/halo-cdp/halo/internal/traits"
	"github.com/halo-cdp/halo/store"
)

const (
	// sweepEvery is how often the segment sweeper re-evaluates the
	// profiles whose nextEvalAt has come, in every workspace that has
	// segments (segment.Workspaces).
	sweepEvery = time.Second
	// resumeEvery is how often computed trait backfills whose runner (here
	// or on another instance) died are taken over: a backfill's lease
	// lapses traits.LeaseTTL after its last page.
	resumeEvery = traits.LeaseTTL / 2
)

// Start runs the start-up work, in order, then starts the background
// work, and returns. Start-up work:
//   - merges and unmerges a crash interrupted are finished (before
//     anything reads the profiles they touch);
//   - the write path's journal starts (this instance's entry is written),
//     and the profiles of calls that instances dead for three journal
//     intervals left uncounted are recounted (ingest.Recover);
//   - the WithStartup work (the demo data load), in the order given.
//
// Background work, until Close:
//   - the realtime hub (Hub): its outbox tailer and pruner; every service
//     publishes its changes to it from here on;
//   - the journal, written every interval, and the recount of calls
//     interrupted since (an instance that died lately, a failed call);
//   - the segment sweeper, each second;
//   - the ticket sweeper, each second: tickets past a service-level
//     target are flagged breached (ticket.Sweep);
//   - computed trait backfills a previous process left unfinished (at
//     once, before Start returns), then every half lease those whose
//     runner died;
//   - the analytics roller, each second: the events stored behind the
//     journal's horizon are folded into the rollups (analytics.Roll).
//
// The score summary needs no loop: reading a stale one refreshes it in
// the background (traits.Engine.Summary).
//
// ctx bounds the start-up work only; the background work runs until
// Close. A failed start-up leaves nothing running. Start runs once: a
// second call, or one after Close, returns an error and starts nothing.
func (s *Services) Start(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.st == nil:
		s.mu.Unlock()
		return errors.New("app: Start needs a store (WithStore)")
	case s.closed:
		s.mu.Unlock()
		return errors.New("app: Start after Close")
	case s.started:
		s.mu.Unlock()
		return errors.New("app: started already")
	}
	s.started = true
	s.mu.Unlock()

	if n, err := s.Identity.Recover(ctx, s.st); err != nil {
		return fmt.Errorf("recover interrupted merges: %w", err)
	} else if n > 0 {
		s.logger.Info("finished interrupted merges", "count", n)
	}
	sys := s.st.Tenant(store.SystemWorkspace)
	if err := s.journal.Beat(ctx, sys); err != nil {
		return err
	}
	s.recount(ctx)
	for _, fn := range s.startup {
		if err := fn(ctx); err != nil {
			return err
		}
	}

	// Held until the loops run, so a concurrent Close waits for them to
	// be launched, then stops them.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("app: closed during Start")
	}
	// One hub per process: local changes reach local subscribers at once,
	// the tailer brings other instances' changes from the outbox.
	hub := realtime.NewHub(s.st, realtime.Options{Logger: s.logger, Retention: s.retain})
	s.hub, s.closeHub = hub, sync.OnceFunc(hub.Close)
	s.Publish(hub)
	loops, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	s.loops.Add(6)
	go func() {
		defer s.loops.Done()
		s.Segments.RunSweeper(loops, s.st, sweepEvery)
	}()
	go func() {
		defer s.loops.Done()
		every(loops, sweepEvery, func() { s.sweepTickets(loops) })
	}()
	// The beat has a loop of its own: a long recount must not make this
	// instance look dead to the others.
	go func() {
		defer s.loops.Done()
		every(loops, s.journal.Every(), func() {
			if err := s.journal.Beat(loops, sys); err != nil && loops.Err() == nil {
				s.logger.Error("write the ingest journal", "err", err)
			}
		})
	}()
	go func() {
		defer s.loops.Done()
		every(loops, s.journal.Every(), func() { s.recount(loops) })
	}()
	go func() {
		defer s.loops.Done()
		round := 0
		every(loops, rollEvery, func() {
			s.roll(loops, round%rollAllEvery == 0)
			round++
		})
	}()
	s.resume(loops)
	go func() {
		defer s.loops.Done()
		every(loops, resumeEvery, func() { s.resume(loops) })
	}()
	return nil
}

// How often the analytics roller folds the busy workspaces, and every
// how many rounds all of them.
const (
	rollEvery    = time.Second
	rollAllEvery = 30
)

// roll folds what was stored behind the journal's horizon into the
// analytics rollups: in the workspaces with calls lately, or in all
// workspaces ever folded. A failure is logged; the next round goes on
// from the last fold.
func (s *Services) roll(ctx context.Context, all bool) {
	sys := s.st.Tenant(store.SystemWorkspace)
	horizon, busy, err := s.journal.Horizon(ctx, sys)
	if err == nil {
		err = s.Analytics.Roll(ctx, s.st, horizon, busy, all)
	}
	if err != nil && ctx.Err() == nil {
		s.logger.Error("roll up events", "err", err)
	}
}

// sweepTickets flags the tickets whose targets passed, in every
// workspace with tickets, at the services' clock. A failure is logged;
// the next round finds the same tickets.
func (s *Services) sweepTickets(ctx context.Context) {
	wss, err := ticket.Workspaces(ctx, s.st)
	if err != nil && ctx.Err() == nil {
		s.logger.Error("list the workspaces with tickets", "err", err)
	}
	// One workspace's failure leaves the others swept.
	for _, ws := range wss {
		if _, err := s.Tickets.Sweep(ctx, s.st.Tenant(ws), s.Tickets.Now()); err != nil && ctx.Err() == nil {
			s.logger.Error("flag breached tickets", "workspace", ws, "err", err)
		}
	}
}

// every runs fn each interval d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// recount recounts the profiles of interrupted write calls
// (ingest.Recover). A failure is logged: the journal keeps the windows,
// and the next round tries again.
func (s *Services) recount(ctx context.Context) {
	// Each window recounted is logged by ingest.
	if _, err := s.Ingest.Recover(ctx, s.st); err != nil && ctx.Err() == nil {
		s.logger.Error("recount the profiles of interrupted calls", "err", err)
	}
}

// resume starts the computed trait backfills and the segment builds that
// are due (traits.Resume, segment.ResumeBuilds).
func (s *Services) resume(ctx context.Context) {
	if n, err := s.Traits.Resume(ctx, s.st); err != nil && ctx.Err() == nil {
		s.logger.Error("resume computed trait backfills", "err", err)
	} else if n > 0 {
		s.logger.Info("resumed computed trait backfills", "count", n)
	}
	if n, err := s.Segments.ResumeBuilds(ctx, s.st); err != nil && ctx.Err() == nil {
		s.logger.Error("resume segment builds", "err", err)
	} else if n > 0 {
		s.logger.Info("resumed segment builds", "count", n)
	}
}

// Hub is the realtime hub Start created (nil before): subscriptions are
// made on it.
func (s *Services) Hub() *realtime.Hub {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hub
}

// StopRealtime closes the hub, if Start made one: every subscription
// ends (its channel is closed) and the tailer and pruner stop. A server
// calls it as its HTTP shutdown begins, since open subscription streams
// would hold the shutdown; Close calls it too. Idempotent; every call
// returns once the hub is closed.
func (s *Services) StopRealtime() {
	s.mu.Lock()
	closeHub := s.closeHub
	s.mu.Unlock()
	if closeHub != nil {
		closeHub()
	}
}

// Close stops the background work Start started and waits for it: the
// sweeper and the backfill resumer, then the hub. Backfills and summary
// refreshes already under way are not waited for: they hold leases that
// lapse, and the next start (or another instance) takes them over.
// Idempotent, and safe without Start (it then only makes Start refuse).
func (s *Services) Close() {
	s.mu.Lock()
	s.closed = true
	stop := s.stop
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.loops.Wait()
	s.StopRealtime()
	if s.st != nil {
		// A clean stop: nothing of this instance's is left to recount.
		if err := s.journal.Close(context.Background(), s.st.Tenant(store.SystemWorkspace)); err != nil {
			s.logger.Error("close the ingest journal", "err", err)
		}
	}
}
