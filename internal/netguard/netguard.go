// Package netguard provides an SSRF-safe HTTP client for delivering
// webhooks to user-supplied URLs.
//
// Destinations are checked twice: once when a URL is created or updated
// (Guard.CheckURL) and again on every connection the delivery client makes
// (Guard.Client), where the address that is actually dialled is the one that
// was checked. Checking at dial time is what defeats DNS rebinding: a host
// that resolved to a public address at create time but to 10.0.0.1 at
// delivery time is refused before any connection is attempted.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Resolver looks up a host's IP addresses; *net.Resolver satisfies it.
// Tests inject fakes.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Guard decides which network destinations may be contacted and builds HTTP
// clients that enforce that decision on every dial. The zero value blocks
// every non-public address and resolves with net.DefaultResolver.
type Guard struct {
	// AllowPrivate disables all address checks when true, so loopback,
	// private and every other class may be reached. Development/tests only.
	AllowPrivate bool
	// Resolver is used to resolve host names, both in CheckURL and when the
	// client dials. Nil means net.DefaultResolver.
	Resolver Resolver

	// dial, when set (tests only), replaces the real net.Dialer for the
	// final connection to an already checked ip:port.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// ErrBlocked is wrapped by every error caused by a forbidden destination.
var ErrBlocked = errors.New("destination address is not allowed")

const (
	dialTimeout         = 10 * time.Second
	keepAlive           = 30 * time.Second
	maxIdleConns        = 1024
	maxIdleConnsPerHost = 64
	idleConnTimeout     = 90 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
)

type blockedRange struct {
	prefix netip.Prefix
	class  string
}

func mustRanges(pairs ...string) []blockedRange {
	out := make([]blockedRange, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, blockedRange{netip.MustParsePrefix(pairs[i]), pairs[i+1]})
	}
	return out
}

// blockedV4 lists forbidden IPv4 ranges. The first match wins, so more
// specific entries precede the ranges that contain them.
var blockedV4 = mustRanges(
	"0.0.0.0/32", "unspecified",
	"0.0.0.0/8", "unspecified (this-network)",
	"10.0.0.0/8", "private",
	"100.64.0.0/10", "CGNAT",
	"127.0.0.0/8", "loopback",
	"169.254.169.254/32", "metadata",
	"169.254.0.0/16", "link-local",
	"172.16.0.0/12", "private",
	"192.0.0.0/24", "IETF-reserved",
	"192.0.2.0/24", "documentation",
	"192.31.196.0/24", "AS112",
	"192.52.193.0/24", "AMT",
	"192.88.99.0/24", "6to4",
	"192.168.0.0/16", "private",
	"192.175.48.0/24", "AS112",
	"198.18.0.0/15", "benchmarking",
	"198.51.100.0/24", "documentation",
	"203.0.113.0/24", "documentation",
	"224.0.0.0/4", "multicast",
	"255.255.255.255/32", "broadcast",
	"240.0.0.0/4", "reserved",
)

// blockedV6 lists forbidden IPv6 ranges (first match wins). Anything not
// listed here and outside the global unicast range 2000::/3 is blocked as
// "reserved" as well.
var blockedV6 = mustRanges(
	"::/128", "unspecified",
	"::1/128", "loopback",
	"::/96", "IPv4-compatible",
	"64:ff9b::/96", "NAT64",
	"64:ff9b:1::/48", "NAT64",
	"100::/64", "discard",
	"2001::/32", "Teredo",
	"2001:db8::/32", "documentation",
	"2001::/23", "IETF-reserved",
	"2002::/16", "6to4",
	"2620:4f:8000::/48", "AS112",
	"3fff::/20", "documentation",
	"fd00:ec2::254/128", "metadata",
	"fc00::/7", "unique-local",
	"fe80::/10", "link-local",
	"fec0::/10", "site-local",
	"ff00::/8", "multicast",
)

var globalUnicastV6 = netip.MustParsePrefix("2000::/3")

// classify returns the class name of a forbidden address, or "" if ip is an
// ordinary public address.
func classify(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid"
	}
	// Prefix.Contains never matches zoned addresses, and an IPv4-mapped
	// IPv6 address never matches an IPv4 prefix: normalise both away.
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		for _, r := range blockedV4 {
			if r.prefix.Contains(ip) {
				return r.class
			}
		}
		return ""
	}
	for _, r := range blockedV6 {
		if r.prefix.Contains(ip) {
			return r.class
		}
	}
	if !globalUnicastV6.Contains(ip) {
		return "reserved"
	}
	return ""
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiouAEIOU", rune(word[0])) {
		return "an"
	}
	return "a"
}

// CheckAddr reports whether ip may be dialled. It returns nil for an
// allowed address and otherwise an error wrapping ErrBlocked that names the
// address and its class, e.g. "10.1.2.3 is a private address".
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are checked as the IPv4
// address they carry. With AllowPrivate set, nothing is blocked.
func (g *Guard) CheckAddr(ip netip.Addr) error {
	if g.AllowPrivate {
		return nil
	}
	class := classify(ip)
	if class == "" {
		return nil
	}
	return fmt.Errorf("%w: %s is %s %s address", ErrBlocked, ip, article(class), class)
}

func (g *Guard) resolver() Resolver {
	if g.Resolver != nil {
		return g.Resolver
	}
	return net.DefaultResolver
}

// resolve returns the addresses for host: an IP literal is returned as is,
// anything else is looked up with the guard's Resolver.
func (g *Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	ipAddrs, err := g.resolver().LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(ipAddrs))
	for _, a := range ipAddrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return nil, fmt.Errorf("resolver returned an invalid address %q for %q", a.IP, host)
		}
		out = append(out, ip.WithZone(a.Zone))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("host %q resolved to no addresses", host)
	}
	return out, nil
}

// checkAll returns the first CheckAddr error among addrs, or nil.
func (g *Guard) checkAll(host string, addrs []netip.Addr) error {
	for _, ip := range addrs {
		if err := g.CheckAddr(ip); err != nil {
			if _, perr := netip.ParseAddr(host); perr == nil {
				return err
			}
			return fmt.Errorf("host %q: %w", host, err)
		}
	}
	return nil
}

// CheckURL validates a webhook destination URL at create/update time. The
// URL must use scheme http or https, have a host, carry no userinfo and, if
// it has a port, a port in 1-65535; errors about these do not wrap
// ErrBlocked. The host is then resolved (IP literals are taken as is) and if
// ANY resolved address is forbidden the returned error wraps ErrBlocked. A
// DNS failure is also an error (not ErrBlocked). CheckURL never connects to
// the destination.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
	case "":
		return errors.New("invalid URL: missing scheme (want http or https)")
	default:
		return fmt.Errorf("invalid URL: scheme %q is not allowed (want http or https)", u.Scheme)
	}
	if u.User != nil {
		return errors.New("invalid URL: userinfo (user:password@) is not allowed")
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("invalid URL: missing host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("invalid URL: port %q is out of range 1-65535", p)
		}
	}
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return fmt.Errorf("cannot resolve host %q: %w", host, err)
	}
	return g.checkAll(host, addrs)
}

// control re-checks the socket address right before connect(2). It is
// defence in depth: dialContext only ever dials addresses it has checked.
func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address %q", ErrBlocked, address)
	}
	return g.CheckAddr(ap.Addr())
}

// dialContext resolves addr's host with the guard's Resolver, refuses the
// dial if ANY candidate address is forbidden, and then dials the candidates
// by IP, in order, until one connects.
func (g *Guard) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("resolve %q: %w", host, err)}
	}
	if err := g.checkAll(host, addrs); err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}

	dial := g.dial
	if dial == nil {
		d := &net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
		if !g.AllowPrivate {
			d.Control = g.control
		}
		dial = d.DialContext
	}

	var firstErr error
	tried := 0
	for _, ip := range addrs {
		ip = ip.Unmap()
		switch network {
		case "tcp4":
			if !ip.Is4() {
				continue
			}
		case "tcp6":
			if !ip.Is6() {
				continue
			}
		}
		tried++
		conn, err := dial(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if tried == 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("no %s address for host %q", network, host)}
	}
	return nil, firstErr
}

// MaxResponseHeaderBytes bounds the response headers an endpoint may send
// (Go's default is 10 MB, which hostile endpoints can use to hold memory);
// an answer with more fails its attempt. Chat services and webhooks answer
// with a few KiB at most.
const MaxResponseHeaderBytes = 64 << 10

// Client returns an *http.Client for delivering webhooks. Its transport
// resolves hosts with g.Resolver and checks the address actually dialled
// (so DNS rebinding cannot reach internal addresses), it never follows
// redirects (the 3xx response is returned as is), reads at most
// MaxResponseHeaderBytes of response headers, has no overall Timeout
// (callers use per-request contexts), keeps connections alive, ignores
// proxy environment variables and verifies TLS normally. maxConnsPerHost
// limits connections per host; 0 means unlimited.
//
// The guard's fields are copied: later changes to g do not affect the
// returned client.
func (g *Guard) Client(maxConnsPerHost int) *http.Client {
	gc := *g
	if maxConnsPerHost < 0 {
		maxConnsPerHost = 0
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            gc.dialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		MaxConnsPerHost:        maxConnsPerHost,
		IdleConnTimeout:        idleConnTimeout,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ExpectContinueTimeout:  1 * time.Second,
		MaxResponseHeaderBytes: MaxResponseHeaderBytes,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// IsBlocked reports whether err (possibly wrapped in *url.Error,
// *net.OpError or fmt.Errorf %w chains) was caused by a blocked destination.
func IsBlocked(err error) bool {
	return errors.Is(err, ErrBlocked)
}
