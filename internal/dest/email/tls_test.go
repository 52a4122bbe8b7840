package email

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// tlsSMTP is a minimal SMTP server in Go for the TLS paths, which the Python
// smtpd server cannot speak: implicit TLS or STARTTLS, then AUTH PLAIN.
type tlsSMTP struct {
	ln       net.Listener
	cfg      *tls.Config
	roots    *x509.CertPool
	implicit bool

	mu       sync.Mutex
	auth     []string // "user:pass" of each AUTH PLAIN
	messages []string
	plainAt  []string // commands received before TLS was on
}

func startTLSSMTP(t *testing.T, implicit bool) *tlsSMTP {
	t.Helper()
	// Borrow httptest's certificate for 127.0.0.1 and its root.
	hs := httptest.NewUnstartedServer(nil)
	hs.StartTLS()
	cert := hs.TLS.Certificates[0]
	roots := x509.NewCertPool()
	roots.AddCert(hs.Certificate())
	hs.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsSMTP{ln: ln, cfg: &tls.Config{Certificates: []tls.Certificate{cert}}, roots: roots, implicit: implicit}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *tlsSMTP) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *tlsSMTP) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	secure := s.implicit
	if secure {
		c = tls.Server(c, s.cfg)
	}
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	say := func(l string) { w.WriteString(l + "\r\n"); w.Flush() }
	say("220 test ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		if !secure {
			s.mu.Lock()
			s.plainAt = append(s.plainAt, cmd)
			s.mu.Unlock()
		}
		switch {
		case cmd == "EHLO":
			w.WriteString("250-test\r\n")
			if !secure {
				w.WriteString("250-STARTTLS\r\n")
			} else {
				w.WriteString("250-AUTH PLAIN\r\n")
			}
			say("250 8BITMIME")
		case cmd == "STARTTLS" && !secure:
			say("220 go ahead")
			tc := tls.Server(c, s.cfg)
			if tc.Handshake() != nil {
				return
			}
			c, secure = tc, true
			r, w = bufio.NewReader(c), bufio.NewWriter(c)
		case cmd == "AUTH" && secure:
			parts := strings.Fields(line)
			b, _ := base64.StdEncoding.DecodeString(parts[len(parts)-1])
			f := strings.Split(string(b), "\x00")
			s.mu.Lock()
			s.auth = append(s.auth, f[1]+":"+f[2])
			s.mu.Unlock()
			if f[2] != "right" {
				say("535 5.7.8 authentication credentials invalid")
				continue
			}
			say("235 2.7.0 authenticated")
		case cmd == "MAIL" || cmd == "RCPT" || cmd == "RSET" || cmd == "NOOP":
			say("250 ok")
		case cmd == "DATA":
			say("354 go on")
			var msg strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				msg.WriteString(l)
			}
			s.mu.Lock()
			s.messages = append(s.messages, msg.String())
			s.mu.Unlock()
			say("250 2.0.0 queued as 42")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("502 not implemented")
		}
	}
}

func TestTLSModesAuthenticateEncrypted(t *testing.T) {
	for _, security := range []string{"tls", "starttls"} {
		t.Run(security, func(t *testing.T) {
			srv := startTLSSMTP(t, security == "tls")
			sender := &Sender{AllowPrivate: true, TLSConfig: &tls.Config{RootCAs: srv.roots}}
			st := map[string]any{"host": "127.0.0.1", "port": srv.port(), "security": security,
				"username": "carrier", "password": "right", "from": "a@example.com", "to": []string{"b@example.com"}}
			res := sender.Send(context.Background(), testJob(settings(t, st)), time.Now())
			if !res.Delivered || res.ResponseBody != "250 2.0.0 queued as 42" {
				t.Fatalf("%+v", res)
			}
			srv.mu.Lock()
			if len(srv.messages) != 1 || !strings.Contains(srv.messages[0], "X-Carrier-Event-Id: evt-42") {
				t.Fatalf("messages %q", srv.messages)
			}
			if strings.Join(srv.auth, ",") != "carrier:right" {
				t.Fatalf("auth %q", srv.auth)
			}
			for _, c := range srv.plainAt {
				if c != "EHLO" && c != "STARTTLS" {
					t.Fatalf("%s sent before TLS (plain text: %q)", c, srv.plainAt)
				}
			}
			srv.mu.Unlock()

			// Wrong credentials: a permanent 535.
			st["password"] = "wrong"
			res = sender.Send(context.Background(), testJob(settings(t, st)), time.Now())
			if res.Delivered || res.Retryable || res.ErrorCode != "smtp_535" || !strings.HasPrefix(res.ResponseBody, "535 5.7.8") {
				t.Fatalf("%+v", res)
			}

			// A certificate Carrier does not trust: retryable TLS error, nothing sent.
			st["password"] = "right"
			res = (&Sender{AllowPrivate: true}).Send(context.Background(), testJob(settings(t, st)), time.Now())
			if res.Delivered || !res.Retryable || res.ErrorCode != "tls_error" {
				t.Fatalf("%+v", res)
			}
		})
	}
}
