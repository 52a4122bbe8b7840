package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"carrier/internal/app/apptest"
	"carrier/internal/config"
	"carrier/internal/store/storetest"
)

// compatibleChat is a loopback stand-in for a Slack-compatible server such
// as Mattermost (incoming webhooks at /hooks/{key}, a JSON body with "text",
// answered 200 "ok") that also takes Discord messages at /discord/{key}
// (JSON with "embeds", answered 204), as Discord-compatible servers do at
// URLs of their own.
type compatibleChat struct {
	*httptest.Server
	mu    sync.Mutex
	slack []map[string]any
	disc  []map[string]any
}

func newCompatibleChat(t *testing.T) *compatibleChat {
	s := &compatibleChat{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var msg map[string]any
		if r.Method != http.MethodPost || json.Unmarshal(body, &msg) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case r.URL.Path == "/hooks/mm7x3kq9" && msg["text"] != nil:
			s.slack = append(s.slack, msg)
			io.WriteString(w, "ok")
		case r.URL.Path == "/discord/d1sc0rdk3y" && msg["embeds"] != nil:
			s.disc = append(s.disc, msg)
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "no such webhook", http.StatusNotFound)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *compatibleChat) received() (slack, discord []map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.slack...), append([]map[string]any(nil), s.disc...)
}

func chatSubscription(kind, hookURL string) map[string]any {
	return map[string]any{"name": kind + " compatible", "event_types": []string{"order.paid"},
		"destination": map[string]any{"type": kind, "webhook_url": hookURL}}
}

// TestChatCompatibleHosts: Slack and Discord destinations on a server that
// speaks their protocol at its own URLs (Mattermost, Rocket.Chat) are refused
// unless the server's host is in CARRIER_CHAT_COMPATIBLE_HOSTS, and the
// refusal names that setting; once listed they are accepted and delivered
// to, with the URL's path hidden when shown.
func TestChatCompatibleHosts(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			chat := newCompatibleChat(t)
			host := strings.TrimPrefix(chat.URL, "http://") // 127.0.0.1:port
			slackURL, discordURL := chat.URL+"/hooks/mm7x3kq9", chat.URL+"/discord/d1sc0rdk3y"

			// Without the setting (private networks allowed, as the stand-in
			// is on loopback) both are refused, naming the setting.
			plain := apptest.Start(t, e, apptest.Options{})
			for kind, u := range map[string]string{"slack": slackURL, "discord": discordURL} {
				r := plain.Admin("POST", "/v1/subscriptions", chatSubscription(kind, u))
				apiExpectError(t, kind+" without the setting", r, http.StatusBadRequest, "validation_error", "destination.webhook_url")
				if !strings.Contains(string(r.Body), "CARRIER_CHAT_COMPATIBLE_HOSTS") {
					t.Errorf("%s without the setting: %s, want the error to name CARRIER_CHAT_COMPATIBLE_HOSTS", kind, r.Body)
				}
			}
			plain.Stop()

			// The same data on a Carrier that lists the host (an entry of
			// another host and of another port do not count).
			c := apptest.Start(t, e, apptest.Options{Configure: func(cfg *config.Config) {
				cfg.ChatCompatibleHosts = []string{"chat.example.com", "127.0.0.1:1", host}
			}})
			ids := map[string]string{}
			for kind, u := range map[string]string{"slack": slackURL, "discord": discordURL} {
				r := c.Admin("POST", "/v1/subscriptions", chatSubscription(kind, u))
				if r.Status != http.StatusCreated {
					t.Fatalf("%s with the setting: %d %s", kind, r.Status, r.Body)
				}
				ids[kind] = r.Data()["subscription_id"].(string)
				shown := c.Admin("GET", "/v1/subscriptions/"+ids[kind], nil)
				dest, _ := shown.Data()["destination"].(map[string]any)
				if dest["webhook_url"] != chat.URL+"/***" || strings.Contains(string(shown.Body), "mm7x3kq9") || strings.Contains(string(shown.Body), "d1sc0rdk3y") {
					t.Errorf("%s subscription shows %s, want webhook_url %s/*** and no key", kind, shown.Body, chat.URL)
				}
			}
			apiPublish(t, c, apptest.AdminKey, map[string]any{"type": "order.paid", "subject": "order-9", "data": map[string]any{"total": 12}}, 2)
			for kind, id := range ids {
				apptest.Eventually(t, 15*time.Second, kind+" delivered", func() bool {
					l := c.Admin("GET", "/v1/subscriptions/"+id+"/deliveries", nil).List()
					return len(l) == 1 && l[0]["status"] == "delivered"
				})
			}
			slackMsgs, discordMsgs := chat.received()
			if len(slackMsgs) != 1 || !strings.Contains(slackMsgs[0]["text"].(string), "order.paid") {
				t.Errorf("Slack-compatible server received %v, want one message about order.paid", slackMsgs)
			}
			if len(discordMsgs) != 1 {
				t.Errorf("Discord-compatible server received %v, want one message", discordMsgs)
			}
		})
	}
}

// TestChatCompatibleHostsKeepSSRFRules: a host in CARRIER_CHAT_COMPATIBLE_HOSTS
// is still refused when it resolves to a private address (without
// CARRIER_ALLOW_PRIVATE_NETWORKS), when saved and, if it resolved to a public
// address then, when dialled.
func TestChatCompatibleHostsKeepSSRFRules(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			chat := newCompatibleChat(t)
			u, err := url.Parse(chat.URL)
			if err != nil {
				t.Fatal(err)
			}
			res := &apiRebindResolver{}
			c := apptest.Start(t, e, apptest.Options{BlockPrivate: true, Resolver: res, Configure: func(cfg *config.Config) {
				cfg.ChatCompatibleHosts = []string{"rebind.example", "127.0.0.1"}
			}})
			// https, as a host that is not loopback must be; the dial is
			// refused before any TLS would start.
			hook := "https://rebind.example:" + u.Port() + "/hooks/mm7x3kq9"

			// Saved while the name resolves to loopback: url_not_allowed, as
			// is the loopback address itself.
			for _, target := range []string{hook, chat.URL + "/hooks/mm7x3kq9"} {
				r := c.Admin("POST", "/v1/subscriptions", chatSubscription("slack", target))
				apiExpectError(t, "save "+target, r, http.StatusBadRequest, "url_not_allowed", "destination.webhook_url")
			}

			// Saved while it resolves to a public address, dialled while it
			// resolves to loopback: blocked at dial time, nothing reaches the
			// stand-in.
			res.public.Store(true)
			r := c.Admin("POST", "/v1/subscriptions", chatSubscription("slack", hook))
			res.public.Store(false)
			if r.Status != http.StatusCreated {
				t.Fatalf("save while public: %d %s", r.Status, r.Body)
			}
			id := r.Data()["subscription_id"].(string)
			apiPublish(t, c, apptest.AdminKey, map[string]any{"type": "order.paid"}, 1)
			var d map[string]any
			apptest.Eventually(t, 15*time.Second, "the delivery to fail", func() bool {
				l := c.Admin("GET", "/v1/subscriptions/"+id+"/deliveries", nil).List()
				if len(l) == 1 && l[0]["status"] == "failed" {
					d = l[0]
					return true
				}
				return false
			})
			if d["error_code"] != "ssrf_blocked" {
				t.Errorf("delivery failed with %v, want ssrf_blocked", d["error_code"])
			}
			if s, disc := chat.received(); len(s)+len(disc) != 0 {
				t.Errorf("the stand-in was reached: %v %v", s, disc)
			}
		})
	}
}
