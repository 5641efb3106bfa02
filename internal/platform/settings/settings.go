// Package settings keeps per-workspace settings documents, one per key
// (the suppression salt, the PII settings, the score settings and
// summary). Each domain reads and writes only its own keys, through
// these functions.
package settings

import (
	"context"

	"github.com/halo-cdp/halo/store"
)

// The collections package settings owns: per-workspace settings documents,
// one per key. Only this package reads or writes them
// (internal/app/ownership_test.go checks it); the others call its
// functions.
const (
	Settings      = "settings"
	SettingsByKey = "by_key" // unique (key)
)

// Collections declares them and their indexes; the store creates them
// idempotently at start (internal/app.Collections gathers every domain's).
var Collections = []store.CollectionSpec{
	{Name: Settings, Indexes: []store.Index{
		{Name: SettingsByKey, Fields: []string{"key"}, Unique: true},
	}},
}

// Find reads the workspace's settings document of key into out, or
// store.ErrNotFound.
func Find(ctx context.Context, tn store.Tenant, key string, out any) error {
	return tn.C(Settings).FindOne(ctx, store.Query{Index: SettingsByKey, Eq: []any{key}}, out)
}

// Insert stores a new settings document (its key field set); another one
// of the same key is store.ErrDuplicateKey.
func Insert(ctx context.Context, tn store.Tenant, doc any) error {
	return tn.C(Settings).Insert(ctx, doc)
}

// Replace writes doc over the stored document if it is still at version
// prev (store.ErrConflict otherwise).
func Replace(ctx context.Context, tn store.Tenant, doc any, prev int64) error {
	return tn.C(Settings).Replace(ctx, doc, prev)
}

// Delete removes the settings document of id.
func Delete(ctx context.Context, tn store.Tenant, id string) error {
	return tn.C(Settings).Delete(ctx, id)
}
