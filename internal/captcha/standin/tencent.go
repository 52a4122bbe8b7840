package standin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"carrier/internal/captcha/tencent/tc3"
)

type ticket struct {
	appID   string
	randstr string
	issued  time.Time
	evil    int
	used    bool
}

// SetTencentCredentials replaces the TencentCloud API key pair the
// stand-in accepts signatures from (TencentSecretID and TencentSecretKey
// at the start).
func (s *Server) SetTencentCredentials(secretID, secretKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secretID, s.secretKey = secretID, secretKey
}

// AddTencentApp registers a CaptchaAppId (an integer) and its AppSecretKey.
func (s *Server) AddTencentApp(appID, appSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[appID] = appSecret
}

// IssueTicket is what Tencent's front end hands a visitor who solved the
// CAPTCHA of appID: a ticket and its randstr, valid for TencentTTL.
func (s *Server) IssueTicket(appID string) (ticket, randstr string) {
	return s.issueTicket(appID, 0)
}

// IssueRiskyTicket is a ticket that verifies with CaptchaCode 1 but the
// given EvilLevel (100: malicious).
func (s *Server) IssueRiskyTicket(appID string, evilLevel int) (ticket, randstr string) {
	return s.issueTicket(appID, evilLevel)
}

func (s *Server) issueTicket(appID string, evil int) (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, r := "t03standin"+randomHex(24), "@"+randomHex(3)
	s.tickets[t] = &ticket{appID: appID, randstr: r, issued: s.now, evil: evil}
	return t, r
}

// DRTicket is the disaster-recovery ticket Tencent's front end makes when
// its script fails to load (seeds/002): terror_1001_<appID>_<unix seconds>,
// with a random randstr. Any ticket starting terror_ or trerror_ is
// answered CaptchaCode 21.
func DRTicket(appID string, at time.Time) (ticket, randstr string) {
	return "terror_1001_" + appID + "_" + strconv.FormatInt(at.Unix(), 10), "@" + randomHex(4)
}

// The messages Tencent pairs with each CaptchaCode (DescribeCaptchaResult).
var captchaMsgs = map[int64]string{
	1:   "OK",
	7:   "captcha no match",
	8:   "ticket expired",
	9:   "ticket reused",
	15:  "decrypt fail",
	16:  "appid-ticket mismatch",
	21:  "diff",
	26:  "System busy",
	100: "appid-secretkey-ticket mismatch",
}

func tencentCode(code int64, evil *int) []byte {
	resp := map[string]any{
		"CaptchaCode":    code,
		"CaptchaMsg":     captchaMsgs[code],
		"EvilLevel":      0,
		"GetCaptchaTime": 0,
		"RequestId":      randomHex(16),
	}
	if evil != nil {
		resp["EvilLevel"] = *evil
	}
	return mustJSON(map[string]any{"Response": resp})
}

func tencentError(code string) []byte {
	msg := map[string]string{
		"InternalError":                "An internal error has occurred. Retry your request. If the problem persists, contact us.",
		"RequestLimitExceeded":         "Your current request times exceeds the limit.",
		"AuthFailure.SignatureFailure": "The provided credentials could not be validated. Please check your signature is correct.",
		"AuthFailure.SignatureExpire":  "Signature expired. Timestamp and server time cannot differ by more than 5 minutes.",
	}[code]
	if msg == "" {
		msg = code
	}
	return mustJSON(map[string]any{"Response": map[string]any{
		"Error":     map[string]string{"Code": code, "Message": msg},
		"RequestId": randomHex(16),
	}})
}

// tencent answers DescribeCaptchaResult as Tencent does: the signature
// first, then the parameters, the app (a real ticket under another app id
// is 16, an unknown app id or a wrong AppSecretKey 100), then the ticket.
func (s *Server) tencent(r *http.Request, body []byte) (map[string]string, []byte) {
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(body, &raw)
	params := map[string]string{}
	for k, v := range raw {
		var str string
		if json.Unmarshal(v, &str) == nil {
			params[k] = str
		} else {
			params[k] = string(v)
		}
	}
	if code := s.checkSignature(r, body); code != "" {
		return params, tencentError(code)
	}
	switch {
	case r.Header.Get("X-TC-Action") != "DescribeCaptchaResult":
		return params, tencentError("InvalidAction")
	case r.Header.Get("X-TC-Version") != "2019-07-22":
		return params, tencentError("NoSuchVersion")
	case len(body) > MaxBody:
		return params, tencentError("RequestSizeLimitExceeded")
	}
	var in struct {
		CaptchaType  *int64  `json:"CaptchaType"`
		Ticket       *string `json:"Ticket"`
		UserIp       *string `json:"UserIp"`
		Randstr      *string `json:"Randstr"`
		CaptchaAppId *uint64 `json:"CaptchaAppId"`
		AppSecretKey *string `json:"AppSecretKey"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&in); err != nil {
		return params, tencentError("InvalidParameter")
	}
	switch {
	case in.CaptchaType == nil || in.Ticket == nil || in.UserIp == nil || in.Randstr == nil ||
		in.CaptchaAppId == nil || in.AppSecretKey == nil ||
		*in.Ticket == "" || *in.UserIp == "" || *in.Randstr == "" || *in.AppSecretKey == "":
		return params, tencentError("MissingParameter")
	case *in.CaptchaType != 9:
		return params, tencentError("InvalidParameterValue")
	}
	appID := strconv.FormatUint(*in.CaptchaAppId, 10)

	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tickets[*in.Ticket]
	secret, known := s.apps[appID]
	switch {
	case !known && t != nil:
		// A real ticket verified under a CaptchaAppId that is not its own.
		return params, tencentCode(16, nil)
	case !known || secret != *in.AppSecretKey:
		return params, tencentCode(100, nil)
	case isDR(*in.Ticket):
		return params, tencentCode(21, nil)
	}
	switch {
	case t == nil:
		return params, tencentCode(15, nil)
	case t.appID != appID:
		return params, tencentCode(16, nil)
	case t.used:
		return params, tencentCode(9, nil)
	}
	t.used = true // a ticket is verified once, whatever the verdict
	switch {
	case t.randstr != *in.Randstr:
		return params, tencentCode(7, nil)
	case s.now.Sub(t.issued) > TencentTTL:
		return params, tencentCode(8, nil)
	}
	evil := t.evil
	return params, tencentCode(1, &evil)
}

// checkSignature checks the TC3-HMAC-SHA256 Authorization of r against the
// stand-in's key pair and answers the AuthFailure code Tencent would, or
// "". The timestamp is checked against the wall clock, not the stand-in's
// clock, which tests move to expire tickets.
func (s *Server) checkSignature(r *http.Request, body []byte) string {
	s.mu.Lock()
	id, key := s.secretID, s.secretKey
	s.mu.Unlock()
	a, err := tc3.Parse(r.Header.Get("Authorization"))
	if err != nil {
		return "AuthFailure.InvalidAuthorization"
	}
	if a.SecretID != id {
		return "AuthFailure.SecretIdNotFound"
	}
	ts, err := strconv.ParseInt(r.Header.Get("X-TC-Timestamp"), 10, 64)
	if err != nil {
		return "InvalidParameter"
	}
	if skew := time.Since(time.Unix(ts, 0)); skew > 5*time.Minute || skew < -5*time.Minute {
		return "AuthFailure.SignatureExpire"
	}
	signed := tc3.Request{Method: r.Method, URI: r.URL.EscapedPath(), Query: r.URL.RawQuery, Headers: map[string]string{}, Payload: body}
	for _, name := range a.SignedHeaders {
		if name == "host" {
			signed.Headers[name] = r.Host
		} else {
			signed.Headers[name] = r.Header.Get(name)
		}
	}
	if _, ok := signed.Headers["content-type"]; !ok || a.Date != tc3.Date(ts) || a.Service != "captcha" ||
		signed.Headers["host"] == "" || strings.Join(a.SignedHeaders, ";") != signed.SignedHeaders() {
		return "AuthFailure.SignatureFailure"
	}
	if !tc3.Equal(a.Signature, tc3.Signature(key, a.Service, ts, signed)) {
		return "AuthFailure.SignatureFailure"
	}
	return ""
}
