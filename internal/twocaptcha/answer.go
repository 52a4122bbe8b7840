package twocaptcha

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"carrier/internal/provider"
)

// CodeNoProvider answers requests that need an upstream provider when none is
// configured. Clients treat an unknown ERROR_ code as final, which it is
// until the operator configures one; ERROR_NO_SLOT_AVAILABLE, which this
// used to be, is retried by clients for ever.
const CodeNoProvider = "ERROR_NO_PROVIDER_CONFIGURED"

// answer is one answer of the legacy API. 2captcha answers in two forms:
//
//	plain: "OK|<request>" for a result (Bare: just <request>, as getbalance,
//	       reportbad and ids= answer), or the code itself (CAPCHA_NOT_READY,
//	       ERROR_…)
//	json:  {"status": 1, "request": <request>} for a result, {"status": 0,
//	       "request": <code>} otherwise, with "error_text" for an error code
//
// JSON clients tell a result from everything else by status alone, so
// status is 1 for a result and nothing else.
type answer struct {
	OK      bool
	Request string
	// List, when set, is the JSON form's request instead of Request (get_pingback).
	List []string
	// Bare leaves "OK|" off the plain form of a result.
	Bare bool
	// Price is get2's price, appended as "|price" or sent as "price".
	Price *string
	// Text is the error_text of an error; "" uses the code's documented text.
	Text string
}

func resultAnswer(request string) answer { return answer{OK: true, Request: request} }

func errorAnswer(code string) answer { return answer{Request: code} }

func errorWith(code, text string) answer { return answer{Request: code, Text: text} }

// write sends a in the form the request asked for, always with HTTP 200, as
// 2captcha answers. Which requests are error codes (and so get an
// error_text) is the provider client's classification, the one the rest of
// Carrier uses.
func write(w http.ResponseWriter, asJSON bool, a answer) {
	if asJSON {
		body := map[string]any{"status": 0, "request": a.Request}
		if a.OK {
			body["status"] = 1
			if a.List != nil {
				body["request"] = a.List
			}
			if a.Price != nil {
				body["price"] = *a.Price
			}
		} else if provider.IsErrorCode(a.Request) {
			text := a.Text
			if text == "" {
				text = errorText(a.Request)
			}
			body["error_text"] = text
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	text := a.Request
	if a.OK && a.List != nil {
		text = strings.Join(append([]string{"OK"}, a.List...), "|")
	} else if a.OK && !a.Bare {
		text = "OK|" + text
		if a.Price != nil {
			text += "|" + *a.Price
		}
	}
	io.WriteString(w, text)
}

// errorText is the error_text of a code: what it means and what to do.
func errorText(code string) string {
	switch code {
	case provider.CodeWrongUserKey:
		return "The key parameter is missing or malformed: it must be a Carrier API key (at least 16 characters)."
	case provider.CodeKeyDoesNotExist:
		return "The key you provided is not a Carrier API key, or it was revoked."
	case "ERROR_WRONG_ID_FORMAT":
		return "The id parameter is missing or is not a task id that in.php answered."
	case provider.CodeWrongCaptchaID:
		return "No task of this key's project has this id."
	case "ERROR_BAD_PARAMETERS":
		return "Required parameters are missing or malformed."
	case "ERROR_EMPTY_ACTION":
		return "The action parameter is missing or not supported (get, get2, getbalance, reportbad, reportgood, add_pingback, get_pingback, del_pingback)."
	case "ERROR_GOOGLEKEY":
		return "The googlekey parameter is missing."
	case "ERROR_PAGEURL":
		return "The pageurl parameter is missing."
	case "ERROR_ZERO_CAPTCHA_FILESIZE":
		return "The captcha image is empty."
	case "ERROR_TOO_BIG_CAPTCHA_FILESIZE":
		return "The request is larger than Carrier accepts (1 MiB)."
	case provider.CodeUnsolvable:
		return "The task was not solved: the provider could not solve it, or it expired without a result."
	case "ERROR_REPORT_NOT_RECORDED":
		return "Only a task that was solved can be reported."
	case provider.CodeNoSlotAvailable:
		return "Carrier cannot reach its database right now; try again in a few seconds."
	case CodeNoProvider:
		return "Carrier has no CAPTCHA provider configured: set CARRIER_PROVIDER_URL and CARRIER_PROVIDER_KEY (or start Carrier with --simulate)."
	}
	return code
}
