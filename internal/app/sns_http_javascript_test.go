package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/store/storetest"
)

// TestSNSHTTPEndpointWithPublishedValidator runs an SNS HTTP endpoint
// written with the published sns-validator package from npm
// (testdata/sns_http_js), configured only with the host its certificates
// may come from: it validates Carrier's SubscriptionConfirmation, confirms by
// GETting the SubscribeURL, and validates notifications signed with
// SignatureVersion 1 and 2; a forged message is refused. sns-validator
// fetches certificates over HTTPS only, so Carrier is reached through a TLS
// proxy on loopback whose certificate Node is told to trust
// (NODE_EXTRA_CA_CERTS), with CARRIER_PUBLIC_URL set to it.
func TestSNSHTTPEndpointWithPublishedValidator(t *testing.T) {
	if testing.Short() {
		t.Skip("installs sns-validator from the npm registry")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("node and npm are needed:", err)
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "subscriber.js"} {
		b, err := os.ReadFile(filepath.Join("testdata", "sns_http_js", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	install := exec.Command("npm", "install", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install: %v\n%s", err, out)
	}
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			var target atomic.Pointer[url.URL]
			proxy := httptest.NewTLSServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target.Load())
				r.Out.Host = r.In.Host
			}})
			defer proxy.Close()
			caFile := filepath.Join(t.TempDir(), "ca.pem")
			os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: proxy.Certificate().Raw}), 0o644)

			c := apptest.Start(t, e, apptest.Options{Configure: func(cfg *config.Config) { cfg.PublicURL = proxy.URL }})
			u, _ := url.Parse(c.URL)
			target.Store(u)
			id, secret := snsCredential(t, c)
			cl := &snsClient{t: t, url: c.URL, id: id, secret: secret}

			sub := exec.Command("node", "subscriber.js")
			sub.Dir = dir
			host := strings.TrimPrefix(proxy.URL, "https://")
			sub.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+caFile, "SNS_CERT_HOST_PATTERN=^"+regexp.QuoteMeta(host)+"$")
			stdout, _ := sub.StdoutPipe()
			var stderr bytes.Buffer
			sub.Stderr = &stderr
			if err := sub.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { sub.Process.Kill(); sub.Wait() }()
			lines := make(chan map[string]any, 16)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					var m map[string]any
					if json.Unmarshal(sc.Bytes(), &m) == nil {
						lines <- m
					}
				}
				close(lines)
			}()
			next := func(want string) map[string]any {
				t.Helper()
				select {
				case m, ok := <-lines:
					if !ok {
						t.Fatalf("the subscriber stopped; stderr:\n%s", stderr.Bytes())
					}
					if m["event"] != want {
						t.Fatalf("subscriber printed %v, want %s", m, want)
					}
					return m
				case <-time.After(20 * time.Second):
					t.Fatalf("no %s from the subscriber in 20 s; stderr:\n%s", want, stderr.Bytes())
				}
				return nil
			}
			port := next("listening")["port"].(float64)
			endpoint := fmt.Sprintf("http://127.0.0.1:%d/sns", int(port))

			topicArn := "arn:aws:sns:eu-west-1:default:results"
			cl.ok(nil, "CreateTopic", "Name", "results")
			cl.ok(nil, "Subscribe", "TopicArn", topicArn, "Protocol", "http", "Endpoint", endpoint)
			if m := next("confirmed"); m["status"] != float64(200) || m["header"] != "SubscriptionConfirmation" {
				t.Fatalf("confirmation: %v", m)
			}
			cl.ok(nil, "Publish", "TopicArn", topicArn, "Message", `{"task":"t1","solution":"03AG"}`, "Subject", "solved")
			if m := next("notification"); m["message"] != `{"task":"t1","solution":"03AG"}` || m["subject"] != "solved" || m["version"] != "1" {
				t.Fatalf("notification: %v", m)
			}
			cl.ok(nil, "SetTopicAttributes", "TopicArn", topicArn, "AttributeName", "SignatureVersion", "AttributeValue", "2")
			cl.ok(nil, "Publish", "TopicArn", topicArn, "Message", "second")
			if m := next("notification"); m["message"] != "second" || m["version"] != "2" {
				t.Fatalf("notification: %v", m)
			}
			// A forged notification: a real certificate URL, a signature over nothing.
			certURL := proxy.URL + c.App.SNSSigner.CertPath()
			forged, _ := json.Marshal(map[string]string{"Type": "Notification", "MessageId": "forged", "TopicArn": topicArn, "Message": "pay me",
				"Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), "SignatureVersion": "1", "Signature": "AAAA", "SigningCertURL": certURL})
			resp, err := http.Post(endpoint, "text/plain; charset=UTF-8", bytes.NewReader(forged))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if m := next("invalid"); resp.StatusCode != 403 || !strings.Contains(m["error"].(string), "signature is invalid") {
				t.Fatalf("forged message: %d %v", resp.StatusCode, m)
			}
		})
	}
}
