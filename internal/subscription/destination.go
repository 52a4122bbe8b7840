package subscription

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"

	"carrier/internal/dest"
	destqueue "carrier/internal/dest/queue"
	"carrier/internal/store"
)

// destinationKind reads destination.type and finds its kind.
func (s *Service) destinationKind(raw json.RawMessage) (dest.Kind, error) {
	var d struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, invalid("destination", "must be an object with a type")
	}
	if d.Type == "" {
		return nil, invalid("destination.type", "is required: %s", s.kinds())
	}
	k, ok := s.d.Destinations.Lookup(d.Type)
	if !ok {
		return nil, invalid("destination.type", "must be %s", s.kinds())
	}
	return k, nil
}

// webhookDestination is the destination object of kind webhook.
type webhookDestination struct {
	Type          string             `json:"type"`
	URL           *string            `json:"url"`
	CustomHeaders *map[string]string `json:"custom_headers"`
}

// decode reads raw, refusing settings a webhook does not have by name.
func (d *webhookDestination) decode(raw json.RawMessage) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(d)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return invalid("destination."+typeErr.Field, "must be %s", jsonKind(typeErr.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return invalid("destination."+name, "is not a known setting (known: type, url, custom_headers)")
	default:
		return invalid("destination", "%v", err)
	}
}

// jsonKind names a Go kind as JSON does.
func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	default:
		return "of another type"
	}
}

// destinationSettings validates the destination object of a kind with a
// settings document and returns its settings (without "type"), with any
// address in them checked against the SSRF rules.
func (s *Service) destinationSettings(ctx context.Context, k dest.Kind, raw json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, invalid("destination", "must be an object")
	}
	delete(m, "type")
	settings, _ := json.Marshal(m)
	if err := k.Validate(settings); err != nil {
		var ferr *dest.FieldError
		if errors.As(err, &ferr) {
			return nil, invalid("destination."+ferr.Field, "%s", ferr.Message)
		}
		return nil, invalid("destination", "%v", err)
	}
	if t, ok := k.(dest.Target); ok {
		setting, target := t.Target(settings)
		if target == "" {
			return settings, nil
		}
		if err := s.checkAddress(ctx, "destination."+setting, target); err != nil {
			return nil, err
		}
	}
	return settings, nil
}

// keepHidden puts the stored value back for every secret setting of the
// kind sent as dest.Hidden (what the API shows for it), so settings read
// from the API can be sent back without knowing the secret. It refuses to
// when a recipient setting changes: the secret must then be sent again.
// dest.Hidden in any other setting is taken as it is.
func keepHidden(sent, stored json.RawMessage, k dest.Kind) (json.RawMessage, error) {
	h, ok := k.(dest.HiddenSettings)
	if !ok {
		return sent, nil
	}
	secrets, recipient := h.SecretSettings()
	var in, old map[string]json.RawMessage
	if json.Unmarshal(sent, &in) != nil {
		return sent, nil
	}
	json.Unmarshal(stored, &old)
	changed := false
	for _, k := range secrets {
		if string(in[k]) != `"`+dest.Hidden+`"` {
			continue
		}
		prev, ok := old[k]
		if !ok {
			return nil, invalid("destination."+k, "is %s but no value is stored: send the value", dest.Hidden)
		}
		for _, r := range recipient {
			if !sameJSON(in[r], old[r]) {
				return nil, invalid("destination."+k, "is required when destination.%s changes: a stored secret is only sent where it was sent before", r)
			}
		}
		in[k], changed = prev, true
	}
	if !changed {
		return sent, nil
	}
	out, _ := json.Marshal(in)
	return out, nil
}

// sameJSON reports whether two JSON values are equal as values (member order
// and spacing aside); a missing value equals only a missing or null one.
func sameJSON(a, b json.RawMessage) bool {
	var va, vb any
	if len(a) > 0 && json.Unmarshal(a, &va) != nil {
		return false
	}
	if len(b) > 0 && json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// isQueue reports whether k is the queue destination, whose queue must exist.
func isQueue(k dest.Kind) bool { return k.Name() == destqueue.Kind }

// checkQueueDestination makes sure a queue destination names a queue of the
// subscription's project.
func (s *Service) checkQueueDestination(ctx context.Context, projectID string, settings json.RawMessage) error {
	c, err := destqueue.ParseConfig(settings)
	if err != nil {
		return invalid("destination.queue", "%v", err)
	}
	if s.d.Queues == nil {
		return invalid("destination.type", "queue destinations need pull queues, which are not configured")
	}
	if _, err := s.d.Queues.Resolve(ctx, projectID, c.Queue); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return invalid("destination.queue", "names no queue of this project (create it with POST /v1/queues)")
		}
		return err
	}
	return nil
}
