// Package tencent verifies Tencent Cloud Captcha tickets with the
// DescribeCaptchaResult action of API version 2019-07-22
// (tencentcloud.com/document/api/1159/50367): a POST of JSON to
// captcha.tencentcloudapi.com signed with TC3-HMAC-SHA256 (package tc3),
// with the common headers X-TC-Action, X-TC-Version, X-TC-Timestamp and, when
// the site names one, X-TC-Region (the action needs none).
//
// The answer is {"Response": {...}}: either Response.Error.Code, a common
// or action error code, or a CaptchaCode (1 is a pass) with EvilLevel. How
// each maps onto a captcha.Reason is in codes.go, with its sources.
package tencent

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"carrier/internal/captcha"
	"carrier/internal/captcha/tencent/tc3"
	"carrier/internal/captcha/vendorhttp"
)

// The API this client speaks.
const (
	Action  = "DescribeCaptchaResult"
	Version = "2019-07-22"
	Service = "captcha" // the credential scope's service: the product's domain prefix
	// CaptchaType is the value the action documents as required ("It must
	// be 9 here").
	CaptchaType = 9
	// ContentType is the one the signature covers; Tencent checks that what
	// is sent is what was signed.
	ContentType = "application/json; charset=utf-8"
)

// DefaultEndpoints: the nearest-region domain the action documents, then
// the Guangzhou regional domain. Tencent's SDKs fail over the same way
// ("BackupEndpoint = ap-guangzhou.tencentcloudapi.com", the service name
// prefixed: tencentcloud-sdk-go README, region failover), and API 3.0
// accepts a product's regional domain (cvm.ap-guangzhou.tencentcloudapi.com
// in the signing document).
var DefaultEndpoints = []string{
	"https://captcha.tencentcloudapi.com/",
	"https://captcha.ap-guangzhou.tencentcloudapi.com/",
}

// Client verifies tickets with Tencent Cloud Captcha.
type Client struct {
	HTTP captcha.HTTPClient
	// Now is the clock requests are stamped and signed with; nil is the
	// wall clock. Tencent refuses a timestamp more than five minutes off.
	Now func() time.Time
}

var _ captcha.Vendor = (*Client)(nil)

// New returns a client that sends with http.
func New(http captcha.HTTPClient) *Client { return &Client{HTTP: http} }

// Name is "tencent".
func (c *Client) Name() string { return "tencent" }

// DefaultEndpoints are the primary and backup API domains.
func (c *Client) DefaultEndpoints() []string { return append([]string(nil), DefaultEndpoints...) }

// request is the action's input: the required parameters only.
type request struct {
	CaptchaType  int    `json:"CaptchaType"`
	Ticket       string `json:"Ticket"`
	UserIp       string `json:"UserIp"`
	Randstr      string `json:"Randstr"`
	CaptchaAppId uint64 `json:"CaptchaAppId"`
	AppSecretKey string `json:"AppSecretKey"`
}

// Answer is the action's output, and the shape of every API 3.0 error.
type Answer struct {
	Response struct {
		Error *struct {
			Code    string `json:"Code"`
			Message string `json:"Message"`
		} `json:"Error,omitempty"`
		CaptchaCode *int64 `json:"CaptchaCode,omitempty"`
		CaptchaMsg  string `json:"CaptchaMsg,omitempty"`
		EvilLevel   *int64 `json:"EvilLevel,omitempty"`
		RequestId   string `json:"RequestId,omitempty"`
	} `json:"Response"`
}

// Verify asks Tencent about req.Token (the ticket) and req.Randstr.
func (c *Client) Verify(ctx context.Context, keys captcha.Keys, endpoint string, req captcha.Request) captcha.Answer {
	if endpoint == "" {
		endpoint = DefaultEndpoints[0]
	}
	appID, err := strconv.ParseUint(strings.TrimSpace(keys.AppID), 10, 64)
	switch {
	case err != nil:
		return vendorhttp.Failure(captcha.ReasonConfigError, "bad_app_id", "CaptchaAppId must be an integer")
	case keys.AppSecret == "" || keys.SecretID == "" || keys.SecretKey == "":
		return vendorhttp.Failure(captcha.ReasonConfigError, "missing_keys", "AppSecretKey, SecretId and SecretKey are required")
	case req.Token == "" || req.Randstr == "":
		return vendorhttp.Failure(captcha.ReasonInvalidToken, "no_token", "the ticket or randstr is missing")
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return vendorhttp.Failure(captcha.ReasonConfigError, "bad_endpoint", "endpoint "+strconv.Quote(endpoint)+" is not a URL")
	}
	body, err := json.Marshal(request{
		CaptchaType:  CaptchaType,
		Ticket:       req.Token,
		UserIp:       req.RemoteIP,
		Randstr:      req.Randstr,
		CaptchaAppId: appID,
		AppSecretKey: keys.AppSecret,
	})
	if err != nil {
		return vendorhttp.Failure(captcha.ReasonConfigError, "bad_request", err.Error())
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	ts := now().Unix()
	uri := u.EscapedPath()
	if uri == "" {
		uri = "/"
	}
	signed := tc3.Request{
		Method:  "POST",
		URI:     uri,
		Headers: map[string]string{"content-type": ContentType, "host": u.Host},
		Payload: body,
	}
	h := map[string][]string{
		"Authorization":  {tc3.Authorization(keys.SecretID, keys.SecretKey, Service, ts, signed)},
		"X-TC-Action":    {Action},
		"X-TC-Version":   {Version},
		"X-TC-Timestamp": {strconv.FormatInt(ts, 10)},
	}
	if keys.Region != "" {
		h["X-TC-Region"] = []string{keys.Region}
	}
	resp, failed, ok := vendorhttp.Send(ctx, c.HTTP, vendorhttp.Request{URL: endpoint, ContentType: ContentType, Header: h, Body: body})
	if !ok {
		return failed
	}
	var a Answer
	if err := json.Unmarshal(resp.Body, &a); err != nil || (a.Response.Error == nil && a.Response.CaptchaCode == nil) {
		code := "bad_answer"
		if resp.Status/100 != 2 {
			code = "http_" + strconv.Itoa(resp.Status)
		}
		return vendorhttp.Failure(captcha.ReasonConfigError, code, vendorhttp.Snippet(resp.Body))
	}
	return Judge(a, req)
}

// Judge turns Tencent's answer into an Answer for req.
func Judge(a Answer, req captcha.Request) captcha.Answer {
	r := a.Response
	if r.Error != nil {
		return captcha.Answer{Reason: ErrorReason(r.Error.Code), VendorCode: r.Error.Code, Message: r.Error.Message}
	}
	if r.CaptchaCode == nil {
		return vendorhttp.Failure(captcha.ReasonConfigError, "bad_answer", "no CaptchaCode and no Error")
	}
	out := captcha.Answer{
		Reason:     CaptchaCodeReason(*r.CaptchaCode),
		VendorCode: strconv.FormatInt(*r.CaptchaCode, 10),
		Message:    r.CaptchaMsg,
	}
	if r.EvilLevel != nil {
		lvl := int(*r.EvilLevel)
		out.EvilLevel = &lvl
		if out.Reason == captcha.ReasonOK && lvl > req.MaxEvilLevel {
			out.Reason = captcha.ReasonRiskBlock
			out.Message = "EvilLevel " + strconv.Itoa(lvl) + " is above the site's " + strconv.Itoa(req.MaxEvilLevel)
		}
	}
	return out
}
