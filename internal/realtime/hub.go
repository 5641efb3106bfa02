package realtime

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/halo-cdp/halo/store"
)

// Options tune a Hub; zero fields take the defaults.
type Options struct {
	// Poll is how often the tailer reads new changes of each workspace
	// that has subscribers (default 50 ms).
	Poll time.Duration
	// Sweep is how often it re-reads the Overlap window for changes that
	// became visible late (default 500 ms).
	Sweep time.Duration
	// Overlap is how far behind the newest change seen a late change is
	// still found (default 2 s). See the package documentation.
	Overlap time.Duration
	// Buffer is each subscriber's channel capacity (default 256). A
	// subscriber whose buffer is full is dropped: its channel is closed.
	Buffer int
	// MaxPending caps the live changes held for a subscriber while it
	// replays from `after` (default 10,000); beyond it, it is dropped.
	MaxPending int
	// Retention is how long the outbox keeps changes (default
	// DefaultRetention), and PruneEvery how often the Hub prunes the
	// workspaces it wrote to (default a tenth of Retention, at most a
	// minute; negative disables pruning). The outbox is a delivery
	// buffer, not a log: the records it points at (events, membership
	// changes, consent records) are kept as their domains keep them.
	Retention, PruneEvery time.Duration
	Logger                *slog.Logger
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.Poll, 50*time.Millisecond)
	def(&o.Sweep, 500*time.Millisecond)
	def(&o.Overlap, 2*time.Second)
	def(&o.Retention, DefaultRetention)
	def(&o.PruneEvery, min(o.Retention/10, time.Minute))
	if o.Buffer <= 0 {
		o.Buffer = 256
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 10000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// DefaultRetention is how long the outbox keeps a change by default: long
// enough for a subscriber to reconnect and resume with `after`, short
// enough that the outbox stays a small fraction of the data at full
// ingest (a document per write call, about five changes per event: some
// 4.5 million changes at 1,000 events/s, in far fewer documents).
const DefaultRetention = 15 * time.Minute

// pruneRound caps the documents one prune round deletes per workspace:
// more than a minute of them at 5,000 events/s (at most one per change), so rounds
// keep up with full ingest, and a backlog (a longer retention shortened)
// is worked off over rounds.
const pruneRound = 1_000_000

// pageSize bounds one outbox read.
const pageSize = 1000

// Hub fans changes out to this process's subscribers. Create one per
// process with NewHub; Close it at shutdown.
type Hub struct {
	st     *store.Store
	opt    Options
	origin string

	mu      sync.Mutex
	tails   map[string]*tail // workspaces with subscribers
	written map[string]struct{}
	closed  bool

	wake chan struct{}
	stop chan struct{}
	done sync.WaitGroup
}

// tail is the tailer's position in one workspace's outbox.
type tail struct {
	subs      map[*sub]struct{}
	since     string           // never read below (the tail's start − Overlap)
	hi        string           // highest outbox document (batch) id read
	seen      map[string]int64 // batch ids read within Overlap of hi → their time
	lastSweep time.Time
}

type sub struct {
	ws     string
	filter func(Change) bool
	out    chan Change
	done   chan struct{} // closed when dropped or cancelled
	closed bool
	// Replay state (Subscribe with after): live changes wait in pending
	// until the replay has sent what the outbox holds; skip holds the
	// replayed ids so their live copies are not sent twice.
	after     string
	replaying bool
	pending   []Change
	skip      map[string]struct{}
}

// NewHub starts a hub over st (its tailer and pruner goroutines).
func NewHub(st *store.Store, opt Options) *Hub {
	opt.defaults()
	h := &Hub{
		st: st, opt: opt, origin: store.NewID(),
		tails: map[string]*tail{}, written: map[string]struct{}{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	h.done.Add(1)
	go h.tailLoop()
	if opt.PruneEvery > 0 {
		h.done.Add(1)
		go h.pruneLoop()
	}
	return h
}

// Close stops the goroutines and closes every subscriber's channel.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.stop)
	for _, tl := range h.tails {
		for s := range tl.subs {
			h.dropLocked(s)
		}
	}
	h.mu.Unlock()
	h.done.Wait()
}

// Publish appends cs to the workspace's outbox as one document (a batch;
// maxBatch changes at most, more make more documents, all in one store
// call) and delivers them, in order, to this process's subscribers at
// once. It sets each change's id, seq, workspace, origin and (if zero)
// time. It never blocks on a subscriber. Changes the store refused are
// not delivered; the first refusal is returned.
func (h *Hub) Publish(ctx context.Context, tn store.Tenant, cs ...Change) error {
	if len(cs) == 0 {
		return nil
	}
	now := time.Now().UTC()
	var docs []any
	for chunk := range slices.Chunk(cs, maxBatch) {
		b := batch{ID: store.NewID(), WorkspaceID: tn.Workspace(), At: now, Origin: h.origin, Version: 1, Changes: chunk}
		b.Seq = b.ID
		for i := range chunk {
			c := &chunk[i]
			c.ID = changeID(b.ID, i)
			c.Seq = c.ID
			c.WorkspaceID = tn.Workspace()
			c.Origin = h.origin
			if c.At.IsZero() {
				c.At = now
			}
		}
		docs = append(docs, b)
	}
	errs, err := tn.C(Changes).InsertMany(ctx, docs)
	if err != nil {
		return err
	}
	var first error
	h.mu.Lock()
	defer h.mu.Unlock()
	h.written[tn.Workspace()] = struct{}{}
	tl := h.tails[tn.Workspace()]
	for i, d := range docs {
		if i < len(errs) && errs[i] != nil {
			first = cmp.Or(first, errs[i])
			continue
		}
		if tl != nil {
			for _, c := range d.(batch).Changes {
				h.deliverLocked(tl, c)
			}
		}
	}
	return first
}

// maxBatch bounds the changes of one outbox document (a MongoDB document
// holds at most 16 MB; a change takes a few hundred bytes).
const maxBatch = 1000

// changeID is the id of the i-th change of batch: the batch's id, a slash
// and i in four digits, so that change ids sort as their batches do and,
// within one, in order (a subscriber resumes after one), whichever
// batches were minted side by side.
func changeID(batch string, i int) string { return fmt.Sprintf("%s/%04d", batch, i) }

// Subscribe returns a channel of the workspace's changes that filter
// accepts (nil accepts all), and a cancel function that ends the
// subscription (idempotent). The channel is closed on cancel, at Close,
// or when the subscriber falls Buffer changes behind.
//
// With after (a change id), the changes after it are replayed from the
// outbox first, then live ones follow, without duplicates. Without it,
// delivery starts now (with a fresh tail, changes of other instances up
// to Overlap old that this process had not seen may come too).
func (h *Hub) Subscribe(workspace string, filter func(Change) bool, after string) (<-chan Change, func()) {
	s := &sub{ws: workspace, filter: filter, out: make(chan Change, h.opt.Buffer), done: make(chan struct{}), after: after}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(s.out)
		return s.out, func() {}
	}
	tl := h.tails[workspace]
	if tl == nil {
		tl = &tail{
			subs: map[*sub]struct{}{}, seen: map[string]int64{},
			since: floorID(time.Now().Add(-h.opt.Overlap).UnixMilli()),
		}
		h.tails[workspace] = tl
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	tl.subs[s] = struct{}{}
	if after != "" {
		s.replaying, s.skip = true, map[string]struct{}{}
	}
	h.mu.Unlock()
	if after != "" {
		go h.replay(s)
	}
	return s.out, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.dropLocked(s)
	}
}

// Subscribers is how many subscriptions are open (tests, metrics).
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, tl := range h.tails {
		n += len(tl.subs)
	}
	return n
}

func (h *Hub) deliverLocked(tl *tail, c Change) {
	for s := range tl.subs {
		h.offerLocked(s, c)
	}
}

func (h *Hub) offerLocked(s *sub, c Change) {
	if s.closed {
		return
	}
	if s.replaying {
		if len(s.pending) >= h.opt.MaxPending {
			h.opt.Logger.Warn("realtime subscriber dropped: too many changes during replay", "workspace", s.ws)
			h.dropLocked(s)
			return
		}
		s.pending = append(s.pending, c)
		return
	}
	if s.after != "" && c.ID <= s.after {
		return
	}
	if _, dup := s.skip[c.ID]; dup {
		return
	}
	if s.filter != nil && !s.filter(c) {
		return
	}
	select {
	case s.out <- c:
	default:
		h.opt.Logger.Warn("realtime subscriber dropped: too slow", "workspace", s.ws, "buffer", h.opt.Buffer)
		h.dropLocked(s)
	}
}

// dropLocked ends s. The replay goroutine owns s.out while it runs, and
// closes it itself.
func (h *Hub) dropLocked(s *sub) {
	if s.closed {
		return
	}
	s.closed = true
	close(s.done)
	if !s.replaying {
		close(s.out)
	}
	if tl := h.tails[s.ws]; tl != nil {
		delete(tl.subs, s)
		if len(tl.subs) == 0 {
			delete(h.tails, s.ws)
		}
	}
}

// replay sends the outbox's changes after s.after, then switches s to
// live delivery, sending what arrived meanwhile (minus duplicates).
func (h *Hub) replay(s *sub) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	tn := h.st.Tenant(s.ws)
	last := s.after
	cursor := ""
	// From the batch holding s.after (a change of a document written
	// before batches is a document of its own).
	from := &store.Bound{Gt: s.after}
	if b, _, ok := strings.Cut(s.after, "/"); ok {
		from = &store.Bound{Gte: b}
	}
	for {
		docs, err := tn.C(Changes).Find(ctx, store.Query{
			Index: ChangesBySeq, Range: from, After: cursor, Limit: pageSize,
		})
		if err != nil {
			if ctx.Err() == nil {
				h.opt.Logger.Error("realtime replay", "workspace", s.ws, "err", err)
			}
			h.endReplay(s, true)
			return
		}
		for _, d := range docs {
			b, err := decodeBatch(d.Raw)
			if err != nil {
				h.opt.Logger.Error("realtime replay", "err", err)
				continue
			}
			for _, c := range b.Changes {
				if c.ID <= s.after {
					continue
				}
				s.skip[c.ID] = struct{}{}
				if c.ID > last {
					last = c.ID
				}
				if s.filter != nil && !s.filter(c) {
					continue
				}
				select {
				case s.out <- c:
				case <-s.done:
					h.endReplay(s, true)
					return
				}
			}
		}
		if len(docs) < pageSize {
			break
		}
		cursor = docs[len(docs)-1].Key
	}
	// Replayed ids older than Overlap before the newest cannot come again.
	if ms, ok := idTime(last); ok {
		floor := floorID(ms - h.opt.Overlap.Milliseconds())
		for id := range s.skip {
			if id < floor {
				delete(s.skip, id)
			}
		}
	}
	h.endReplay(s, false)
}

func (h *Hub) endReplay(s *sub, failed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if failed && !s.closed {
		h.dropLocked(s)
	}
	s.replaying = false
	if s.closed {
		close(s.out)
		return
	}
	pending := s.pending
	s.pending = nil
	for _, c := range pending {
		h.offerLocked(s, c)
	}
}

func (h *Hub) tailLoop() {
	defer h.done.Done()
	t := time.NewTicker(h.opt.Poll)
	defer t.Stop()
	for {
		h.mu.Lock()
		idle := len(h.tails) == 0
		h.mu.Unlock()
		if idle {
			select {
			case <-h.wake:
			case <-h.stop:
				return
			}
		}
		select {
		case <-t.C:
		case <-h.stop:
			return
		}
		h.mu.Lock()
		wss := make([]string, 0, len(h.tails))
		for ws := range h.tails {
			wss = append(wss, ws)
		}
		h.mu.Unlock()
		for _, ws := range wss {
			if err := h.poll(ws); err != nil {
				h.opt.Logger.Warn("realtime tail", "workspace", ws, "err", err)
			}
		}
	}
}

// poll reads one workspace's new changes (and, every Sweep, the Overlap
// window again) and delivers those not seen yet.
func (h *Hub) poll(ws string) error {
	h.mu.Lock()
	tl := h.tails[ws]
	if tl == nil {
		h.mu.Unlock()
		return nil
	}
	now := time.Now()
	sweep := tl.hi == "" || now.Sub(tl.lastSweep) >= h.opt.Sweep
	bound := &store.Bound{Gt: tl.hi}
	if sweep {
		lo := tl.since
		if ms, ok := idTime(tl.hi); ok {
			if f := floorID(ms - h.opt.Overlap.Milliseconds()); f > lo {
				lo = f
			}
		}
		bound = &store.Bound{Gte: lo}
	}
	h.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tn := h.st.Tenant(ws)
	var batches []batch
	cursor := ""
	for {
		docs, err := tn.C(Changes).Find(ctx, store.Query{Index: ChangesBySeq, Range: bound, After: cursor, Limit: pageSize})
		if err != nil {
			return err
		}
		for _, d := range docs {
			b, err := decodeBatch(d.Raw)
			if err != nil {
				return err
			}
			batches = append(batches, b)
		}
		if len(docs) < pageSize {
			break
		}
		cursor = docs[len(docs)-1].Key
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tails[ws] != tl {
		return nil // every subscriber left meanwhile
	}
	if sweep {
		tl.lastSweep = now
	}
	for _, b := range batches {
		if _, ok := tl.seen[b.ID]; ok {
			continue
		}
		ms, _ := idTime(b.ID)
		tl.seen[b.ID] = ms
		if b.ID > tl.hi {
			tl.hi = b.ID
		}
		if b.Origin == h.origin {
			continue // delivered by Publish already
		}
		for _, c := range b.Changes {
			h.deliverLocked(tl, c)
		}
	}
	if ms, ok := idTime(tl.hi); ok {
		cutoff := ms - h.opt.Overlap.Milliseconds()
		for id, t := range tl.seen {
			if t < cutoff {
				delete(tl.seen, id)
			}
		}
	}
	return nil
}

func (h *Hub) pruneLoop() {
	defer h.done.Done()
	// No deadline per round: a paced round over a backlog can outlast a
	// minute; Close ends it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-h.stop; cancel() }()
	t := time.NewTicker(h.opt.PruneEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		h.mu.Lock()
		wss := make([]string, 0, len(h.written))
		for ws := range h.written {
			wss = append(wss, ws)
		}
		h.mu.Unlock()
		for _, ws := range wss {
			n, err := Prune(ctx, h.st.Tenant(ws), time.Now().Add(-h.opt.Retention), pruneRound)
			if ctx.Err() != nil {
				return // closing
			}
			if err != nil {
				h.opt.Logger.Warn("realtime prune", "workspace", ws, "err", err)
			} else if n > 0 {
				h.opt.Logger.Debug("realtime pruned", "workspace", ws, "changes", n)
			}
		}
	}
}
