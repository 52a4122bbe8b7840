package health

import (
	"fmt"
	"time"
)

// Evaluate applies one batch of a subscription's outcomes, in the order the
// attempts were made, to its counters, and returns the new counters with the
// signals the batch raised, in the order it raised them.
//
// Degraded, Recovered and RetriesExhausted follow each outcome, so they do
// not depend on how outcomes were split into batches: a run of failures
// crosses DegradedAfter once however it arrives, and a success in between
// ends the run. Disable is judged on the batch as a whole, once its outcomes
// are applied: a batch whose failures reach DisableAfter but that ends with a
// success does not disable (the endpoint works), and one that does reports
// the run as it stands at the batch's end. An outcome asking to be disabled
// (410) disables even when a success follows it in the same batch. A
// subscription that is already inactive is not disabled again.
func Evaluate(p Policy, before Counters, outcomes []Outcome) (Counters, []Signal) {
	c := before
	var signals []Signal
	disable, reason := false, ""
	var last time.Time
	for _, o := range outcomes {
		last = o.At
		if o.Result == Delivered {
			if c.Degraded || (p.DegradedAfter > 0 && c.ConsecutiveFailures >= p.DegradedAfter) {
				signals = append(signals, Signal{Kind: Recovered, At: o.At, Failures: max(c.RunFailures, c.ConsecutiveFailures), Since: c.FailingSince})
			}
			c.ConsecutiveFailures, c.RunFailures, c.Degraded, c.FailingSince = 0, 0, false, time.Time{}
		} else {
			if c.RunFailures == 0 {
				c.FailingSince = o.At
			}
			c.ConsecutiveFailures++
			c.RunFailures++
			if p.DegradedAfter > 0 && !c.Degraded && c.ConsecutiveFailures >= p.DegradedAfter {
				c.Degraded = true
				// Counters from before the degraded flag existed can be past
				// the threshold already: that is no crossing.
				if c.ConsecutiveFailures == p.DegradedAfter {
					signals = append(signals, Signal{Kind: Degraded, At: o.At, Failures: c.ConsecutiveFailures, Since: c.FailingSince})
				}
			}
			if o.Result == Failed {
				signals = append(signals, Signal{Kind: RetriesExhausted, At: o.At, Failures: c.ConsecutiveFailures, Since: c.FailingSince, DeliveryID: o.DeliveryID})
			}
		}
		if o.Disable && !disable {
			disable, reason = true, o.DisableReason
		}
	}
	if !c.Active {
		return c, signals
	}
	if !disable && (p.DisableAfter <= 0 || c.ConsecutiveFailures < p.DisableAfter) {
		return c, signals
	}
	if !disable {
		reason = fmt.Sprintf("%d consecutive failed attempts", c.ConsecutiveFailures)
	}
	c.Active, c.Degraded = false, true
	signals = append(signals, Signal{Kind: Disable, At: last, Failures: c.ConsecutiveFailures, Since: c.FailingSince, Reason: reason})
	return c, signals
}
