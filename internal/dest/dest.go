// Package dest holds what every destination kind shares. Each kind lives in
// its own package below (webhook, discord, slack, email, logfile) and sends
// the deliveries of subscriptions of that kind.
package dest

// FieldError says which destination setting is wrong and why. Field is the
// setting's path inside the subscription's "destination" object, such as
// "webhook_url" or "template.title".
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Message }
