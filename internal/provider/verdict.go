package provider

import "strings"

// Verdict is what one answer about a task (a res.php item, a pingback's
// code) means for the task. Callers branch on it instead of on the codes, so
// which strings are errors, which errors pass and which mean "not yet" is
// decided here, once, for every caller.
type Verdict int

// Verdicts of an answer.
const (
	// Solved: the answer is the task's solution.
	Solved Verdict = iota + 1
	// NotReady: the provider is still solving the task (CAPCHA_NOT_READY).
	NotReady
	// Waiting: a transient error about the task (a rate limit, a busy
	// provider); a later answer may still solve it.
	Waiting
	// Failed: a permanent error code; the task ends without a solution.
	Failed
)

// Interpret tells what an answer about one task means: a solution, not
// ready, a transient error or a permanent one.
func Interpret(answer string) Verdict {
	code := strings.TrimSpace(answer)
	switch {
	case code == CodeNotReady:
		return NotReady
	case !IsErrorCode(code):
		return Solved
	case Classify(code):
		return Waiting
	}
	return Failed
}

// Answer is the result as the provider would have written it: the solution,
// the error code, or CAPCHA_NOT_READY, so a poll's result and a pingback's
// code can be recorded and compared alike.
func (r Result) Answer() string {
	switch {
	case r.Ready:
		return r.Solution
	case r.Err != nil:
		return ErrorCode(r.Err)
	}
	return CodeNotReady
}

// IsBatchMismatch reports whether a GetMany failed only because its answer
// could not be split into one item per id (CodeBatchMismatch): asking for
// the same ids one by one with Get can still succeed.
func IsBatchMismatch(err error) bool { return ErrorCode(err) == CodeBatchMismatch }

// The methods below let a *Client stand for the whole 2captcha protocol
// behind the task service's Provider interface: a provider with another API
// brings its own codes along with its own client, so the task service never
// spells a code itself.

// BatchLimit is the most ids one GetMany takes (MaxBatch).
func (c *Client) BatchLimit() int { return MaxBatch }

// Interpret tells what an answer about one task means (see Interpret).
func (c *Client) Interpret(answer string) Verdict { return Interpret(answer) }

// ErrorCode is the code of a failed call or task (see ErrorCode).
func (c *Client) ErrorCode(err error) string { return ErrorCode(err) }

// IsTransient reports whether a failed call may succeed later (see IsTransient).
func (c *Client) IsTransient(err error) bool { return IsTransient(err) }

// IsBatchMismatch reports whether a failed GetMany may succeed id by id (see IsBatchMismatch).
func (c *Client) IsBatchMismatch(err error) bool { return IsBatchMismatch(err) }
