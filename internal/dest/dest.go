// Package dest holds what every destination kind shares. Each kind lives in
// its own package below (webhook, discord, slack, email, logfile, queue,
// pingback) and implements Kind; one Registry of them, built at start, is
// what the subscription service validates settings with, what the API shows
// them with and what the delivery engine sends with.
//
// The HTTP kinds post through Attempt, which times the request, records at
// most ResponseLimit bytes of the answer and classifies network failures
// (ClassifyNetError). The chat services (Discord, Slack) also share how they
// send (ChatService), decode and check their settings (DecodeObject,
// ParseFields, CheckWebhookURL), and compile, run and cut their templates
// (ParseTemplate, ExecuteTemplate, TemplateData, Truncate).
package dest

// FieldError says which field of an input is wrong and why. It is Carrier's
// one validation error: destination kinds report their settings with it (Field
// is then the setting's path inside the "destination" object, such as
// "webhook_url" or "template.title"), the services (subscriptions, keys)
// report their inputs with it (Field as the API names it, such as
// "destination.url" or "event_types[2]"), and the REST API answers it as a
// validation error naming Field.
type FieldError struct {
	Field   string
	Message string
	// Err is the cause, when one says more than the message (such as
	// netguard.ErrBlocked for an address the SSRF rules refuse); nil
	// otherwise.
	Err error
}

// Error says which field is wrong and why, such as "webhook_url is
// required".
func (e *FieldError) Error() string { return e.Field + " " + e.Message }

// Unwrap returns the cause, so errors.Is finds it.
func (e *FieldError) Unwrap() error { return e.Err }
