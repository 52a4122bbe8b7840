package dest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"carrier/internal/backoff"
	"carrier/internal/dispatch"
)

// ResponseLimit is how much of a response body an attempt records.
const ResponseLimit = 4 << 10

// UserAgent identifies Carrier to the endpoints it posts to.
const UserAgent = "Carrier-Webhooks/1.0"

// DefaultTimeout is the attempt timeout when a subscription sets none.
const DefaultTimeout = 10 * time.Second

// drainLimit is how much more of a response body is read and dropped after
// the recorded part, so that the connection can be reused.
const drainLimit = 64 << 10

// Post is one HTTP request an HTTP destination makes: a POST unless Method
// says otherwise.
type Post struct {
	// Method is the request method; "" means POST.
	Method string
	// URL is where the body is posted.
	URL string
	// Body is the request body, sent as it is.
	Body []byte
	// Header is the request's header; Attempt sends a copy.
	Header http.Header
	// Timeout bounds the whole attempt, answer included; zero or less means
	// DefaultTimeout.
	Timeout time.Duration
	// Secret, when not empty, is replaced by "***" in every error message
	// (webhook URLs of chat services hold their token).
	Secret string
}

// Classifier turns an endpoint's answer into a result for the retry policy.
// head is the start of the response body, at most ResponseLimit bytes; the
// body itself is no longer readable.
type Classifier func(resp *http.Response, head []byte) dispatch.Result

// Attempt makes one request (a POST unless p.Method says otherwise) through client and returns its result: a request
// that cannot be built fails as "invalid_url", one that gets no answer is
// classified by ClassifyNetError and an answer by classify. Attempt fills in
// the result's Duration (from sending to the end of the answer) and
// ResponseBody, and makes the error message recordable (see Recordable)
// with p.Secret hidden from it. client must not be nil; senders pass
// Carrier's SSRF-guarded client.
func Attempt(ctx context.Context, client *http.Client, p Post, classify Classifier) dispatch.Result {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	method := p.Method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if len(p.Body) > 0 || method == http.MethodPost {
		body = bytes.NewReader(p.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.URL, body)
	if err != nil {
		return dispatch.Result{ErrorCode: "invalid_url", ErrorMessage: hide(err.Error(), p.Secret)}
	}
	if p.Header != nil {
		req.Header = p.Header.Clone()
	}

	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		res := ClassifyNetError(err)
		res.ErrorMessage = hide(res.ErrorMessage, p.Secret)
		res.Duration = time.Since(start)
		return res
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, ResponseLimit))
	io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit)) // let the connection be reused
	res := classify(resp, head)
	res.Duration = time.Since(start)
	res.ResponseBody = Recordable(string(head))
	res.ResponseHeaders = RecordHeaders(resp.Header)
	res.ErrorMessage = hide(Recordable(res.ErrorMessage), p.Secret)
	return res
}

// ClassifyAnswer classifies the answers every HTTP destination treats
// alike: 2xx is delivered; 408, 429 and 5xx are retried, after the
// Retry-After (capped at maxRetryAfter) when there is one; 3xx fails as
// "redirect_not_followed" (redirects are not followed); anything else fails
// as "http_<status>". name names the answering side in messages, such as
// "discord", and detail (such as ": no_text") is appended to what it
// answered. A destination classifies its own special answers (rate limits,
// deleted webhooks) first.
func ClassifyAnswer(resp *http.Response, now time.Time, name, detail string, maxRetryAfter time.Duration) dispatch.Result {
	code := resp.StatusCode
	res := dispatch.Result{StatusCode: code}
	switch {
	case code >= 200 && code < 300:
		res.Delivered = true
		return res
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		res.Retryable = true
		if d, ok := backoff.RetryAfter(resp.Header.Get("Retry-After"), now, maxRetryAfter); ok {
			res.RetryAfter = d
		}
	case code >= 300 && code < 400:
		res.ErrorCode = "redirect_not_followed"
		res.ErrorMessage = fmt.Sprintf("%s answered %d redirect; redirects are not followed", name, code)
		return res
	}
	res.ErrorCode = "http_" + strconv.Itoa(code)
	res.ErrorMessage = name + " answered " + resp.Status + detail
	return res
}

// hide replaces every occurrence of secret in msg by "***"; an empty secret
// hides nothing.
func hide(msg, secret string) string {
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "***")
}

// Recordable turns what an endpoint sent into text both stores can hold:
// valid UTF-8 without NUL bytes (PostgreSQL text rejects both, and one bad
// attempt would fail the whole batch it is recorded in). Invalid bytes (such
// as a rune cut by ResponseLimit) and NULs become U+FFFD, and the result is
// trimmed back to at most ResponseLimit bytes.
func Recordable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	for len(s) > ResponseLimit {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// HeaderLimit is how much of an answer's headers an attempt records.
const HeaderLimit = 2 << 10

// redactedHeaders are answer headers whose values are credentials.
var redactedHeaders = map[string]bool{"Set-Cookie": true, "Authorization": true, "Proxy-Authenticate": true, "Www-Authenticate": true}

// RecordHeaders is an answer's headers as an attempt records them: sorted
// "Name: value" lines, credentials redacted, recordable text of at most
// HeaderLimit bytes.
func RecordHeaders(h http.Header) string {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		for _, v := range h[name] {
			if redactedHeaders[http.CanonicalHeaderKey(name)] {
				v = "***"
			}
			line := name + ": " + v + "\n"
			if b.Len()+len(line) > HeaderLimit {
				return Recordable(b.String())
			}
			b.WriteString(line)
		}
	}
	return Recordable(b.String())
}
