package dest

import (
	"encoding/json"

	"carrier/internal/dispatch"
	"carrier/internal/store"
)

// Hidden is what the API shows in place of a secret setting. A secret sent
// back as Hidden keeps its stored value (see HiddenSettings).
const Hidden = "***hidden***"

// Kind is one destination kind: everything Carrier does with a subscription
// of that kind, from checking its settings when it is saved to sending its
// deliveries. Each kind's package implements it once; the Registry built at
// start hands the same value to the subscription service (validate,
// summarise), the API (show) and the delivery engine (send), so they can
// never disagree about a kind.
type Kind interface {
	// Name is the kind as stored in subscriptions and sent as
	// destination.type, such as "discord".
	Name() string
	// Validate checks the settings (the destination object without "type").
	// A wrong setting is reported as a *FieldError.
	Validate(settings json.RawMessage) error
	// Redact returns the subscription's settings as the API shows them
	// (without "type"), every secret replaced by Hidden or cut out. It takes
	// the subscription, not only its settings document, because a kind may
	// keep its settings in the subscription's own columns (ColumnSettings).
	Redact(sub store.Subscription) json.RawMessage
	// Summary is what attempts record as where they went (no secrets), from
	// validated settings.
	Summary(settings json.RawMessage) string
	// Send makes one attempt for a job of this kind.
	dispatch.Sender
}

// HiddenSettings is implemented by a kind whose settings hold secrets.
type HiddenSettings interface {
	// SecretSettings returns the settings the API shows as Hidden, and the
	// settings that say where, and as whom, those secrets are sent. A secret
	// sent back as Hidden keeps its stored value, but only while no
	// recipient setting changes: otherwise a key of the project could point
	// the destination at its own server and have the stored secret sent
	// there.
	SecretSettings() (secrets, recipient []string)
}

// Target is implemented by a kind that sends to an address named in its
// settings, so the subscription service can refuse one the SSRF rules
// forbid when it is saved, not only when it is dialled.
type Target interface {
	// Target returns the setting that names the address ("webhook_url") and
	// the address as a URL; "" when the settings name none.
	Target(settings json.RawMessage) (field, url string)
}

// ColumnSettings is implemented by a kind whose settings are columns of the
// subscription itself rather than its Destination document: the webhook,
// whose URL, custom headers and signing secret are shared with /v1/webhooks,
// rotated and signed with. Those columns are validated and written by the
// webhook rules of the subscription service; Validate and Summary of such a kind
// see the destination object built from them.
type ColumnSettings interface {
	// Settings returns the destination object (without "type") built from
	// sub's columns, with secrets in the clear.
	Settings(sub store.Subscription) json.RawMessage
}

// SettingString returns the string setting key of settings; "" when it is
// missing or not a string.
func SettingString(settings json.RawMessage, key string) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(settings, &obj) != nil {
		return ""
	}
	var s string
	json.Unmarshal(obj[key], &s)
	return s
}
