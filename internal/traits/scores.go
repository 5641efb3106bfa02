package traits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/settings"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/internal/traits/scores"
	"github.com/halo-cdp/halo/store"
)

// Built-in scores (package scores holds the formulas). Every profile
// keeps a scores.Tally (orders, revenue, first and last order, events per
// UTC day for 90 days), updated with the computed state in ingest's
// compare-and-swap. A merge adds the two tallies (identity's fold); an
// unmerge recounts them from events, like computed traits. Which event
// is an order and which of its properties is the order's value are
// workspace settings (ScoreSettings); changing them recounts every
// profile in the background (a backfill with progress).
//
// RFM needs the workspace's quintile boundaries, and churn risk and
// lifetime value its typical gap between orders: a summary computed from
// a uniform sample of at most scores.SampleSize buyers, in one pass over
// the profiles (SummaryEvery apart at most, refreshed when the workspace
// is in use and the stored one is older; one instance at a time by a
// lease). A new summary re-evaluates the segments that read the scores it
// moves.

// Defaults of the score settings.
const (
	DefaultOrderEvent      = "order_completed"
	DefaultRevenueProperty = "revenue"
)

// SummaryEvery is how old the workspace summary may grow before a reader
// refreshes it in the background; SummaryBootstrapEvery is that age while
// the summary has too few buyers for RFM (a new workspace filling up).
var (
	SummaryEvery          = time.Hour
	SummaryBootstrapEvery = time.Minute
)

// The settings documents' keys. Each workspace has one document of each,
// found by key (the settings collection's by_key index is unique per
// workspace). Their _id is a NewID: ids are unique across workspaces, so
// a fixed _id ("scores-summary", as before issue 15) belonged to the first
// workspace that wrote it, and every other workspace's insert was refused
// as a duplicate forever. Documents stored under those fixed ids are
// still found by their key.
const (
	scoreSettingsKey = "scores"
	scoreSummaryKey  = "scores-summary"
)

// ScoreSettings are the workspace's order settings.
type ScoreSettings struct {
	OrderEvent      string
	RevenueProperty string
}

// scoreDoc is the stored score settings (settings collection, key
// "scores"); Rev stamps tallies counted under them.
type scoreDoc struct {
	ID              string    `bson:"_id"`
	WorkspaceID     string    `bson:"workspaceId"`
	Key             string    `bson:"key"`
	OrderEvent      string    `bson:"orderEvent"`
	RevenueProperty string    `bson:"revenueProperty"`
	Rev             int64     `bson:"rev"`
	UpdatedAt       time.Time `bson:"updatedAt"`
	UpdatedBy       string    `bson:"updatedBy,omitempty"`
	Backfill        Backfill  `bson:"backfill"`
	Version         int64     `bson:"version"`
}

func (d *scoreDoc) revision() int64       { return d.Rev }
func (d *scoreDoc) backfillOf() *Backfill { return &d.Backfill }
func (d *scoreDoc) bump() int64           { d.Version++; return d.Version - 1 }

// ScoreSettingsState is the settings with their recount's progress.
type ScoreSettingsState struct {
	ScoreSettings
	UpdatedAt time.Time
	Backfill  Backfill
}

func (d *scoreDoc) state() *ScoreSettingsState {
	if d == nil {
		return &ScoreSettingsState{ScoreSettings: ScoreSettings{OrderEvent: DefaultOrderEvent, RevenueProperty: DefaultRevenueProperty},
			Backfill: Backfill{Status: Done}}
	}
	return &ScoreSettingsState{ScoreSettings: ScoreSettings{OrderEvent: d.OrderEvent, RevenueProperty: d.RevenueProperty},
		UpdatedAt: d.UpdatedAt.UTC(), Backfill: d.Backfill}
}

// orderConfig is what counting needs of the settings.
type orderConfig struct {
	event string
	path  string
	rev   int64
}

func (d *scoreDoc) orders() *orderConfig {
	if d == nil {
		return &orderConfig{event: DefaultOrderEvent, path: DefaultRevenueProperty}
	}
	return &orderConfig{event: d.OrderEvent, path: d.RevenueProperty, rev: d.Rev}
}

// add counts one event into t.
func (c *orderConfig) add(t *scores.Tally, name string, at time.Time, props map[string]any, now time.Time) {
	order := name == c.event
	var value float64
	if order {
		value, _ = agg.NumberAt(props, c.path)
	}
	t.Add(at, order, value, now)
}

func loadScoreDoc(ctx context.Context, tn store.Tenant) (*scoreDoc, error) {
	return loadSetting[scoreDoc](ctx, tn, scoreSettingsKey)
}

// loadSetting reads the workspace's settings document with key (nil when
// there is none).
func loadSetting[T any](ctx context.Context, tn store.Tenant, key string) (*T, error) {
	var d T
	err := findSetting(ctx, tn, key, &d)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load settings %s: %w", key, err)
	}
	return &d, nil
}

// findSetting decodes the workspace's settings document with key into out
// (store.ErrNotFound when there is none).
func findSetting(ctx context.Context, tn store.Tenant, key string, out any) error {
	return settings.Find(ctx, tn, key, out)
}

// Orders returns the workspace's order settings (the defaults when it
// has set none): what analytics' revenue series adds up.
func Orders(ctx context.Context, tn store.Tenant) (ScoreSettings, error) {
	d, err := loadScoreDoc(ctx, tn)
	if err != nil {
		return ScoreSettings{}, err
	}
	return d.state().ScoreSettings, nil
}

// ScoreSettings returns the workspace's order settings and their recount.
func (e *Engine) ScoreSettings(ctx context.Context, tn store.Tenant) (*ScoreSettingsState, error) {
	d, err := loadScoreDoc(ctx, tn)
	if err != nil {
		return nil, err
	}
	return d.state(), nil
}

// SetScoreSettings stores new order settings and recounts every profile's
// tally in the background (also when they are unchanged: a way to recount
// data written before scores existed).
func (e *Engine) SetScoreSettings(ctx context.Context, tn store.Tenant, in ScoreSettings, actor string) (*ScoreSettingsState, error) {
	in.OrderEvent, in.RevenueProperty = strings.TrimSpace(in.OrderEvent), strings.TrimSpace(in.RevenueProperty)
	r := rule.Rule{Event: &rule.EventCond{Name: in.OrderEvent}}
	if err := rule.Validate(r, nil); err != nil {
		if ae, ok := apperr.As(err); ok {
			return nil, apperr.Invalid("input.orderEvent", "%s", ae.Message)
		}
		return nil, err
	}
	if in.RevenueProperty == "" || len(in.RevenueProperty) > rule.MaxKeyLen {
		return nil, apperr.Invalid("input.revenueProperty", "must be a property path of 1 to %d bytes", rule.MaxKeyLen)
	}
	if err := checkPath("input.revenueProperty", in.RevenueProperty); err != nil {
		return nil, err
	}
	if err := register(ctx, tn); err != nil {
		return nil, err
	}
	now := e.now().Truncate(time.Millisecond)
	for attempt := 0; attempt < 20; attempt++ {
		old, err := loadScoreDoc(ctx, tn)
		if err != nil {
			return nil, err
		}
		d := &scoreDoc{Key: scoreSettingsKey, OrderEvent: in.OrderEvent, RevenueProperty: in.RevenueProperty,
			UpdatedAt: now, UpdatedBy: actor, Backfill: Backfill{Status: Pending}, Version: 1}
		if old == nil {
			d.ID, d.Rev = store.NewID(), newRev(nil)
			err = settings.Insert(ctx, tn, d)
		} else {
			d.ID, d.Rev = old.ID, max(newRev(nil), old.Rev+1)
			d.Version = old.Version + 1
			err = settings.Replace(ctx, tn, d, old.Version)
		}
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrDuplicateKey) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store score settings: %w", err)
		}
		e.invalidate(tn.Workspace())
		slog.InfoContext(ctx, "score settings changed", "workspace", tn.Workspace(), "actor", actor,
			"orderEvent", in.OrderEvent, "revenueProperty", in.RevenueProperty)
		e.startBackfill(tn, scoresSubject, d.Rev)
		return d.state(), nil
	}
	return nil, apperr.New(apperr.Conflict, "score settings are being changed concurrently; retry")
}

// tallyChanges are the score keys a tally change can move.
func tallyChanges(orders, days int64, t *scores.Tally) []string {
	var out []string
	if activitySum(t) != days {
		out = append(out, scores.KeyEngagement)
	}
	if t.Orders != orders {
		out = append(out, scores.OrderKeys...)
	}
	return out
}

func activitySum(t *scores.Tally) int64 {
	var n int64
	for _, d := range t.Activity {
		n += d.N
	}
	return n
}

// Scores returns p's scores at now (the engine's clock when zero) and the
// input they were computed from.
func (e *Engine) Scores(ctx context.Context, tn store.Tenant, p *profile.Profile, now time.Time) (scores.Scores, scores.Input, error) {
	if now.IsZero() {
		now = e.now()
	}
	w, err := e.Summary(ctx, tn)
	if err != nil {
		return scores.Scores{}, scores.Input{}, err
	}
	in := p.Tally.Input(now, p.FirstSeenAt, p.LastSeenAt, w)
	return scores.Compute(in), in, nil
}

// summaryDoc is the stored workspace summary (settings collection).
type summaryDoc struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	Key         string    `bson:"key"`
	Recency     []float64 `bson:"recency"`
	Frequency   []float64 `bson:"frequency"`
	Monetary    []float64 `bson:"monetary"`
	TypicalGap  int64     `bson:"typicalGapMs"`
	Buyers      int       `bson:"buyers"`
	// Seen is how many buyers the sample was drawn from.
	Seen int64     `bson:"seen"`
	At   time.Time `bson:"at"`
	// Owner and LeaseUntil: the instance refreshing it (one at a time).
	Owner      string    `bson:"owner,omitempty"`
	LeaseUntil time.Time `bson:"leaseUntil,omitempty"`
	Version    int64     `bson:"version"`
}

func (e *Engine) summaryLock(ws string) *sync.Mutex {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.summaryLocks == nil {
		e.summaryLocks = map[string]*sync.Mutex{}
	}
	m, ok := e.summaryLocks[ws]
	if !ok {
		m = new(sync.Mutex)
		e.summaryLocks[ws] = m
	}
	return m
}

// stale tells whether the summary is due for a refresh at now.
func (d *summaryDoc) stale(now time.Time) bool {
	if d == nil || d.At.IsZero() {
		return true
	}
	every := SummaryEvery
	if d.Buyers < scores.MinSample {
		every = SummaryBootstrapEvery
	}
	return now.Sub(d.At) >= every
}

func cuts(x []float64) scores.Cuts {
	var c scores.Cuts
	copy(c[:], x)
	return c
}

func (d *summaryDoc) workspace() *scores.Workspace {
	if d == nil || d.At.IsZero() {
		return nil
	}
	return &scores.Workspace{Recency: cuts(d.Recency), Frequency: cuts(d.Frequency), Monetary: cuts(d.Monetary),
		TypicalGap: time.Duration(d.TypicalGap) * time.Millisecond, Buyers: d.Buyers, At: d.At.UTC()}
}

// SummaryInfo describes the workspace summary the scores use.
type SummaryInfo struct {
	At     time.Time
	Buyers int
	Seen   int64
	// TypicalGap is the median gap between orders of the sampled buyers
	// (0: none yet).
	TypicalGap time.Duration
	// The quintile boundaries.
	Recency, Frequency, Monetary scores.Cuts
}

func loadSummary(ctx context.Context, tn store.Tenant) (*summaryDoc, error) {
	return loadSetting[summaryDoc](ctx, tn, scoreSummaryKey)
}

// Summary returns the workspace's RFM boundaries and typical gap (nil
// before the first summary), cached like the definitions. A summary
// older than SummaryEvery (or none) starts a background refresh.
func (e *Engine) Summary(ctx context.Context, tn store.Tenant) (*scores.Workspace, error) {
	c, err := e.config(ctx, tn)
	if err != nil {
		return nil, err
	}
	return c.summary, nil
}

// SummaryInfo returns when and from how many buyers the summary was made
// (nil before the first).
func (e *Engine) SummaryInfo(ctx context.Context, tn store.Tenant) (*SummaryInfo, error) {
	d, err := loadSummary(ctx, tn)
	if err != nil || d == nil || d.At.IsZero() {
		return nil, err
	}
	w := d.workspace()
	return &SummaryInfo{At: w.At, Buyers: w.Buyers, Seen: d.Seen, TypicalGap: w.TypicalGap,
		Recency: w.Recency, Frequency: w.Frequency, Monetary: w.Monetary}, nil
}

// RefreshSummaryInfo refreshes the summary now (RefreshSummary, forced)
// and returns the new one's SummaryInfo, or nil when another instance
// held the lease, whose summary then stands (mutation
// refreshScoreSummary).
func (e *Engine) RefreshSummaryInfo(ctx context.Context, tn store.Tenant) (*SummaryInfo, error) {
	done, err := e.RefreshSummary(ctx, tn, true)
	if err != nil || !done {
		return nil, err
	}
	return e.SummaryInfo(ctx, tn)
}

// maybeRefresh starts a background refresh of a stale summary, once per
// process and workspace at a time. After a failed one it waits (doubling
// from RefreshRetryMin up to RefreshRetryMax) before the next, so a
// failure that persists is logged now and then, not on every load.
func (e *Engine) maybeRefresh(tn store.Tenant, d *summaryDoc) {
	if !d.stale(e.now()) {
		return
	}
	ws := tn.Workspace()
	e.mu.Lock()
	if e.refreshing == nil {
		e.refreshing = map[string]bool{}
	}
	if e.refreshing[ws] || time.Now().Before(e.refreshRetry[ws].at) {
		e.mu.Unlock()
		return
	}
	e.refreshing[ws] = true
	e.mu.Unlock()
	e.runs.Add(1)
	go func() {
		defer e.runs.Done()
		_, err := e.RefreshSummary(context.Background(), tn, false)
		e.mu.Lock()
		delete(e.refreshing, ws)
		var wait time.Duration
		if err != nil {
			if e.refreshRetry == nil {
				e.refreshRetry = map[string]retryAt{}
			}
			wait = min(max(2*e.refreshRetry[ws].wait, RefreshRetryMin), RefreshRetryMax)
			e.refreshRetry[ws] = retryAt{at: time.Now().Add(wait), wait: wait}
		} else {
			delete(e.refreshRetry, ws)
		}
		e.mu.Unlock()
		if err != nil {
			slog.Error("scores: refresh workspace summary", "workspace", ws, "err", err, "retryIn", wait.String())
		}
	}()
}

// RefreshRetryMin and RefreshRetryMax bound the wait before a background
// summary refresh is tried again after one failed.
var (
	RefreshRetryMin = 5 * time.Second
	RefreshRetryMax = 5 * time.Minute
)

// retryAt is when a workspace's background refresh may run again after a
// failure, and the wait that led there.
type retryAt struct {
	at   time.Time
	wait time.Duration
}

// claimAttempts bounds the claims of one refresh that lose a race.
const claimAttempts = 20

// RefreshSummary recomputes the workspace summary from a uniform sample
// of at most scores.SampleSize buyers (one pass over the profiles) unless
// another instance holds the lease or, without force, it is still fresh;
// it reports whether it did. Segments reading the RFM scores, churn risk
// or lifetime value are then re-evaluated (Segments.RebuildTouched).
//
// Another instance winning the lease (a claim's write losing a race, or
// the lease taken over during a long pass) is not an error: the refresh
// reports false and the winner's summary stands.
func (e *Engine) RefreshSummary(ctx context.Context, tn store.Tenant, force bool) (bool, error) {
	// The lease keeps other instances out; within this one (a forced
	// refresh racing the background one) callers take turns, else they
	// would take the lease from each other, since it is the same owner.
	turn := e.summaryLock(tn.Workspace())
	turn.Lock()
	defer turn.Unlock()
	claimed, err := e.claimSummary(ctx, tn, force)
	if err != nil || claimed == nil {
		return false, err
	}
	now := e.now()
	res := scores.NewReservoir(scores.SampleSize, uint64(now.UnixNano()))
	var mu sync.Mutex
	// Pages come concurrently; the sample stays uniform whatever order
	// rows arrive in.
	err = scanScores(ctx, tn, now, nil, func(page []scored) error {
		var rows []scores.Row
		for _, x := range page {
			if row, ok := scores.RowOf(x.in); ok {
				rows = append(rows, row)
			}
		}
		mu.Lock()
		for _, r := range rows {
			res.Offer(r)
		}
		mu.Unlock()
		return nil
	})
	if err != nil {
		e.releaseSummary(ctx, tn, claimed)
		return false, fmt.Errorf("sample buyers: %w", err)
	}
	w := scores.Summarize(res.Rows(), now.Truncate(time.Millisecond))
	out := *claimed
	out.Recency, out.Frequency, out.Monetary = w.Recency[:], w.Frequency[:], w.Monetary[:]
	out.TypicalGap, out.Buyers, out.Seen, out.At = w.TypicalGap.Milliseconds(), w.Buyers, res.Seen(), w.At
	out.Owner, out.LeaseUntil, out.Version = "", time.Time{}, claimed.Version+1
	switch err := settings.Replace(ctx, tn, out, claimed.Version); {
	case errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound):
		// The lease lapsed during the pass and another instance took it
		// over (or the document was removed): its summary wins.
		slog.WarnContext(ctx, "scores: workspace summary lease lost during the refresh; another instance makes it",
			"workspace", tn.Workspace(), "leaseUntil", claimed.LeaseUntil)
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store score summary: %w", err)
	}
	e.invalidate(tn.Workspace())
	// New RFM boundaries (or typical gap) move many profiles' scores at
	// once: the segments that read them re-evaluate every profile.
	if e.segments != nil {
		if err := e.segments.RebuildTouched(ctx, tn, "scores", rule.Touched{Computed: scores.SummaryKeys}); err != nil {
			slog.ErrorContext(ctx, "segments: re-evaluate after new score summary", "workspace", tn.Workspace(), "err", err)
		}
	}
	return true, nil
}

// claimSummary takes the workspace summary's lease for this engine: when
// it is free, lapsed or already this engine's, and (without force) the
// summary is due. It returns the document as claimed, or nil when another
// instance holds the lease or the summary is fresh.
//
// The claim is a compare-and-swap on the document's version (an insert
// when there is none). A write refused by a version conflict or, for an
// insert, by the unique key means another instance wrote first: the claim
// re-reads and decides again (after a short, growing pause), so it ends
// finding the winner's lease or fresh summary, or taking a free lease.
func (e *Engine) claimSummary(ctx context.Context, tn store.Tenant, force bool) (*summaryDoc, error) {
	me := e.owner()
	insertRefused := false
	for attempt := 0; ; attempt++ {
		d, err := loadSummary(ctx, tn)
		if err != nil {
			return nil, err
		}
		if d == nil && insertRefused {
			// An insert refused as a duplicate although this workspace has
			// no summary: no retry can change that.
			return nil, fmt.Errorf("claim score summary: insert refused, yet the workspace has no summary document: %w", store.ErrDuplicateKey)
		}
		wall := time.Now()
		switch {
		case d != nil && d.Owner != "" && d.Owner != me && wall.Before(d.LeaseUntil):
			return nil, nil // another instance is at it
		case !force && !d.stale(e.now()):
			return nil, nil
		}
		until := wall.Add(LeaseTTL).Truncate(time.Millisecond)
		var next summaryDoc
		if d == nil {
			next = summaryDoc{ID: store.NewID(), Key: scoreSummaryKey, Owner: me, LeaseUntil: until, Version: 1}
			err = settings.Insert(ctx, tn, next)
			insertRefused = errors.Is(err, store.ErrDuplicateKey)
		} else {
			next = *d
			next.Owner, next.LeaseUntil, next.Version = me, until, d.Version+1
			err = settings.Replace(ctx, tn, next, d.Version)
		}
		switch {
		case err == nil:
			return &next, nil
		case !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrDuplicateKey) && !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("claim score summary: %w", err)
		case attempt+1 == claimAttempts:
			return nil, fmt.Errorf("claim score summary: lost %d races in a row: %w", claimAttempts, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * time.Millisecond):
		}
	}
}

// releaseSummary gives up a lease claimed for a refresh that failed, so
// that another instance need not wait for it to lapse (best effort: a
// lease left behind lapses after LeaseTTL).
func (e *Engine) releaseSummary(ctx context.Context, tn store.Tenant, claimed *summaryDoc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	out := *claimed
	out.Owner, out.LeaseUntil, out.Version = "", time.Time{}, claimed.Version+1
	if err := settings.Replace(ctx, tn, out, claimed.Version); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
		slog.WarnContext(ctx, "scores: release the workspace summary lease", "workspace", tn.Workspace(), "err", err)
	}
}

// Derived is what an export shows of the computed traits and scores of p
// (their stored forms are packed): "computed" (values by key now) and
// "scores" (the scores now, with their explanations and the tally they
// were computed from).
func (e *Engine) Derived(ctx context.Context, tn store.Tenant, p *profile.Profile) (map[string]any, error) {
	values, err := e.Values(ctx, tn, p, nil, time.Time{})
	if err != nil {
		return nil, err
	}
	s, in, err := e.Scores(ctx, tn, p, time.Time{})
	if err != nil {
		return nil, err
	}
	activity := make([]any, 0, len(in.Activity))
	for _, d := range in.Activity {
		activity = append(activity, map[string]any{"day": time.Unix(d.Day*86400, 0).UTC().Format(time.DateOnly), "events": d.N})
	}
	sc := map[string]any{
		"rfm":           map[string]any{"recency": s.RFM.Recency, "frequency": s.RFM.Frequency, "monetary": s.RFM.Monetary, "label": s.RFM.Label},
		"engagement":    s.Engagement,
		"churnRisk":     s.ChurnRisk,
		"lifetimeValue": s.LifetimeValue,
		"explain":       s.Explain,
		"orders":        in.Orders,
		"revenue":       in.Revenue,
		"activity":      activity,
	}
	if !in.FirstOrder.IsZero() {
		sc["firstOrderAt"] = in.FirstOrder.Format(time.RFC3339Nano)
		sc["lastOrderAt"] = in.LastOrder.Format(time.RFC3339Nano)
	}
	return map[string]any{"computed": values, "scores": sc}, nil
}

// scored is one live profile of a scan with its scores' input.
type scored struct {
	id  string
	raw bson.Raw // valid during the page's call only
	in  scores.Input
}

// scanScores reads every live profile of the workspace with the preview's
// scan (raw pages, only the tally decoded, GOMAXPROCS workers) and calls
// fn, concurrently, with each page's score inputs at now.
func scanScores(ctx context.Context, tn store.Tenant, now time.Time, w *scores.Workspace, fn func(page []scored) error) error {
	return profile.Scan(ctx, tn, runtime.GOMAXPROCS(0), func(_ int, docs []bson.Raw) error {
		page := make([]scored, 0, len(docs))
		for _, d := range docs {
			p, err := profile.DecodeFields(d, profile.Fields{Tally: true})
			if err != nil {
				return err
			}
			if p.MergingInto == "" {
				page = append(page, scored{id: p.ID, raw: d, in: p.Tally.Input(now, p.FirstSeenAt, p.LastSeenAt, w)})
			}
		}
		return fn(page)
	})
}
