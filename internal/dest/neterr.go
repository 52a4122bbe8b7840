package dest

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"carrier/internal/dispatch"
	"carrier/internal/netguard"
)

// CodeCancelled is the error code of an attempt whose context was cancelled
// before an answer came.
const CodeCancelled = "cancelled"

// ClassifyNetError turns the error of an HTTP request that got no answer into
// a result for the retry policy. Its ErrorCode is "ssrf_blocked" (the
// address is forbidden; not retried), "timeout", "dns_error",
// "connection_refused", "connection_reset", "response_headers_too_large"
// (more than netguard.MaxResponseHeaderBytes), CodeCancelled or
// "network_error" (all retried), and its ErrorMessage the cause without the
// method and URL that *url.Error repeats.
func ClassifyNetError(err error) dispatch.Result {
	var dnsErr *net.DNSError
	switch {
	case netguard.IsBlocked(err):
		return dispatch.Result{ErrorCode: "ssrf_blocked", ErrorMessage: trimURLError(err)}
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return dispatch.Result{Retryable: true, ErrorCode: "timeout", ErrorMessage: "no answer within the timeout"}
	case errors.As(err, &dnsErr):
		return dispatch.Result{Retryable: true, ErrorCode: "dns_error", ErrorMessage: trimURLError(err)}
	case strings.Contains(err.Error(), "server response headers exceeded"):
		// The transport's MaxResponseHeaderBytes (netguard) cut the answer off.
		return dispatch.Result{Retryable: true, ErrorCode: "response_headers_too_large", ErrorMessage: trimURLError(err)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return dispatch.Result{Retryable: true, ErrorCode: "connection_refused", ErrorMessage: trimURLError(err)}
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return dispatch.Result{Retryable: true, ErrorCode: "connection_reset", ErrorMessage: trimURLError(err)}
	case errors.Is(err, context.Canceled):
		return dispatch.Result{Retryable: true, ErrorCode: CodeCancelled, ErrorMessage: "attempt cancelled"}
	default:
		return dispatch.Result{Retryable: true, ErrorCode: "network_error", ErrorMessage: trimURLError(err)}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// trimURLError drops the method and URL that *url.Error repeats (the URL may
// hold a webhook token), keeping the cause.
func trimURLError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "\": "); i >= 0 && strings.HasPrefix(msg, "Post \"") {
		return msg[i+3:]
	}
	return msg
}
