package captcha

import (
	"strconv"
	"strings"
	"time"
)

// degrades tells whether an answer is the vendor's own failure, the only
// kind a policy may degrade on: a timeout or no answer, a 5xx, Tencent's
// InternalError or CaptchaCode 26, Turnstile's internal-error, an open
// circuit. A rate limit (429, RequestLimitExceeded) is not: failing open on
// it lets an attacker burn the quota and walk in. Nor is a configuration
// error (it would hide a broken integration) or any token error.
func degrades(a Answer) bool { return a.Reason == ReasonVendorUnavailable }

// Outcome is what a policy decided.
type Outcome struct {
	Decision string
	Reason   Reason
	// Degraded is the vendor failure a degraded decision stands on (its
	// VendorCode), "" otherwise.
	Degraded string
}

// Decide is the policy as a pure function: a vendor's answer and the
// site's policy in, a decision out. budgetOK says whether a degraded allow
// is within fail_open_budgeted's budgets (it is asked only then). Only an
// ok answer allows; only the vendor's own failure degrades.
func Decide(p Policy, a Answer, budgetOK func() bool) Outcome {
	if a.Reason == ReasonOK {
		return Outcome{Decision: Allow, Reason: ReasonOK}
	}
	if !degrades(a) {
		return Outcome{Decision: Deny, Reason: a.Reason}
	}
	cause := a.VendorCode
	if cause == "" {
		cause = string(a.Reason)
	}
	switch p {
	case FailOpen:
		return Outcome{Decision: DegradedAllow, Reason: a.Reason, Degraded: cause}
	case FailOpenBudgeted:
		if budgetOK != nil && budgetOK() {
			return Outcome{Decision: DegradedAllow, Reason: a.Reason, Degraded: cause}
		}
		return Outcome{Decision: Deny, Reason: a.Reason, Degraded: cause}
	case StepUp:
		return Outcome{Decision: Challenge, Reason: a.Reason, Degraded: cause}
	}
	return Outcome{Decision: Deny, Reason: a.Reason, Degraded: cause}
}

// DRTicket is a parsed disaster-recovery ticket: what Tencent's front end
// makes when its script cannot load, terror_<code>_<CaptchaAppId>_<unix
// seconds> (newer documents: trerror_).
type DRTicket struct {
	Code  string
	AppID string
	At    time.Time
}

// ParseDRTicket parses a disaster-recovery ticket; ok is false when ticket
// is not one.
func ParseDRTicket(ticket string) (DRTicket, bool) {
	var rest string
	switch {
	case strings.HasPrefix(ticket, "terror_"):
		rest = ticket[len("terror_"):]
	case strings.HasPrefix(ticket, "trerror_"):
		rest = ticket[len("trerror_"):]
	default:
		return DRTicket{}, false
	}
	parts := strings.Split(rest, "_")
	if len(parts) != 3 || !digits(parts[0]) || !digits(parts[1]) || !digits(parts[2]) || len(parts[2]) > 12 {
		return DRTicket{}, false
	}
	sec, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return DRTicket{}, false
	}
	return DRTicket{Code: parts[0], AppID: parts[1], At: time.Unix(sec, 0)}, true
}

func digits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// checkDR judges a DR ticket's own claims for a site at now: its app id is
// the site's, and it is at most maxAge old and not from the future (the
// front end stamps it with the browser's clock, so up to a minute ahead is
// taken as clock skew, no more). It returns "" when they hold, else why not.
func checkDR(t DRTicket, appID string, now time.Time, maxAge time.Duration) string {
	switch {
	case t.AppID != appID:
		return "the ticket's app id is not the site's"
	case t.At.After(now.Add(time.Minute)):
		return "the ticket is from the future"
	case now.Sub(t.At) > maxAge:
		return "the ticket is older than " + maxAge.String()
	}
	return ""
}
