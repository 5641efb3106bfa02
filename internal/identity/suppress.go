package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/settings"
	"github.com/halo-cdp/halo/store"
)

// Suppression: identifiers of an erased person (GDPR Art. 17) are refused
// on ingest. Only a salted hash of each identifier is kept, never its value:
// HMAC-SHA256 keyed with a random per-workspace salt over (type, value), so
// the hashes cannot be matched across workspaces or reversed by hashing
// guesses without the salt.

// saltKey is the settings document (key) holding the workspace's salt.
const saltKey = "suppression-salt"

// saltDoc is the workspace's suppression salt, in store.Settings.
type saltDoc struct {
	ID          string    `bson:"_id"`
	WorkspaceID string    `bson:"workspaceId"`
	Key         string    `bson:"key"`
	Salt        string    `bson:"salt"` // hex, 32 random bytes
	CreatedAt   time.Time `bson:"createdAt"`
}

// Suppression is one suppressed identifier: its type and salted hash.
type Suppression struct {
	ID          string    `bson:"_id"` // "supp-" + hash: one Get per identifier on ingest
	WorkspaceID string    `bson:"workspaceId"`
	Type        string    `bson:"type"`
	Hash        string    `bson:"hash"`
	ErasureID   string    `bson:"erasureId"`
	At          time.Time `bson:"at"`
}

// saltCache holds the suppression salts a Resolver has read, by
// workspace, so the check on every identify and track stays at one Get per
// identifier. It is a plain map, not a wscache.Cache: a salt never changes
// once created, so there is nothing to expire or invalidate; and absence
// must not be kept (another process may create the salt at any moment),
// where wscache would keep a nil for its TTL. It belongs to the Resolver,
// so two Resolvers (two processes, or tests over several stores) read
// their own.
type saltCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (c *saltCache) get(ws string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[ws]
}

func (c *saltCache) put(ws string, salt []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	c.m[ws] = salt
}

// loadSalt returns the workspace's salt, creating it if create is set
// (nil, nil when there is none and create is not set). It reads the store
// once per workspace per Resolver.
func (r *Resolver) loadSalt(ctx context.Context, tn store.Tenant, create bool) ([]byte, error) {
	if s := r.salts.get(tn.Workspace()); s != nil {
		return s, nil
	}
	for attempt := 0; attempt < 3; attempt++ {
		var doc saltDoc
		err := settings.Find(ctx, tn, saltKey, &doc)
		if err == nil {
			salt, err := hex.DecodeString(doc.Salt)
			if err != nil || len(salt) < 16 {
				return nil, fmt.Errorf("suppression salt of %s is malformed", tn.Workspace())
			}
			r.salts.put(tn.Workspace(), salt)
			return salt, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("load suppression salt: %w", err)
		}
		if !create {
			return nil, nil
		}
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("suppression salt: %w", err)
		}
		doc = saltDoc{ID: store.NewID(), Key: saltKey, Salt: hex.EncodeToString(b), CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
		// The unique key index decides between racing creators; the loser
		// reads the winner's salt on the next pass.
		if err := settings.Insert(ctx, tn, doc); err != nil && !errors.Is(err, store.ErrDuplicateKey) {
			return nil, fmt.Errorf("create suppression salt: %w", err)
		}
	}
	return nil, fmt.Errorf("create suppression salt of %s: gave up", tn.Workspace())
}

func suppressionHash(salt []byte, id Identifier) string {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(id.Type))
	m.Write([]byte{0})
	m.Write([]byte(id.Value))
	return hex.EncodeToString(m.Sum(nil))
}

func suppressionID(hash string) string { return "supp-" + hash }

// Suppress records ids (normalised) as suppressed by erasure erasureID.
// Idempotent; returns how many distinct identifiers are suppressed.
func (r *Resolver) Suppress(ctx context.Context, tn store.Tenant, ids []Identifier, erasureID string, at time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	salt, err := r.loadSalt(ctx, tn, true)
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	for _, id := range ids {
		h := suppressionHash(salt, id)
		if seen[h] {
			continue
		}
		seen[h] = true
		doc := Suppression{ID: suppressionID(h), Type: id.Type, Hash: h, ErasureID: erasureID, At: at.UTC().Truncate(time.Millisecond)}
		if err := tn.C(Suppressions).Put(ctx, doc); err != nil {
			return 0, fmt.Errorf("suppress a %s identifier: %w", id.Type, err)
		}
	}
	return len(seen), nil
}

// LiftSuppression lets a suppressed identifier (normalised) be ingested
// again; false when it was not suppressed.
func (r *Resolver) LiftSuppression(ctx context.Context, tn store.Tenant, id Identifier) (bool, error) {
	salt, err := r.loadSalt(ctx, tn, false)
	if err != nil || salt == nil {
		return false, err
	}
	err = tn.C(Suppressions).Delete(ctx, suppressionID(suppressionHash(salt, id)))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("lift suppression: %w", err)
	}
}

// IsSuppressed reports whether id (normalised) is suppressed.
func (r *Resolver) IsSuppressed(ctx context.Context, tn store.Tenant, id Identifier) (bool, error) {
	err := r.CheckSuppressed(ctx, tn, []Identifier{id})
	if apperr.CodeOf(err) == apperr.Suppressed {
		return true, nil
	}
	return false, err
}

// CheckSuppressed refuses ids (normalised) with SUPPRESSED if any is
// suppressed. Resolve checks its own identifiers; callers that must refuse
// a whole batch before writing any of it (trackBatch) call it first. It
// costs one indexed read while the workspace has never suppressed
// anything, and one Get per identifier after that.
func (r *Resolver) CheckSuppressed(ctx context.Context, tn store.Tenant, ids []Identifier) error {
	if len(ids) == 0 {
		return nil
	}
	salt, err := r.loadSalt(ctx, tn, false)
	if err != nil || salt == nil {
		return err
	}
	for _, id := range ids {
		var doc Suppression
		err := tn.C(Suppressions).Get(ctx, suppressionID(suppressionHash(salt, id)), &doc)
		if err == nil {
			return apperr.New(apperr.Suppressed, "the %s identifier belongs to an erased person and is suppressed: nothing was stored (liftSuppression lets it back in)", id.Type)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("check suppression: %w", err)
		}
	}
	return nil
}
