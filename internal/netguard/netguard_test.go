package netguard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeResolver answers from a fixed table and records every lookup.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][]string
	lookups []string
}

func (f *fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	f.mu.Lock()
	f.lookups = append(f.lookups, host)
	f.mu.Unlock()
	ips, ok := f.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]net.IPAddr, 0, len(ips))
	for _, s := range ips {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	return out, nil
}

// dialRecorder wraps a real dialer and records the addresses dialled.
type dialRecorder struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dialRecorder) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func (d *dialRecorder) dialled() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

func TestCheckAddr(t *testing.T) {
	blocked := []struct {
		ip, class string
	}{
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"febf::1", "link-local"},
		{"100.64.0.1", "CGNAT"},
		{"100.127.255.255", "CGNAT"},
		{"fc00::1", "unique-local"},
		{"fd12:3456::1", "unique-local"},
		{"64:ff9b::a00:1", "NAT64"},
		{"64:ff9b::808:808", "NAT64"}, // even a public IPv4 behind NAT64
		{"64:ff9b:1::1", "NAT64"},
		{"2002::1", "6to4"},
		{"2002:c0a8:101::1", "6to4"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"ff0e::1", "multicast"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"0.1.2.3", "unspecified (this-network)"},
		{"169.254.169.254", "metadata"},
		{"fd00:ec2::254", "metadata"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"250.1.2.3", "reserved"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"192.0.2.1", "documentation"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		{"2001:db8::1", "documentation"},
		{"192.0.0.1", "IETF-reserved"},
		{"2001::1", "Teredo"},
		{"100::1", "discard"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:169.254.169.254", "metadata"},
		{"::ffff:0.0.0.0", "unspecified"},
		{"::7f00:1", "IPv4-compatible"}, // ::127.0.0.1
		{"fec0::1", "site-local"},
		{"4000::1", "reserved"}, // outside 2000::/3 global unicast
	}
	allowed := []string{
		"93.184.216.34",
		"8.8.8.8",
		"1.1.1.1",
		"100.63.255.255", // just below CGNAT
		"100.128.0.0",    // just above CGNAT
		"172.15.255.255", // just below 172.16/12
		"172.32.0.0",     // just above 172.16/12
		"198.20.0.1",     // just above benchmarking
		"::ffff:8.8.8.8",
		"2606:4700::1111",
		"2001:4860:4860::8888",
		"2a00:1450:4001::1",
	}

	strict := &Guard{}
	open := &Guard{AllowPrivate: true}
	for _, tc := range blocked {
		ip := netip.MustParseAddr(tc.ip)
		err := strict.CheckAddr(ip)
		if err == nil {
			t.Errorf("CheckAddr(%s) = nil, want blocked (%s)", tc.ip, tc.class)
			continue
		}
		if !errors.Is(err, ErrBlocked) || !IsBlocked(err) {
			t.Errorf("CheckAddr(%s) = %v, does not wrap ErrBlocked", tc.ip, err)
		}
		if want := tc.ip + " is "; !strings.Contains(err.Error(), want) {
			t.Errorf("CheckAddr(%s) = %q, want it to name the address", tc.ip, err)
		}
		if want := " " + tc.class + " address"; !strings.Contains(err.Error(), want) {
			t.Errorf("CheckAddr(%s) = %q, want class %q", tc.ip, err, tc.class)
		}
		if err := open.CheckAddr(ip); err != nil {
			t.Errorf("AllowPrivate: CheckAddr(%s) = %v, want nil", tc.ip, err)
		}
	}
	for _, s := range allowed {
		if err := strict.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want nil", s, err)
		}
		if err := open.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("AllowPrivate: CheckAddr(%s) = %v, want nil", s, err)
		}
	}
	if err := strict.CheckAddr(netip.Addr{}); !IsBlocked(err) {
		t.Errorf("CheckAddr(zero Addr) = %v, want blocked", err)
	}
	if got := strict.CheckAddr(netip.MustParseAddr("10.1.2.3")).Error(); !strings.HasSuffix(got, "10.1.2.3 is a private address") {
		t.Errorf("message = %q", got)
	}
}

func TestCheckURL(t *testing.T) {
	res := &fakeResolver{answers: map[string][]string{
		"internal.test": {"10.0.0.5"},
		"mixed.test":    {"93.184.216.34", "192.168.0.10"},
		"mixed6.test":   {"2606:4700::1111", "fd00::1"},
		"public.test":   {"93.184.216.34", "2606:4700::1111"},
	}}
	g := &Guard{Resolver: res}
	ctx := context.Background()

	invalid := []string{
		"ftp://example.com/x",
		"file:///etc/passwd",
		"gopher://public.test/",
		"example.com/hook",
		"http://",
		"http:///path",
		"https://user:pass@public.test/",
		"https://user@public.test/",
		"http://public.test:0/",
		"http://public.test:65536/",
		"http://public.test:99999/",
		"http://public.test:abc/",
		"://bad",
	}
	for _, raw := range invalid {
		err := g.CheckURL(ctx, raw)
		if err == nil {
			t.Errorf("CheckURL(%q) = nil, want error", raw)
		} else if IsBlocked(err) {
			t.Errorf("CheckURL(%q) = %v, must not wrap ErrBlocked", raw, err)
		}
	}

	blockedURLs := []string{
		"http://127.0.0.1:8080/x",
		"http://[::1]/",
		"http://[::ffff:127.0.0.1]/",
		"http://169.254.169.254/latest/meta-data",
		"http://[fd00:ec2::254]/latest/meta-data",
		"http://0.0.0.0:8080/",
		"https://10.1.2.3/",
		"https://[fe80::1%25eth0]/",
		"http://internal.test/hook",
		"HTTP://internal.test/hook",
		"http://mixed.test/hook",
		"http://mixed6.test/hook",
	}
	for _, raw := range blockedURLs {
		err := g.CheckURL(ctx, raw)
		if !IsBlocked(err) {
			t.Errorf("CheckURL(%q) = %v, want ErrBlocked", raw, err)
		}
	}

	// trailing-dot host names are passed to the resolver as is.
	res.answers["internal.test."] = res.answers["internal.test"]
	if err := g.CheckURL(ctx, "http://internal.test./x"); !IsBlocked(err) {
		t.Errorf("trailing dot: %v, want ErrBlocked", err)
	}

	for _, raw := range []string{
		"http://public.test/hook",
		"https://public.test:8443/hook?x=1",
		"https://93.184.216.34/",
		"https://[2606:4700::1111]:443/",
	} {
		if err := g.CheckURL(ctx, raw); err != nil {
			t.Errorf("CheckURL(%q) = %v, want nil", raw, err)
		}
	}

	// DNS failure: an error with a clear message, but not ErrBlocked.
	err := g.CheckURL(ctx, "https://nxdomain.test/")
	if err == nil || IsBlocked(err) || !strings.Contains(err.Error(), "cannot resolve host") {
		t.Errorf("CheckURL(nxdomain) = %v, want non-blocked resolve error", err)
	}
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		t.Errorf("CheckURL(nxdomain) = %v, want it to wrap *net.DNSError", err)
	}

	// AllowPrivate lets everything through, but syntax is still checked.
	open := &Guard{AllowPrivate: true, Resolver: res}
	for _, raw := range []string{"http://127.0.0.1:8080/x", "http://internal.test/", "http://mixed.test/"} {
		if err := open.CheckURL(ctx, raw); err != nil {
			t.Errorf("AllowPrivate: CheckURL(%q) = %v, want nil", raw, err)
		}
	}
	if err := open.CheckURL(ctx, "ftp://127.0.0.1/"); err == nil {
		t.Error("AllowPrivate: ftp:// accepted")
	}
}

func newLoopbackServer(t *testing.T, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return srv, u.Port()
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func get(ctx context.Context, c *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(`{"event":"x"}`))
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}

func TestClientBlocksLoopback(t *testing.T) {
	var hits int
	var mu sync.Mutex
	srv, _ := newLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))

	rec := &dialRecorder{}
	g := &Guard{dial: rec.dial}
	resp, err := get(ctxT(t), g.Client(0), srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("request to %s succeeded, want blocked", srv.URL)
	}
	if !IsBlocked(err) {
		t.Fatalf("err = %v, want IsBlocked", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Errorf("err = %T, want *url.Error", err)
	}
	if d := rec.dialled(); len(d) != 0 {
		t.Errorf("dialled %v, want no dial", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Errorf("server saw %d requests", hits)
	}

	// The default (real) dialer path blocks too.
	_, err = get(ctxT(t), (&Guard{}).Client(4), srv.URL)
	if !IsBlocked(err) {
		t.Fatalf("default dialer: err = %v, want IsBlocked", err)
	}
}

func TestClientAllowPrivate(t *testing.T) {
	srv, _ := newLoopbackServer(t, okHandler())
	c := (&Guard{AllowPrivate: true}).Client(0)
	resp, err := get(ctxT(t), c, srv.URL)
	if err != nil {
		t.Fatalf("request failed: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestClientIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(okHandler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	if _, err := get(ctxT(t), (&Guard{}).Client(0), srv.URL); !IsBlocked(err) {
		t.Errorf("strict [::1]: err = %v, want IsBlocked", err)
	}
	resp, err := get(ctxT(t), (&Guard{AllowPrivate: true}).Client(0), srv.URL)
	if err != nil {
		t.Fatalf("AllowPrivate [::1]: %v", err)
	}
	resp.Body.Close()
}

func TestClientDNSRebinding(t *testing.T) {
	// The host passed CheckURL earlier (say, as a public address); at
	// delivery time the resolver now answers with an internal address.
	res := &fakeResolver{answers: map[string][]string{
		"rebind.test": {"10.0.0.1"},
		"mixed.test":  {"93.184.216.34", "127.0.0.1"},
	}}
	rec := &dialRecorder{}
	g := &Guard{Resolver: res, dial: rec.dial}
	c := g.Client(0)

	for _, u := range []string{"http://rebind.test/hook", "https://rebind.test/hook", "http://mixed.test:8080/"} {
		_, err := get(ctxT(t), c, u)
		if !IsBlocked(err) {
			t.Errorf("%s: err = %v, want IsBlocked", u, err)
		}
	}
	if d := rec.dialled(); len(d) != 0 {
		t.Errorf("dialled %v, want no connection attempt", d)
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	if len(res.lookups) == 0 {
		t.Error("resolver was not consulted")
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusFound)
	})
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) {
		followed.Store(true)
	})
	srv, _ := newLoopbackServer(t, mux)

	resp, err := get(ctxT(t), (&Guard{AllowPrivate: true}).Client(0), srv.URL+"/start")
	if err != nil {
		t.Fatalf("request failed: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status = %d, want 302", resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); loc != "/target" {
		t.Errorf("Location = %q", loc)
	}
	if followed.Load() {
		t.Error("redirect was followed")
	}
}

func TestClientUsesResolver(t *testing.T) {
	_, port := newLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Host)
	}))
	res := &fakeResolver{answers: map[string][]string{"sink.test": {"127.0.0.1"}}}
	rec := &dialRecorder{}
	g := &Guard{AllowPrivate: true, Resolver: res, dial: rec.dial}

	resp, err := get(ctxT(t), g.Client(0), "http://sink.test:"+port+"/hook")
	if err != nil {
		t.Fatalf("request failed: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "sink.test:"+port {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if d := rec.dialled(); len(d) != 1 || d[0] != "127.0.0.1:"+port {
		t.Errorf("dialled %v, want [127.0.0.1:%s]", d, port)
	}

	// Same, through the real net.Dialer (no test hook).
	resp2, err := get(ctxT(t), (&Guard{AllowPrivate: true, Resolver: res}).Client(0), "http://sink.test:"+port+"/hook")
	if err != nil {
		t.Fatalf("real dialer: %v", err)
	}
	resp2.Body.Close()

	// And an unknown name fails with a non-blocked error.
	_, err = get(ctxT(t), g.Client(0), "http://nowhere.test:"+port+"/")
	if err == nil || IsBlocked(err) {
		t.Errorf("unknown host: err = %v, want non-blocked error", err)
	}
}

func TestClientTriesAddressesInOrder(t *testing.T) {
	// The first candidate fails to connect (simulated by the dial hook);
	// the second one must then be tried and used.
	_, port := newLoopbackServer(t, okHandler())
	res := &fakeResolver{answers: map[string][]string{"two.test": {"127.0.0.9", "127.0.0.1"}}}
	var mu sync.Mutex
	var order []string
	g := &Guard{AllowPrivate: true, Resolver: res, dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		order = append(order, addr)
		mu.Unlock()
		if strings.HasPrefix(addr, "127.0.0.9:") {
			return nil, errors.New("simulated connect failure")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	resp, err := get(ctxT(t), g.Client(0), "http://two.test:"+port+"/")
	if err != nil {
		t.Fatalf("request failed: %v", err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 2 || order[0] != "127.0.0.9:"+port || order[1] != "127.0.0.1:"+port {
		t.Errorf("dial order = %v", order)
	}
}

func TestControlRechecksSockaddr(t *testing.T) {
	g := &Guard{}
	for _, a := range []string{"10.0.0.1:80", "127.0.0.1:443", "[::1]:80", "[::ffff:127.0.0.1]:80", "[fe80::1%eth0]:80", "garbage"} {
		if err := g.control("tcp", a, nil); !IsBlocked(err) {
			t.Errorf("control(%q) = %v, want blocked", a, err)
		}
	}
	for _, a := range []string{"93.184.216.34:443", "[2606:4700::1111]:443"} {
		if err := g.control("tcp", a, nil); err != nil {
			t.Errorf("control(%q) = %v, want nil", a, err)
		}
	}

	// Through a real net.Dialer: the Control hook fires before connect.
	d := &net.Dialer{Timeout: time.Second, Control: g.control}
	_, err := d.DialContext(ctxT(t), "tcp", "127.0.0.1:1")
	if !IsBlocked(err) {
		t.Errorf("dial via Control = %v, want blocked", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Errorf("dial via Control = %T, want *net.OpError", err)
	}
}

func TestClientTransportSettings(t *testing.T) {
	c := (&Guard{}).Client(8)
	if c.Timeout != 0 {
		t.Errorf("Timeout = %v, want 0", c.Timeout)
	}
	if c.CheckRedirect == nil || c.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Error("CheckRedirect does not return http.ErrUseLastResponse")
	}
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Transport = %T", c.Transport)
	}
	if tr.Proxy != nil {
		t.Error("Proxy is set; proxy env vars must be ignored")
	}
	if tr.DialContext == nil {
		t.Error("DialContext not set")
	}
	if tr.MaxConnsPerHost != 8 || tr.MaxIdleConnsPerHost != 64 || tr.IdleConnTimeout != 90*time.Second {
		t.Errorf("MaxConnsPerHost=%d MaxIdleConnsPerHost=%d IdleConnTimeout=%v",
			tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost, tr.IdleConnTimeout)
	}
	if tr.DisableKeepAlives {
		t.Error("keep-alives disabled")
	}
	if tr.TLSClientConfig != nil && tr.TLSClientConfig.InsecureSkipVerify {
		t.Error("TLS verification disabled")
	}
	if got := (&Guard{}).Client(0).Transport.(*http.Transport).MaxConnsPerHost; got != 0 {
		t.Errorf("Client(0).MaxConnsPerHost = %d, want 0 (unlimited)", got)
	}
}

func TestClientIgnoresProxyEnv(t *testing.T) {
	// A "proxy" on loopback that would answer if used.
	var proxied atomic.Bool
	proxy, _ := newLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Store(true)
	}))
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")

	res := &fakeResolver{answers: map[string][]string{"rebind.test": {"10.0.0.1"}}}
	_, err := get(ctxT(t), (&Guard{Resolver: res}).Client(0), "http://rebind.test/")
	if !IsBlocked(err) {
		t.Errorf("err = %v, want IsBlocked (request must not go via proxy)", err)
	}
	if proxied.Load() {
		t.Error("request went through HTTP_PROXY")
	}
}
