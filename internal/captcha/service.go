package captcha

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/google/uuid"

	"carrier/internal/store"
)

// Store is what the captcha service needs from the store.
type Store interface {
	store.CaptchaStore
	store.Transactor
	// SpendBudget spends from a cluster-wide budget per window (the task
	// service's poll budget does the same).
	SpendBudget(ctx context.Context, name string, window time.Time, n, limit int) (bool, error)
}

// URLChecker checks an endpoint against the SSRF rules (netguard.Guard).
type URLChecker interface {
	CheckURL(ctx context.Context, raw string) error
}

// Event types the service publishes (through the outbox).
const (
	EventVendorDegraded  = "captcha.vendor.degraded"
	EventVendorRecovered = "captcha.vendor.recovered"
	EventDRSuspicious    = "captcha.dr.suspicious"
)

// ErrTooManySites is returned when a project has MaxSitesPerProject sites.
var ErrTooManySites = errors.New("a project has at most 100 captcha sites")

// Service verifies tokens and runs sites: the domain logic behind
// /v1/captcha/verify and /v1/captcha/sites.
type Service struct {
	Store   Store
	Vendors map[string]Vendor
	Guard   URLChecker
	Now     func() time.Time
	Log     *slog.Logger
	Breaker BreakerConfig
	// Wake, when set, wakes the outbox relay after an event is written.
	Wake func()
	// Decided, when set, is told every verification (metrics).
	Decided func(site Site, v Verdict, vendorCalls int)
	// Circuit, when set, is told every circuit state change (metrics).
	Circuit func(site Site, state string)

	mu       sync.Mutex
	breakers map[string]*Breaker
	sites    map[string]cachedSite
	verdicts *verdictCache
	dr       map[string]*drWindow
}

type cachedSite struct {
	site Site
	at   time.Time
}

// siteTTL is how long a node uses a site read from the store before
// reading it again (an update through this node applies at once).
const siteTTL = 2 * time.Second

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) init() {
	if s.breakers == nil {
		s.breakers, s.sites, s.dr = map[string]*Breaker{}, map[string]cachedSite{}, map[string]*drWindow{}
		s.verdicts = newVerdictCache(100_000)
	}
}

// VerifyRequest is one verification.
type VerifyRequest struct {
	Site             string `json:"site"` // the site's id or name
	Token            string `json:"token"`
	Ticket           string `json:"ticket"` // Tencent's name for the token
	Randstr          string `json:"randstr"`
	RemoteIP         string `json:"remote_ip"`
	ExpectedAction   string `json:"expected_action"`
	ExpectedHostname string `json:"expected_hostname"`
}

// Degraded says what a degraded decision stands on.
type Degraded struct {
	Cause string `json:"cause"`
}

// Verdict is the answer to a verification.
type Verdict struct {
	Decision   string    `json:"decision"`
	Reason     Reason    `json:"reason"`
	VendorCode string    `json:"vendor_code"`
	Score      *float64  `json:"score,omitempty"`
	EvilLevel  *int      `json:"evil_level,omitempty"`
	Degraded   *Degraded `json:"degraded,omitempty"`
	// Cached is true when the verdict is the one given for the same token
	// and address before (an application's retry), without a vendor call.
	Cached    bool    `json:"cached"`
	LatencyMS float64 `json:"latency_ms"`
	// Message explains a denial for the application's logs.
	Message string `json:"message,omitempty"`
}

// Verify verifies a token of one of projectID's sites and decides.
func (s *Service) Verify(ctx context.Context, projectID string, in VerifyRequest) (Verdict, error) {
	start := time.Now()
	token := in.Token
	if token == "" {
		token = in.Ticket
	}
	switch {
	case in.Site == "":
		return Verdict{}, fieldErr("site", "is required")
	case token == "":
		return Verdict{}, fieldErr("token", "is required (or ticket)")
	case len(token) > 8192:
		return Verdict{}, fieldErr("token", "at most 8192 characters")
	case len(in.Randstr) > 256 || len(in.ExpectedAction) > 256 || len(in.ExpectedHostname) > 256:
		return Verdict{}, fieldErr("randstr", "randstr, expected_action and expected_hostname are at most 256 characters")
	}
	ip, err := netip.ParseAddr(in.RemoteIP)
	if err != nil {
		return Verdict{}, fieldErr("remote_ip", "must be the end user's IP address")
	}
	site, err := s.site(ctx, projectID, in.Site)
	if err != nil {
		return Verdict{}, err
	}
	s.mu.Lock()
	s.init()
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, site.Settings.Deadline())
	defer cancel()

	key := verdictKey(site.ID, token, ip.String())
	if v, ok := s.verdicts.get(key, s.now()); ok {
		v.Cached, v.LatencyMS = true, ms(time.Since(start))
		s.decided(site, v, 0)
		return v, nil
	}
	req := Request{Token: token, Randstr: in.Randstr, RemoteIP: ip.String(), ExpectedAction: in.ExpectedAction,
		ExpectedHostname: in.ExpectedHostname, IdempotencyKey: uuid.NewString(),
		MinScore: site.Settings.MinScore, MaxEvilLevel: site.Settings.MaxEvilLevel}
	if req.ExpectedHostname == "" {
		req.ExpectedHostname = site.Settings.ExpectedHostname
	}
	var v Verdict
	calls := 0
	if t, isDR := ParseDRTicket(token); isDR && site.Vendor == "tencent" {
		v, calls = s.verifyDR(ctx, site, t, req, ip)
	} else {
		var a Answer
		a, calls = s.call(ctx, site, req)
		v = s.decide(ctx, site, a, ip)
		if cacheable(a) {
			now := s.now()
			s.verdicts.put(key, v, now, now.Add(tokenLife(site.Vendor)))
		}
	}
	v.LatencyMS = ms(time.Since(start))
	s.decided(site, v, calls)
	return v, nil
}

// cacheable: a verdict the vendor gave about the token itself is kept for
// the token's life, so a retry gets it again (a second vendor call would
// be answered "duplicate"); one the vendor could not give is not, so a
// retry asks again.
func cacheable(a Answer) bool {
	return a.Reason != ReasonVendorUnavailable && a.Reason != ReasonVendorThrottled
}

func (s *Service) decided(site Site, v Verdict, calls int) {
	if s.Decided != nil {
		s.Decided(site, v, calls)
	}
}

// decide applies the site's policy to an answer.
func (s *Service) decide(ctx context.Context, site Site, a Answer, ip netip.Addr) Verdict {
	o := Decide(site.Settings.Policy, a, func() bool { return s.degradedBudget(ctx, site, ip) })
	v := Verdict{Decision: o.Decision, Reason: o.Reason, VendorCode: a.VendorCode, Score: a.Score, EvilLevel: a.EvilLevel}
	if o.Degraded != "" {
		v.Degraded = &Degraded{Cause: o.Degraded}
	}
	if v.Decision == Deny && o.Degraded != "" {
		v.Message = "the vendor is unavailable and the site's policy (" + string(site.Settings.Policy) + ") does not let this request through"
	}
	return v
}

// degradedBudget spends one degraded allow of the site and of the address
// for this minute (cluster-wide); false when either is used up or the
// store cannot say (an unknown budget allows nobody).
func (s *Service) degradedBudget(ctx context.Context, site Site, ip netip.Addr) bool {
	return s.spend(ctx, "captcha:degraded:ip:"+site.ID+":"+ip.String(), site.Settings.DegradedPerIP) &&
		s.spend(ctx, "captcha:degraded:site:"+site.ID, site.Settings.DegradedPerSite)
}

func (s *Service) spend(ctx context.Context, name string, limit int) bool {
	// The budget outlives the request's deadline: it is a short write.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	ok, err := s.Store.SpendBudget(bctx, name, s.now().UTC().Truncate(time.Minute), 1, limit)
	if err != nil && s.Log != nil {
		s.Log.Warn("captcha budget", "budget", name, "err", err)
	}
	return err == nil && ok
}

// call asks the vendor within ctx, through the site's breaker: at most one
// retry, and only when it is safe (Answer.Retryable), on the next endpoint.
func (s *Service) call(ctx context.Context, site Site, req Request) (Answer, int) {
	vendor := s.Vendors[site.Vendor]
	endpoints := site.Settings.Endpoints
	if len(endpoints) == 0 {
		endpoints = vendor.DefaultEndpoints()
	}
	b := s.breaker(site)
	if !b.Allow(s.now()) {
		return Answer{Reason: ReasonVendorUnavailable, VendorCode: "circuit_open", Message: "the circuit breaker is open"}, 0
	}
	var a Answer
	calls := 0
	for try := 0; try < 2; try++ {
		endpoint := ""
		if len(endpoints) > 0 {
			endpoint = endpoints[try%len(endpoints)]
		}
		calls++
		a = vendor.Verify(ctx, site.Keys, endpoint, req)
		if a.Reason != ReasonVendorUnavailable || !a.Retryable || ctx.Err() != nil {
			break
		}
	}
	from, to := b.Record(s.now(), a.Reason == ReasonVendorUnavailable)
	if from != to {
		s.circuitChanged(site, from, to, a)
	}
	return a, calls
}

func (s *Service) breaker(site Site) *Breaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	b := s.breakers[site.ID]
	if b == nil {
		cfg := s.Breaker
		if cfg.MinFailures == 0 {
			cfg = DefaultBreaker
		}
		b = NewBreaker(cfg)
		s.breakers[site.ID] = b
	}
	return b
}

// circuitChanged publishes captcha.vendor.degraded when a site's circuit
// opens and captcha.vendor.recovered when it closes.
func (s *Service) circuitChanged(site Site, from, to string, a Answer) {
	if s.Circuit != nil {
		s.Circuit(site, to)
	}
	switch {
	case to == CircuitOpen && from == CircuitClosed:
		s.event(site, EventVendorDegraded, map[string]any{"cause": "vendor_failures", "last_vendor_code": a.VendorCode})
	case to == CircuitClosed:
		s.event(site, EventVendorRecovered, map[string]any{})
	}
}

// event writes a system event about site to the outbox.
func (s *Service) event(site Site, typ string, data map[string]any) {
	data["site_id"], data["site"], data["vendor"] = site.ID, site.Name, site.Vendor
	raw, _ := json.Marshal(data)
	e := store.OutboxEvent{ID: uuid.Must(uuid.NewV7()).String(), ProjectID: site.ProjectID, Type: typ, Subject: site.ID, Data: raw,
		Attributes: map[string]string{"site": site.Name, "vendor": site.Vendor}, CreatedAt: s.now().UTC()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Store.InTx(ctx, func(tx store.Tx) error { return tx.InsertOutbox(ctx, e) }); err != nil {
		if s.Log != nil {
			s.Log.Error("captcha event", "type", typ, "site", site.ID, "err", err)
		}
		return
	}
	if s.Wake != nil {
		s.Wake()
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// verdictKey identifies a verification for the verdict cache: the site, a
// hash of the token and the address it came from.
func verdictKey(siteID, token, ip string) string {
	h := sha256.Sum256([]byte(siteID + "\x00" + token + "\x00" + ip))
	return hex.EncodeToString(h[:])
}

// site reads a site of the project by id or name, from this node's cache
// for up to siteTTL.
func (s *Service) site(ctx context.Context, projectID, ref string) (Site, error) {
	now := time.Now()
	key := projectID + "\x00" + ref
	s.mu.Lock()
	s.init()
	c, ok := s.sites[key]
	s.mu.Unlock()
	if ok && now.Sub(c.at) < siteTTL {
		return c.site, nil
	}
	rec, err := s.Store.GetCaptchaSite(ctx, projectID, ref)
	if errors.Is(err, store.ErrNotFound) {
		// Not an id: a name.
		var all []store.CaptchaSite
		if all, err = s.Store.ListCaptchaSites(ctx, projectID); err == nil {
			err = fmt.Errorf("captcha site %q: %w", ref, store.ErrNotFound)
			for _, r := range all {
				if r.Name == ref {
					rec, err = r, nil
				}
			}
		}
	}
	if err != nil {
		return Site{}, err
	}
	site, err := decodeSite(rec)
	if err != nil {
		return Site{}, err
	}
	s.mu.Lock()
	if len(s.sites) > 10_000 {
		clear(s.sites)
	}
	s.sites[key] = cachedSite{site: site, at: now}
	s.mu.Unlock()
	return site, nil
}

func (s *Service) forgetSite(projectID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.sites {
		if len(k) > len(projectID) && k[:len(projectID)+1] == projectID+"\x00" {
			delete(s.sites, k)
		}
	}
}
