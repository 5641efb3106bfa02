package consent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/apperr"
	"github.com/halo-cdp/halo/internal/profile"
	"github.com/halo-cdp/halo/internal/segment/rule"
	"github.com/halo-cdp/halo/store"
)

// Export limits: how many members one call reads at most while looking for
// allowed ones (the page then ends early, with hasNext), and how many
// identifier types and trait keys it may ask for.
const (
	MaxExportScan = 10_000
	MaxExportKeys = 100
)

// ExportInput asks for a page of a segment's members allowed for Purpose
// on Channel.
type ExportInput struct {
	SegmentID       string
	Purpose         string
	Channel         string
	First           int    // 1..MaxExportFirst
	After           string // a member cursor (ExportedMember.Cursor)
	IdentifierTypes []string
	Traits          []string
}

// ExportedMember is one exported person: the identifiers of the requested
// types (all when none requested) and the requested traits (all when none).
type ExportedMember struct {
	ProfileID   string
	Identifiers []identity.Held
	Traits      map[string]any
	Cursor      string
}

// ExportPage is one page of an export. EndCursor is where the next page
// starts: the last member read, which may be past the last one returned
// (members without consent are skipped, not returned).
type ExportPage struct {
	Members   []ExportedMember
	HasNext   bool
	EndCursor string
}

// Export pages over a segment's members (newest entry first, as
// Segment.members) and returns those allowed for purpose on channel now,
// by the same decision as CanContact. It reads members until First are
// allowed, the segment ends, or MaxExportScan were read (then HasNext with
// EndCursor past the skipped ones). Unknown segment: NOT_FOUND; unknown
// purpose, bad channel, first or cursor: BAD_USER_INPUT.
func (s *Service) Export(ctx context.Context, tn store.Tenant, in ExportInput) (ExportPage, error) {
	if in.First < 1 || in.First > MaxExportFirst {
		return ExportPage{}, apperr.Invalid("first", "must be between 1 and %d", MaxExportFirst)
	}
	if !slices.Contains(rule.ConsentChannels, in.Channel) {
		return ExportPage{}, apperr.Invalid("channel", "must be one of %s", strings.Join(rule.ConsentChannels, ", "))
	}
	if err := checkKeys("identifierTypes", in.IdentifierTypes); err != nil {
		return ExportPage{}, err
	}
	if err := checkKeys("traits", in.Traits); err != nil {
		return ExportPage{}, err
	}
	pur, err := s.Purpose(ctx, tn, "purpose", in.Purpose)
	if err != nil {
		return ExportPage{}, err
	}
	if in.SegmentID == "" || len(in.SegmentID) > 128 {
		return ExportPage{}, apperr.New(apperr.NotFound, "segment %s not found", truncate(in.SegmentID))
	}
	if _, err := s.segments.Get(ctx, tn, in.SegmentID); err != nil {
		return ExportPage{}, err
	}
	var (
		page    ExportPage
		after   = in.After
		scanned = 0
		batch   = min(max(in.First, 100), MaxExportFirst)
	)
	for {
		members, cursors, more, err := s.segments.Members(ctx, tn, in.SegmentID, batch, after)
		if err != nil {
			return ExportPage{}, err
		}
		now := s.now()
		for i, m := range members {
			after = cursors[i]
			scanned++
			p, err := profile.Get(ctx, tn, m.ProfileID)
			if errors.Is(err, store.ErrNotFound) {
				continue // merged away since: the survivor is a member of its own
			}
			if err != nil {
				return ExportPage{}, fmt.Errorf("export: load profile %s: %w", m.ProfileID, err)
			}
			if p.MergingInto != "" || !rule.ConsentAllows(p.Consent, in.Purpose, in.Channel, pur.AllowedWithoutRecord(), now) {
				continue
			}
			em, err := exported(ctx, tn, p, in)
			if err != nil {
				return ExportPage{}, err
			}
			em.Cursor = after
			page.Members = append(page.Members, em)
			if len(page.Members) == in.First {
				page.HasNext = i < len(members)-1 || more
				page.EndCursor = after
				return page, nil
			}
		}
		page.EndCursor = after
		if !more {
			return page, nil
		}
		if scanned >= MaxExportScan {
			page.HasNext = true
			return page, nil
		}
	}
}

func checkKeys(field string, keys []string) error {
	if len(keys) > MaxExportKeys {
		return apperr.Invalid(field, "at most %d", MaxExportKeys)
	}
	for i, k := range keys {
		if k == "" || len(k) > rule.MaxKeyLen {
			return apperr.Invalid(fmt.Sprintf("%s[%d]", field, i), "must be a non-empty key of at most %d bytes", rule.MaxKeyLen)
		}
	}
	return nil
}

func exported(ctx context.Context, tn store.Tenant, p *profile.Profile, in ExportInput) (ExportedMember, error) {
	held, err := identity.Identifiers(ctx, tn, p.ID)
	if err != nil {
		return ExportedMember{}, err
	}
	em := ExportedMember{ProfileID: p.ID, Identifiers: []identity.Held{}, Traits: map[string]any{}}
	for _, h := range held {
		if len(in.IdentifierTypes) == 0 || slices.Contains(in.IdentifierTypes, h.Type) {
			em.Identifiers = append(em.Identifiers, h)
		}
	}
	if len(in.Traits) == 0 {
		em.Traits = p.Traits
	} else {
		for _, k := range in.Traits {
			if v, ok := p.Traits[k]; ok {
				em.Traits[k] = v
			}
		}
	}
	return em, nil
}
