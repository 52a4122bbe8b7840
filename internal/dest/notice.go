package dest

import (
	"encoding/json"
	"strings"
)

// Notice is the human form of an event that carries one: the object under
// the data key "notice" of alert.* and report.* events (alert.Notice, whose
// JSON names these fields mirror). Chat and email destinations show it in
// place of their default title, text and fields, so an alert reads the same
// everywhere without the destinations knowing the alert package. The
// description and field values use Discord's markdown (**bold**, `code`).
type Notice struct {
	Title       string        `json:"title"`
	Description string        `json:"description"`
	Color       string        `json:"color"` // "success", "warning", "error" or "info"
	Fields      []NoticeField `json:"fields"`
	Footer      string        `json:"footer"`
	// Quiet notices ping nobody (a resolution): chat mentions are left out.
	Quiet bool `json:"quiet"`
}

// NoticeField is one name/value line of a notice.
type NoticeField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

// NoticeOf returns the notice in an event's data, if it has one: ok is true
// when the data is a JSON object whose "notice" member is an object with a
// non-empty title. Anything else (no notice, one of the wrong shape) is not
// a notice, and the event is shown as any other.
func NoticeOf(data json.RawMessage) (Notice, bool) {
	var holder struct {
		Notice *Notice `json:"notice"`
	}
	if json.Unmarshal(data, &holder) != nil || holder.Notice == nil {
		return Notice{}, false
	}
	n := *holder.Notice
	if strings.TrimSpace(n.Title) == "" {
		return Notice{}, false
	}
	return n, true
}

// StripBold removes the **bold** markers of notice text, for destinations
// that show plain text.
func StripBold(s string) string { return strings.ReplaceAll(s, "**", "") }
