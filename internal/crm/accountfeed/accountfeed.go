// Package accountfeed is an account's timeline: the CRM items about the
// account itself (its deals and tasks), kept here, and its people's
// timelines, merged newest first.
package accountfeed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/crm/account"
	"github.com/halo-cdp/halo/internal/timeline"
	"github.com/halo-cdp/halo/store"
)

// The collection package accountfeed owns.
const (
	AccountItems          = "account_items" // _id: the item's key and account
	AccountItemsByAccount = "by_account_at" // (accountId, at)
	AccountItemsByProfile = "by_profile"    // (profileId): the person an item is about
)

// Collections declares it and its indexes.
var Collections = []store.CollectionSpec{
	{Name: AccountItems, Indexes: []store.Index{
		{Name: AccountItemsByAccount, Fields: []string{"accountId", "at"}},
		{Name: AccountItemsByProfile, Fields: []string{"profileId"}},
	}},
}

// Item is one CRM item on an account.
type Item struct {
	ID          string         `bson:"_id"`
	WorkspaceID string         `bson:"workspaceId"`
	AccountID   string         `bson:"accountId"`
	Key         string         `bson:"key"`
	Kind        string         `bson:"kind"` // an interaction kind: DEAL, TASK
	Subject     string         `bson:"subject"`
	Actor       string         `bson:"actor,omitempty"`
	Properties  map[string]any `bson:"properties"`
	// ProfileID is the person the object is about ("" for none), so an
	// erasure takes the item away.
	ProfileID string    `bson:"profileId"`
	At        time.Time `bson:"at"`
}

// Add stores it on its account, once per key (a repeat stores nothing).
func Add(ctx context.Context, tn store.Tenant, it Item) error {
	it.ID = it.Key + "@" + it.AccountID
	if err := tn.C(AccountItems).Insert(ctx, it); err != nil && !errors.Is(err, store.ErrDuplicateKey) {
		return fmt.Errorf("add an item to account %s: %w", it.AccountID, err)
	}
	return nil
}

// Own tells whether a person's timeline item is one the account feed
// keeps itself (a deal's or a task's CRM item, by its messageId): the
// account timeline shows it from here, once, and not from every contact.
func Own(ev *timeline.Event) bool {
	return ev.Kind == timeline.KindInteraction && (strings.HasPrefix(ev.MessageID, "deal:") || strings.HasPrefix(ev.MessageID, "task:"))
}

// MaxContacts bounds the people an account timeline reads (the oldest
// links first).
const MaxContacts = 5000

// Page is a page of an account's timeline, newest first.
type Page struct {
	Items   []*timeline.Event
	HasNext bool
}

// Read pages through account id's timeline, newest first, after position
// after (nil: from the newest): the account's own items and its people's
// items.
func Read(ctx context.Context, tn store.Tenant, accounts *account.Service, id string, first int, after *timeline.Position, now time.Time) (Page, error) {
	if err := account.Exists(ctx, tn, id); err != nil {
		return Page{}, err
	}
	need := first + 1
	var cands []*timeline.Event
	keepBest := func(evs []*timeline.Event) {
		cands = append(cands, evs...)
		slices.SortFunc(cands, timeline.NewestFirst)
		if len(cands) > need {
			cands = cands[:need]
		}
	}
	own, err := ownItems(ctx, tn, id, after, need)
	if err != nil {
		return Page{}, err
	}
	keepBest(own)
	people, err := accounts.ContactIDs(ctx, tn, id, MaxContacts)
	if err != nil {
		return Page{}, err
	}
	// Their items come merged by time from the store: a page costs one
	// read per thousand people, however far back it is.
	evs, err := timeline.ReadBeforeAll(ctx, tn, people, after, need, func(ev *timeline.Event) bool { return !Own(ev) }, now)
	if err != nil {
		return Page{}, err
	}
	keepBest(evs)
	out := Page{Items: cands}
	if len(cands) > first {
		out.Items, out.HasNext = cands[:first], true
	}
	return out, nil
}

// ownItems reads the account's own items after position p, newest
// first, as timeline items.
func ownItems(ctx context.Context, tn store.Tenant, id string, p *timeline.Position, limit int) ([]*timeline.Event, error) {
	q := store.Query{Index: AccountItemsByAccount, Eq: []any{id}, Desc: true}
	if p != nil {
		q.Range = &store.Bound{Lte: p.At}
	}
	out, err := timeline.Before(ctx, tn.C(AccountItems), q, nil, p, limit, func(raw bson.Raw) (*timeline.Event, error) {
		var it Item
		if err := bson.Unmarshal(raw, &it); err != nil {
			return nil, fmt.Errorf("decode account item: %w", err)
		}
		return it.event(), nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("items of account %s: %w", id, err)
	}
	return out, nil
}

// event shows it as a timeline item of no person.
func (it *Item) event() *timeline.Event {
	props := it.Properties
	if props == nil {
		props = map[string]any{}
	}
	return &timeline.Event{ID: it.ID, WorkspaceID: it.WorkspaceID, Kind: timeline.KindInteraction, Name: strings.ToLower(it.Kind),
		InteractionKind: it.Kind, Subject: it.Subject, Actor: it.Actor, Properties: props, MessageID: it.Key, OccurredAt: it.At, ReceivedAt: it.At}
}

// MoveAccount moves sourceID's items to targetID (a merge of accounts).
func MoveAccount(ctx context.Context, tn store.Tenant, sourceID, targetID string) error {
	for {
		docs, err := tn.C(AccountItems).Find(ctx, store.Query{Index: AccountItemsByAccount, Eq: []any{sourceID}, Limit: 200})
		if err != nil {
			return fmt.Errorf("items of account %s: %w", sourceID, err)
		}
		for _, d := range docs {
			var it Item
			if err := d.Decode(&it); err != nil {
				return fmt.Errorf("decode account item: %w", err)
			}
			old := it.ID
			it.AccountID = targetID
			if err := Add(ctx, tn, it); err != nil {
				return err
			}
			if err := tn.C(AccountItems).Delete(ctx, old); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("move account item %s: %w", old, err)
			}
		}
		if len(docs) < 200 {
			return nil
		}
	}
}

// EraseProfile deletes the items about profileID (an erasure: a task
// about a person names them).
func EraseProfile(ctx context.Context, tn store.Tenant, profileID string) error {
	if _, err := tn.C(AccountItems).DeleteMany(ctx, store.Query{Index: AccountItemsByProfile, Eq: []any{profileID}}); err != nil {
		return fmt.Errorf("erase the account items about %s: %w", profileID, err)
	}
	return nil
}
