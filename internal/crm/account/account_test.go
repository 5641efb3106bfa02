package account_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-cdp/halo/internal/app/apptest"
	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/ingest"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

var start = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

type env struct {
	*apptest.Env
	acc *account.Service
	n   int
}

func newEnv(t *testing.T) *env {
	e := apptest.New(t, start)
	return &env{Env: e, acc: e.Services.Accounts}
}

func email(v string) identity.Identifier { return identity.Identifier{Type: identity.Email, Value: v} }
func anon(v string) identity.Identifier {
	return identity.Identifier{Type: identity.AnonymousID, Value: v}
}

// identify goes through the write path, as the API's identify does.
func (e *env) identify(t *testing.T, ids ...identity.Identifier) string {
	t.Helper()
	res, err := e.Services.Ingest.Identify(e.Ctx, e.Tenant, ingest.Caller{Subject: "t"}, ingest.IdentifyInput{Identifiers: ids})
	if err != nil {
		t.Fatalf("identify %v: %v", ids, err)
	}
	return res.Profile.ID
}

func (e *env) track(t *testing.T, ids ...identity.Identifier) string {
	t.Helper()
	e.n++
	res, err := e.Services.Ingest.TrackEvents(e.Ctx, e.Tenant, "t", "input", []timeline.TrackInput{{MessageID: fmt.Sprint("m", e.n), Identifiers: ids, Name: "page_viewed"}})
	if err != nil {
		t.Fatalf("track: %v", err)
	}
	return res[0].Profile.ID
}

// links is profileID's links as account id → source/role.
func (e *env) links(t *testing.T, profileID string) map[string]string {
	t.Helper()
	ls, err := e.acc.AccountsOf(e.Ctx, e.Tenant, profileID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range ls {
		out[l.AccountID] = l.Source + "/" + l.Role
	}
	return out
}

func (e *env) create(t *testing.T, name string, domains ...string) *account.Account {
	t.Helper()
	a, err := e.acc.Create(e.Ctx, e.Tenant, account.CreateInput{Name: name, Domains: domains})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return a
}

func TestDomainsAreNormalisedAndValidated(t *testing.T) {
	for in, want := range map[string]string{
		"acme.com": "acme.com", "https://www.Acme.COM/about?x=1": "acme.com", "ACME.com.": "acme.com",
		"eu.acme.co.uk": "eu.acme.co.uk", "www.acme.com:8443": "acme.com", "bücher.de": "xn--bcher-kva.de",
	} {
		if got, err := account.NormaliseDomain(in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "com", "co.uk", "localhost", "1.2.3.4", "not a domain", "a..b.com", "-acme.com", strings.Repeat("a", 64) + ".com", "@acme.com"} {
		if got, err := account.NormaliseDomain(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
	if d := account.EmailDomain("Ann@Mail.Acme.com"); d != "mail.acme.com" {
		t.Errorf("email domain %q", d)
	}
}

func TestCreateClaimsIdentifiersOrStoresNothing(t *testing.T) {
	e := newEnv(t)
	acme := e.create(t, "Acme", "acme.com", "https://www.acme.io")
	if !slices.Equal(acme.Domains, []string{"acme.com", "acme.io"}) || acme.Version != 1 {
		t.Fatalf("created %+v", acme)
	}
	// A domain another account holds: CONFLICT, and nothing of the call
	// is stored (its other domain stays free).
	_, err := e.acc.Create(e.Ctx, e.Tenant, account.CreateInput{Name: "Acme again", Domains: []string{"acme-eu.com", "ACME.com"}})
	apptest.WantCode(t, err, apperr.Conflict, "")
	if !strings.Contains(err.Error(), acme.ID) {
		t.Errorf("the conflict does not name the holder: %v", err)
	}
	if n := e.Count(t, account.Accounts, account.AccountsByName); n != 1 {
		t.Fatalf("%d accounts after a refused create", n)
	}
	e.create(t, "Acme Europe", "acme-eu.com") // free again
	// Bad input names its field; nothing stored.
	_, err = e.acc.Create(e.Ctx, e.Tenant, account.CreateInput{Name: "x", Domains: []string{"ok.com", "co.uk"}})
	apptest.WantCode(t, err, apperr.BadUserInput, "input.domains[1]")
	_, err = e.acc.Create(e.Ctx, e.Tenant, account.CreateInput{Name: "  "})
	apptest.WantCode(t, err, apperr.BadUserInput, "input.name")
	_, err = e.acc.Create(e.Ctx, e.Tenant, account.CreateInput{Name: "x", Identifiers: []account.Identifier{{Type: "bad type", Value: "1"}}})
	apptest.WantCode(t, err, apperr.BadUserInput, "input.identifiers[0].type")
	_, err = e.acc.Create(e.Ctx, e.Tenant, account.CreateInput{Name: "x", Traits: []any{1}})
	apptest.WantCode(t, err, apperr.BadUserInput, "input.traits")
	if n := e.Count(t, account.Accounts, account.AccountsByName); n != 2 {
		t.Fatalf("%d accounts after refused creates", n)
	}
	// Found by any identifier, normalised the same way.
	crm, err := e.acc.Create(e.Ctx, e.Tenant, account.CreateInput{Name: "Initech", Identifiers: []account.Identifier{{Type: account.CRMAccountID, Value: " 0012 "}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []account.Identifier{{Type: account.Domain, Value: "WWW.ACME.COM"}, {Type: account.CRMAccountID, Value: "0012"}} {
		a, err := e.acc.ByIdentifier(e.Ctx, e.Tenant, "identifier", id)
		if err != nil || (a.ID != acme.ID && a.ID != crm.ID) {
			t.Errorf("by %v: %v %v", id, a, err)
		}
	}
	_, err = e.acc.ByIdentifier(e.Ctx, e.Tenant, "identifier", account.Identifier{Type: account.Domain, Value: "nobody.com"})
	apptest.WantCode(t, err, apperr.NotFound, "")
}

func TestUpdateTakesTheVersionRead(t *testing.T) {
	e := newEnv(t)
	a := e.create(t, "Acme", "acme.com")
	name := "Acme Corp"
	up, err := e.acc.Update(e.Ctx, e.Tenant, a.ID, account.UpdateInput{Name: &name, SetDomains: true, Domains: []string{"acme.org"},
		Traits: map[string]any{"tier": "gold"}, ExpectedVersion: 1})
	if err != nil || up.Version != 2 || up.Name != name || !slices.Equal(up.Domains, []string{"acme.org"}) || up.Traits["tier"] != "gold" {
		t.Fatalf("update: %+v %v", up, err)
	}
	// The version read before: CONFLICT, nothing changed.
	other := "Other"
	_, err = e.acc.Update(e.Ctx, e.Tenant, a.ID, account.UpdateInput{Name: &other, ExpectedVersion: 1})
	apptest.WantCode(t, err, apperr.Conflict, "")
	if got, _ := e.acc.Get(e.Ctx, e.Tenant, a.ID); got.Name != name || got.Version != 2 {
		t.Fatalf("after a stale update: %+v", got)
	}
	// The dropped domain is free for another account.
	e.create(t, "New Acme", "acme.com")
	// A null trait removes it.
	up, err = e.acc.Update(e.Ctx, e.Tenant, a.ID, account.UpdateInput{Traits: map[string]any{"tier": nil}, ExpectedVersion: 2})
	if err != nil || len(up.Traits) != 0 {
		t.Fatalf("remove a trait: %+v %v", up, err)
	}
	_, err = e.acc.Update(e.Ctx, e.Tenant, "nope", account.UpdateInput{ExpectedVersion: 1})
	apptest.WantCode(t, err, apperr.NotFound, "")
}

// TestPeopleJoinTheirCompanies: people with emails at an account's
// domain are linked to it when the account is made, when it gains the
// domain, and when they give such an email (identify, or a track that
// attaches it); free-mail domains never link; a link made by hand keeps
// its role.
func TestPeopleJoinTheirCompanies(t *testing.T) {
	e := newEnv(t)
	ann := e.identify(t, anon("a1"), email("ann@acme.com"))
	eve := e.identify(t, email("eve@eu.acme.com"))
	gus := e.identify(t, email("gus@gmail.com"))
	acme := e.create(t, "Acme", "acme.com")
	gmail := e.create(t, "Google", "gmail.com") // a free-mail domain
	for pid, want := range map[string]bool{ann: true, eve: true, gus: false} {
		if _, linked := e.links(t, pid)[acme.ID]; linked != want {
			t.Errorf("profile %s linked to acme: %v, want %v", pid, linked, want)
		}
	}
	if l := e.links(t, gus); len(l) != 0 {
		t.Errorf("a gmail.com address linked %v", l)
	}
	_ = gmail

	// A new person: identify, and a track attaching an email.
	bob := e.identify(t, email("bob@ACME.com"))
	cat := e.track(t, anon("c1"))
	if e.track(t, anon("c1"), email("cat@acme.com")) != cat {
		t.Fatal("the track went to another profile")
	}
	for _, pid := range []string{bob, cat} {
		if e.links(t, pid)[acme.ID] != account.DomainMatch+"/" {
			t.Errorf("profile %s: %v", pid, e.links(t, pid))
		}
	}
	// By hand: a role, over the domain's link; linking again changes it.
	if _, err := e.acc.Link(e.Ctx, e.Tenant, bob, acme.ID, "buyer"); err != nil {
		t.Fatal(err)
	}
	if e.links(t, bob)[acme.ID] != account.Manual+"/buyer" {
		t.Errorf("bob: %v", e.links(t, bob))
	}
	// The account gains a domain: its people join.
	ini := e.identify(t, email("ian@initech.com"))
	if _, err := e.acc.Update(e.Ctx, e.Tenant, acme.ID, account.UpdateInput{SetDomains: true, Domains: []string{"acme.com", "initech.com"}, ExpectedVersion: 1}); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.links(t, ini)[acme.ID]; !ok {
		t.Error("ian did not join when acme gained initech.com")
	}
	// A custom free-mail list: acme.com is now one, and links no more.
	if _, err := e.acc.SetFreeMail(e.Ctx, e.Tenant, []string{"acme.com"}); err != nil {
		t.Fatal(err)
	}
	dan := e.identify(t, email("dan@acme.com"))
	if l := e.links(t, dan); len(l) != 0 {
		t.Errorf("dan joined through a free-mail domain: %v", l)
	}
	_, err := e.acc.SetFreeMail(e.Ctx, e.Tenant, []string{"gmail.com", "nope"})
	apptest.WantCode(t, err, apperr.BadUserInput, "freeMailDomains[1]")

	// Contacts page through the links, oldest first, with their count.
	var seen []string
	after := ""
	for {
		page, err := e.acc.Contacts(e.Ctx, e.Tenant, acme.ID, 2, after)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page.Links {
			seen = append(seen, l.ProfileID)
		}
		if !page.HasNext {
			break
		}
		after = page.Cursors[len(page.Cursors)-1]
	}
	n, _ := e.acc.CountContacts(e.Ctx, e.Tenant, acme.ID)
	if len(seen) != 5 || n != 5 || seen[0] != ann {
		t.Fatalf("contacts %v (count %d), want ann, eve, bob, cat, ian in link order", seen, n)
	}
	// Unlink; unknown ids are NOT_FOUND.
	if ok, err := e.acc.Unlink(e.Ctx, e.Tenant, eve, acme.ID); !ok || err != nil {
		t.Fatalf("unlink: %v %v", ok, err)
	}
	if ok, _ := e.acc.Unlink(e.Ctx, e.Tenant, eve, acme.ID); ok {
		t.Error("unlinked twice")
	}
	_, err = e.acc.Link(e.Ctx, e.Tenant, "no-such-profile", acme.ID, "")
	apptest.WantCode(t, err, apperr.NotFound, "")
	_, err = e.acc.Link(e.Ctx, e.Tenant, ann, "no-such-account", "")
	apptest.WantCode(t, err, apperr.NotFound, "")
	_, err = e.acc.Link(e.Ctx, e.Tenant, ann, acme.ID, strings.Repeat("r", account.MaxRoleLen+1))
	apptest.WantCode(t, err, apperr.BadUserInput, "role")
}

// TestLinksFollowMergesUnmergesAndErasure: a merge brings the source's
// links to the survivor (a hand-made link wins over a domain's); the
// unmerge gives them back; an erasure removes them and keeps the account.
func TestLinksFollowMergesUnmergesAndErasure(t *testing.T) {
	e := newEnv(t)
	acme := e.create(t, "Acme", "acme.com")
	globex := e.create(t, "Globex", "globex.com")
	older := e.identify(t, anon("old"))
	if _, err := e.acc.Link(e.Ctx, e.Tenant, older, acme.ID, "champion"); err != nil {
		t.Fatal(err)
	}
	newer := e.identify(t, email("nia@acme.com"), email("nia@globex.com"))
	if got := e.links(t, newer); len(got) != 2 {
		t.Fatalf("newer: %v", got)
	}
	survivor, err := e.Services.Identity.Merge(e.Ctx, e.Tenant, older, newer, "same person", "t")
	if err != nil || survivor.ID != older {
		t.Fatalf("merge: %v %v", survivor, err)
	}
	got := e.links(t, older)
	if got[acme.ID] != account.Manual+"/champion" || got[globex.ID] != account.DomainMatch+"/" || len(e.links(t, newer)) != 0 {
		t.Fatalf("after the merge: survivor %v, source %v", got, e.links(t, newer))
	}
	recs, err := identity.History(e.Ctx, e.Tenant, older)
	if err != nil || len(recs) == 0 {
		t.Fatal(err)
	}
	if _, err := e.Services.Identity.Unmerge(e.Ctx, e.Tenant, recs[0].ID, "t"); err != nil {
		t.Fatal(err)
	}
	if got := e.links(t, older); len(got) != 1 || got[acme.ID] != account.Manual+"/champion" {
		t.Errorf("survivor after the unmerge: %v", got)
	}
	if got := e.links(t, newer); len(got) != 2 || got[globex.ID] != account.DomainMatch+"/" {
		t.Errorf("restored after the unmerge: %v", got)
	}

	// Export, then erasure.
	doc, err := e.Services.Privacy.Export(e.Ctx, e.Tenant, newer)
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := doc["accounts"].([]account.Exported)
	if len(exp) != 2 || (exp[0].AccountName != "Acme" && exp[0].AccountName != "Globex") {
		t.Fatalf("export accounts: %#v", doc["accounts"])
	}
	if _, err := e.Services.Privacy.Erase(e.Ctx, e.Tenant, newer, "asked", "t"); err != nil {
		t.Fatal(err)
	}
	n, _ := e.acc.CountContacts(e.Ctx, e.Tenant, globex.ID)
	if n != 0 {
		t.Errorf("globex keeps %d contacts after the erasure", n)
	}
	if a, err := e.acc.Get(e.Ctx, e.Tenant, globex.ID); err != nil || a.Name != "Globex" {
		t.Errorf("the account went with the person: %v", err)
	}
	if ids := e.rawLinks(t); slices.ContainsFunc(ids, func(id string) bool { return strings.HasSuffix(id, "/"+newer) }) {
		t.Errorf("a link of the erased person remains: %v", ids)
	}
}

func (e *env) rawLinks(t *testing.T) []string {
	t.Helper()
	var ids []string
	docs, err := e.Tenant.C(account.AccountLinks).Find(context.Background(), store.Query{Index: store.ByID})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		id, _ := d.Raw.Lookup("_id").StringValueOK()
		ids = append(ids, id)
	}
	return ids
}

func TestListAndSearch(t *testing.T) {
	e := newEnv(t)
	for i, n := range []string{"Globex", "acme", "Acme Europe", "Initech"} {
		e.Clock.Set(start.Add(time.Duration(i) * time.Hour))
		tier := []string{"gold", "silver"}[i%2]
		domain := strings.ToLower(strings.ReplaceAll(n, " ", "")) + ".com"
		if _, err := e.acc.Create(e.Ctx, e.Tenant, account.CreateInput{Name: n, Domains: []string{domain}, Traits: map[string]any{"tier": tier, "seats": i * 10}}); err != nil {
			t.Fatal(err)
		}
	}
	names := func(q account.ListQuery, first int) []string {
		t.Helper()
		var out []string
		after := ""
		for {
			page, err := e.acc.List(e.Ctx, e.Tenant, q, first, after)
			if err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
			for _, a := range page.Accounts {
				out = append(out, a.Name)
			}
			if !page.HasNext {
				break
			}
			after = page.Cursors[len(page.Cursors)-1]
		}
		n, err := e.acc.Count(e.Ctx, e.Tenant, q)
		if err != nil || n != int64(len(out)) {
			t.Errorf("%+v: count %d (%v), listed %d", q, n, err, len(out))
		}
		return out
	}
	for _, c := range []struct {
		q    account.ListQuery
		want []string
	}{
		{account.ListQuery{Search: "ACM"}, []string{"acme", "Acme Europe"}},
		{account.ListQuery{}, []string{"acme", "Acme Europe", "Globex", "Initech"}},
		{account.ListQuery{Desc: true}, []string{"Initech", "Globex", "Acme Europe", "acme"}},
		{account.ListQuery{Order: account.ByCreatedAt}, []string{"Globex", "acme", "Acme Europe", "Initech"}},
		{account.ListQuery{Order: account.ByCreatedAt, Desc: true, CreatedFrom: start.Add(time.Hour), CreatedTo: start.Add(3 * time.Hour)}, []string{"Acme Europe", "acme"}},
		{account.ListQuery{CreatedFrom: start.Add(time.Hour), CreatedTo: start.Add(3 * time.Hour)}, []string{"acme", "Acme Europe"}},
		{account.ListQuery{Traits: []rule.TraitCond{{Key: "tier", Op: rule.EQ, Value: "gold"}}}, []string{"Acme Europe", "Globex"}},
		{account.ListQuery{Order: account.ByUpdatedAt, Traits: []rule.TraitCond{{Key: "seats", Op: rule.GTE, Value: 10}}}, []string{"acme", "Acme Europe", "Initech"}},
		{account.ListQuery{Domain: "WWW.Initech.com"}, []string{"Initech"}},
		{account.ListQuery{Domain: "nobody.com"}, nil},
	} {
		for _, first := range []int{1, 3} {
			if got := names(c.q, first); !slices.Equal(got, c.want) {
				t.Errorf("%+v, pages of %d: %v, want %v", c.q, first, got, c.want)
			}
		}
	}
	for _, c := range []struct {
		q     account.ListQuery
		field string
	}{
		{account.ListQuery{Search: "a", Order: account.ByCreatedAt}, "orderBy"},
		{account.ListQuery{Order: "SIZE"}, "orderBy.field"},
		{account.ListQuery{CreatedFrom: start, CreatedTo: start}, "filter.createdTo"},
		{account.ListQuery{Domain: "not a domain"}, "filter.domain"},
		{account.ListQuery{Traits: []rule.TraitCond{{Key: "$where", Op: rule.EQ, Value: 1}}}, "filter.traits[0].key"},
	} {
		_, err := e.acc.List(e.Ctx, e.Tenant, c.q, 10, "")
		apptest.WantCode(t, err, apperr.BadUserInput, c.field)
	}
}

// TestClaimsSurviveRacesAndLeftovers: a stale update gives back only what
// it claimed itself (the account's claim stays); a claim nobody lists is
// taken over once its grace has passed, and not before.
func TestClaimsSurviveRacesAndLeftovers(t *testing.T) {
	e := newEnv(t)
	a := e.create(t, "Acme", "acme.com")
	both := []string{"acme.com", "x.com"}
	if _, err := e.acc.Update(e.Ctx, e.Tenant, a.ID, account.UpdateInput{SetDomains: true, Domains: both, ExpectedVersion: 1}); err != nil {
		t.Fatal(err)
	}
	// The same change from the version read before: CONFLICT, and x.com
	// stays acme's.
	_, err := e.acc.Update(e.Ctx, e.Tenant, a.ID, account.UpdateInput{SetDomains: true, Domains: both, ExpectedVersion: 1})
	apptest.WantCode(t, err, apperr.Conflict, "")
	_, err = e.acc.Create(e.Ctx, e.Tenant, account.CreateInput{Name: "Squatter", Domains: []string{"x.com"}})
	apptest.WantCode(t, err, apperr.Conflict, "")
	if got, err := e.acc.ByIdentifier(e.Ctx, e.Tenant, "identifier", account.Identifier{Type: account.Domain, Value: "x.com"}); err != nil || got.ID != a.ID {
		t.Fatalf("x.com: %v %v", got, err)
	}
	// Leftover claims, as a crash leaves them: one fresh, one old.
	for _, c := range []struct {
		value string
		at    time.Time
	}{{"fresh.com", start}, {"old.com", start.Add(-2 * time.Minute)}} {
		err := e.Tenant.C(account.AccountIdentities).Insert(e.Ctx, map[string]any{"_id": store.NewID(), "type": account.Domain, "value": c.value,
			"accountId": "never-stored", "claimedAt": c.at, "version": int64(1)})
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.acc.Create(e.Ctx, e.Tenant, account.CreateInput{Name: "Fresh", Domains: []string{"fresh.com"}})
	apptest.WantCode(t, err, apperr.Conflict, "")
	old := e.create(t, "Old", "old.com")
	if got, _ := e.acc.ByIdentifier(e.Ctx, e.Tenant, "identifier", account.Identifier{Type: account.Domain, Value: "old.com"}); got == nil || got.ID != old.ID {
		t.Fatalf("old.com not taken over: %v", got)
	}
	// A leftover naming nobody links nobody.
	if pid := e.identify(t, email("fay@fresh.com")); len(e.links(t, pid)) != 0 {
		t.Fatalf("linked through a leftover claim: %v", e.links(t, pid))
	}
}

// TestHandMadeLinkSurvivesUnmerge: a link a merge brought, then made by
// hand on the survivor, stays the survivor's after the unmerge; the
// restored profile gets its own back. Emails with Unicode domains join
// the account of their punycode domain.
func TestHandMadeLinkSurvivesUnmerge(t *testing.T) {
	e := newEnv(t)
	acme := e.create(t, "Acme", "acme.com")
	older := e.identify(t, anon("o"))
	newer := e.identify(t, email("nia@acme.com"))
	if _, err := e.Services.Identity.Merge(e.Ctx, e.Tenant, older, newer, "same", "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.acc.Link(e.Ctx, e.Tenant, older, acme.ID, "owner"); err != nil {
		t.Fatal(err)
	}
	recs, _ := identity.History(e.Ctx, e.Tenant, older)
	if _, err := e.Services.Identity.Unmerge(e.Ctx, e.Tenant, recs[0].ID, "t"); err != nil {
		t.Fatal(err)
	}
	if got := e.links(t, older)[acme.ID]; got != account.Manual+"/owner" {
		t.Errorf("the survivor's hand-made link after the unmerge: %q", got)
	}
	if _, ok := e.links(t, newer)[acme.ID]; !ok {
		t.Errorf("the restored profile lost its link: %v", e.links(t, newer))
	}

	buch := e.identify(t, email("ann@bücher.de"))
	b := e.create(t, "Bücher", "bücher.de")
	if _, ok := e.links(t, buch)[b.ID]; !ok || b.Domains[0] != "xn--bcher-kva.de" {
		t.Errorf("an IDN email did not join %v: %v", b.Domains, e.links(t, buch))
	}
}
