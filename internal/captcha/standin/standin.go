// Package standin runs local stand-ins for the four CAPTCHA vendors'
// verification APIs on 127.0.0.1, for tests and benchmarks of any package:
// Tencent Cloud Captcha's DescribeCaptchaResult (with its TC3-HMAC-SHA256
// signature checked), and the siteverify APIs of reCAPTCHA, hCaptcha and
// Cloudflare Turnstile.
//
// A test issues tokens (Issue, IssueTicket) and the stand-in verifies them
// by each vendor's documented rules: a token is verified once (the second
// time is the vendor's duplicate answer), expires after the vendor's
// lifetime on a clock the test moves (SetNow, Advance), belongs to one site
// (another site's secret or app id gets the vendor's answer for that), and
// Tencent's disaster-recovery tickets (terror_/trerror_) are answered
// CaptchaCode 21. Faults are injected per endpoint (Fail): a delay, a hang
// until the caller gives up, an HTTP status, a Tencent error code or
// CaptchaCode, siteverify error codes, each before or after the token is
// consumed. Every request is counted per endpoint (Requests, WaitRequests),
// so a test can prove a cached verdict made no second call.
//
// The package imports nothing of Carrier but the TC3 signer, so the
// captcha package's own tests can use it.
package standin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Endpoint is one verification endpoint of the stand-in.
type Endpoint string

// The endpoints. Tencent has two, a primary and a backup, that know the
// same tickets but fail independently; a token issued for one of the
// siteverify vendors verifies only at that vendor's endpoint.
const (
	Tencent       Endpoint = "tencent"
	TencentBackup Endpoint = "tencent-backup"
	Recaptcha     Endpoint = "recaptcha"
	Hcaptcha      Endpoint = "hcaptcha"
	Turnstile     Endpoint = "turnstile"
)

// Endpoints are all the endpoints.
var Endpoints = []Endpoint{Tencent, TencentBackup, Recaptcha, Hcaptcha, Turnstile}

var paths = map[Endpoint]string{
	Tencent:       "/tencent/",
	TencentBackup: "/tencent-backup/",
	Recaptcha:     "/recaptcha/api/siteverify",
	Hcaptcha:      "/hcaptcha/siteverify",
	Turnstile:     "/turnstile/v0/siteverify",
}

// The credentials every stand-in knows from the start. More are added with
// AddTencentApp and AddSite.
const (
	TencentSecretID  = "AKIDstandinSecretId00000000000000000"
	TencentSecretKey = "standinSecretKey0000000000000000"
	TencentAppID     = "2000000001"
	TencentAppSecret = "standinAppSecretKey0000*"

	RecaptchaSiteKey = "6Lstandin0000000000000000000000000000site"
	RecaptchaSecret  = "6Lstandin000000000000000000000000000secret"
	HcaptchaSiteKey  = "10000000-ffff-ffff-ffff-000000standin"
	HcaptchaSecret   = "0x0000000000000000000000000000standin"
	TurnstileSiteKey = "0x4AAAAAAAstandinSite"
	TurnstileSecret  = "0x4AAAAAAAstandinSecret"
)

// How long each vendor's tokens stay valid, by its documentation: Tencent
// "Ticket有效期5分钟" (DescribeCaptchaResult, CaptchaCode 8), reCAPTCHA "valid
// for two minutes", Turnstile "valid for 300 seconds"; hCaptcha's limit is
// taken as the same two minutes as reCAPTCHA's (its documentation page was
// not at hand when this was written).
const (
	TencentTTL   = 5 * time.Minute
	RecaptchaTTL = 2 * time.Minute
	HcaptchaTTL  = 2 * time.Minute
	TurnstileTTL = 300 * time.Second
)

// MaxBody is the largest request the stand-in reads.
const MaxBody = 64 << 10

// Server is a running stand-in of all four vendors.
type Server struct {
	srv       *httptest.Server
	closed    chan struct{}
	closeOnce sync.Once

	mu        sync.Mutex
	now       time.Time
	secretID  string
	secretKey string
	apps      map[string]string              // CaptchaAppId -> AppSecretKey
	sites     map[Endpoint]map[string]string // site key -> secret
	tickets   map[string]*ticket
	tokens    map[string]*token
	faults    map[Endpoint]*Fault
	counts    map[Endpoint]int
	last      map[Endpoint]Received
	arrived   chan struct{} // closed and replaced when a request arrives
}

// Received is a request as the stand-in read it.
type Received struct {
	Header http.Header
	Body   []byte
	// Params are the parameters it carried: the form or JSON fields of a
	// siteverify request, the JSON fields of a Tencent one (numbers as
	// their JSON text).
	Params map[string]string
}

// Start starts a stand-in; Close stops it.
func Start() *Server {
	s := &Server{
		closed:    make(chan struct{}),
		now:       time.Now().UTC().Truncate(time.Second),
		secretID:  TencentSecretID,
		secretKey: TencentSecretKey,
		apps:      map[string]string{TencentAppID: TencentAppSecret},
		sites: map[Endpoint]map[string]string{
			Recaptcha: {RecaptchaSiteKey: RecaptchaSecret},
			Hcaptcha:  {HcaptchaSiteKey: HcaptchaSecret},
			Turnstile: {TurnstileSiteKey: TurnstileSecret},
		},
		tickets: map[string]*ticket{},
		tokens:  map[string]*token{},
		faults:  map[Endpoint]*Fault{},
		counts:  map[Endpoint]int{},
		last:    map[Endpoint]Received{},
		arrived: make(chan struct{}),
	}
	mux := http.NewServeMux()
	for _, ep := range Endpoints {
		mux.HandleFunc(paths[ep], func(w http.ResponseWriter, r *http.Request) { s.serve(ep, w, r) })
	}
	s.srv = httptest.NewServer(mux)
	return s
}

// New starts a stand-in that stops when tb's test ends.
func New(tb testing.TB) *Server {
	tb.Helper()
	s := Start()
	tb.Cleanup(s.Close)
	return s
}

// Close stops the stand-in; requests it is holding (Hang, Delay) end.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.srv.Close()
	})
}

// URL is the verification URL of ep, to pass to a Vendor's Verify.
func (s *Server) URL(ep Endpoint) string { return s.srv.URL + paths[ep] }

// Now is the stand-in's clock, which decides what has expired.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// SetNow sets the stand-in's clock.
func (s *Server) SetNow(t time.Time) {
	s.mu.Lock()
	s.now = t.UTC()
	s.mu.Unlock()
}

// Advance moves the stand-in's clock by d.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	s.now = s.now.Add(d)
	s.mu.Unlock()
}

// Requests is how many requests reached ep, faulted ones included.
func (s *Server) Requests(ep Endpoint) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[ep]
}

// WaitRequests waits until at least n requests reached ep, or ctx ends.
func (s *Server) WaitRequests(ctx context.Context, ep Endpoint, n int) error {
	for {
		s.mu.Lock()
		got, ch := s.counts[ep], s.arrived
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Last is the last request ep verified (a fault that strikes before the
// verification leaves it as it was).
func (s *Server) Last(ep Endpoint) (Received, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.last[ep]
	return r, ok
}

// Fault is what an endpoint does instead of, or besides, answering.
type Fault struct {
	// Delay holds the answer this long (less when the caller gives up).
	Delay time.Duration
	// Hang answers nothing until the caller gives up or the stand-in closes.
	Hang bool
	// Status answers this HTTP status with a plain-text body.
	Status int
	// TencentError answers {"Response":{"Error":{"Code":TencentError}}}
	// with HTTP 200, as Tencent does (InternalError, RequestLimitExceeded).
	TencentError string
	// CaptchaCode answers this Tencent CaptchaCode (26: system busy).
	CaptchaCode int
	// ErrorCodes answers {"success":false,"error-codes":ErrorCodes}
	// (Turnstile's internal-error).
	ErrorCodes []string
	// AfterVerify verifies, and so consumes, the token before the fault
	// strikes: the vendor did its work but its answer is late or lost.
	AfterVerify bool
	// Times is how many requests the fault strikes; 0 is every request
	// until Heal.
	Times int
}

// Hang is a fault that answers nothing until the caller gives up.
func Hang() Fault { return Fault{Hang: true} }

// Delay is a fault that answers normally after d.
func Delay(d time.Duration) Fault { return Fault{Delay: d} }

// HTTPStatus is a fault that answers status (503, 429) with no verdict.
func HTTPStatus(status int) Fault { return Fault{Status: status} }

// TencentError is a fault that answers a Tencent error code.
func TencentError(code string) Fault { return Fault{TencentError: code} }

// TencentCaptchaCode is a fault that answers a Tencent CaptchaCode.
func TencentCaptchaCode(code int) Fault { return Fault{CaptchaCode: code} }

// SiteverifyErrors is a fault that answers a failed siteverify with codes.
func SiteverifyErrors(codes ...string) Fault { return Fault{ErrorCodes: codes} }

// Fail makes ep apply f to the next f.Times requests (every request when
// f.Times is 0), replacing any fault it had.
func (s *Server) Fail(ep Endpoint, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.ErrorCodes = append([]string(nil), f.ErrorCodes...)
	s.faults[ep] = &f
}

// Heal removes ep's fault.
func (s *Server) Heal(ep Endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faults, ep)
}

func (s *Server) takeFault(ep Endpoint) *Fault {
	f := s.faults[ep]
	if f == nil {
		return nil
	}
	out := *f
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			delete(s.faults, ep)
		}
	}
	return &out
}

func (s *Server) serve(ep Endpoint, w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	s.mu.Lock()
	s.counts[ep]++
	close(s.arrived)
	s.arrived = make(chan struct{})
	f := s.takeFault(ep)
	s.mu.Unlock()
	if err != nil {
		return
	}
	if f != nil && !f.AfterVerify && s.strike(ep, w, r, f) {
		return
	}
	var params map[string]string
	var answer []byte
	if ep == Tencent || ep == TencentBackup {
		params, answer = s.tencent(r, body)
	} else {
		params, answer = s.siteverify(ep, r, body)
	}
	s.mu.Lock()
	s.last[ep] = Received{Header: r.Header.Clone(), Body: body, Params: params}
	s.mu.Unlock()
	if f != nil && f.AfterVerify && s.strike(ep, w, r, f) {
		return
	}
	writeJSON(w, answer)
}

// strike applies f; it reports whether it answered (or gave up on) the
// request, so that nothing more may be written.
func (s *Server) strike(ep Endpoint, w http.ResponseWriter, r *http.Request, f *Fault) bool {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		case <-s.closed:
			return true
		}
	}
	switch {
	case f.Hang:
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		return true
	case f.Status != 0:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(f.Status)
		io.WriteString(w, http.StatusText(f.Status)+"\n")
		return true
	case f.TencentError != "":
		writeJSON(w, tencentError(f.TencentError))
		return true
	case f.CaptchaCode != 0:
		writeJSON(w, tencentCode(int64(f.CaptchaCode), nil))
		return true
	case len(f.ErrorCodes) > 0:
		writeJSON(w, mustJSON(map[string]any{"success": false, "error-codes": f.ErrorCodes}))
		return true
	}
	return false
}

func writeJSON(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func isDR(ticket string) bool {
	return strings.HasPrefix(ticket, "terror_") || strings.HasPrefix(ticket, "trerror_")
}
