// Package email sends deliveries as email through an SMTP server, with
// github.com/wneessen/go-mail composing the message and speaking SMTP
// (STARTTLS, implicit TLS, AUTH).
//
// Each delivery is one plain-text message to the destination's recipients.
// Its Message-ID is derived from the delivery id, so a retried or replayed
// delivery carries the same Message-ID and mail clients can tell the copies
// apart; X-Carrier-Event-Id and X-Carrier-Delivery-Id name the event and the
// delivery.
//
// Results: the server accepting the message is Delivered. A 4xx reply, a
// connection that fails, drops or times out is Retryable. A 5xx reply (for
// example 550 mailbox unavailable, or 535 bad credentials) fails the attempt
// for good, with the reply as ResponseBody and its code as StatusCode and in
// ErrorCode ("smtp_550"). Recipients are all or nothing: when the server
// refuses any of them nothing is sent; a 5xx refusal of one fails the
// attempt, 4xx refusals alone make it retryable.
//
// SSRF: the SMTP host is resolved and checked on every connection, as the
// webhook client does; loopback, private and other internal addresses are
// refused unless Sender.AllowPrivate is set.
package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	mail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"carrier/internal/dest"
	"carrier/internal/dispatch"
	"carrier/internal/netguard"
	"carrier/internal/store"
)

// DefaultTimeout bounds one attempt: connecting, TLS, authentication and the
// whole SMTP conversation.
const DefaultTimeout = 30 * time.Second

// TimeFormat is the format of times in messages and subject templates.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// ResponseLimit is how much of a server reply an attempt records.
const ResponseLimit = dest.ResponseLimit

// maxSubject is the longest rendered subject, in runes.
const maxSubject = 250

// Sender delivers deliveries by SMTP. The zero value is ready to use.
type Sender struct {
	// AllowPrivate lets SMTP hosts resolve to loopback, private and other
	// internal addresses (development and tests only).
	AllowPrivate bool
	// Timeout bounds one attempt; zero means DefaultTimeout.
	Timeout time.Duration
	// TLSConfig, when set, is the base TLS configuration (for example the
	// RootCAs of a private mail server); ServerName is set per host.
	TLSConfig *tls.Config
	// Renders is each project's share of template rendering time (nil: no limit).
	Renders *dest.RenderShare
}

// Send makes one attempt to deliver a job as an email.
func (s *Sender) Send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	start := time.Now()
	res := s.send(ctx, job, at)
	res.Duration = time.Since(start)
	res.ErrorMessage = dest.Recordable(res.ErrorMessage)
	res.ResponseBody = dest.Recordable(res.ResponseBody)
	return res
}

func (s *Sender) send(ctx context.Context, job store.Job, at time.Time) dispatch.Result {
	cfg, err := ParseConfig(job.Subscription.Destination)
	if err != nil {
		return dispatch.Result{ErrorCode: "invalid_settings", ErrorMessage: "email destination: " + err.Error()}
	}
	render, putOff := s.Renders.Acquire(ctx, job.Delivery.ProjectID)
	if putOff != nil {
		return *putOff
	}
	start := time.Now()
	msg, err := Message(cfg, job, at)
	render(time.Since(start))
	if err != nil {
		return dispatch.Result{ErrorCode: "message_error", ErrorMessage: err.Error()}
	}
	return s.deliver(ctx, cfg, msg)
}

// Deliver makes one attempt to send msg through the SMTP server of cfg (its
// host, port, security and login; the recipients are msg's), classified
// as Send classifies: for the destination kinds that compose their own
// messages (SNS email subscriptions).
func (s *Sender) Deliver(ctx context.Context, cfg Config, msg *mail.Msg) dispatch.Result {
	start := time.Now()
	res := s.deliver(ctx, cfg, msg)
	res.Duration = time.Since(start)
	res.ErrorMessage = dest.Recordable(res.ErrorMessage)
	res.ResponseBody = dest.Recordable(res.ResponseBody)
	return res
}

func (s *Sender) deliver(ctx context.Context, cfg Config, msg *mail.Msg) dispatch.Result {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel() // also closes the connection (see dialer)

	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.TLSConfig != nil {
		tlsCfg = s.TLSConfig.Clone()
		if tlsCfg.MinVersion == 0 {
			tlsCfg.MinVersion = tls.VersionTLS12
		}
	}
	tlsCfg.ServerName = cfg.Host
	policy := mail.TLSMandatory
	switch cfg.Security {
	case SecurityNone:
		policy = mail.NoTLS
	case SecurityTLS:
		// The dialer has done TLS already; go-mail then sees a *tls.Conn and
		// treats the session as encrypted (it only needs STARTTLS if offered).
		policy = mail.TLSOpportunistic
	}
	opts := []mail.Option{
		mail.WithPort(cfg.Port),
		mail.WithTimeout(timeout),
		mail.WithTLSPolicy(policy),
		mail.WithTLSConfig(tlsCfg),
		mail.WithDialContextFunc(s.dialer(ctx, cfg, tlsCfg)),
	}
	if cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	client, err := mail.NewClient(cfg.Host, opts...)
	if err != nil {
		return dispatch.Result{ErrorCode: "invalid_settings", ErrorMessage: "email destination: " + err.Error()}
	}
	conn, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return classify(ctx, "connect to "+net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), err)
	}
	defer conn.Close()

	from, err := msg.GetSender(false)
	if err != nil {
		return dispatch.Result{ErrorCode: "message_error", ErrorMessage: err.Error()}
	}
	rcpts, err := msg.GetRecipients()
	if err != nil {
		return dispatch.Result{ErrorCode: "message_error", ErrorMessage: err.Error()}
	}
	if err := conn.Mail(from); err != nil {
		return classify(ctx, "MAIL FROM", err)
	}
	if res, ok := sendRcpts(ctx, conn, rcpts); !ok {
		conn.Reset()
		return res
	}
	w, err := conn.Data()
	if err != nil {
		return classify(ctx, "DATA", err)
	}
	if _, err := msg.WriteTo(w); err != nil {
		return classify(ctx, "sending the message", err)
	}
	if err := w.Close(); err != nil {
		return classify(ctx, "end of DATA", err)
	}
	reply := "250"
	if dc, ok := w.(*smtp.DataCloser); ok && dc.ServerResponse() != "" {
		reply += " " + dc.ServerResponse()
	}
	conn.Quit() // the message is accepted; a failed QUIT changes nothing
	return dispatch.Result{Delivered: true, StatusCode: 250, ResponseBody: reply}
}

// sendRcpts sends RCPT TO for every recipient and reports whether all were
// accepted; if not, the result says why (a 5xx refusal wins over 4xx ones).
func sendRcpts(ctx context.Context, conn *smtp.Client, rcpts []string) (dispatch.Result, bool) {
	var temp, perm *dispatch.Result
	for _, r := range rcpts {
		err := conn.Rcpt(r)
		if err == nil {
			continue
		}
		res := classify(ctx, "RCPT TO:<"+r+">", err)
		var te *textproto.Error
		if !errors.As(err, &te) {
			return res, false // the connection is gone: no point asking about the others
		}
		switch {
		case !res.Retryable && perm == nil:
			perm = &res
		case res.Retryable && temp == nil:
			temp = &res
		}
	}
	switch {
	case perm != nil:
		return *perm, false
	case temp != nil:
		return *temp, false
	}
	return dispatch.Result{}, true
}

// dialer returns go-mail's dial function: it resolves the host, refuses
// forbidden addresses (and re-checks the address at connect time), bounds
// the connection by ctx's deadline, closes it when ctx ends, and does the
// TLS handshake itself for security "tls". It dials the host and port of
// cfg (go-mail's address lacks the brackets an IPv6 literal needs).
func (s *Sender) dialer(ctx context.Context, cfg Config, tlsCfg *tls.Config) mail.DialContextFunc {
	guard := &netguard.Guard{AllowPrivate: s.AllowPrivate}
	host, port, security := cfg.Host, strconv.Itoa(cfg.Port), cfg.Security
	return func(dialCtx context.Context, _, _ string) (net.Conn, error) {
		ips, err := resolve(dialCtx, host)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			if err := guard.CheckAddr(ip); err != nil {
				return nil, fmt.Errorf("SMTP host %q: %w", host, err)
			}
		}
		d := &net.Dialer{}
		if !s.AllowPrivate {
			d.Control = func(_, address string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(address)
				if err != nil {
					return fmt.Errorf("%w: cannot parse dialled address %q", netguard.ErrBlocked, address)
				}
				return guard.CheckAddr(ap.Addr())
			}
		}
		var conn net.Conn
		for _, ip := range ips {
			conn, err = d.DialContext(dialCtx, "tcp", net.JoinHostPort(ip.Unmap().String(), port))
			if err == nil || dialCtx.Err() != nil {
				break
			}
		}
		if err != nil {
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok {
			conn.SetDeadline(dl)
		}
		context.AfterFunc(ctx, func() { conn.Close() })
		capped := &cappedConn{Conn: conn, left: MaxServerBytes}
		if security != SecurityTLS {
			return capped, nil
		}
		tc := tls.Client(capped, tlsCfg)
		if err := tc.HandshakeContext(dialCtx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
}

func resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return ips, nil
}

// classify turns what went wrong at one step of the conversation into a
// result.
func classify(ctx context.Context, step string, err error) dispatch.Result {
	var te *textproto.Error
	if errors.As(err, &te) {
		reply := strconv.Itoa(te.Code) + " " + strings.ReplaceAll(te.Msg, "\n", " ")
		res := dispatch.Result{
			StatusCode: te.Code, ErrorCode: "smtp_" + strconv.Itoa(te.Code), ResponseBody: reply,
			ErrorMessage: step + ": server answered " + reply,
		}
		switch {
		case te.Code >= 500 && te.Code < 600:
			// permanent: retrying the same message cannot succeed
		case te.Code >= 400 && te.Code < 500:
			res.Retryable = true
		default:
			res.Retryable = true
			res.ErrorCode = "smtp_protocol_error"
		}
		return res
	}
	msg := step + ": " + err.Error()
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var authorityErr x509.UnknownAuthorityError
	switch {
	case netguard.IsBlocked(err):
		return dispatch.Result{ErrorCode: "ssrf_blocked", ErrorMessage: msg}
	case errors.Is(err, errServerTooChatty):
		return dispatch.Result{Retryable: true, ErrorCode: "response_too_large", ErrorMessage: msg}
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return dispatch.Result{Retryable: true, ErrorCode: "timeout", ErrorMessage: step + ": no answer within the timeout"}
	case errors.Is(ctx.Err(), context.Canceled):
		return dispatch.Result{Retryable: true, ErrorCode: "cancelled", ErrorMessage: step + ": attempt cancelled"}
	case errors.As(err, &dnsErr):
		return dispatch.Result{Retryable: true, ErrorCode: "dns_error", ErrorMessage: msg}
	case errors.Is(err, syscall.ECONNREFUSED):
		return dispatch.Result{Retryable: true, ErrorCode: "connection_refused", ErrorMessage: msg}
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed):
		return dispatch.Result{Retryable: true, ErrorCode: "connection_reset", ErrorMessage: msg}
	case errors.As(err, &certErr) || errors.As(err, &hostErr) || errors.As(err, &authorityErr):
		return dispatch.Result{Retryable: true, ErrorCode: "tls_error", ErrorMessage: msg}
	case strings.Contains(err.Error(), "does not support STARTTLS"):
		// Configuration, not luck: the server does not offer what the
		// settings require. Retrying cannot help.
		return dispatch.Result{ErrorCode: "starttls_unavailable", ErrorMessage: msg + ` (set "security" to "tls" or, on a trusted network, "none")`}
	case isAuthUnavailable(err):
		return dispatch.Result{ErrorCode: "auth_unavailable", ErrorMessage: msg}
	default:
		return dispatch.Result{Retryable: true, ErrorCode: "smtp_error", ErrorMessage: msg}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isAuthUnavailable reports errors that say the server offers no
// authentication mechanism go-mail may use on this connection.
func isAuthUnavailable(err error) bool {
	for _, e := range []error{
		mail.ErrNoSupportedAuthDiscovered, mail.ErrPlainAuthNotSupported, mail.ErrLoginAuthNotSupported,
		mail.ErrCramMD5AuthNotSupported, mail.ErrSCRAMSHA1AuthNotSupported, mail.ErrSCRAMSHA256AuthNotSupported,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return strings.Contains(err.Error(), "does not support SMTP AUTH")
}

// Message composes the email for a job: headers (From, To, Subject, Date,
// Message-ID, X-Carrier-*) and a plain-text body.
func Message(cfg Config, job store.Job, at time.Time) (*mail.Msg, error) {
	if cfg.subject == nil {
		t, err := parseSubject(cfg.Subject)
		if err != nil {
			return nil, fmt.Errorf("subject %v", err)
		}
		cfg.subject = t
	}
	ev := job.Event
	var subject string
	var subjectErr error
	if n, ok := dest.NoticeOf(ev.Data); ok && !customSubject(cfg.Subject) {
		// An alert or report: its notice's title says more than the
		// default subject's event type.
		subject = subjectLine(n.Title)
	} else {
		subject, subjectErr = renderSubject(cfg.subject, job, at)
	}

	m := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := m.From(cfg.From); err != nil {
		return nil, err
	}
	if err := m.To(cfg.To...); err != nil {
		return nil, err
	}
	m.Subject(subject)
	m.SetMessageIDWithValue(MessageIDValue(job.Delivery.ID, cfg.From))
	m.SetDateWithValue(at)
	m.SetUserAgent("Carrier")
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetGenHeader("X-Carrier-Event-Id", headerValue(ev.ID))
	m.SetGenHeader("X-Carrier-Delivery-Id", headerValue(job.Delivery.ID))
	m.SetGenHeader("X-Carrier-Event-Type", headerValue(ev.Type))
	m.SetBodyString(mail.TypeTextPlain, Body(job, at, subjectErr))
	return m, nil
}

// MessageIDValue is the Message-ID of a delivery's email, without the angle
// brackets: the delivery id at the sender's domain. A retried delivery gets
// the same one.
func MessageIDValue(deliveryID, from string) string {
	left := strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("!#$%&'*+/=?^_`{|}~.-", r)) {
			return r
		}
		return '-'
	}, deliveryID)
	left = strings.Trim(left, ".")
	if left == "" {
		left = "delivery"
	}
	domain := "carrier.invalid"
	if a, err := parseAddress(from); err == nil {
		d := a.Address[strings.LastIndexByte(a.Address, '@')+1:]
		if checkHost(d) == nil {
			domain = d
		}
	}
	return left + "@" + domain
}

func headerValue(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
}

// templateData is what a subject template sees.
func templateData(job store.Job, at time.Time) map[string]any {
	ev := job.Event
	var data any
	if len(bytes.TrimSpace(ev.Data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(ev.Data))
		dec.UseNumber()
		if dec.Decode(&data) != nil {
			data = string(ev.Data)
		}
	}
	attrs := ev.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	return map[string]any{
		"type": ev.Type, "subject": ev.Subject, "id": ev.ID, "time": eventTime(ev, at),
		"data": data, "attributes": attrs,
	}
}

func eventTime(ev store.Event, at time.Time) string {
	t := ev.CreatedAt
	if t.IsZero() {
		t = at
	}
	return t.UTC().Format(TimeFormat)
}

// renderSubject renders the subject template. When it fails on this event
// (a field of the wrong type, say), the default subject is used instead so
// the alert still goes out, and the error is returned for the body to note.
func renderSubject(t *dest.Template, job store.Job, at time.Time) (string, error) {
	data := templateData(job, at)
	out, err := t.Execute(nil, data)
	if err != nil {
		def, _ := parseSubject(DefaultSubject)
		out, _ = def.Execute(nil, data)
	}
	return subjectLine(out), err
}

// customSubject reports whether the settings name a subject of their own:
// ParseConfig fills in DefaultSubject when they name none.
func customSubject(subject string) bool {
	return strings.TrimSpace(subject) != "" && subject != DefaultSubject
}

// subjectLine puts a rendered subject on one line of at most maxSubject
// runes of valid UTF-8.
func subjectLine(out string) string {
	if len(out) > 4<<10 {
		out = out[:4<<10] // cut to the runes below, made valid UTF-8 there
	}
	s := strings.ToValidUTF8(strings.Join(strings.Fields(out), " "), "")
	if utf8.RuneCountInString(s) > maxSubject {
		s = string([]rune(s)[:maxSubject-1]) + "…"
	}
	return s
}

// Body is the plain-text body of a job's email: the event's notice when it
// has one (see noticeText), then its type, subject, time, ids, attributes
// and pretty-printed data.
func Body(job store.Job, at time.Time, subjectErr error) string {
	ev := job.Event
	var b strings.Builder
	if n, ok := dest.NoticeOf(ev.Data); ok {
		b.WriteString(noticeText(n))
	}
	title := ev.Type
	if ev.Subject != "" {
		title += " — " + ev.Subject
	}
	b.WriteString(title + "\n\n")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-14s %s\n", k+":", v)
		}
	}
	row("Event type", ev.Type)
	row("Subject", ev.Subject)
	row("Time", eventTime(ev, at))
	row("Event ID", ev.ID)
	row("Delivery ID", job.Delivery.ID)
	row("Project", job.Subscription.ProjectID)
	sub := job.Subscription.ID
	if job.Subscription.Name != "" {
		sub = job.Subscription.Name + " (" + job.Subscription.ID + ")"
	}
	row("Subscription", sub)

	b.WriteString("\nAttributes:\n")
	if len(ev.Attributes) == 0 {
		b.WriteString("  (none)\n")
	}
	keys := make([]string, 0, len(ev.Attributes))
	for k := range ev.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %s\n", k, ev.Attributes[k])
	}

	b.WriteString("\nData:\n")
	var pretty bytes.Buffer
	switch {
	case len(bytes.TrimSpace(ev.Data)) == 0:
		b.WriteString("(none)\n")
	case json.Indent(&pretty, ev.Data, "", "  ") == nil:
		b.Write(pretty.Bytes())
		b.WriteString("\n")
	default:
		b.Write(ev.Data)
		b.WriteString("\n")
	}
	if subjectErr != nil {
		fmt.Fprintf(&b, "\nNote: the subject template failed on this event (%v); the default subject was used.\n", subjectErr)
	}
	fmt.Fprintf(&b, "\n-- \nSent by Carrier for delivery %s.\n", job.Delivery.ID)
	return b.String()
}

// noticeText is a notice as plain text: the title, the description without
// its bold markers, and one "Name: Value" line per field (the further lines
// of a value indented below it), each part followed by a blank line.
func noticeText(n dest.Notice) string {
	var b strings.Builder
	b.WriteString(dest.OneLine(n.Title) + "\n\n")
	if d := strings.TrimSpace(dest.StripBold(n.Description)); d != "" {
		b.WriteString(d + "\n\n")
	}
	wrote := false
	for _, f := range n.Fields {
		v := strings.TrimSpace(dest.StripBold(f.Value))
		if v == "" {
			continue
		}
		name := dest.OneLine(f.Name)
		if name == "" {
			name = "—"
		}
		b.WriteString(name + ": " + strings.ReplaceAll(v, "\n", "\n  ") + "\n")
		wrote = true
	}
	if wrote {
		b.WriteString("\n")
	}
	return b.String()
}

// MaxServerBytes is the most an SMTP server may send in one attempt, TLS
// handshake included. A session for one message reads a few kilobytes; the
// cap keeps a hostile server from making the SMTP client buffer an endless
// reply line (the client reads lines without a limit of its own).
const MaxServerBytes = 256 << 10

// errServerTooChatty ends a session whose server sent more than MaxServerBytes.
var errServerTooChatty = errors.New("the SMTP server sent more than 256 KiB in one session")

// cappedConn is a connection that fails reads past its byte allowance.
type cappedConn struct {
	net.Conn
	left int
}

func (c *cappedConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errServerTooChatty
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= n
	return n, err
}
