package privacy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/traits/agg"
)

// Side doors to personal data (issue 14): values that are not traits but
// come from them (computed traits), evidence kept with consent (proofs), and
// segment rules, whose match counts answer questions about the values they
// compare. Each is masked or refused by the same trait keys and matching
// rules as traits: case-insensitive, dot paths.

// ScopePIIRead is the scope that shows personal data in clear (auth's
// name for it, repeated here so that privacy's messages need no auth).
const ScopePIIRead = "pii:read"

// ReadsPII reports whether a trait key or dot path (a rule's key, an event
// property, a computed trait's property) reads personal data: it is a PII
// key, lies inside one ("address.street" when "address" is PII), or holds
// one ("address" when "address.street" is PII: the object carries it).
func (m *PIIMasker) ReadsPII(key string) bool {
	n := m.traits
	for _, seg := range strings.Split(strings.ToLower(key), ".") {
		if n.whole {
			return true
		}
		if n = n.children[seg]; n == nil {
			return false
		}
	}
	return n.whole || len(n.children) > 0
}

// ComputedFromPII reports whether d's values come from personal data: its
// property reads PII, or one of its where filters does (a COUNT of orders
// whose email starts with "a" answers a question about the email).
func (m *PIIMasker) ComputedFromPII(d *agg.Def) bool {
	if d == nil {
		return false
	}
	if d.Property != "" && m.ReadsPII(d.Property) {
		return true
	}
	return m.whereReadsPII(d.Where) >= 0
}

// whereReadsPII is the index of the first filter of where on a PII key, or
// -1.
func (m *PIIMasker) whereReadsPII(where []rule.PropertyCond) int {
	for i, c := range where {
		if m.ReadsPII(c.Key) {
			return i
		}
	}
	return -1
}

// ComputedValue returns the value v of computed trait d as a caller without
// pii:read may see it: a value filtered by a PII key is masked whole (even
// a count: it is the answer to the filter); a value of a PII property is
// masked like that property would be as a trait (a UNIQUE_LIST element by
// element, an object leaf by leaf where only a nested key is PII); any
// other value is v.
func (m *PIIMasker) ComputedValue(d *agg.Def, v any) any {
	if d == nil {
		return v
	}
	if m.whereReadsPII(d.Where) >= 0 {
		return MaskValue(v)
	}
	if d.Property != "" {
		return m.Trait(d.Property, v)
	}
	return v
}

// ipKeys are proof keys that name an IP address (lower case, without "_"
// and "-"). An IP address is personal data (CJEU, Breyer), and consent
// proofs commonly carry the one the choice came from.
var ipKeys = map[string]bool{
	"ip": true, "ipaddress": true, "ipaddr": true, "ipv4": true, "ipv6": true,
	"clientip": true, "remoteip": true, "remoteaddr": true, "remoteaddress": true,
	"sourceip": true, "userip": true, "forwardedfor": true, "xforwardedfor": true, "xrealip": true,
}

func isIPKey(k string) bool {
	return ipKeys[strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(k))]
}

// Proof returns a consent proof (a JSON object) as a caller without
// pii:read may see it. Masked, whole:
//   - the workspace's PII trait keys, as in traits (dot paths from the top);
//   - at any depth, a key named like a top-level PII trait key ("email" in
//     {"form": {"email": …}}), since a proof nests freely;
//   - at any depth, a key naming an IP address (ip, ipAddress, remote_addr,
//     x-forwarded-for, …), and any string that is an IP address whatever
//     its key.
//
// Everything else (form versions, the text shown, user agents) stays.
func (m *PIIMasker) Proof(proof any) any {
	return m.proof(m.traits, proof)
}

func (m *PIIMasker) proof(n *maskNode, v any) any {
	if n != nil && n.whole {
		return MaskValue(v)
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			lk := strings.ToLower(k)
			var c *maskNode
			if n != nil {
				c = n.children[lk]
			}
			if top := m.traits.children[lk]; c == nil && (isIPKey(k) || top != nil && top.whole) {
				out[k] = MaskValue(e)
				continue
			}
			out[k] = m.proof(c, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = m.proof(n, e)
		}
		return out
	case string:
		if _, err := netip.ParseAddr(x); err == nil {
			return MaskString(x)
		}
		return x
	default:
		return v
	}
}

// CheckRule refuses a segment rule that reads personal data, for a caller
// without pii:read: a match count is an oracle (STARTS_WITH "a", then "ab",
// …, the attack profiles(search:) needs pii:read for). A rule reads
// personal data when a trait node's key, an event node's where key, or a
// computed node's definition (ComputedFromPII) does; any operator counts,
// EXISTS too (one rule, no exceptions to reason about). inSegment is
// allowed: it reads membership, which a caller with segments:read sees
// anyway. path names the rule in messages ("rule", "input.rule");
// computed resolves a computed key (nil: unknown, left to validation).
// The error is FORBIDDEN naming the scope, the rule path and the key.
func (m *PIIMasker) CheckRule(r rule.Rule, path string, computed func(key string) *agg.Def) error {
	forbid := func(at, what string) error {
		return apperr.New(apperr.Forbidden, "%s needs scope %s: it reads personal data (%s)", at, ScopePIIRead, what)
	}
	for i, c := range r.And {
		if err := m.CheckRule(c, fmt.Sprintf("%s.and[%d]", path, i), computed); err != nil {
			return err
		}
	}
	for i, c := range r.Or {
		if err := m.CheckRule(c, fmt.Sprintf("%s.or[%d]", path, i), computed); err != nil {
			return err
		}
	}
	if r.Not != nil {
		if err := m.CheckRule(*r.Not, path+".not", computed); err != nil {
			return err
		}
	}
	if c := r.Trait; c != nil && m.ReadsPII(c.Key) {
		return forbid(path+".trait", fmt.Sprintf("trait key %q", maskTruncate(c.Key)))
	}
	if e := r.Event; e != nil {
		if i := m.whereReadsPII(e.Where); i >= 0 {
			return forbid(fmt.Sprintf("%s.event.where[%d]", path, i), fmt.Sprintf("event property %q", maskTruncate(e.Where[i].Key)))
		}
	}
	if c := r.Computed; c != nil && computed != nil && m.ComputedFromPII(computed(c.Key)) {
		return forbid(path+".computed", fmt.Sprintf("computed trait %q is derived from personal data", maskTruncate(c.Key)))
	}
	return nil
}

// CheckDefine refuses, for a caller without pii:read, a definition of
// computed trait d derived from personal data while a saved segment rule
// compares its key (compared): that segment's membership, which such a
// caller may read, would then answer what CheckRule refuses to preview
// (define the key over "plan", save a rule on it, redefine it over
// "email"). Otherwise such a definition is allowed: its values are masked
// (ComputedValue), and callers with pii:read use it in clear.
func (m *PIIMasker) CheckDefine(d *agg.Def, compared bool) error {
	if !compared || !m.ComputedFromPII(d) {
		return nil
	}
	return apperr.New(apperr.Forbidden, "defining computed trait %q over personal data needs scope %s: saved segment rules compare it", maskTruncate(d.Key), ScopePIIRead)
}

// CheckKeys refuses, for a caller without pii:read, a read that groups or
// filters by personal data outside a rule (a funnel step's filter, a
// breakdown trait, an event property's top values): field names each key
// in the error. A nil masker (pii:read) allows everything.
func (m *PIIMasker) CheckKeys(field string, keys ...string) error {
	if m == nil {
		return nil
	}
	for _, k := range keys {
		if m.ReadsPII(k) {
			return apperr.New(apperr.Forbidden, "%s needs scope %s: it reads personal data (%q)", field, ScopePIIRead, maskTruncate(k))
		}
	}
	return nil
}
