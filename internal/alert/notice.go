package alert

// Notice is the human form of an alert notification: what a chat message or
// an email shows. The evaluator writes it into the data of every alert.*
// and report.* event under the key "notice", so the Discord, Slack and email
// destinations render the same content without knowing the rule kinds, and
// a webhook consumer gets it too.
type Notice struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	// Color is the color key: ColorSuccess, ColorWarning, ColorError or ColorInfo.
	Color  string        `json:"color"`
	Fields []NoticeField `json:"fields,omitempty"`
	// Footer is the footer line, such as "CaptchaAI Pipeline Monitor".
	Footer string `json:"footer"`
	// Quiet notices ping nobody: a resolution or a flapping report keeps the
	// alert's severity but is no reason to wake anyone (a Discord mention
	// is left out).
	Quiet bool `json:"quiet,omitempty"`
}

// NoticeField is one name/value line of a notice; Inline fields may sit side by side.
type NoticeField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

// The color keys of a notice and the Discord colors they stand for (the
// source document's palette).
const (
	ColorSuccess = "success" // 0x2ECC71
	ColorWarning = "warning" // 0xF39C12
	ColorError   = "error"   // 0xE74C3C
	ColorInfo    = "info"    // 0x3498DB
)

// Colors maps each color key to its RGB value.
var Colors = map[string]int{
	ColorSuccess: 0x2ECC71,
	ColorWarning: 0xF39C12,
	ColorError:   0xE74C3C,
	ColorInfo:    0x3498DB,
}
