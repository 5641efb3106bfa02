package store

import (
	"context"
	"sync"
	"time"
)

// Together runs fns side by side, each with a context of its own derived
// from ctx, and returns once all have returned.
//
// It is for a call whose next steps are independent writes (a history
// record, an index entry, a notification): on an engine that commits
// writes in groups (the embedded one), the first write each fn makes is
// held until every fn has made its first write or returned, and the held
// writes then go to the engine at once, so that they share one commit
// and the call waits for one commit instead of one per write. Later
// writes of a fn, and reads, are not held. Each write keeps its own
// outcome, as if made alone: this is not a transaction. On other engines
// (MongoDB) the fns just run side by side.
//
// A write is held at most maxHold: a fn that holds a lock while its write
// is held, or waits for something another fn's held write holds up, only
// delays the others (their writes then go on alone). Fns should make
// their first write promptly, holding no lock.
func Together(ctx context.Context, fns ...func(ctx context.Context)) {
	if len(fns) == 1 {
		fns[0](ctx)
		return
	}
	g := &gathering{open: len(fns)}
	var wg sync.WaitGroup
	for _, fn := range fns {
		m := &member{g: g}
		wg.Go(func() {
			defer m.done()
			fn(context.WithValue(ctx, memberKey{}, m))
		})
	}
	wg.Wait()
}

// Held is how an engine that commits in groups takes part in Together:
// it offers w, a write ready to go, and submit, which hands writes to the
// engine together; engine names it (writes to another engine in the same
// Together are not held). If ctx is a Together fn's and this is its first
// write, Held keeps w (and returns true) until every fn has offered one
// or returned, or until the first kept has waited maxHold, whichever
// comes first, then calls submit once with the writes kept, in the order
// offered. Otherwise the write is not held (false): the engine submits it
// as usual. submit must not block on the writes' outcomes.
func Held(ctx context.Context, engine, w any, submit func(ws []any)) bool {
	m, ok := ctx.Value(memberKey{}).(*member)
	if !ok {
		return false
	}
	return m.offer(engine, w, submit)
}

// maxHold bounds how long Together holds a write: far longer than fns
// that write at once take to reach their first write, far shorter than a
// commit under load.
const maxHold = 5 * time.Millisecond

type memberKey struct{}

// gathering is the writes of one Together call.
type gathering struct {
	mu     sync.Mutex
	open   int // fns that have neither offered a write nor returned
	held   []any
	engine any // the engine of the writes held
	submit func([]any)
	timer  *time.Timer // from the first write held
	closed bool        // submitted: later writes are not held
}

// member is one fn of a gathering.
type member struct {
	g    *gathering
	once bool // offered a write or returned
}

func (m *member) offer(engine, w any, submit func([]any)) bool {
	g := m.g
	g.mu.Lock()
	if m.once || g.closed || g.engine != nil && g.engine != engine {
		g.mu.Unlock()
		return false // this fn's next write, too late, or another engine's
	}
	g.held = append(g.held, w)
	if g.engine == nil {
		g.engine, g.submit = engine, submit
		g.timer = time.AfterFunc(maxHold, g.expire)
	}
	m.leave()
	return true
}

func (m *member) done() {
	m.g.mu.Lock()
	if m.once {
		m.g.mu.Unlock()
		return
	}
	m.leave()
}

// leave counts m out of the fns still to offer a write and, if it was the
// last, submits the writes held. It is called with g.mu held and releases
// it, so that submit runs unlocked.
func (m *member) leave() {
	g := m.g
	m.once = true
	g.open--
	var (
		ws     []any
		submit func([]any)
	)
	if g.open == 0 && len(g.held) > 0 && !g.closed {
		ws, submit = g.closeLocked()
	}
	g.mu.Unlock()
	if submit != nil {
		submit(ws)
	}
}

// expire submits the writes held once the first has waited maxHold.
func (g *gathering) expire() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	ws, submit := g.closeLocked()
	g.mu.Unlock()
	submit(ws)
}

func (g *gathering) closeLocked() ([]any, func([]any)) {
	g.closed = true
	g.timer.Stop()
	ws := g.held
	g.held = nil
	return ws, g.submit
}
