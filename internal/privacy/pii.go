package privacy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/settings"
	"github.com/halo-cdp/halo/store"
)

// PII settings and masking.
//
// A workspace names the trait keys and identifier types that are personal
// data; callers without scope pii:read see those values masked. Trait keys
// match case-insensitively (a workspace that marks "email" means "Email"
// too: when in doubt, mask) and may be dot paths ("address.street") that
// mask only the nested value. A key naming an object or array masks every
// leaf in it and keeps the shape, so clients still see which fields exist.

// PIISettings is which trait keys and identifier types a workspace treats
// as personal data.
type PIISettings struct {
	TraitKeys       []string
	IdentifierTypes []string
}

// Limits on PII settings.
const (
	MaxPIITraitKeys = 100 // trait keys per workspace
	MaxPIIKeyBytes  = 256 // one key or dot path, as userjson allows for a trait key
	MaxPIIKeyDepth  = 5   // segments of a dot path: traits nest no deeper (profile.TraitLimits)
	// PIICacheTTL bounds how long a change made through another instance
	// can take to show; one made through this process shows at once.
	PIICacheTTL = 500 * time.Millisecond
)

// piiSettingsKey is the settings document's key.
const piiSettingsKey = "pii"

// DefaultPIISettings is what a workspace that never set its own masks: the
// usual contact and identity fields. Names of places (city, country) and
// company data are left out: they rarely identify a person on their own
// and segments and exports are commonly built on them.
func DefaultPIISettings() PIISettings {
	return PIISettings{
		TraitKeys: []string{
			"email", "phone", "mobile", "name", "firstName", "lastName", "fullName",
			"address", "birthDate", "dateOfBirth",
		},
		IdentifierTypes: []string{identity.Email, identity.Phone},
	}
}

// piiDoc is the settings document holding a workspace's PII settings.
type piiDoc struct {
	ID              string    `bson:"_id"`
	WorkspaceID     string    `bson:"workspaceId"`
	Key             string    `bson:"key"`
	TraitKeys       []string  `bson:"traitKeys"`
	IdentifierTypes []string  `bson:"identifierTypes"`
	UpdatedAt       time.Time `bson:"updatedAt"`
	UpdatedBy       string    `bson:"updatedBy"`
	Version         int64     `bson:"version"`
}

// LoadPIISettings reads the workspace's PII settings from the store (the
// defaults when it never set any). Readers on a hot path use
// Service.PIIMaskerFor.
func LoadPIISettings(ctx context.Context, tn store.Tenant) (PIISettings, error) {
	var d piiDoc
	err := settings.Find(ctx, tn, piiSettingsKey, &d)
	if errors.Is(err, store.ErrNotFound) {
		return DefaultPIISettings(), nil
	}
	if err != nil {
		return PIISettings{}, fmt.Errorf("load PII settings: %w", err)
	}
	return PIISettings{TraitKeys: nonNilStrings(d.TraitKeys), IdentifierTypes: nonNilStrings(d.IdentifierTypes)}, nil
}

// ValidatePIISettings checks setPIISettings input against the workspace's
// identifier types and returns it tidied: repeats dropped (trait keys
// compared case-insensitively, as they match), order kept. Errors are
// BAD_USER_INPUT naming traitKeys[i] or identifierTypes[i].
func ValidatePIISettings(in PIISettings, types identity.Types) (PIISettings, error) {
	if len(in.TraitKeys) > MaxPIITraitKeys {
		return in, apperr.Invalid("traitKeys", "at most %d trait keys, got %d", MaxPIITraitKeys, len(in.TraitKeys))
	}
	out := PIISettings{TraitKeys: []string{}, IdentifierTypes: []string{}}
	seen := map[string]bool{}
	for i, k := range in.TraitKeys {
		if err := checkPIIKey(k); err != nil {
			return in, apperr.Invalid(fmt.Sprintf("traitKeys[%d]", i), "%q: %s", maskTruncate(k), err)
		}
		if l := strings.ToLower(k); !seen[l] {
			seen[l] = true
			out.TraitKeys = append(out.TraitKeys, k)
		}
	}
	if len(in.IdentifierTypes) > identity.MaxTypes {
		return in, apperr.Invalid("identifierTypes", "at most %d identifier types, got %d", identity.MaxTypes, len(in.IdentifierTypes))
	}
	for i, t := range in.IdentifierTypes {
		if _, ok := types[t]; !ok {
			return in, apperr.Invalid(fmt.Sprintf("identifierTypes[%d]", i), "unknown identifier type %q (known: %s)", maskTruncate(t), strings.Join(types.Names(), ", "))
		}
		if !slices.Contains(out.IdentifierTypes, t) {
			out.IdentifierTypes = append(out.IdentifierTypes, t)
		}
	}
	return out, nil
}

// checkPIIKey accepts a trait key or a dot path of trait keys, each
// segment a key userjson would accept in traits.
func checkPIIKey(k string) error {
	switch {
	case k == "":
		return errors.New("must not be empty")
	case len(k) > MaxPIIKeyBytes:
		return fmt.Errorf("longer than %d bytes", MaxPIIKeyBytes)
	case !utf8.ValidString(k):
		return errors.New("not valid UTF-8")
	case strings.ContainsRune(k, 0):
		return errors.New("must not contain NUL")
	}
	segs := strings.Split(k, ".")
	if len(segs) > MaxPIIKeyDepth {
		return fmt.Errorf("a path of at most %d keys", MaxPIIKeyDepth)
	}
	for _, s := range segs {
		switch {
		case s == "":
			return errors.New("empty key in dot path")
		case strings.HasPrefix(s, "$"):
			return errors.New("keys must not start with '$'")
		}
	}
	return nil
}

// SetPIISettings validates in, stores it as the workspace's PII settings
// and returns what was stored; s's maskers see it at once. Callers check
// scope privacy:admin.
func (s *Service) SetPIISettings(ctx context.Context, tn store.Tenant, in PIISettings, actor string) (PIISettings, error) {
	types, err := identity.LoadTypes(ctx, tn)
	if err != nil {
		return in, err
	}
	set, err := ValidatePIISettings(in, types)
	if err != nil {
		return in, err
	}
	now := s.now()
	for attempt := 0; ; attempt++ {
		var cur piiDoc
		err := settings.Find(ctx, tn, piiSettingsKey, &cur)
		doc := piiDoc{Key: piiSettingsKey, TraitKeys: set.TraitKeys, IdentifierTypes: set.IdentifierTypes, UpdatedAt: now, UpdatedBy: actor}
		switch {
		case errors.Is(err, store.ErrNotFound):
			doc.ID, doc.Version = store.NewID(), 1
			err = settings.Insert(ctx, tn, doc)
		case err != nil:
			return in, fmt.Errorf("load PII settings: %w", err)
		default:
			doc.ID, doc.Version = cur.ID, cur.Version+1
			err = settings.Replace(ctx, tn, doc, cur.Version)
		}
		if err == nil {
			s.pii.Invalidate(tn.Workspace())
			slog.InfoContext(ctx, "PII settings changed", "workspace", tn.Workspace(), "actor", actor,
				"traitKeys", set.TraitKeys, "identifierTypes", set.IdentifierTypes)
			return set, nil
		}
		// Another call wrote the settings meanwhile: start over from theirs.
		if (errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrDuplicateKey) || errors.Is(err, store.ErrNotFound)) && attempt < 50 {
			continue
		}
		return in, fmt.Errorf("store PII settings: %w", err)
	}
}

// PIIMasker masks values by a workspace's PII settings. It is immutable and
// safe for concurrent use.
type PIIMasker struct {
	settings PIISettings
	traits   *maskNode
	types    map[string]bool
}

// maskNode is one level of the trait key tree: whole masks the value
// here, children (lower-cased keys) mask inside it.
type maskNode struct {
	whole    bool
	children map[string]*maskNode
}

// NewPIIMasker compiles s.
func NewPIIMasker(s PIISettings) *PIIMasker {
	m := &PIIMasker{settings: s, traits: &maskNode{}, types: map[string]bool{}}
	for _, k := range s.TraitKeys {
		n := m.traits
		for _, seg := range strings.Split(strings.ToLower(k), ".") {
			if n.children == nil {
				n.children = map[string]*maskNode{}
			}
			c := n.children[seg]
			if c == nil {
				c = &maskNode{}
				n.children[seg] = c
			}
			n = c
		}
		n.whole = true
	}
	for _, t := range s.IdentifierTypes {
		m.types[t] = true
	}
	return m
}

// Settings returns the settings m masks by.
func (m *PIIMasker) Settings() PIISettings { return m.settings }

// MasksIdentifierType reports whether values of identifier type typ are
// masked.
func (m *PIIMasker) MasksIdentifierType(typ string) bool { return m.types[typ] }

// Identifier returns value masked when typ is a PII identifier type, else
// value unchanged.
func (m *PIIMasker) Identifier(typ, value string) string {
	if !m.types[typ] {
		return value
	}
	return MaskString(value)
}

// Traits returns traits (any JSON value, normally an object) with the PII
// keys masked. traits is not modified: the parts that change are copied,
// since the same decoded profile may be shown to callers with pii:read.
func (m *PIIMasker) Traits(traits any) any {
	return m.traits.apply(traits)
}

// Trait returns the value of trait key (a top-level key, or a dot path
// as in segment rules) as the caller may see it: masked when the key, or
// anything inside it, is PII. For values shown apart from their profile,
// such as a merge's trait decisions.
func (m *PIIMasker) Trait(key string, v any) any {
	n := m.traits
	for _, seg := range strings.Split(strings.ToLower(key), ".") {
		if n.whole {
			break
		}
		if n = n.children[seg]; n == nil {
			return v
		}
	}
	return n.apply(v)
}

func (n *maskNode) apply(v any) any {
	if n.whole {
		return MaskValue(v)
	}
	if len(n.children) == 0 {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		var out map[string]any
		for k, e := range x {
			c := n.children[strings.ToLower(k)]
			if c == nil {
				continue
			}
			if out == nil {
				out = maps.Clone(x)
			}
			out[k] = c.apply(e)
		}
		if out == nil {
			return x
		}
		return out
	case []any:
		// A path through an array applies to each element, as a MongoDB
		// dot path does.
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = n.apply(e)
		}
		return out
	default:
		// A dot path into a scalar names no value: there is nothing to mask.
		return v
	}
}

// MaskValue masks every leaf of a JSON value and keeps its shape: strings
// as MaskString, numbers and booleans as "***", null stays null.
func MaskValue(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return MaskString(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = MaskValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = MaskValue(e)
		}
		return out
	default:
		// Numbers, booleans, and anything unexpected: nothing of it shows.
		return maskStars
	}
}

const maskStars = "***"

// MaskString masks one string by its shape: an email address as MaskEmail,
// a phone number as MaskPhone, anything else as its first character and
// "***" (a one-character string as "***"; "" stays "").
func MaskString(s string) string {
	switch {
	case looksLikeEmail(s):
		return maskEmail(s)
	case looksLikePhone(s):
		return maskPhone(s)
	}
	return maskPlain(s)
}

func maskPlain(s string) string {
	if s == "" {
		return ""
	}
	r, size := utf8.DecodeRuneInString(s)
	if size == len(s) || r == utf8.RuneError {
		return maskStars
	}
	return string(r) + maskStars
}

// MaskEmail keeps the first character of the local part and the domain:
// ana@example.com → a***@example.com. A string that is not shaped like an
// address is masked as plain text.
func MaskEmail(s string) string {
	if !looksLikeEmail(s) {
		return maskPlain(s)
	}
	return maskEmail(s)
}

// maskEmail masks s, shaped like an address.
func maskEmail(s string) string {
	at := strings.LastIndexByte(s, '@')
	r, _ := utf8.DecodeRuneInString(s)
	return string(r) + maskStars + s[at:]
}

func looksLikeEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || !utf8.ValidString(s) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s)
	return r != '@'
}

// minPhoneDigits is the fewest digits a string needs to be masked as a
// phone number; shorter ones would show most of themselves.
const minPhoneDigits = 7

// MaskPhone keeps the leading "+", the country code and the last two
// digits, one "*" per hidden digit, separators dropped: +14155550123 →
// +1********23. Anything else, national numbers included, is masked as
// plain text: without the "+" a phone number is hard to tell from a date
// or an id, and its last digits could be a birthday's.
func MaskPhone(s string) string {
	if !looksLikePhone(s) {
		return maskPlain(s)
	}
	return maskPhone(s)
}

// maskPhone masks s, shaped like an international phone number.
func maskPhone(s string) string {
	digits := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits = append(digits, s[i])
		}
	}
	var b strings.Builder
	b.WriteByte('+')
	keep := maskCountryCodeLen(digits)
	b.Write(digits[:keep])
	b.WriteString(strings.Repeat("*", len(digits)-keep-2))
	b.Write(digits[len(digits)-2:])
	return b.String()
}

// maskCountryCodeLen is the length of the country calling code digits
// start with; country codes are prefix-free, so the first known prefix is
// the code. An unknown one keeps a single digit.
func maskCountryCodeLen(digits []byte) int {
	for n := 1; n <= 3 && n < len(digits); n++ {
		cc := 0
		for _, d := range digits[:n] {
			cc = cc*10 + int(d-'0')
		}
		if phonenumbers.GetRegionCodeForCountryCode(cc) != phonenumbers.UNKNOWN_REGION {
			return n
		}
	}
	return 1
}

func looksLikePhone(s string) bool {
	s, ok := strings.CutPrefix(s, "+")
	if !ok {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			n++
		case c == ' ' || c == '-' || c == '(' || c == ')' || c == '.':
		default:
			return false
		}
	}
	return n >= minPhoneDigits
}

// PIIMaskerFor returns the masker of tn's workspace. The compiled settings
// are kept per workspace for PIICacheTTL, so a page of 100 profiles reads
// them once, not 200 times; a change made through this Service
// (SetPIISettings) shows at once, one made through another instance within
// PIICacheTTL. The cache is the Service's own (wscache): a read that raced
// a change is not kept.
func (s *Service) PIIMaskerFor(ctx context.Context, tn store.Tenant) (*PIIMasker, error) {
	m, _, err := s.pii.Get(tn.Workspace(), PIICacheTTL, func() (*PIIMasker, error) {
		st, err := LoadPIISettings(ctx, tn)
		if err != nil {
			return nil, err
		}
		return NewPIIMasker(st), nil
	})
	return m, err
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// maskTruncate shortens s for an error message.
func maskTruncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
