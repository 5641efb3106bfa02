package identity

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/store"
)

// Normalisation rules an identifier type can use.
const (
	NormEmail = "email" // trim, lower-case, syntax check
	NormPhone = "phone" // E.164, national numbers read in DefaultRegion
	NormNone  = "none"  // trim only; case-sensitive
)

// TypeConfig is how a workspace treats one identifier type.
type TypeConfig struct {
	Name          string   // e.g. "email"; custom names match ^[a-zA-Z][a-zA-Z0-9_]{0,39}$
	Normalization string   // NormEmail, NormPhone or NormNone
	DefaultRegion string   // phone only: ISO 3166 alpha-2 (e.g. "US") for numbers without +country code; "" = numbers must carry one
	MaxPerProfile int      // how many values of this type one profile may hold (>= 1)
	Priority      int      // lower wins (conflict reports, merge blocking)
	Unique        bool     // a profile may hold only one value of this type (e.g. userId)
	Blocked       []string // placeholder values refused (case-insensitive exact match); all-zero ids ^[0-]*$ are always refused
}

// Limits on workspace configuration.
const (
	MaxTypes         = 50   // identifier types per workspace, built-ins included
	MaxBlockedValues = 100  // blocked values per type
	MaxPerProfileCap = 1000 // highest MaxPerProfile
	MaxPriority      = 1000 // Priority is 0..MaxPriority
)

// DefaultBlocked are the placeholder values SDKs send when they know
// nothing; matching on them would glue strangers together.
var DefaultBlocked = []string{"", "null", "nil", "none", "undefined", "anonymous", "unknown", "n/a", "0", "-1"}

// builtinOrder is the order of the built-in types in DefaultTypes and in
// messages.
var builtinOrder = []string{AnonymousID, UserID, Email, Phone, DeviceID, CRMID}

// DefaultTypes returns the six built-in types with their default settings.
func DefaultTypes() []TypeConfig {
	b := func() []string { return slices.Clone(DefaultBlocked) }
	return []TypeConfig{
		{Name: AnonymousID, Normalization: NormNone, MaxPerProfile: 100, Priority: 60, Blocked: b()},
		{Name: UserID, Normalization: NormNone, MaxPerProfile: 1, Priority: 10, Unique: true, Blocked: b()},
		{Name: Email, Normalization: NormEmail, MaxPerProfile: 5, Priority: 20, Blocked: b()},
		{Name: Phone, Normalization: NormPhone, DefaultRegion: "US", MaxPerProfile: 3, Priority: 30, Blocked: b()},
		{Name: DeviceID, Normalization: NormNone, MaxPerProfile: 20, Priority: 50, Blocked: b()},
		{Name: CRMID, Normalization: NormNone, MaxPerProfile: 1, Priority: 15, Unique: true, Blocked: b()},
	}
}

// NewCustomType is the configuration a new custom type starts from before
// the caller's settings are applied.
func NewCustomType(name string) TypeConfig {
	return Types(nil).Base(name)
}

// IsBuiltin reports whether name is one of the six built-in types.
func IsBuiltin(name string) bool { return slices.Contains(builtinOrder, name) }

// Types is a workspace's identifier types by name.
type Types map[string]TypeConfig

func newTypes(cfgs []TypeConfig) Types {
	ts := make(Types, len(cfgs))
	for _, c := range cfgs {
		ts[c.Name] = c
	}
	return ts
}

// Names lists the types: built-ins first in their usual order, then custom
// types by name.
func (ts Types) Names() []string {
	out := make([]string, 0, len(ts))
	for _, n := range builtinOrder {
		if _, ok := ts[n]; ok {
			out = append(out, n)
		}
	}
	var custom []string
	for n := range ts {
		if !IsBuiltin(n) {
			custom = append(custom, n)
		}
	}
	slices.Sort(custom)
	return append(out, custom...)
}

// List returns the configurations in Names order.
func (ts Types) List() []TypeConfig {
	names := ts.Names()
	out := make([]TypeConfig, len(names))
	for i, n := range names {
		out[i] = ts[n]
	}
	return out
}

// Base is the configuration a change to type name starts from: the current
// one, or NewCustomType for a type the workspace does not have yet. Its
// blocked list is the caller's own to change.
func (ts Types) Base(name string) TypeConfig {
	c := ts.config(name)
	c.Blocked = slices.Clone(c.Blocked)
	return c
}

// config is type name's configuration to read (its blocked list shared):
// the current one, or a new custom type's. Resolution reads it for every
// identifier, so it does not copy.
func (ts Types) config(name string) TypeConfig {
	if c, ok := ts[name]; ok {
		return c
	}
	return TypeConfig{Name: name, Normalization: NormNone, MaxPerProfile: 10, Priority: 100, Blocked: DefaultBlocked}
}

// Normalise validates and normalises a call's identifiers with the
// workspace's types and drops exact repeats. field names the GraphQL input
// field for error messages. It refuses the whole call on the first bad
// identifier.
func (ts Types) Normalise(field string, in []Identifier) ([]Identifier, error) {
	if len(in) == 0 {
		return nil, apperr.Invalid(field, "at least one identifier is required")
	}
	if len(in) > MaxPerCall {
		return nil, apperr.Invalid(field, "at most %d identifiers per call, got %d", MaxPerCall, len(in))
	}
	out := make([]Identifier, 0, len(in))
	seen := map[Identifier]bool{}
	for i, id := range in {
		f := fmt.Sprintf("%s[%d]", field, i)
		cfg, ok := ts[id.Type]
		if !ok {
			return nil, apperr.Invalid(f+".type", "unknown identifier type %q (known: %s)", truncate(id.Type), strings.Join(ts.Names(), ", "))
		}
		v := strings.TrimSpace(id.Value)
		if err := checkValueText(f+".value", v); err != nil {
			return nil, err
		}
		if allZero.MatchString(v) || cfg.blocks(v) {
			return nil, apperr.Invalid(f+".value", "%q is a placeholder, not an identifier", truncate(v))
		}
		nv, err := cfg.normalise(v)
		if err != nil {
			return nil, apperr.Invalid(f+".value", "%s", err.Error())
		}
		n := Identifier{Type: id.Type, Value: nv}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// blocks reports whether v (trimmed) is one of the type's blocked values.
func (c TypeConfig) blocks(v string) bool {
	for _, b := range c.Blocked {
		if strings.EqualFold(v, b) {
			return true
		}
	}
	return false
}

func (c TypeConfig) normalise(v string) (string, error) {
	switch c.Normalization {
	case NormNone:
		return v, nil
	case NormEmail:
		return normaliseEmail(v)
	case NormPhone:
		return normalisePhone(v, c.DefaultRegion)
	default:
		return "", fmt.Errorf("identifier type %s has an unknown normalization %q", c.Name, c.Normalization)
	}
}

// typeDoc is an identifier_types document: one per customised or custom
// type of a workspace.
type typeDoc struct {
	ID            string   `bson:"_id"`
	WorkspaceID   string   `bson:"workspaceId"`
	Name          string   `bson:"name"`
	Normalization string   `bson:"normalization"`
	DefaultRegion string   `bson:"defaultRegion"`
	MaxPerProfile int      `bson:"maxPerProfile"`
	Priority      int      `bson:"priority"`
	Unique        bool     `bson:"unique"`
	Blocked       []string `bson:"blocked"`
	Version       int64    `bson:"version"`
}

func (d typeDoc) config() TypeConfig {
	return TypeConfig{
		Name: d.Name, Normalization: d.Normalization, DefaultRegion: d.DefaultRegion,
		MaxPerProfile: d.MaxPerProfile, Priority: d.Priority, Unique: d.Unique, Blocked: d.Blocked,
	}
}

// LoadTypes returns the workspace's identifier types: the built-in defaults
// overlaid with the workspace's stored configurations (a stored one wins;
// custom types are added).
func LoadTypes(ctx context.Context, tn store.Tenant) (Types, error) {
	ts := newTypes(DefaultTypes())
	docs, err := tn.C(IdentifierTypes).Find(ctx, store.Query{Index: IdentifierTypesByName})
	if err != nil {
		return nil, fmt.Errorf("load identifier types: %w", err)
	}
	for _, raw := range docs {
		var d typeDoc
		if err := raw.Decode(&d); err != nil {
			return nil, fmt.Errorf("decode identifier type: %w", err)
		}
		ts[d.Name] = d.config()
	}
	return ts, nil
}

var typeName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]{0,39}$`)

// ValidateType checks cfg and returns it tidied: the region upper-cased,
// blocked values trimmed, lower-cased and without repeats. Errors are
// BAD_USER_INPUT naming fields of setIdentifierType's input.
func ValidateType(cfg TypeConfig) (TypeConfig, error) {
	if !typeName.MatchString(cfg.Name) {
		return cfg, apperr.Invalid("input.name", "%q is not a valid type name: a letter, then up to 39 letters, digits or _", truncate(cfg.Name))
	}
	switch cfg.Normalization {
	case NormEmail, NormPhone, NormNone:
	default:
		return cfg, apperr.Invalid("input.normalization", "unknown normalization %q (known: email, phone, none)", truncate(cfg.Normalization))
	}
	cfg.DefaultRegion = strings.ToUpper(strings.TrimSpace(cfg.DefaultRegion))
	if cfg.DefaultRegion != "" {
		if cfg.Normalization != NormPhone {
			return cfg, apperr.Invalid("input.defaultRegion", "a default region applies to phone normalization only")
		}
		if !validRegion(cfg.DefaultRegion) {
			return cfg, apperr.Invalid("input.defaultRegion", "%q is not a known ISO 3166 alpha-2 region with phone numbers", truncate(cfg.DefaultRegion))
		}
	}
	if cfg.MaxPerProfile < 1 || cfg.MaxPerProfile > MaxPerProfileCap {
		return cfg, apperr.Invalid("input.maxPerProfile", "must be between 1 and %d, got %d", MaxPerProfileCap, cfg.MaxPerProfile)
	}
	if cfg.Unique && cfg.MaxPerProfile != 1 {
		return cfg, apperr.Invalid("input.maxPerProfile", "a unique type holds one value per profile: maxPerProfile must be 1, got %d", cfg.MaxPerProfile)
	}
	if cfg.Priority < 0 || cfg.Priority > MaxPriority {
		return cfg, apperr.Invalid("input.priority", "must be between 0 and %d, got %d", MaxPriority, cfg.Priority)
	}
	if len(cfg.Blocked) > MaxBlockedValues {
		return cfg, apperr.Invalid("input.blockedValues", "at most %d blocked values, got %d", MaxBlockedValues, len(cfg.Blocked))
	}
	blocked := make([]string, 0, len(cfg.Blocked))
	for i, b := range cfg.Blocked {
		f := fmt.Sprintf("input.blockedValues[%d]", i)
		b = strings.TrimSpace(b)
		if err := checkValueText(f, b); err != nil {
			return cfg, err
		}
		b = strings.ToLower(b)
		if !slices.Contains(blocked, b) {
			blocked = append(blocked, b)
		}
	}
	cfg.Blocked = blocked
	return cfg, nil
}

// checkValueText refuses what cannot be an identifier value (or a blocked
// one): invalid text, NUL bytes, more than maxValueLen bytes.
func checkValueText(field, v string) error {
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return apperr.Invalid(field, "not valid text")
	}
	if len(v) > maxValueLen {
		return apperr.Invalid(field, "longer than %d bytes", maxValueLen)
	}
	return nil
}

// SetType validates cfg and stores it as the workspace's configuration of
// type cfg.Name (creating a custom type if the name is new). It returns the
// stored configuration.
//
// Built-in types keep their normalization. A custom type's normalization
// can change only while no identifier of that type is stored, since stored
// values would no longer match. Names differing only in case from an
// existing type are refused, to avoid look-alike types.
func SetType(ctx context.Context, tn store.Tenant, cfg TypeConfig) (TypeConfig, error) {
	cfg, err := ValidateType(cfg)
	if err != nil {
		return cfg, err
	}
	for attempt := 0; ; attempt++ {
		ts, err := LoadTypes(ctx, tn)
		if err != nil {
			return cfg, err
		}
		cur, exists := ts[cfg.Name]
		if !exists {
			for n := range ts {
				if strings.EqualFold(n, cfg.Name) {
					return cfg, apperr.Invalid("input.name", "type %q already exists; names differing only in case are not allowed", n)
				}
			}
			if len(ts) >= MaxTypes {
				return cfg, apperr.Invalid("input.name", "at most %d identifier types per workspace", MaxTypes)
			}
		}
		if exists && cur.Normalization != cfg.Normalization {
			if IsBuiltin(cfg.Name) {
				return cfg, apperr.Invalid("input.normalization", "the built-in type %s always uses %s normalization", cfg.Name, cur.Normalization)
			}
			n, err := tn.C(Identities).Count(ctx, store.Query{Index: IdentitiesByValue, Eq: []any{cfg.Name}})
			if err != nil {
				return cfg, fmt.Errorf("count identities of type %s: %w", cfg.Name, err)
			}
			if n > 0 {
				return cfg, apperr.Invalid("input.normalization", "cannot change the normalization of %s: %d identifiers of this type are stored", cfg.Name, n)
			}
		}

		err = putType(ctx, tn, cfg)
		if err == nil {
			return cfg, nil
		}
		// Another call wrote the same type meanwhile: start over.
		if (errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrDuplicateKey) || errors.Is(err, store.ErrNotFound)) && attempt < 50 {
			continue
		}
		return cfg, fmt.Errorf("store identifier type %s: %w", cfg.Name, err)
	}
}

// putType inserts or replaces (compare-and-swap) the document of cfg.Name.
func putType(ctx context.Context, tn store.Tenant, cfg TypeConfig) error {
	c := tn.C(IdentifierTypes)
	var cur typeDoc
	err := c.FindOne(ctx, store.Query{Index: IdentifierTypesByName, Eq: []any{cfg.Name}}, &cur)
	doc := typeDoc{
		Name: cfg.Name, Normalization: cfg.Normalization, DefaultRegion: cfg.DefaultRegion,
		MaxPerProfile: cfg.MaxPerProfile, Priority: cfg.Priority, Unique: cfg.Unique, Blocked: cfg.Blocked,
	}
	if doc.Blocked == nil {
		doc.Blocked = []string{}
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		doc.ID, doc.Version = store.NewID(), 1
		return c.Insert(ctx, doc)
	case err != nil:
		return err
	default:
		doc.ID, doc.Version = cur.ID, cur.Version+1
		return c.Replace(ctx, doc, cur.Version)
	}
}
