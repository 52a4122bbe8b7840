// Package smtptest runs an SMTP stand-in on loopback for tests outside the
// email package: STARTTLS with httptest's certificate for 127.0.0.1, then
// AUTH PLAIN, recording every connection, credential and message, so a test
// can tell whether (and where) a password was sent.
package smtptest

import (
	"bufio"
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

// Server is a running stand-in.
type Server struct {
	ln  net.Listener
	cfg *tls.Config
	// Roots trusts the stand-in's certificate (for email.Sender.TLSConfig).
	Roots *x509.CertPool

	mu       sync.Mutex
	conns    int
	auth     []string // "user:pass" of each AUTH PLAIN
	messages []string
}

// Start listens on 127.0.0.1 until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
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
	s := &Server{ln: ln, cfg: &tls.Config{Certificates: []tls.Certificate{cert}}, Roots: roots}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			go s.serve(c)
		}
	}()
	return s
}

// Port is the port it listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Connections is how many connections it accepted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Auth returns the "user:pass" of every AUTH PLAIN received.
func (s *Server) Auth() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...)
}

// Messages returns the data of every message accepted.
func (s *Server) Messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.messages...)
}

func (s *Server) serve(c net.Conn) {
	defer func() { c.Close() }()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	secure := false
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	say := func(l string) { w.WriteString(l + "\r\n"); w.Flush() }
	say("220 smtptest ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch {
		case cmd == "EHLO":
			w.WriteString("250-smtptest\r\n")
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
			if f := strings.Split(string(b), "\x00"); len(f) == 3 {
				s.mu.Lock()
				s.auth = append(s.auth, f[1]+":"+f[2])
				s.mu.Unlock()
			}
			say("235 2.7.0 authenticated")
		case cmd == "MAIL" || cmd == "RCPT" || cmd == "RSET" || cmd == "NOOP":
			say("250 ok")
		case cmd == "DATA":
			say("354 go on")
			var msg strings.Builder
			for msg.Len() < 1<<20 {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				// Undo the client's dot-stuffing, as every SMTP server does (RFC 5321, 4.5.2).
				msg.WriteString(strings.TrimPrefix(l, "."))
			}
			s.mu.Lock()
			s.messages = append(s.messages, msg.String())
			s.mu.Unlock()
			say("250 2.0.0 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("502 not implemented")
		}
	}
}
