package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"carrier/internal/clock"
	"carrier/internal/dest"
	"carrier/internal/dest/email"
	"carrier/internal/dest/logfile"
	destqueue "carrier/internal/dest/queue"
	"carrier/internal/dest/webhook"
	"carrier/internal/ingest"
	"carrier/internal/match"
	"carrier/internal/netguard"
	"carrier/internal/queue"
	"carrier/internal/store"
	"carrier/internal/store/sqlite"
	"carrier/internal/store/sqlstore"
)

// publicURL is an address the SSRF guard lets through without a DNS lookup;
// nothing is ever sent to it.
const publicURL = "https://93.184.216.34/hook"

type fixture struct {
	st    *sqlstore.Store
	svc   *Service
	pub   *ingest.Publisher
	wakes int
}

// newFixture builds the service over a fresh SQLite store with projects p1
// and p2, a queue "jobs" in p1, the webhook, log, email and queue kinds, a
// strict SSRF guard, a real matcher and a real publisher.
func newFixture(t *testing.T, maxSubs int) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"p1", "p2"} {
		if err := st.CreateProject(ctx, store.Project{ID: id, Name: id, CreatedAt: clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	queues := queue.New(st)
	if _, err := queues.CreateQueue(ctx, "p1", queue.NewQueue{Name: "jobs"}); err != nil {
		t.Fatal(err)
	}
	m, err := match.NewMatcher(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	pub := ingest.NewPublisher(st, m, nil, 1)
	pub.Start()
	t.Cleanup(pub.Close)
	reg := dest.NewRegistry(webhook.Kind)
	reg.Register(&webhook.Sender{})
	reg.Register(&logfile.Sender{Dir: t.TempDir()})
	reg.Register(&email.Sender{})
	reg.Register(&destqueue.Sender{Queues: queues})
	f := &fixture{st: st, pub: pub}
	f.svc = New(Deps{Store: st, Destinations: reg, Guard: &netguard.Guard{}, Queues: queues, Publisher: pub,
		Refresh: m.Refresh, Wake: func() { f.wakes++ }, RotationOverlap: time.Hour, MaxSubscriptions: maxSubs})
	return f
}

func (f *fixture) count(t *testing.T, projectID string) int {
	t.Helper()
	subs, err := f.st.ListSubscriptions(context.Background(), projectID)
	if err != nil {
		t.Fatal(err)
	}
	return len(subs)
}

func ptr[T any](v T) *T { return &v }

// fieldOf returns the field a *dest.FieldError names, or "" for another error.
func fieldOf(err error) string {
	var ferr *dest.FieldError
	if errors.As(err, &ferr) {
		return ferr.Field
	}
	return ""
}

func webhookInput(url string) Input {
	return Input{API: Webhooks, Name: ptr("hook"), URL: ptr(url), EventTypes: &[]string{"scrape.completed"}}
}

func destinationInput(destination string) Input {
	return Input{API: Subscriptions, Name: ptr("sub"), EventTypes: &[]string{"scrape.*"}, Destination: json.RawMessage(destination)}
}

// TestCreateRefusesBadFieldsAndWritesNothing: every bad input is a
// *dest.FieldError naming the field as the caller's API names it, and
// nothing is stored.
func TestCreateRefusesBadFieldsAndWritesNothing(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	with := func(in Input, change func(*Input)) Input { change(&in); return in }
	tests := []struct {
		name    string
		in      Input
		field   string
		blocked bool
	}{
		{"no name", with(webhookInput(publicURL), func(in *Input) { in.Name = nil }), "name", false},
		{"no webhook_url", with(webhookInput(publicURL), func(in *Input) { in.URL = nil }), "webhook_url", false},
		{"secret sent", with(webhookInput(publicURL), func(in *Input) { in.SecretField = "webhook_secret" }), "webhook_secret", false},
		{"bad event type", with(webhookInput(publicURL), func(in *Input) { in.EventTypes = &[]string{"ok", "bad type"} }), "event_types[1]", false},
		{"retries", with(webhookInput(publicURL), func(in *Input) { in.MaxRetries = ptr(11.0) }), "max_retries", false},
		{"specific without ids", with(webhookInput(publicURL), func(in *Input) { in.Scope = ptr("specific") }), "specific_task_ids", false},
		{"reserved header", with(webhookInput(publicURL), func(in *Input) { in.Headers = &map[string]string{"webhook-id": "x"} }), "custom_headers.webhook-id", false},
		{"loopback webhook_url", webhookInput("http://127.0.0.1:9/hook"), "webhook_url", true},
		{"no destination", with(destinationInput(`{}`), func(in *Input) { in.Destination = nil }), "destination", false},
		{"unknown kind", destinationInput(`{"type": "pigeon"}`), "destination.type", false},
		{"webhook without url", destinationInput(`{"type": "webhook"}`), "destination.url", false},
		{"unknown webhook setting", destinationInput(`{"type": "webhook", "url": "` + publicURL + `", "secret": "x"}`), "destination.secret", false},
		{"loopback destination.url", destinationInput(`{"type": "webhook", "url": "http://127.0.0.1:9/hook"}`), "destination.url", true},
		{"reserved destination header", destinationInput(`{"type": "webhook", "url": "` + publicURL + `", "custom_headers": {"Host": "x"}}`), "destination.custom_headers.Host", false},
		{"log setting", destinationInput(`{"type": "log", "file": "../escape"}`), "destination.file", false},
		{"no such queue", destinationInput(`{"type": "queue", "queue": "nope"}`), "destination.queue", false},
		{"filter policy", with(destinationInput(`{"type": "log", "file": "a.jsonl"}`), func(in *Input) {
			in.FilterPolicy = json.RawMessage(`{"severity": 3}`)
		}), "filter_policy.severity", false},
		{"filter scope", with(destinationInput(`{"type": "log", "file": "a.jsonl"}`), func(in *Input) { in.FilterScope = ptr("headers") }), "filter_policy_scope", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Create(ctx, "p1", tt.in)
			if got := fieldOf(err); got != tt.field {
				t.Fatalf("Create: %v (field %q), want a field error on %q", err, got, tt.field)
			}
			if blocked := errors.Is(err, netguard.ErrBlocked); blocked != tt.blocked {
				t.Errorf("Create: %v: wraps netguard.ErrBlocked %v, want %v", err, blocked, tt.blocked)
			}
		})
	}
	if n := f.count(t, "p1"); n != 0 {
		t.Errorf("%d subscriptions stored after refused creates, want 0", n)
	}
	if f.wakes != 0 {
		t.Errorf("the engine was woken %d times for refused creates", f.wakes)
	}
	// A queue of another project is no queue of this one.
	if _, err := f.svc.Create(ctx, "p2", destinationInput(`{"type": "queue", "queue": "jobs"}`)); fieldOf(err) != "destination.queue" {
		t.Errorf("queue of another project: %v, want a field error on destination.queue", err)
	}
	sub, err := f.svc.Create(ctx, "p1", destinationInput(`{"type": "queue", "queue": "jobs"}`))
	if err != nil || sub.Kind != destqueue.Kind || sub.Secret != "" {
		t.Fatalf("queue subscription: %+v, %v", sub, err)
	}
}

func TestCreateWebhookThroughEitherAPI(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	a, err := f.svc.Create(ctx, "p1", webhookInput(publicURL))
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.svc.Create(ctx, "p1", destinationInput(`{"type": "webhook", "url": "`+publicURL+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []store.Subscription{a, b} {
		stored, err := f.st.GetSubscription(ctx, "p1", sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Kind != webhook.Kind || stored.URL != publicURL || sub.Secret == "" || stored.Secret != sub.Secret || !stored.Active {
			t.Errorf("stored %+v: want an active webhook to %s with the secret returned", stored, publicURL)
		}
	}
	if f.wakes != 2 {
		t.Errorf("engine woken %d times for two creates, want 2", f.wakes)
	}
	// Under the Webhooks API only webhooks exist.
	logSub, err := f.svc.Create(ctx, "p1", destinationInput(`{"type": "log", "file": "a.jsonl"}`))
	if err != nil {
		t.Fatal(err)
	}
	var nf *NotFoundError
	if _, err := f.svc.Get(ctx, "p1", logSub.ID, Webhooks); !errors.As(err, &nf) || nf.What != "webhook" || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("log subscription through the Webhooks API: %v, want webhook not found", err)
	}
	if _, err := f.svc.Get(ctx, "p2", a.ID, Subscriptions); !errors.As(err, &nf) || nf.What != "subscription" {
		t.Errorf("another project's subscription: %v, want subscription not found", err)
	}
	hooks, err := f.svc.List(ctx, "p1", Webhooks)
	if err != nil || len(hooks) != 2 {
		t.Errorf("List(Webhooks) = %d subscriptions, %v; want the 2 webhooks", len(hooks), err)
	}
}

// TestHiddenSecretKeptOnUpdate: a secret sent back as shown (dest.Hidden)
// keeps its stored value while the recipient stays the same, and is refused
// when the recipient changes; a refused update changes nothing.
func TestHiddenSecretKeptOnUpdate(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	in := webhookInput(publicURL)
	in.Headers = &map[string]string{"Authorization": "Bearer s3cret"}
	hook, err := f.svc.Create(ctx, "p1", in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Update(ctx, "p1", hook.ID, Input{API: Webhooks, Name: ptr("renamed"),
		Headers: &map[string]string{"authorization": dest.Hidden}}); err != nil {
		t.Fatal(err)
	}
	stored, _ := f.st.GetSubscription(ctx, "p1", hook.ID)
	if stored.Headers["authorization"] != "Bearer s3cret" || stored.Name != "renamed" {
		t.Errorf("after sending the header back hidden: headers %v, name %q; want the stored value kept", stored.Headers, stored.Name)
	}
	other := "https://93.184.216.35/hook"
	for _, bad := range []struct {
		in    Input
		field string
	}{
		{Input{API: Webhooks, URL: ptr(other), Headers: &map[string]string{"authorization": dest.Hidden}}, "custom_headers.authorization"},
		{Input{API: Webhooks, URL: ptr(other)}, "custom_headers"},
		{Input{API: Subscriptions, Destination: json.RawMessage(`{"type": "webhook", "url": "` + other + `"}`)}, "destination.custom_headers"},
		{Input{API: Webhooks, Headers: &map[string]string{"X-New": dest.Hidden}}, "custom_headers.X-New"},
	} {
		if _, err := f.svc.Update(ctx, "p1", hook.ID, bad.in); fieldOf(err) != bad.field {
			t.Errorf("update %+v: %v, want a field error on %s", bad.in, err, bad.field)
		}
	}
	if after, _ := f.st.GetSubscription(ctx, "p1", hook.ID); after.URL != publicURL || after.Headers["authorization"] != "Bearer s3cret" {
		t.Errorf("refused updates changed the webhook: %s %v", after.URL, after.Headers)
	}

	// A destination's secret setting: the email password.
	settings := `"host": "smtp.example.com", "port": 587, "from": "a@example.com", "to": ["b@example.com"], "username": "u"`
	mail, err := f.svc.Create(ctx, "p1", destinationInput(`{"type": "email", `+settings+`, "password": "pw"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Update(ctx, "p1", mail.ID, Input{API: Subscriptions,
		Destination: json.RawMessage(`{"type": "email", ` + settings + `, "password": "` + dest.Hidden + `"}`)}); err != nil {
		t.Fatal(err)
	}
	if got := dest.SettingString(mustGet(t, f, mail.ID).Destination, "password"); got != "pw" {
		t.Errorf("password after sending it back hidden: %q, want pw", got)
	}
	moved := `"host": "smtp.attacker.example", "port": 587, "from": "a@example.com", "to": ["b@example.com"], "username": "u"`
	if _, err := f.svc.Update(ctx, "p1", mail.ID, Input{API: Subscriptions,
		Destination: json.RawMessage(`{"type": "email", ` + moved + `, "password": "` + dest.Hidden + `"}`)}); fieldOf(err) != "destination.password" {
		t.Errorf("hidden password with a new host: %v, want a field error on destination.password", err)
	}
	if _, err := f.svc.Update(ctx, "p1", mail.ID, Input{API: Subscriptions, Destination: json.RawMessage(`{"type": "log", "file": "a.jsonl"}`)}); fieldOf(err) != "destination.type" {
		t.Errorf("changing the kind: %v, want a field error on destination.type", err)
	}
	if got := mustGet(t, f, mail.ID); dest.SettingString(got.Destination, "host") != "smtp.example.com" {
		t.Errorf("refused updates changed the email destination: %s", got.Destination)
	}
}

func mustGet(t *testing.T, f *fixture, id string) store.Subscription {
	t.Helper()
	sub, err := f.st.GetSubscription(context.Background(), "p1", id)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func TestRotateSecret(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	hook, err := f.svc.Create(ctx, "p1", webhookInput(publicURL))
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	rotated, err := f.svc.RotateSecret(ctx, "p1", hook.ID, Webhooks, Rotation{OverlapSeconds: ptr(60.0)})
	if err != nil {
		t.Fatal(err)
	}
	stored := mustGet(t, f, hook.ID)
	if rotated.Secret == hook.Secret || stored.Secret != rotated.Secret || stored.PreviousSecret != hook.Secret {
		t.Errorf("after rotation: secret %q, previous %q; want a new secret and the old one kept", stored.Secret, stored.PreviousSecret)
	}
	if u := stored.PreviousSecretUntil; u == nil || u.Before(before.Add(59*time.Second)) || u.After(time.Now().Add(61*time.Second)) {
		t.Errorf("previous secret kept until %v, want about a minute from now", u)
	}
	// Without an overlap the old secret stops signing at once; the default
	// overlap is Deps.RotationOverlap.
	if _, err := f.svc.RotateSecret(ctx, "p1", hook.ID, Webhooks, Rotation{OverlapSeconds: ptr(0.0)}); err != nil {
		t.Fatal(err)
	}
	if s := mustGet(t, f, hook.ID); s.PreviousSecret != "" || s.PreviousSecretUntil != nil {
		t.Errorf("rotation without overlap kept %q until %v", s.PreviousSecret, s.PreviousSecretUntil)
	}
	if _, err := f.svc.RotateSecret(ctx, "p1", hook.ID, Webhooks, Rotation{}); err != nil {
		t.Fatal(err)
	}
	if u := mustGet(t, f, hook.ID).PreviousSecretUntil; u == nil || u.Before(before.Add(59*time.Minute)) {
		t.Errorf("default overlap kept the old secret until %v, want an hour", u)
	}
	for _, bad := range []float64{-1, 1.5, 7*24*3600 + 1} {
		if _, err := f.svc.RotateSecret(ctx, "p1", hook.ID, Webhooks, Rotation{OverlapSeconds: ptr(bad)}); fieldOf(err) != "overlap_seconds" {
			t.Errorf("overlap %v: %v, want a field error on overlap_seconds", bad, err)
		}
	}
	var nf *NotFoundError
	if _, err := f.svc.RotateSecret(ctx, "p2", hook.ID, Webhooks, Rotation{}); !errors.As(err, &nf) {
		t.Errorf("rotating another project's webhook: %v, want not found", err)
	}
}

// TestSetActiveResumes: an event published while a subscription is inactive
// is held, and becomes due when it is activated.
func TestSetActiveResumes(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	sub, err := f.svc.Create(ctx, "p1", destinationInput(`{"type": "log", "file": "a.jsonl"}`))
	if err != nil {
		t.Fatal(err)
	}
	off, err := f.svc.SetActive(ctx, "p1", sub.ID, Subscriptions, false)
	if err != nil || off.Active || off.DisabledReason != "deactivated by API" {
		t.Fatalf("deactivate: %+v, %v", off, err)
	}
	res, err := f.pub.Publish(ctx, ingest.Input{ProjectID: "p1", Type: "scrape.completed", Data: json.RawMessage(`{}`)})
	if err != nil || res.Deliveries != 1 {
		t.Fatalf("publish to the inactive subscription: %+v, %v; want one held delivery", res, err)
	}
	claim := func() []store.Job {
		jobs, err := f.st.ClaimDeliveries(ctx, store.ClaimOptions{Owner: "test", Limit: 10, PerSubscription: 10, Lease: time.Minute, Now: time.Now().Add(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		return jobs
	}
	if jobs := claim(); len(jobs) != 0 {
		t.Fatalf("claimed %d deliveries of an inactive subscription", len(jobs))
	}
	wakes := f.wakes
	on, err := f.svc.SetActive(ctx, "p1", sub.ID, Subscriptions, true)
	if err != nil || !on.Active || on.DisabledReason != "" {
		t.Fatalf("activate: %+v, %v", on, err)
	}
	if f.wakes == wakes {
		t.Error("activating did not wake the engine")
	}
	if jobs := claim(); len(jobs) != 1 || jobs[0].Subscription.ID != sub.ID {
		t.Errorf("after activating, claimed %d deliveries, want the held one", len(jobs))
	}
	var nf *NotFoundError
	if _, err := f.svc.SetActive(ctx, "p1", sub.ID, Webhooks, true); !errors.As(err, &nf) || nf.What != "webhook" {
		t.Errorf("activating a log subscription through the Webhooks API: %v, want webhook not found", err)
	}
}

func TestQuota(t *testing.T) {
	f := newFixture(t, 2)
	ctx := context.Background()
	var ids []string
	for range 2 {
		sub, err := f.svc.Create(ctx, "p1", webhookInput(publicURL))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sub.ID)
	}
	_, err := f.svc.Create(ctx, "p1", destinationInput(`{"type": "log", "file": "a.jsonl"}`))
	var limit *LimitError
	if !errors.As(err, &limit) {
		t.Fatalf("third subscription: %v, want a LimitError", err)
	}
	if msg, ok := Refusal(err); !ok || msg != limit.Message {
		t.Errorf("Refusal(%v) = %q, %v", err, msg, ok)
	}
	if _, ok := Refusal(errors.New("disk full")); ok {
		t.Error("Refusal took a failure for a refusal")
	}
	if n := f.count(t, "p1"); n != 2 {
		t.Errorf("%d subscriptions after the refused one, want 2", n)
	}
	// The quota is per project, and a deletion makes room.
	if _, err := f.svc.Create(ctx, "p2", webhookInput(publicURL)); err != nil {
		t.Errorf("another project's first subscription: %v", err)
	}
	if err := f.svc.Delete(ctx, "p1", ids[0], Webhooks); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Create(ctx, "p1", webhookInput(publicURL)); err != nil {
		t.Errorf("after a deletion: %v", err)
	}
}

func TestReplayAndRecover(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	a, err := f.svc.Create(ctx, "p1", webhookInput(publicURL))
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.svc.Create(ctx, "p1", webhookInput(publicURL))
	if err != nil {
		t.Fatal(err)
	}
	res, sub, err := f.svc.SendTest(ctx, "p1", a.ID, Webhooks)
	if err != nil || res.Deliveries != 1 || sub.ID != a.ID {
		t.Fatalf("SendTest: %+v, %v; want one delivery, to %s only", res, err, a.ID)
	}
	ds, err := f.st.ListDeliveries(ctx, store.DeliveryFilter{ProjectID: "p1", EventID: res.EventID, Limit: 10})
	if err != nil || len(ds) != 1 || ds[0].SubscriptionID != a.ID {
		t.Fatalf("test event deliveries: %+v, %v", ds, err)
	}
	var nf *NotFoundError
	if _, err := f.svc.Replay(ctx, "p1", b.ID, ds[0].ID, Webhooks); !errors.As(err, &nf) || nf.What != "delivery" {
		t.Errorf("replaying a delivery through another webhook: %v, want delivery not found", err)
	}
	wakes := f.wakes
	d, err := f.svc.Replay(ctx, "p1", a.ID, ds[0].ID, Webhooks)
	if err != nil || d.ID != ds[0].ID || d.State != store.StatePending {
		t.Errorf("Replay = %+v, %v; want the delivery pending", d, err)
	}
	if f.wakes == wakes {
		t.Error("a replay did not wake the engine")
	}
	from := time.Now().Add(-time.Hour)
	to := from.Add(-time.Minute)
	if _, err := f.svc.Recover(ctx, "p1", a.ID, Webhooks, Window{}); fieldOf(err) != "from" {
		t.Errorf("recover without from: %v, want a field error on from", err)
	}
	if _, err := f.svc.Recover(ctx, "p1", a.ID, Webhooks, Window{From: &from, To: &to}); fieldOf(err) != "to" {
		t.Errorf("recover with to before from: %v, want a field error on to", err)
	}
	if n, err := f.svc.Recover(ctx, "p1", a.ID, Webhooks, Window{From: &from}); err != nil || n != 0 {
		t.Errorf("recover with nothing failed: %d, %v", n, err)
	}
}
