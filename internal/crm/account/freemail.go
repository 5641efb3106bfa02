package account

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/platform/settings"
	"github.com/halo-cdp/halo/store"
)

// DefaultFreeMail are the mail providers whose domains never link a
// person to an account: a gmail.com address says nothing of an employer.
var DefaultFreeMail = []string{
	"163.com", "aol.com", "gmail.com", "gmx.com", "gmx.de", "gmx.net", "googlemail.com", "hotmail.com", "icloud.com",
	"live.com", "mac.com", "mail.com", "mail.ru", "me.com", "msn.com", "outlook.com", "proton.me", "protonmail.com",
	"qq.com", "web.de", "yahoo.com", "yandex.com", "yandex.ru", "ymail.com", "zoho.com",
}

// MaxFreeMail caps the free-mail list.
const MaxFreeMail = 1000

const freeMailKey = "crm.freeMail"

type freeMailDoc struct {
	ID      string   `bson:"_id"`
	Key     string   `bson:"key"`
	Domains []string `bson:"domains"`
	Version int64    `bson:"version"`
}

// FreeMail is the workspace's free-mail domains (DefaultFreeMail until
// set), sorted.
func (s *Service) FreeMail(ctx context.Context, tn store.Tenant) ([]string, error) {
	var d freeMailDoc
	err := settings.Find(ctx, tn, freeMailKey, &d)
	if errors.Is(err, store.ErrNotFound) {
		return slices.Sorted(slices.Values(DefaultFreeMail)), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read free-mail domains: %w", err)
	}
	return d.Domains, nil
}

// SetFreeMail replaces the workspace's free-mail domains (field
// "freeMailDomains" in errors). AccountLinks made before stay.
func (s *Service) SetFreeMail(ctx context.Context, tn store.Tenant, domains []string) ([]string, error) {
	if len(domains) > MaxFreeMail {
		return nil, apperr.Invalid("freeMailDomains", "at most %d domains", MaxFreeMail)
	}
	var list []string
	for i, d := range domains {
		n, err := NormaliseDomain(d)
		if err != nil {
			return nil, apperr.Invalid(fmt.Sprintf("freeMailDomains[%d]", i), "%s", err.Error())
		}
		if !slices.Contains(list, n) {
			list = append(list, n)
		}
	}
	slices.Sort(list)
	if list == nil {
		list = []string{}
	}
	for range 5 {
		var cur freeMailDoc
		err := settings.Find(ctx, tn, freeMailKey, &cur)
		switch {
		case errors.Is(err, store.ErrNotFound):
			err = settings.Insert(ctx, tn, freeMailDoc{ID: store.NewID(), Key: freeMailKey, Domains: list, Version: 1})
			if errors.Is(err, store.ErrDuplicateKey) {
				continue
			}
		case err == nil:
			prev := cur.Version
			cur.Domains, cur.Version = list, prev+1
			err = settings.Replace(ctx, tn, cur, prev)
			if errors.Is(err, store.ErrConflict) {
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("store free-mail domains: %w", err)
		}
		return list, nil
	}
	return nil, apperr.New(apperr.Conflict, "the free-mail domains changed meanwhile: try again")
}
