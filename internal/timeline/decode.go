package timeline

import (
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/halo-cdp/halo/internal/identity"
	"github.com/halo-cdp/halo/internal/platform/rawbson"
)

// eventFields is Event without methods: what bson's reflection decoder
// fills (decodeEvent's reference, see its test).
type eventFields Event

// decodeEvent decodes one stored item into ev, as bson.Unmarshal(raw, ev)
// does, without its reflection on the hot paths (a timeline page of 50
// items, recomputations that scan a profile's items). Each field the
// stored layout holds as a string or a date is read directly; any other
// value of a field (null, another type), identifiers and properties go
// through the driver's own codec for that field, so the result is the
// same by construction; a document it cannot read gets the driver's
// own answer. Unknown keys are ignored, as the struct decoder
// ignores them.
func decodeEvent(raw bson.Raw, ev *Event) error {
	err := rawbson.Each(raw, func(key []byte, v bson.RawValue) error {
		switch string(key) {
		case "_id":
			return decodeString(v, &ev.ID)
		case "workspaceId":
			return decodeString(v, &ev.WorkspaceID)
		case "profileId":
			return decodeString(v, &ev.ProfileID)
		case "originProfileId":
			return decodeString(v, &ev.OriginProfileID)
		case "identifiers":
			return decodeIdentifiers(v, &ev.Identifiers)
		case "kind":
			return decodeString(v, &ev.Kind)
		case "name":
			return decodeString(v, &ev.Name)
		case "messageId":
			return decodeString(v, &ev.MessageID)
		case "properties":
			return decodeProperties(v, &ev.Properties)
		case "channel":
			return decodeString(v, &ev.Channel)
		case "occurredAt":
			return decodeTime(v, &ev.OccurredAt)
		case "receivedAt":
			return decodeTime(v, &ev.ReceivedAt)
		case "interactionKind":
			return decodeString(v, &ev.InteractionKind)
		case "subject":
			return decodeString(v, &ev.Subject)
		case "body":
			return decodeString(v, &ev.Body)
		case "direction":
			return decodeString(v, &ev.Direction)
		case "actor":
			return decodeString(v, &ev.Actor)
		}
		return nil
	})
	if err != nil {
		// A document the fast path cannot read: the driver's answer
		// (its error, worded as usual).
		return bson.Unmarshal(raw, (*eventFields)(ev))
	}
	return nil
}

func decodeString(v bson.RawValue, out *string) error {
	if s, ok := v.StringValueOK(); ok {
		*out = s
		return nil
	}
	return v.Unmarshal(out)
}

// decodeTime reads a BSON date as the driver does: the instant in UTC.
func decodeTime(v bson.RawValue, out *time.Time) error {
	if ms, ok := v.DateTimeOK(); ok {
		*out = time.UnixMilli(ms).UTC()
		return nil
	}
	return v.Unmarshal(out)
}

// errSlowPath sends a value the fast path does not read to the driver.
var errSlowPath = errors.New("timeline: decode with the driver")

// decodeIdentifiers reads the identifiers array; anything but an array
// of {type, value} documents of strings (or an existing slice to append
// to) goes to the driver.
func decodeIdentifiers(v bson.RawValue, out *[]identity.Identifier) error {
	arr, ok := v.ArrayOK()
	if !ok || *out != nil {
		return v.Unmarshal(out)
	}
	ids := []identity.Identifier{}
	err := rawbson.Each(arr, func(_ []byte, el bson.RawValue) error {
		doc, ok := el.DocumentOK()
		if !ok {
			return errSlowPath
		}
		var id identity.Identifier
		err := rawbson.Each(doc, func(k []byte, f bson.RawValue) error {
			var dst *string
			switch string(k) {
			case "type":
				dst = &id.Type
			case "value":
				dst = &id.Value
			default:
				return nil
			}
			s, ok := f.StringValueOK()
			if !ok {
				return errSlowPath
			}
			*dst = s
			return nil
		})
		ids = append(ids, id)
		return err
	})
	if err != nil {
		return v.Unmarshal(out)
	}
	*out = ids
	return nil
}

// decodeProperties reads the properties document into a new map as the
// driver's map and interface decoders do (documents within as bson.D,
// arrays as bson.A); a value of another type than those read here, or
// an existing map to merge into, goes to the driver.
func decodeProperties(v bson.RawValue, out *map[string]any) error {
	doc, ok := v.DocumentOK()
	if !ok || *out != nil {
		return v.Unmarshal(out)
	}
	m := map[string]any{}
	err := rawbson.Each(doc, func(k []byte, f bson.RawValue) error {
		x, err := plainValue(f)
		m[string(k)] = x
		return err
	})
	if err != nil {
		return v.Unmarshal(out)
	}
	*out = m
	return nil
}

// plainValue is what the driver decodes v into in an interface{}, for
// the types user JSON is stored as; errSlowPath for others.
func plainValue(v bson.RawValue) (any, error) {
	switch v.Type {
	case bson.TypeString:
		return v.StringValue(), nil
	case bson.TypeDouble:
		return v.Double(), nil
	case bson.TypeInt32:
		return v.Int32(), nil
	case bson.TypeInt64:
		return v.Int64(), nil
	case bson.TypeBoolean:
		return v.Boolean(), nil
	case bson.TypeNull:
		return nil, nil
	case bson.TypeEmbeddedDocument:
		d := bson.D{}
		err := rawbson.Each(v.Document(), func(k []byte, f bson.RawValue) error {
			x, err := plainValue(f)
			d = append(d, bson.E{Key: string(k), Value: x})
			return err
		})
		return d, err
	case bson.TypeArray:
		a := bson.A{}
		err := rawbson.Each(v.Array(), func(_ []byte, f bson.RawValue) error {
			x, err := plainValue(f)
			a = append(a, x)
			return err
		})
		return a, err
	}
	return nil, errSlowPath
}
