package standin

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

type token struct {
	ep       Endpoint
	siteKey  string
	action   string
	hostname string
	score    *float64
	issued   time.Time
	used     bool
	idemKey  string // Turnstile: the idempotency_key of the request that consumed it
	answer   []byte // Turnstile: the answer that request got
}

// rules are how one siteverify vendor judges a token.
type rules struct {
	ttl       time.Duration
	expired   string // the code for a token past its lifetime
	duplicate string // the code for a token verified before
	json      bool   // accepts application/json as well as a form
	sitekey   bool   // takes the optional sitekey parameter
	idem      bool   // honours idempotency_key
	maxToken  int    // longest token; 0: no limit
	tsLayout  string
}

var vendorRules = map[Endpoint]rules{
	// developers.google.com/recaptcha/docs/verify: one code for too old and
	// used before.
	Recaptcha: {ttl: RecaptchaTTL, expired: "timeout-or-duplicate", duplicate: "timeout-or-duplicate",
		tsLayout: time.RFC3339},
	// docs.hcaptcha.com siteverify error codes.
	Hcaptcha: {ttl: HcaptchaTTL, expired: "expired-input-response", duplicate: "already-seen-response",
		sitekey: true, tsLayout: time.RFC3339},
	// developers.cloudflare.com/turnstile/get-started/server-side-validation.
	Turnstile: {ttl: TurnstileTTL, expired: "timeout-or-duplicate", duplicate: "timeout-or-duplicate",
		json: true, idem: true, maxToken: 2048, tsLayout: "2006-01-02T15:04:05.000Z"},
}

// AddSite registers a site key and its secret at a siteverify endpoint.
func (s *Server) AddSite(ep Endpoint, siteKey, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sites[ep] == nil {
		s.sites[ep] = map[string]string{}
	}
	s.sites[ep][siteKey] = secret
}

// Issue is the token the widget of ep (Recaptcha, Hcaptcha, Turnstile)
// hands a visitor who solved it for siteKey on hostname, for action (the
// reCAPTCHA v3 or Turnstile action; a reCAPTCHA token with an action is a
// v3 one and scores 0.9, one without is a v2 one and has no score).
func (s *Server) Issue(ep Endpoint, siteKey, action, hostname string) string {
	var score *float64
	if ep == Recaptcha && action != "" {
		v := 0.9
		score = &v
	}
	return s.issue(ep, siteKey, action, hostname, score)
}

// IssueScored is a token with a score (reCAPTCHA v3, hCaptcha Enterprise).
func (s *Server) IssueScored(ep Endpoint, siteKey, action, hostname string, score float64) string {
	return s.issue(ep, siteKey, action, hostname, &score)
}

func (s *Server) issue(ep Endpoint, siteKey, action, hostname string, score *float64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := "standin-" + string(ep) + "-" + randomHex(24)
	s.tokens[t] = &token{ep: ep, siteKey: siteKey, action: action, hostname: hostname, score: score, issued: s.now}
	return t
}

func failed(codes ...string) []byte {
	return mustJSON(map[string]any{"success": false, "error-codes": codes})
}

func (s *Server) siteverify(ep Endpoint, r *http.Request, body []byte) (map[string]string, []byte) {
	rl := vendorRules[ep]
	params, ok := readParams(r, body, rl.json)
	if !ok || r.Method != http.MethodPost || len(body) > MaxBody {
		return params, failed("bad-request")
	}
	secret, response, key := params["secret"], params["response"], params["idempotency_key"]

	s.mu.Lock()
	defer s.mu.Unlock()
	if secret == "" {
		return params, failed("missing-input-secret")
	}
	siteKey := ""
	for k, v := range s.sites[ep] {
		if v == secret {
			siteKey = k
		}
	}
	switch {
	case siteKey == "":
		return params, failed("invalid-input-secret")
	case rl.sitekey && params["sitekey"] != "" && params["sitekey"] != siteKey:
		return params, failed("sitekey-secret-mismatch")
	case response == "":
		return params, failed("missing-input-response")
	case rl.maxToken > 0 && len(response) > rl.maxToken:
		return params, failed("invalid-input-response")
	}
	t := s.tokens[response]
	if t == nil || t.ep != ep || t.siteKey != siteKey {
		return params, failed("invalid-input-response")
	}
	if t.used {
		if rl.idem && key != "" && key == t.idemKey {
			return params, t.answer // the same answer, nothing consumed again
		}
		return params, failed(rl.duplicate)
	}
	t.used = true
	t.idemKey = key
	if s.now.Sub(t.issued) > rl.ttl {
		t.answer = failed(rl.expired)
		return params, t.answer
	}
	ok200 := map[string]any{
		"success":      true,
		"challenge_ts": t.issued.Format(rl.tsLayout),
		"hostname":     t.hostname,
	}
	switch ep {
	case Recaptcha:
		if t.score != nil {
			ok200["score"] = *t.score
			ok200["action"] = t.action
		}
	case Hcaptcha:
		ok200["credit"] = false
		if t.score != nil {
			ok200["score"] = *t.score
		}
	case Turnstile:
		ok200["error-codes"] = []string{}
		ok200["action"] = t.action
		ok200["cdata"] = ""
	}
	t.answer = mustJSON(ok200)
	return params, t.answer
}

// readParams reads a form body, or a JSON one where the vendor takes JSON.
func readParams(r *http.Request, body []byte, acceptJSON bool) (map[string]string, bool) {
	params := map[string]string{}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		if !acceptJSON {
			return params, true // the fields are not read: missing-input-secret
		}
		var raw map[string]any
		if err := json.Unmarshal(body, &raw); err != nil {
			return params, false
		}
		for k, v := range raw {
			str, ok := v.(string)
			if !ok {
				return params, false
			}
			params[k] = str
		}
		return params, true
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return params, false
	}
	for k, v := range form {
		params[k] = strings.Join(v, ",")
	}
	return params, true
}
