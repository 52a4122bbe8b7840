package dest

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestCompatibleHostsHas(t *testing.T) {
	c := NewCompatibleHosts([]string{"Chat.Example.com", " mm.example.org:8065 ", "", "[::1]:9000", "10.0.0.5"})
	for raw, want := range map[string]bool{
		"https://chat.example.com/hooks/x":       true, // a host alone allows every port
		"https://CHAT.example.com.:8443/hooks/x": true, // case and a trailing dot do not matter
		"https://mm.example.org:8065/hooks/x":    true,
		"https://mm.example.org/hooks/x":         false, // 443 is not 8065
		"https://mm.example.org:8066/hooks/x":    false,
		"http://[::1]:9000/hooks/x":              true,
		"http://[::1]:9001/hooks/x":              false,
		"https://10.0.0.5/hooks/x":               true,
		"https://sub.chat.example.com/hooks/x":   false, // exact names, no subdomains
		"https://example.com/hooks/x":            false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Has(u); got != want {
			t.Errorf("Has(%s) = %v, want %v", raw, got, want)
		}
	}
	u, _ := url.Parse("https://chat.example.com/")
	if (CompatibleHosts{}).Has(u) {
		t.Errorf("the zero value holds a host")
	}
}

func TestCheckChatWebhookURL(t *testing.T) {
	c := NewCompatibleHosts([]string{"chat.example.com"})
	vendorErr := errors.New("must be a Vendor URL")
	vendor := func(segs []string) (string, error) {
		if len(segs) == 2 && segs[0] == "vendor" {
			return segs[1], nil
		}
		return "", vendorErr
	}
	for _, tc := range []struct {
		raw, secret, err string
	}{
		{"https://chat.example.com/hooks/k3y?channel=ops", "hooks/k3y?channel=ops", ""},
		{"https://vendor.example/vendor/t0ken", "t0ken", ""},
		{"https://other.example/hooks/k3y", "", "must be a Vendor URL (a Vendor-compatible server is accepted at its own URLs once its host is in CARRIER_CHAT_COMPATIBLE_HOSTS)"},
		// Being listed lifts only the shape check.
		{"http://chat.example.com/hooks/k3y", "", "must use https"},
		{"https://user:pw@chat.example.com/hooks/k3y", "", "credentials"},
	} {
		secret, err := CheckChatWebhookURL(tc.raw, "must be a Vendor URL", c, "Vendor", vendor)
		switch {
		case tc.err == "" && (err != nil || secret != tc.secret):
			t.Errorf("%s: %q, %v; want secret %q", tc.raw, secret, err, tc.secret)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.raw, err, tc.err)
		}
	}
}

func TestRecordHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("Content-Type", "text/plain")
	h.Add("Set-Cookie", "session=secret")
	h.Set("Www-Authenticate", `Basic realm="x"`)
	h.Set("X-Big", strings.Repeat("b", HeaderLimit))
	got, want := RecordHeaders(h), "Content-Type: text/plain\nSet-Cookie: ***\nWww-Authenticate: ***\n"
	if got != want {
		t.Fatalf("got %q, want %q (credentials redacted, the header past the limit left out)", got, want)
	}
}
