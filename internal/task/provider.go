package task

import (
	"context"

	"carrier/internal/provider"
)

// Provider is the upstream solving service as the task service uses it. The
// 2captcha-compatible *provider.Client implements it, for 2captcha, CaptchaAI
// and the simulator alike (they speak the same HTTP API). The service keeps
// no provider's codes of its own: what an answer or a failure means is asked
// of the provider that gave it, so a provider with another API brings its
// own interpretation along with its client. The request and result shapes
// are provider's plain values.
type Provider interface {
	// Submit sends a task and returns the provider's id for it.
	Submit(ctx context.Context, s provider.Submission) (string, error)
	// GetMany asks about up to BatchLimit tasks in one request, one Result
	// per id, in order.
	GetMany(ctx context.Context, ids []string) ([]provider.Result, error)
	// Get asks about one task, with its price when the provider says.
	Get(ctx context.Context, id string) (provider.Result, error)
	// Balance is the account's balance as the provider wrote it.
	Balance(ctx context.Context) (string, error)
	// Report tells the provider whether a task's solution was right.
	Report(ctx context.Context, id string, good bool) error
	// BatchLimit is the most ids one GetMany takes.
	BatchLimit() int

	// Interpret tells what an answer about one task (a pingback's code, a
	// Result's Answer) means: solved, not ready, waiting or failed.
	Interpret(answer string) provider.Verdict
	// ErrorCode is the code of a failed call or task, "" when err has none.
	ErrorCode(err error) string
	// IsTransient reports whether a failed call may succeed later.
	IsTransient(err error) bool
	// IsBatchMismatch reports whether a failed GetMany may succeed when the
	// same ids are asked one by one with Get.
	IsBatchMismatch(err error) bool
}

// The 2captcha client is the provider Carrier ships with.
var _ Provider = (*provider.Client)(nil)
