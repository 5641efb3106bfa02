package privacy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/privacy"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits/agg"
	"github.com/halo-cdp/halo/store"
)

type fakeDefs struct {
	set   *agg.Set
	err   error
	calls int
}

func (f *fakeDefs) Definitions(context.Context, store.Tenant) (*agg.Set, error) {
	f.calls++
	return f.set, f.err
}

type fakeComparer struct {
	compared map[string]bool
	err      error
	calls    int
}

func (f *fakeComparer) ComparesComputed(_ context.Context, _ store.Tenant, key string) (bool, error) {
	f.calls++
	return f.compared[key], f.err
}

func TestCheckRuleFor(t *testing.T) {
	ctx, tn := context.Background(), store.Tenant{}
	defs := &fakeDefs{set: agg.NewSet([]*agg.Def{{Key: "emails", Property: "email"}, {Key: "orders"}})}
	onEmails := rule.Rule{Computed: &rule.ComputedCond{Key: "emails", Op: rule.Contains}}
	onOrders := rule.Rule{Computed: &rule.ComputedCond{Key: "orders", Op: rule.GT}}

	if err := privacy.CheckRuleFor(ctx, tn, nil, defs, onEmails, "rule"); err != nil || defs.calls != 0 {
		t.Fatalf("pii:read: %v, %d definition reads, want nil and none", err, defs.calls)
	}
	m := sideDoorMasker()
	if err := privacy.CheckRuleFor(ctx, tn, m, defs, onEmails, "input.rule"); apperr.CodeOf(err) != apperr.Forbidden ||
		!strings.HasPrefix(err.Error(), `input.rule.computed needs scope pii:read`) {
		t.Fatalf("computed over PII: %v", err)
	}
	if err := privacy.CheckRuleFor(ctx, tn, m, defs, onOrders, "rule"); err != nil {
		t.Fatalf("computed over plain data: %v", err)
	}
	boom := errors.New("boom")
	if err := privacy.CheckRuleFor(ctx, tn, m, &fakeDefs{err: boom}, onOrders, "rule"); !errors.Is(err, boom) {
		t.Fatalf("definitions error: %v", err)
	}
}

func TestCheckDefineFor(t *testing.T) {
	ctx, tn := context.Background(), store.Tenant{}
	pii, plain := &agg.Def{Key: "k", Property: "email"}, &agg.Def{Key: "k", Property: "plan"}
	segs := &fakeComparer{compared: map[string]bool{"k": true}}

	if err := privacy.CheckDefineFor(ctx, tn, nil, segs, pii); err != nil || segs.calls != 0 {
		t.Fatalf("pii:read: %v, %d segment reads, want nil and none", err, segs.calls)
	}
	m := sideDoorMasker()
	if err := privacy.CheckDefineFor(ctx, tn, m, segs, plain); err != nil || segs.calls != 0 {
		t.Fatalf("not PII: %v, %d segment reads, want nil and none", err, segs.calls)
	}
	if err := privacy.CheckDefineFor(ctx, tn, m, segs, pii); apperr.CodeOf(err) != apperr.Forbidden ||
		!strings.Contains(err.Error(), "needs scope pii:read") {
		t.Fatalf("PII and compared: %v", err)
	}
	if err := privacy.CheckDefineFor(ctx, tn, m, &fakeComparer{}, pii); err != nil {
		t.Fatalf("PII, not compared: %v", err)
	}
	boom := errors.New("boom")
	if err := privacy.CheckDefineFor(ctx, tn, m, &fakeComparer{err: boom}, pii); !errors.Is(err, boom) {
		t.Fatalf("segments error: %v", err)
	}
}
