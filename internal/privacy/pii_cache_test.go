package privacy_test

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/app"
	"github.com/halo-cdp/halo/internal/platform/settings"
	"github.com/halo-cdp/halo/internal/privacy"
	"github.com/halo-cdp/halo/store"
	"github.com/halo-cdp/halo/store/sqlitestore"
)

// countingBackend counts the reads of the settings collection, where the
// PII settings live, and runs after (when set) once each has read.
type countingBackend struct {
	store.Backend
	mu    sync.Mutex
	reads int
	after func()
}

func (b *countingBackend) Find(ctx context.Context, coll, ws string, q store.ResolvedQuery) ([]bson.Raw, error) {
	docs, err := b.Backend.Find(ctx, coll, ws, q)
	if coll == settings.Settings {
		b.mu.Lock()
		b.reads++
		after := b.after
		b.mu.Unlock()
		if after != nil {
			after()
		}
	}
	return docs, err
}

func (b *countingBackend) settingsReads() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reads
}

// piiCacheEnv is a store over a countingBackend and two wirings of the
// services over it, as two processes would have.
func piiCacheEnv(t *testing.T) (context.Context, *countingBackend, *store.Store, *privacy.Service, *privacy.Service) {
	t.Helper()
	ctx := t.Context()
	sb, err := sqlitestore.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := &countingBackend{Backend: sb}
	st, err := store.Open(ctx, b, app.Collections)
	if err != nil {
		sb.Close(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	c := app.NewManualClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	return ctx, b, st, app.New(c.Now).Privacy, app.New(c.Now).Privacy
}

func maskerSettings(t *testing.T, ctx context.Context, svc *privacy.Service, tn store.Tenant) privacy.PIISettings {
	t.Helper()
	m, err := svc.PIIMaskerFor(ctx, tn)
	if err != nil {
		t.Fatal(err)
	}
	return m.Settings()
}

// The masker is read once per PIICacheTTL: a second read costs no store
// read; another workspace has its own.
func TestPIIMaskerCached(t *testing.T) {
	ctx, b, st, svc, _ := piiCacheEnv(t)
	tn := st.Tenant("ws1")
	before := b.settingsReads()
	m1, err := svc.PIIMaskerFor(ctx, tn)
	if err != nil || b.settingsReads() != before+1 {
		t.Fatalf("first read: %v, %d settings reads", err, b.settingsReads()-before)
	}
	m2, err := svc.PIIMaskerFor(ctx, tn)
	if err != nil || m2 != m1 || b.settingsReads() != before+1 {
		t.Fatalf("second read: %v, same masker %v, %d settings reads; want the cached one", err, m2 == m1, b.settingsReads()-before)
	}
	if _, err := svc.PIIMaskerFor(ctx, st.Tenant("ws2")); err != nil || b.settingsReads() != before+2 {
		t.Fatalf("another workspace: %v, %d settings reads", err, b.settingsReads()-before)
	}
}

// A change shows at once through the service that made it, and within
// PIICacheTTL through another (another process, with its own cache).
func TestPIIMaskerChangeAcrossServices(t *testing.T) {
	ctx, b, st, mine, theirs := piiCacheEnv(t)
	tn := st.Tenant("ws1")
	def := privacy.DefaultPIISettings()
	for _, svc := range []*privacy.Service{mine, theirs} {
		if got := maskerSettings(t, ctx, svc, tn); !reflect.DeepEqual(got, def) {
			t.Fatalf("before any change: %+v", got)
		}
	}
	set := privacy.PIISettings{TraitKeys: []string{"ssn"}, IdentifierTypes: []string{"email"}}
	if _, err := mine.SetPIISettings(ctx, tn, set, "admin"); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	if got := maskerSettings(t, ctx, mine, tn); !reflect.DeepEqual(got, set) {
		t.Fatalf("the service that made the change sees %+v, want %+v", got, set)
	}
	before := b.settingsReads()
	got := maskerSettings(t, ctx, theirs, tn)
	if time.Since(changed) < privacy.PIICacheTTL/2 && (!reflect.DeepEqual(got, def) || b.settingsReads() != before) {
		t.Fatalf("another service, within the TTL: %+v after %d reads; want its cached defaults", got, b.settingsReads()-before)
	}
	time.Sleep(privacy.PIICacheTTL)
	if got := maskerSettings(t, ctx, theirs, tn); !reflect.DeepEqual(got, set) {
		t.Fatalf("another service, past the TTL: %+v, want %+v", got, set)
	}
}

// Loads in flight while a change is made return what they read, but
// cannot put it back in the cache: the next read sees the change.
func TestPIIMaskerRacedLoadNotKept(t *testing.T) {
	ctx, b, st, svc, _ := piiCacheEnv(t)
	tn := st.Tenant("ws1")
	const loaders = 4
	read, release := make(chan struct{}, loaders), make(chan struct{})
	var n atomic.Int32
	b.mu.Lock()
	b.after = func() { // each load waits, having read the old settings
		if n.Add(1) <= loaders {
			read <- struct{}{}
			<-release
		}
	}
	b.mu.Unlock()
	var wg sync.WaitGroup
	for range loaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := svc.PIIMaskerFor(ctx, tn); err != nil {
				t.Error(err)
			}
		}()
	}
	for range loaders {
		<-read
	}
	set := privacy.PIISettings{TraitKeys: []string{"ssn"}, IdentifierTypes: []string{}}
	_, err := svc.SetPIISettings(ctx, tn, set, "admin")
	close(release)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := maskerSettings(t, ctx, svc, tn); !reflect.DeepEqual(got, set) {
		t.Fatalf("after the raced loads: %+v, want %+v", got, set)
	}
}
