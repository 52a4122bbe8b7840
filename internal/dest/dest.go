// Package dest holds what every destination kind shares. Each kind lives in
// its own package below (webhook, discord, slack, email, logfile, queue,
// pingback) and implements Kind; one Registry of them, built at start, is
// what the API validates and shows settings with and what the delivery
// engine sends with.
//
// The HTTP kinds post through Attempt, which times the request, records at
// most ResponseLimit bytes of the answer and classifies network failures
// (ClassifyNetError). The chat services (Discord, Slack) also share how they
// send (ChatService), decode and check their settings (DecodeObject,
// ParseFields, CheckWebhookURL), and compile, run and cut their templates
// (ParseTemplate, ExecuteTemplate, TemplateData, Truncate).
package dest

// FieldError says which destination setting is wrong and why. Field is the
// setting's path inside the subscription's "destination" object, such as
// "webhook_url" or "template.title".
type FieldError struct {
	Field   string
	Message string
}

// Error says which setting is wrong and why, such as "webhook_url is
// required".
func (e *FieldError) Error() string { return e.Field + " " + e.Message }
