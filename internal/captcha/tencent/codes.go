package tencent

import (
	"strings"

	"carrier/internal/captcha"
)

// CaptchaCodes maps every CaptchaCode Tencent has documented for
// DescribeCaptchaResult onto a reason. Sources: the action's output
// parameters (tencentcloud.com/document/api/1159/50367, and the field's
// comment in tencentcloud-sdk-go and tencentcloud-sdk-go-intl-en,
// captcha/v20190722/models.go), which today list 1, 7, 8, 9, 15, 16, 21
// and 100; earlier editions of the same field also listed 6, 10-13, 17-20,
// 22-26 and 104, kept here because an older deployment may still answer
// them; and the business disaster-recovery scheme (seeds/002), which names
// 26 ("System busy") the service's own failure.
//
// Only 26 degrades. A code not listed is a config_error: never a pass.
var CaptchaCodes = map[int64]captcha.Reason{
	1: captcha.ReasonOK, // OK: verification passed (then EvilLevel)
	// 6 "user code len error": Randstr missing or of the wrong case/length.
	6: captcha.ReasonInvalidToken,
	// 7 "captcha no match": the Randstr is not the one the front end returned.
	7: captcha.ReasonInvalidToken,
	// 8 "ticket expired" / "verify timeout": tickets live five minutes.
	8: captcha.ReasonExpired,
	// 9 "ticket reused" / "Sequnce repeat": the ticket was verified before.
	9:  captcha.ReasonDuplicate,
	10: captcha.ReasonInvalidToken, // "Sequnce invalid"
	11: captcha.ReasonInvalidToken, // "Cookie invalid": illegal request
	12: captcha.ReasonInvalidToken, // "sig len error"
	13: captcha.ReasonInvalidToken, // "verify ip no match": illegal request
	// 15 "decrypt fail": the Ticket is not one the front end returned.
	15: captcha.ReasonInvalidToken,
	// 16 "appid-ticket mismatch" / "appid no match": the site's CaptchaAppId
	// is not the one the front end used.
	16: captcha.ReasonConfigError,
	17: captcha.ReasonInvalidToken, // "cmd no much"
	18: captcha.ReasonInvalidToken, // "uin no match"
	19: captcha.ReasonInvalidToken, // "seq redirect"
	20: captcha.ReasonInvalidToken, // "opt no vcode"
	// 21 "diff": a trerror_/terror_ disaster-recovery ticket made by the front
	// end, or, for any other ticket, a request the risk system judged
	// unsafe. The vendor code "21" tells the core, which knows which it was
	// from the ticket's prefix.
	21: captcha.ReasonInvalidToken,
	22: captcha.ReasonInvalidToken, // "captcha type not match"
	23: captcha.ReasonInvalidToken, // "verify type error"
	24: captcha.ReasonInvalidToken, // "invalid pkg": illegal request packet
	25: captcha.ReasonRiskBlock,    // "bad visitor": blocked by policy
	// 26 "system busy" / "system internal error": Tencent's own failure, one
	// of the answers the disaster-recovery scheme says to degrade on.
	26: captcha.ReasonVendorUnavailable,
	// 100 "appid-secretkey-ticket mismatch" / "param err appsecretkey": the
	// CaptchaAppId and AppSecretKey do not belong together.
	100: captcha.ReasonConfigError,
	104: captcha.ReasonDuplicate, // "Ticket Reuse"
}

// CaptchaCodeReason is the reason for a CaptchaCode.
func CaptchaCodeReason(code int64) captcha.Reason {
	if r, ok := CaptchaCodes[code]; ok {
		return r
	}
	return captcha.ReasonConfigError
}

// ErrorReason is the reason for Response.Error.Code. Sources: API 3.0's
// common error codes (the "Error Codes" page of every product, e.g.
// cloud.tencent.com/document/product/1388/114322) and the action's own
// (tencentcloud-sdk-go captcha/v20190722/errors.go: InternalError,
// MissingParameter, UnauthorizedOperation.ErrAuth,
// UnauthorizedOperation.Unauthorized).
//
//   - InternalError (and its sub-codes): the disaster-recovery scheme's
//     example of an answer to degrade on; ServiceUnavailable, which the
//     common list describes as the service being temporarily unavailable,
//     is the same failure: vendor_unavailable.
//   - RequestLimitExceeded and its sub-codes (IPLimitExceeded,
//     UinLimitExceeded, GlobalRegionUinLimitExceeded): vendor_throttled,
//     which never degrades: a flood must not open the door.
//   - Everything else (AuthFailure.*, InvalidParameter*, MissingParameter,
//     UnauthorizedOperation.*, InvalidAction, NoSuchVersion, LimitExceeded,
//     ResourceUnavailable, FailedOperation, and any code not documented):
//     config_error.
func ErrorReason(code string) captcha.Reason {
	switch {
	case code == "InternalError" || strings.HasPrefix(code, "InternalError."):
		return captcha.ReasonVendorUnavailable
	case code == "ServiceUnavailable":
		return captcha.ReasonVendorUnavailable
	case code == "RequestLimitExceeded" || strings.HasPrefix(code, "RequestLimitExceeded."):
		return captcha.ReasonVendorThrottled
	}
	return captcha.ReasonConfigError
}
