package dest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// CompatibleHostsSetting is the setting that lists compatible chat servers;
// errors name it, so that whoever reads one knows what to change.
const CompatibleHostsSetting = "CARRIER_CHAT_COMPATIBLE_HOSTS"

// CompatibleHosts are the hosts of servers that accept a chat service's
// incoming-webhook messages at URLs of their own: Mattermost and Rocket.Chat
// take Slack's messages at /hooks/…, and Discord-compatible servers take
// Discord's. The vendors' URL shapes are required everywhere else, because
// they tell which part of a URL is its secret (hidden whenever the URL is
// shown) and they catch URLs pasted from the wrong service; on a host the
// operator named here, a URL is taken as it is and all of its path and
// query count as its secret. Being listed lifts only the shape check: the
// https rule and the SSRF rules (netguard: private addresses refused at save
// and at dial time unless CARRIER_ALLOW_PRIVATE_NETWORKS) apply as they do
// to every destination.
//
// The zero value holds no host. It is safe for concurrent use.
type CompatibleHosts struct {
	// hosts holds "host" entries (any port) and "host:port" entries (that
	// port only, net.JoinHostPort form), lower case, without a trailing dot.
	hosts map[string]bool
}

// NewCompatibleHosts returns the hosts of entries, each a host name or IP
// address ("chat.example.com", any port) or one with a port
// ("chat.example.com:8065", "[::1]:8065"; that port only). Host names match
// exactly, ignoring case: no wildcards, no subdomains. internal/config checks
// the entries' syntax at start; here an entry that is not a host never
// matches.
func NewCompatibleHosts(entries []string) CompatibleHosts {
	c := CompatibleHosts{hosts: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if host, port, err := net.SplitHostPort(e); err == nil {
			c.hosts[net.JoinHostPort(normalHost(host), port)] = true
		} else {
			c.hosts[normalHost(strings.Trim(e, "[]"))] = true
		}
	}
	return c
}

func normalHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// Has reports whether u's host is listed, alone or with u's port (the
// scheme's default port when u names none).
func (c CompatibleHosts) Has(u *url.URL) bool {
	if len(c.hosts) == 0 {
		return false
	}
	host := normalHost(u.Hostname())
	if c.hosts[host] {
		return true
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	return port != "" && c.hosts[net.JoinHostPort(host, port)]
}

// CheckChatWebhookURL checks a chat service's incoming-webhook URL and
// returns its secret part. The URL must pass CheckWebhookURL; then, on a
// host in compatible, it is accepted as it is, its path and query being the
// secret; elsewhere vendor checks its path segments against the service's
// own shape and returns the secret, and a refusal adds how a
// service-compatible server's URL is accepted (service, such as "Slack",
// names the service in that hint).
func CheckChatWebhookURL(raw, shape string, compatible CompatibleHosts, service string, vendor func(segs []string) (secret string, err error)) (string, error) {
	u, segs, err := CheckWebhookURL(raw, shape)
	if err != nil {
		return "", err
	}
	if compatible.Has(u) {
		secret := strings.TrimPrefix(u.EscapedPath(), "/")
		if u.RawQuery != "" {
			secret += "?" + u.RawQuery
		}
		return secret, nil
	}
	secret, err := vendor(segs)
	if err != nil {
		return "", fmt.Errorf("%w (a %s-compatible server is accepted at its own URLs once its host is in %s)", err, service, CompatibleHostsSetting)
	}
	return secret, nil
}
