package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"carrier/internal/store"
)

// cases is the conformance suite. RunWith starts them in this order, each in
// parallel with the others.
var cases = []testCase{
	{name: "MigrateIdempotent", run: testMigrateIdempotent},
	{name: "MigrateConcurrent", shared: true, run: testMigrateConcurrent},
	{name: "ProjectsAndAPIKeys", run: testProjectsAndAPIKeys},
	{name: "SubscriptionRoundTrip", run: testSubscriptionRoundTrip},
	{name: "SubscriptionProjectIsolation", run: testSubscriptionProjectIsolation},
	{name: "SubscriptionActiveAndVersion", run: testSubscriptionActiveAndVersion},
	{name: "InsertEvents", run: testInsertEvents},
	{name: "Idempotency", run: testIdempotency},
	{name: "IdempotentPublishRace", run: testIdempotentPublishRace},
	{name: "ListEvents", run: testListEvents},
	{name: "EventTypeExamples", run: testEventTypeExamples},
	{name: "ClaimDue", run: testClaimDue},
	{name: "ClaimLease", run: testClaimLease},
	{name: "LeaseTokenFences", run: testLeaseTokenFences},
	{name: "ClaimExcludeAndCaps", run: testClaimExcludeAndCaps},
	{name: "ClaimInactiveSubscription", run: testClaimInactive},
	{name: "ConcurrentClaimers", run: testConcurrentClaimers},
	{name: "FIFOHeadOnly", run: testFIFOHeadOnly},
	{name: "FIFORetryingHead", run: testFIFORetryingHead},
	{name: "FIFOConcurrentClaimers", run: testFIFOConcurrentClaimers},
	{name: "FIFODedup", run: testFIFODedup},
	{name: "CompleteDelivered", run: testCompleteDelivered},
	{name: "CompleteRetryingThenFailed", run: testCompleteRetryingFailed},
	{name: "CompleteRequiresLease", run: testCompleteRequiresLease},
	{name: "AutoDisable", run: testAutoDisable},
	{name: "OutcomeDisable", run: testOutcomeDisable},
	{name: "HealthSignals", run: testHealthSignals},
	{name: "Outbox", run: testOutbox},
	{name: "OutboxConcurrentClaimers", run: testOutboxConcurrentClaimers},
	{name: "AlertChangesAtomic", run: testAlertChangesAtomic},
	{name: "ProbeGauge", run: testProbeGauge},
	{name: "TxCommit", run: testTxCommit},
	{name: "TxRollback", run: testTxRollback},
	{name: "TxPanic", run: testTxPanic},
	{name: "ReleaseLeases", run: testReleaseLeases},
	{name: "RescueLeases", run: testRescueLeases},
	{name: "NextDueAt", run: testNextDueAt},
	{name: "ReplayDelivery", run: testReplayDelivery},
	{name: "RecoverDeliveries", run: testRecoverDeliveries},
	{name: "ListDeliveries", run: testListDeliveries},
	{name: "DeleteSubscription", run: testDeleteSubscription},
	{name: "CountDeliveries", run: testCountDeliveries},
	{name: "Prune", run: testPrune},
	{name: "PruneFanoutBatches", run: testPruneFanoutBatches},
	{name: "PruneKeys", run: testPruneKeys},
	{name: "PartitionRetention", run: testPartitionRetention},
	{name: "TaskRoundTrip", run: testTaskRoundTrip},
	{name: "TaskUpdate", run: testTaskUpdate},
	{name: "TaskVersionConflict", run: testTaskVersionConflict},
	{name: "TaskProjectIsolation", run: testTaskProjectIsolation},
	{name: "ListTasks", run: testListTasks},
	{name: "ClaimTasks", run: testClaimTasks},
	{name: "ConcurrentTaskClaimers", run: testConcurrentTaskClaimers},
	{name: "TaskSelections", run: testTaskSelections},
	{name: "TryLock", run: testTryLock},
	{name: "DeadLetters", run: testDeadLetters},
	{name: "PruneTasks", run: testPruneTasks},
	{name: "QueueCRUD", run: testQueueCRUD},
	{name: "Topics", run: testTopics},
	{name: "SigningKeys", run: testSigningKeys},
	{name: "DeliveryLog", run: testDeliveryLog},
	{name: "QueueSendReceive", run: testQueueSendReceive},
	{name: "OldestQueueMessage", run: testOldestQueueMessage},
	{name: "QueueDedup", run: testQueueDedup},
	{name: "QueueDeadLetter", run: testQueueDeadLetter},
	{name: "QueueConcurrentReceivers", run: testQueueConcurrentReceivers},
	{name: "QueuePrune", run: testQueuePrune},
	{name: "QueueFIFOOrder", run: testQueueFIFOOrder},
	{name: "QueueFIFODedup", run: testQueueFIFODedup},
	{name: "QueueFIFODeadLetter", run: testQueueFIFODeadLetter},
	{name: "QueueFIFOConcurrentSenders", run: testQueueFIFOConcurrentSenders},
	{name: "SQSCredentials", run: testSQSCredentials},
	{name: "ReplaceSecrets", run: testReplaceSecrets},
	{name: "ErrorClasses", run: testErrorClasses},
	{name: "BudgetConcurrent", run: testBudgetConcurrent},
}

// --- fixture and helpers ---

// fixture is one test's store with helpers that fail the test on error.
type fixture struct {
	t    *testing.T
	ctx  context.Context
	s    store.Store
	e    Storage
	base time.Time // "now" for the test, in whole milliseconds
}

func setup(t *testing.T, e Storage) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return &fixture{t: t, ctx: ctx, s: e.Open(t), e: e, base: time.Now().UTC().Truncate(time.Millisecond)}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) at(d time.Duration) time.Time { return f.base.Add(d) }

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

func check[V any](t *testing.T, what string, got, want V) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func (f *fixture) project() store.Project {
	f.t.Helper()
	p := store.Project{ID: newID(), Name: "project", CreatedAt: f.base}
	f.must(f.s.CreateProject(f.ctx, p))
	return p
}

func (f *fixture) subscription(projectID string, mods ...func(*store.Subscription)) store.Subscription {
	f.t.Helper()
	id := newID()
	sub := store.Subscription{
		ID: id, ProjectID: projectID, Name: "sub " + id, Kind: "webhook", URL: "https://example.com/hooks/" + id,
		EventTypes: []string{"task.created"}, Scope: "all", SubjectIDs: []string{}, Headers: map[string]string{},
		Tags: []string{}, TimeoutSeconds: 10, MaxRetries: 5, BackoffMultiplier: 2, Secret: "whsec_c2VjcmV0",
		FilterScope: "attributes", Active: true, CreatedAt: f.base, UpdatedAt: f.base,
	}
	for _, m := range mods {
		m(&sub)
	}
	f.must(f.s.CreateSubscription(f.ctx, sub))
	return sub
}

func (f *fixture) getSub(projectID, id string) store.Subscription {
	f.t.Helper()
	sub, err := f.s.GetSubscription(f.ctx, projectID, id)
	f.must(err)
	return sub
}

func (f *fixture) getDelivery(projectID, id string) store.Delivery {
	f.t.Helper()
	d, err := f.s.GetDelivery(f.ctx, projectID, id)
	f.must(err)
	return d
}

func (f *fixture) version() int64 {
	f.t.Helper()
	v, err := f.s.SubscriptionsVersion(f.ctx)
	f.must(err)
	return v
}

// newEvent builds an event of type typ created at `at`, with one delivery per subscription.
func newEvent(projectID, typ string, at time.Time, subs ...string) store.NewEvent {
	id := newID()
	ne := store.NewEvent{Event: store.Event{
		ID: id, ProjectID: projectID, Type: typ, Subject: "task-" + id[len(id)-4:],
		Data: json.RawMessage(`{"id": "` + id + `", "n": [1, 2.5]}`), Attributes: map[string]string{"source": "test"}, CreatedAt: at,
	}, SubscriptionIDs: subs}
	for range subs {
		ne.DeliveryIDs = append(ne.DeliveryIDs, newID())
	}
	return ne
}

// insert inserts events as new (not duplicates) and fails otherwise.
func (f *fixture) insert(events ...store.NewEvent) {
	f.t.Helper()
	res, err := f.s.InsertEvents(f.ctx, events, f.at(-24*time.Hour))
	f.must(err)
	if len(res) != len(events) {
		f.t.Fatalf("InsertEvents: %d results for %d events", len(res), len(events))
	}
	for i, r := range res {
		want := store.InsertResult{EventID: events[i].Event.ID, Deliveries: len(events[i].SubscriptionIDs)}
		check(f.t, fmt.Sprintf("InsertEvents result %d", i), r, want)
	}
}

// publish inserts one event of type typ at `at` to subs and returns its delivery ids.
func (f *fixture) publish(projectID, typ string, at time.Time, subs ...string) []string {
	f.t.Helper()
	ne := newEvent(projectID, typ, at, subs...)
	f.insert(ne)
	return ne.DeliveryIDs
}

func (f *fixture) claim(owner string, now time.Time, limit int, mods ...func(*store.ClaimOptions)) []store.Job {
	f.t.Helper()
	opts := store.ClaimOptions{Owner: owner, Limit: limit, Lease: time.Minute, Now: now}
	for _, m := range mods {
		m(&opts)
	}
	jobs, err := f.s.ClaimDeliveries(f.ctx, opts)
	f.must(err)
	return jobs
}

func (f *fixture) complete(now time.Time, outcomes ...store.Outcome) []store.Disabled {
	f.t.Helper()
	dis, err := f.s.CompleteAttempts(f.ctx, outcomes, now)
	f.must(err)
	return dis
}

// outcome builds an outcome for a claimed job: status 200 for delivered, 500 otherwise.
func outcome(j store.Job, state string, at time.Time) store.Outcome {
	o := store.Outcome{
		DeliveryID: j.Delivery.ID, ProjectID: j.Delivery.ProjectID, SubscriptionID: j.Delivery.SubscriptionID,
		LeaseOwner: j.LeaseOwner, LeaseToken: j.LeaseToken, State: state,
		Attempt: store.Attempt{ID: newID(), DeliveryID: j.Delivery.ID, ProjectID: j.Delivery.ProjectID, URL: j.Subscription.URL,
			StatusCode: 200, DurationMS: 12, ResponseBody: "ok", CreatedAt: at},
	}
	if state != store.StateDelivered {
		o.Attempt.StatusCode = 500
		o.Attempt.ErrorCode = "http_status"
		o.Attempt.ErrorMessage = "HTTP 500"
		o.Attempt.ResponseBody = "boom"
	}
	if state == store.StateRetrying {
		o.NextAttemptAt = at.Add(time.Minute)
	}
	return o
}

func jobIDs(jobs []store.Job) []string {
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.Delivery.ID
	}
	slices.Sort(ids)
	return ids
}

func deliveryIDs(ds []store.Delivery) []string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	return ids
}

func sorted(ids ...[]string) []string {
	out := []string{}
	for _, l := range ids {
		out = append(out, l...)
	}
	slices.Sort(out)
	return out
}

func ptr[T any](v T) *T { return &v }

// --- migrations ---

func testMigrateIdempotent(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	f.must(f.s.Migrate(f.ctx))
	f.must(f.s.Migrate(f.ctx))
	got, err := f.s.GetProject(f.ctx, p.ID)
	f.must(err)
	check(t, "project after re-migrate", got, p)
	f.must(f.s.Ping(f.ctx))
	check(t, "Engine()", f.s.Engine(), e.Name)
}

func testMigrateConcurrent(t *testing.T, e Storage) {
	a, b := e.OpenRaw(t), e.OpenRaw(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	for _, s := range []store.Store{a, b} {
		go func() { errs <- s.Migrate(ctx) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Migrate: %v", err)
		}
	}
	p := store.Project{ID: newID(), Name: "p", CreatedAt: time.UnixMilli(1700000000000).UTC()}
	if err := a.CreateProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetProject(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "project seen by the other store", got, p)
}

// --- projects and keys ---

func testProjectsAndAPIKeys(t *testing.T, e Storage) {
	f := setup(t, e)
	p1, p2 := f.project(), f.project()
	got, err := f.s.GetProject(f.ctx, p1.ID)
	f.must(err)
	check(t, "GetProject", got, p1)
	_, err = f.s.GetProject(f.ctx, newID())
	wantErr(t, "GetProject(missing)", err, store.ErrNotFound)

	k1 := store.APIKey{ID: newID(), ProjectID: p1.ID, Name: "ci", Prefix: "ck_abcd", Hash: "a1b2c3", Admin: true, CreatedAt: f.base}
	k2 := store.APIKey{ID: newID(), ProjectID: p2.ID, Name: "other", Prefix: "ck_efgh", Hash: "d4e5f6", CreatedAt: f.base}
	f.must(f.s.CreateAPIKey(f.ctx, k1))
	f.must(f.s.CreateAPIKey(f.ctx, k2))
	gk, err := f.s.APIKeyByHash(f.ctx, k1.Hash)
	f.must(err)
	check(t, "APIKeyByHash", gk, k1)
	_, err = f.s.APIKeyByHash(f.ctx, "nope")
	wantErr(t, "APIKeyByHash(unknown)", err, store.ErrNotFound)

	wantErr(t, "RevokeAPIKey(other project's key)", f.s.RevokeAPIKey(f.ctx, p2.ID, k1.ID, f.base), store.ErrNotFound)
	if _, err := f.s.APIKeyByHash(f.ctx, k1.Hash); err != nil {
		t.Errorf("key revoked through another project: %v", err)
	}
	gk, err = f.s.GetAPIKey(f.ctx, p1.ID, k1.ID)
	f.must(err)
	check(t, "GetAPIKey", gk, k1)
	_, err = f.s.GetAPIKey(f.ctx, p2.ID, k1.ID)
	wantErr(t, "GetAPIKey(other project's key)", err, store.ErrNotFound)
	f.must(f.s.RevokeAPIKey(f.ctx, p1.ID, k1.ID, f.at(time.Second)))
	_, err = f.s.APIKeyByHash(f.ctx, k1.Hash)
	wantErr(t, "APIKeyByHash(revoked)", err, store.ErrNotFound)
	// A revoked key is still there to read, so start-up can tell that the
	// configured bootstrap key was revoked rather than never stored.
	revoked := k1
	revokedAt := f.at(time.Second)
	revoked.RevokedAt = &revokedAt
	gk, err = f.s.GetAPIKey(f.ctx, p1.ID, k1.ID)
	f.must(err)
	check(t, "GetAPIKey(revoked)", gk, revoked)
	gk, err = f.s.LookupAPIKey(f.ctx, k1.Hash)
	f.must(err)
	check(t, "LookupAPIKey(revoked)", gk, revoked)
	gk, err = f.s.LookupAPIKey(f.ctx, k2.Hash)
	f.must(err)
	check(t, "LookupAPIKey", gk, k2)
	_, err = f.s.LookupAPIKey(f.ctx, "nope")
	wantErr(t, "LookupAPIKey(unknown)", err, store.ErrNotFound)
	wantErr(t, "RevokeAPIKey(already revoked)", f.s.RevokeAPIKey(f.ctx, p1.ID, k1.ID, f.base), store.ErrNotFound)
	wantErr(t, "RevokeAPIKey(missing)", f.s.RevokeAPIKey(f.ctx, p1.ID, newID(), f.base), store.ErrNotFound)
	if _, err := f.s.APIKeyByHash(f.ctx, k2.Hash); err != nil {
		t.Errorf("other project's key: %v", err)
	}
	n, err := f.s.CountAPIKeys(f.ctx)
	f.must(err)
	check(t, "CountAPIKeys (revoked included)", n, 2)
}

// --- subscriptions ---

func testSubscriptionRoundTrip(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	full := f.subscription(p.ID, func(s *store.Subscription) {
		s.Name = "Billing"
		s.Description = "sends billing events"
		s.EventTypes = []string{"invoice.paid", "invoice.failed"}
		s.Scope = "specific"
		s.SubjectIDs = []string{"task-1", "task-2"}
		s.Headers = map[string]string{"X-Team": "billing", "Authorization": "Bearer x"}
		s.Tags = []string{"prod", "eu"}
		s.Metadata = json.RawMessage(`{"owner": "ops", "n": 3}`)
		s.Kind = "discord"
		s.Destination = json.RawMessage(`{"webhook_url":"https://discord.com/api/webhooks/1/x","title":"{{.type}}"}`)
		s.FilterPolicy = json.RawMessage(`{"status":["failed"],"price":[{"numeric":[">",0.5]}]}`)
		s.FilterScope = "body"
		s.TimeoutSeconds = 7
		s.MaxRetries = 9
		s.BackoffMultiplier = 2.5
		s.Secret = "whsec_bmV3"
		s.PreviousSecret = "whsec_b2xk"
		s.PreviousSecretUntil = ptr(f.at(24 * time.Hour))
		s.UpdatedAt = f.at(time.Second)
	})
	check(t, "GetSubscription", f.getSub(p.ID, full.ID), full)

	minimal := f.subscription(p.ID, func(s *store.Subscription) {
		s.EventTypes, s.SubjectIDs, s.Headers, s.Tags = nil, nil, nil, nil
	})
	got := f.getSub(p.ID, minimal.ID)
	if len(got.EventTypes) != 0 || len(got.SubjectIDs) != 0 || len(got.Headers) != 0 || len(got.Tags) != 0 || len(got.Metadata) != 0 || got.PreviousSecretUntil != nil {
		t.Errorf("minimal subscription came back with values: %+v", got)
	}

	upd := full
	upd.Name = "Billing v2"
	upd.Description = "changed"
	upd.URL = "https://example.org/new"
	upd.EventTypes = []string{"invoice.paid"}
	upd.Scope = "all"
	upd.SubjectIDs = []string{}
	upd.Headers = map[string]string{"X-New": "1"}
	upd.Tags = []string{"staging"}
	upd.Metadata = json.RawMessage(`{"owner":"dev"}`)
	upd.TimeoutSeconds = 30
	upd.MaxRetries = 2
	upd.BackoffMultiplier = 1.5
	upd.Secret = "whsec_dGhpcmQ="
	upd.PreviousSecret = "whsec_bmV3"
	upd.PreviousSecretUntil = ptr(f.at(48 * time.Hour))
	upd.UpdatedAt = f.at(time.Minute)
	// Non-editable fields must not be written by UpdateSubscription.
	sent := upd
	sent.Active = false
	sent.ConsecutiveFailures = 99
	sent.TotalDeliveries = 99
	sent.CreatedAt = f.at(time.Hour)
	f.must(f.s.UpdateSubscription(f.ctx, sent))
	check(t, "GetSubscription after update", f.getSub(p.ID, full.ID), upd)

	// An id already in use is a conflict (the pingback registry makes ids
	// from project and host, and two processes may race to create one).
	again := upd
	again.Name = "second"
	if err := f.s.CreateSubscription(f.ctx, again); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateSubscription with an id in use: %v, want ErrConflict", err)
	}
	check(t, "GetSubscription after the refused create", f.getSub(p.ID, full.ID), upd)
}

func testSubscriptionProjectIsolation(t *testing.T, e Storage) {
	f := setup(t, e)
	p1, p2 := f.project(), f.project()
	a := f.subscription(p1.ID)
	b := f.subscription(p1.ID)
	c := f.subscription(p2.ID)

	_, err := f.s.GetSubscription(f.ctx, p2.ID, a.ID)
	wantErr(t, "GetSubscription(other project)", err, store.ErrNotFound)
	_, err = f.s.GetSubscription(f.ctx, p1.ID, newID())
	wantErr(t, "GetSubscription(missing)", err, store.ErrNotFound)
	moved := a
	moved.ProjectID = p2.ID
	moved.Name = "hijacked"
	wantErr(t, "UpdateSubscription(other project)", f.s.UpdateSubscription(f.ctx, moved), store.ErrNotFound)
	wantErr(t, "SetSubscriptionActive(other project)", f.s.SetSubscriptionActive(f.ctx, p2.ID, a.ID, false, "x", f.base), store.ErrNotFound)
	wantErr(t, "DeleteSubscription(other project)", f.s.DeleteSubscription(f.ctx, p2.ID, a.ID), store.ErrNotFound)
	wantErr(t, "DeleteSubscription(missing)", f.s.DeleteSubscription(f.ctx, p1.ID, newID()), store.ErrNotFound)
	check(t, "subscription untouched", f.getSub(p1.ID, a.ID), a)

	l1, err := f.s.ListSubscriptions(f.ctx, p1.ID)
	f.must(err)
	check(t, "ListSubscriptions(p1)", l1, []store.Subscription{a, b})
	l2, err := f.s.ListSubscriptions(f.ctx, p2.ID)
	f.must(err)
	check(t, "ListSubscriptions(p2)", l2, []store.Subscription{c})
	l3, err := f.s.ListSubscriptions(f.ctx, newID())
	f.must(err)
	check(t, "ListSubscriptions(unknown project) length", len(l3), 0)
}

func testSubscriptionActiveAndVersion(t *testing.T, e Storage) {
	f := setup(t, e)
	p1, p2 := f.project(), f.project()
	v := f.version()
	step := func(what string) {
		t.Helper()
		nv := f.version()
		if nv <= v {
			t.Errorf("SubscriptionsVersion after %s: got %d, want > %d", what, nv, v)
		}
		v = nv
	}
	a := f.subscription(p1.ID)
	step("create")
	b := f.subscription(p2.ID)
	step("create")
	c := f.subscription(p1.ID, func(s *store.Subscription) {
		s.Active = false
		s.DisabledReason = "too many failures"
		s.ConsecutiveFailures = 7
	})
	step("create inactive")

	all, err := f.s.AllActiveSubscriptions(f.ctx)
	f.must(err)
	check(t, "AllActiveSubscriptions", all, []store.Subscription{a, b})

	a.Name = "renamed"
	f.must(f.s.UpdateSubscription(f.ctx, a))
	step("update")

	f.must(f.s.SetSubscriptionActive(f.ctx, p1.ID, a.ID, false, "paused by user", f.at(time.Second)))
	step("deactivate")
	got := f.getSub(p1.ID, a.ID)
	check(t, "deactivated Active", got.Active, false)
	check(t, "deactivated DisabledReason", got.DisabledReason, "paused by user")
	all, err = f.s.AllActiveSubscriptions(f.ctx)
	f.must(err)
	check(t, "AllActiveSubscriptions after deactivate", all, []store.Subscription{b})

	f.must(f.s.SetSubscriptionActive(f.ctx, p1.ID, c.ID, true, "ignored", f.at(2*time.Second)))
	step("activate")
	got = f.getSub(p1.ID, c.ID)
	check(t, "activated Active", got.Active, true)
	check(t, "activated DisabledReason", got.DisabledReason, "")
	check(t, "activated ConsecutiveFailures", got.ConsecutiveFailures, 0)
	check(t, "activated UpdatedAt", got.UpdatedAt, f.at(2*time.Second))

	f.must(f.s.DeleteSubscription(f.ctx, p2.ID, b.ID))
	step("delete")
	_, err = f.s.GetSubscription(f.ctx, p2.ID, b.ID)
	wantErr(t, "GetSubscription(deleted)", err, store.ErrNotFound)
	all, err = f.s.AllActiveSubscriptions(f.ctx)
	f.must(err)
	check(t, "AllActiveSubscriptions after delete", len(all), 1)
}

// --- events ---

func testInsertEvents(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	s1, s2 := f.subscription(p.ID), f.subscription(p.ID)
	e1 := newEvent(p.ID, "task.created", f.at(-time.Second), s1.ID, s2.ID)
	e1.Event.Data = json.RawMessage("{\"b\": 1,  \"a\": [true, null, \"é\"]}\n")
	e1.Event.Attributes = map[string]string{"traceparent": "00-abc-01", "source": "api"}
	e1.Event.IdempotencyKey = "key-1"
	e2 := newEvent(p.ID, "task.deleted", f.base, s1.ID)
	e3 := newEvent(p.ID, "task.noop", f.base) // matched nothing
	f.insert(e1, e2, e3)

	for _, ne := range []store.NewEvent{e1, e2, e3} {
		got, err := f.s.GetEvent(f.ctx, p.ID, ne.Event.ID)
		f.must(err)
		check(t, "GetEvent", got, ne.Event)
		if string(got.Data) != string(ne.Event.Data) {
			t.Errorf("event Data bytes: got %q, want %q", got.Data, ne.Event.Data)
		}
	}
	other := f.project()
	_, err := f.s.GetEvent(f.ctx, other.ID, e1.Event.ID)
	wantErr(t, "GetEvent(other project)", err, store.ErrNotFound)

	ds, err := f.s.ListDeliveries(f.ctx, store.DeliveryFilter{ProjectID: p.ID, EventID: e1.Event.ID})
	f.must(err)
	check(t, "deliveries of e1", sorted(deliveryIDs(ds)), sorted(e1.DeliveryIDs))
	for _, d := range ds {
		want := store.Delivery{
			ID: d.ID, ProjectID: p.ID, SubscriptionID: d.SubscriptionID, EventID: e1.Event.ID, EventType: "task.created",
			State: store.StatePending, NextAttemptAt: d.NextAttemptAt, CreatedAt: e1.Event.CreatedAt, UpdatedAt: d.UpdatedAt,
		}
		check(t, "new delivery", d, want)
		if d.NextAttemptAt.After(e1.Event.CreatedAt) {
			t.Errorf("new delivery not due at its event's creation: next attempt %v", d.NextAttemptAt)
		}
		if d.SubscriptionID != s1.ID && d.SubscriptionID != s2.ID {
			t.Errorf("delivery to unknown subscription %s", d.SubscriptionID)
		}
		if got := f.getDelivery(p.ID, d.ID); !reflect.DeepEqual(got, d) {
			t.Errorf("GetDelivery: got %+v, want %+v", got, d)
		}
	}
	subsOf := map[string]string{}
	for i, id := range e1.DeliveryIDs {
		subsOf[id] = e1.SubscriptionIDs[i]
	}
	for _, d := range ds {
		check(t, "delivery id ↔ subscription id", d.SubscriptionID, subsOf[d.ID])
	}
	_, err = f.s.GetDelivery(f.ctx, other.ID, e1.DeliveryIDs[0])
	wantErr(t, "GetDelivery(other project)", err, store.ErrNotFound)
	all, err := f.s.ListDeliveries(f.ctx, store.DeliveryFilter{ProjectID: p.ID})
	f.must(err)
	check(t, "all deliveries", len(all), 3)
}

func testIdempotency(t *testing.T, e Storage) {
	f := setup(t, e)
	p1, p2 := f.project(), f.project()
	s1, s1b, s2 := f.subscription(p1.ID), f.subscription(p1.ID), f.subscription(p2.ID)
	window := f.at(-time.Hour)
	ins := func(events ...store.NewEvent) []store.InsertResult {
		t.Helper()
		res, err := f.s.InsertEvents(f.ctx, events, window)
		f.must(err)
		if len(res) != len(events) {
			t.Fatalf("InsertEvents: %d results for %d events", len(res), len(events))
		}
		return res
	}
	keyed := func(projectID, key string, at time.Time, subs ...string) store.NewEvent {
		ne := newEvent(projectID, "task.created", at, subs...)
		ne.Event.IdempotencyKey = key
		return ne
	}
	count := func(projectID string) (events, deliveries int) {
		t.Helper()
		ev, err := f.s.ListEvents(f.ctx, projectID, 1000, 0)
		f.must(err)
		ds, err := f.s.ListDeliveries(f.ctx, store.DeliveryFilter{ProjectID: projectID, Limit: 1000})
		f.must(err)
		return len(ev), len(ds)
	}

	a := keyed(p1.ID, "k1", f.at(-10*time.Minute), s1.ID, s1b.ID)
	check(t, "first use of k1", ins(a)[0], store.InsertResult{EventID: a.Event.ID, Deliveries: 2})

	dup := keyed(p1.ID, "k1", f.base, s1.ID)
	check(t, "k1 again (same project)", ins(dup)[0], store.InsertResult{EventID: a.Event.ID, Duplicate: true, Deliveries: 2})
	_, err := f.s.GetEvent(f.ctx, p1.ID, dup.Event.ID)
	wantErr(t, "GetEvent(duplicate)", err, store.ErrNotFound)
	nev, nd := count(p1.ID)
	check(t, "p1 events after duplicate", nev, 1)
	check(t, "p1 deliveries after duplicate", nd, 2)

	c := keyed(p2.ID, "k1", f.base, s2.ID)
	check(t, "k1 in another project", ins(c)[0], store.InsertResult{EventID: c.Event.ID, Deliveries: 1})

	d1 := keyed(p1.ID, "k2", f.base, s1.ID, s1b.ID)
	d2 := keyed(p1.ID, "k2", f.base, s1.ID)
	plain := newEvent(p1.ID, "task.created", f.base, s1.ID)
	res := ins(d1, plain, d2)
	check(t, "k2 first in batch", res[0], store.InsertResult{EventID: d1.Event.ID, Deliveries: 2})
	check(t, "unkeyed in batch", res[1], store.InsertResult{EventID: plain.Event.ID, Deliveries: 1})
	check(t, "k2 second in batch", res[2], store.InsertResult{EventID: d1.Event.ID, Duplicate: true, Deliveries: 2})
	_, err = f.s.GetEvent(f.ctx, p1.ID, d2.Event.ID)
	wantErr(t, "GetEvent(in-batch duplicate)", err, store.ErrNotFound)
	nev, nd = count(p1.ID)
	check(t, "p1 events after batch", nev, 3)
	check(t, "p1 deliveries after batch", nd, 5)

	// A key last used before idemSince is free again.
	old := keyed(p1.ID, "k3", f.at(-2*time.Hour), s1.ID)
	res, err = f.s.InsertEvents(f.ctx, []store.NewEvent{old}, f.at(-3*time.Hour))
	f.must(err)
	check(t, "k3 first use", res[0], store.InsertResult{EventID: old.Event.ID, Deliveries: 1})
	fresh := keyed(p1.ID, "k3", f.base, s1.ID, s1b.ID)
	check(t, "k3 after its window", ins(fresh)[0], store.InsertResult{EventID: fresh.Event.ID, Deliveries: 2})
	got, err := f.s.GetEvent(f.ctx, p1.ID, fresh.Event.ID)
	f.must(err)
	check(t, "re-used key's new event", got, fresh.Event)
	again := keyed(p1.ID, "k3", f.at(time.Second), s1.ID)
	check(t, "k3 within the new window", ins(again)[0], store.InsertResult{EventID: fresh.Event.ID, Duplicate: true, Deliveries: 2})
	nev, nd = count(p1.ID)
	check(t, "p1 events at end", nev, 5)
	check(t, "p1 deliveries at end", nd, 8)
}

func testListEvents(t *testing.T, e Storage) {
	f := setup(t, e)
	p1, p2 := f.project(), f.project()
	var want []string
	for i := range 4 {
		ne := newEvent(p1.ID, "task.created", f.at(time.Duration(i)*time.Second))
		f.insert(ne)
		want = append([]string{ne.Event.ID}, want...)
	}
	f.insert(newEvent(p2.ID, "task.created", f.at(time.Hour)))
	ids := func(limit, offset int) []string {
		t.Helper()
		evs, err := f.s.ListEvents(f.ctx, p1.ID, limit, offset)
		f.must(err)
		out := []string{}
		for _, ev := range evs {
			out = append(out, ev.ID)
		}
		return out
	}
	check(t, "ListEvents newest first", ids(10, 0), want)
	check(t, "ListEvents limit 2 offset 1", ids(2, 1), want[1:3])
	check(t, "ListEvents past the end", ids(10, 4), []string{})

	// Large payloads: a list stops once its rows hold store.ListBytes, after
	// the row that reaches it, however high the limit; paging on with the
	// offset reaches every event.
	p3 := f.project()
	big := `{"blob": "` + strings.Repeat("x", store.ListBytes/3) + `"}`
	var bigIDs []string
	for i := range 7 {
		ne := newEvent(p3.ID, "big", f.at(time.Duration(i)*time.Second))
		ne.Event.Data = json.RawMessage(big)
		f.insert(ne)
		bigIDs = append([]string{ne.Event.ID}, bigIDs...)
	}
	var paged []string
	for offset, pages := 0, 0; pages < 10; pages++ {
		evs, err := f.s.ListEvents(f.ctx, p3.ID, 1000, offset)
		f.must(err)
		if len(evs) == 0 {
			break
		}
		if len(evs) > 3 {
			t.Errorf("ListEvents of %d-byte events returned %d at once, want at most 3 (ListBytes %d)", len(big), len(evs), store.ListBytes)
		}
		if !store.ListCut(evs) && len(evs) == 3 {
			t.Errorf("a page of 3 large events does not report it was cut")
		}
		for _, ev := range evs {
			paged = append(paged, ev.ID)
		}
		offset += len(evs)
	}
	check(t, "large events paged by offset", paged, bigIDs)
}

// --- claiming ---

func testClaimDue(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.subscription(p.ID)
	dDelivered := f.publish(p.ID, "t", f.at(-2*time.Minute), sub.ID)[0]
	dFailed := f.publish(p.ID, "t", f.at(-3*time.Minute), sub.ID)[0]
	dRetrying := f.publish(p.ID, "t", f.at(-4*time.Minute), sub.ID)[0]
	first := f.claim("w0", f.at(-90*time.Second), 10)
	check(t, "first claim", jobIDs(first), sorted([]string{dDelivered, dFailed, dRetrying}))
	var outs []store.Outcome
	for _, j := range first {
		switch j.Delivery.ID {
		case dDelivered:
			outs = append(outs, outcome(j, store.StateDelivered, f.at(-80*time.Second)))
		case dFailed:
			outs = append(outs, outcome(j, store.StateFailed, f.at(-80*time.Second)))
		default:
			o := outcome(j, store.StateRetrying, f.at(-80*time.Second))
			o.NextAttemptAt = f.at(10 * time.Second)
			outs = append(outs, o)
		}
	}
	f.complete(f.at(-80*time.Second), outs...)

	due := newEvent(p.ID, "task.created", f.at(-time.Minute), sub.ID)
	f.insert(due)
	future := f.publish(p.ID, "t", f.at(time.Hour), sub.ID)[0]

	jobs := f.claim("w1", f.base, 10, func(o *store.ClaimOptions) { o.Lease = 5 * time.Minute })
	check(t, "claim at now", jobIDs(jobs), []string{due.DeliveryIDs[0]})
	if len(jobs) == 1 {
		j := jobs[0]
		check(t, "job lease owner", j.LeaseOwner, "w1")
		check(t, "job event", j.Event, due.Event)
		check(t, "job event data", string(j.Event.Data), string(due.Event.Data))
		check(t, "job subscription", j.Subscription, f.getSub(p.ID, sub.ID))
		check(t, "job delivery", j.Delivery, f.getDelivery(p.ID, due.DeliveryIDs[0]))
		check(t, "job delivery state", j.Delivery.State, store.StatePending)
	}

	jobs = f.claim("w2", f.at(10*time.Second), 10)
	check(t, "claim when the retry is due", jobIDs(jobs), []string{dRetrying})
	if len(jobs) == 1 {
		check(t, "retrying job state", jobs[0].Delivery.State, store.StateRetrying)
		check(t, "retrying job attempts", jobs[0].Delivery.Attempts, 1)
	}
	jobs = f.claim("w3", f.at(time.Hour), 10)
	check(t, "claim an hour on (expired lease + future event due)", jobIDs(jobs), sorted([]string{due.DeliveryIDs[0], future, dRetrying}))
	check(t, "delivered not reclaimed", f.getDelivery(p.ID, dDelivered).State, store.StateDelivered)
	check(t, "failed not reclaimed", f.getDelivery(p.ID, dFailed).State, store.StateFailed)
}

func testClaimLease(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.subscription(p.ID)
	var all []string
	for range 5 {
		all = append(all, f.publish(p.ID, "t", f.at(-time.Minute), sub.ID)...)
	}
	slices.Sort(all)
	lease := func(o *store.ClaimOptions) { o.Lease = 30 * time.Second }
	check(t, "claim by A", jobIDs(f.claim("A", f.base, 10, lease)), all)
	check(t, "claim by B before lease expiry", jobIDs(f.claim("B", f.at(29*time.Second), 10, lease)), []string{})
	check(t, "claim by A again before lease expiry", jobIDs(f.claim("A", f.at(29*time.Second), 10, lease)), []string{})
	jobs := f.claim("B", f.at(31*time.Second), 10, lease)
	check(t, "claim by B after lease expiry", jobIDs(jobs), all)
	for _, j := range jobs {
		check(t, "job owner", j.LeaseOwner, "B")
	}
}

func testClaimExcludeAndCaps(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	subs := []store.Subscription{f.subscription(p.ID), f.subscription(p.ID), f.subscription(p.ID)}
	var events []store.NewEvent
	for i := range 10 {
		events = append(events, newEvent(p.ID, "t", f.at(-time.Minute+time.Duration(i)*time.Millisecond), subs[0].ID, subs[1].ID, subs[2].ID))
	}
	f.insert(events...)
	perSub := func(jobs []store.Job) map[string]int {
		m := map[string]int{}
		for _, j := range jobs {
			m[j.Delivery.SubscriptionID]++
			if j.Subscription.ID != j.Delivery.SubscriptionID {
				t.Errorf("job subscription %s for delivery of %s", j.Subscription.ID, j.Delivery.SubscriptionID)
			}
		}
		return m
	}
	short := func(o *store.ClaimOptions) { o.Lease = time.Second }
	now := f.base

	jobs := f.claim("x", now, 100, short, func(o *store.ClaimOptions) { o.Exclude = []string{subs[0].ID} })
	check(t, "claim excluding sub 0", perSub(jobs), map[string]int{subs[1].ID: 10, subs[2].ID: 10})

	now = now.Add(2 * time.Second)
	jobs = f.claim("y", now, 100, short, func(o *store.ClaimOptions) { o.PerSubscription = 2 })
	check(t, "claim 2 per subscription", perSub(jobs), map[string]int{subs[0].ID: 2, subs[1].ID: 2, subs[2].ID: 2})

	now = now.Add(2 * time.Second)
	jobs = f.claim("z", now, 4, short)
	check(t, "claim limit 4", len(jobs), 4)

	now = now.Add(2 * time.Second)
	jobs = f.claim("w", now, 5, short, func(o *store.ClaimOptions) {
		o.PerSubscription = 1
		o.Exclude = []string{subs[1].ID}
	})
	check(t, "claim 1 per subscription excluding sub 1", perSub(jobs), map[string]int{subs[0].ID: 1, subs[2].ID: 1})

	now = now.Add(2 * time.Second)
	jobs = f.claim("v", now, 100, short)
	check(t, "claim everything", len(jobs), 30)

	// Fairness between projects: a project at its share is excluded, and one
	// claim takes at most PerProject of any project.
	q := f.project()
	qsub := f.subscription(q.ID)
	var qevents []store.NewEvent
	for i := range 10 {
		qevents = append(qevents, newEvent(q.ID, "t", f.at(-time.Minute+time.Duration(i)*time.Millisecond), qsub.ID))
	}
	f.insert(qevents...)
	perProject := func(jobs []store.Job) map[string]int {
		m := map[string]int{}
		for _, j := range jobs {
			m[j.Delivery.ProjectID]++
		}
		return m
	}
	now = now.Add(2 * time.Second)
	jobs = f.claim("u", now, 100, short, func(o *store.ClaimOptions) { o.ExcludeProjects = []string{p.ID} })
	check(t, "claim excluding a project", perProject(jobs), map[string]int{q.ID: 10})
	now = now.Add(2 * time.Second)
	jobs = f.claim("s", now, 100, short, func(o *store.ClaimOptions) { o.PerProject = 3 })
	check(t, "claim 3 per project", perProject(jobs), map[string]int{p.ID: 3, q.ID: 3})
	// Leaving a project out, the others' due deliveries are still taken
	// earliest first across projects: r's two, older than q's, then q's.
	r := f.project()
	rsub := f.subscription(r.ID)
	f.insert(newEvent(r.ID, "t", f.at(-2*time.Minute), rsub.ID), newEvent(r.ID, "t", f.at(-90*time.Second), rsub.ID))
	now = now.Add(2 * time.Second)
	jobs = f.claim("t", now, 3, short, func(o *store.ClaimOptions) { o.ExcludeProjects = []string{p.ID} })
	check(t, "claim 3 excluding a project, earliest first across the others", perProject(jobs), map[string]int{r.ID: 2, q.ID: 1})
}

func testClaimInactive(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	on, off := f.subscription(p.ID), f.subscription(p.ID)
	var onIDs, offIDs []string
	for range 3 {
		onIDs = append(onIDs, f.publish(p.ID, "t", f.at(-time.Minute), on.ID)...)
		offIDs = append(offIDs, f.publish(p.ID, "t", f.at(-time.Minute), off.ID)...)
	}
	f.must(f.s.SetSubscriptionActive(f.ctx, p.ID, off.ID, false, "paused", f.base))
	check(t, "claim with one subscription inactive", jobIDs(f.claim("a", f.base, 100)), sorted(onIDs))
	check(t, "inactive subscription's deliveries not claimed", jobIDs(f.claim("b", f.base, 100)), []string{})
	f.must(f.s.SetSubscriptionActive(f.ctx, p.ID, off.ID, true, "", f.base))
	check(t, "claim after re-activation", jobIDs(f.claim("c", f.base, 100)), sorted(offIDs))
}

// testConcurrentClaimers: delivery engines claiming at once, each under its
// own owner (on PostgreSQL each through its own store, as separate processes
// are), never get one delivery twice, each gets its claims leased to itself,
// and together they deliver everything exactly once.
func testConcurrentClaimers(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	var subIDs []string
	for range 5 {
		subIDs = append(subIDs, f.subscription(p.ID).ID)
	}
	var events []store.NewEvent
	for i := range 100 {
		events = append(events, newEvent(p.ID, "t", f.at(-time.Minute+time.Duration(i)*time.Millisecond), subIDs...))
	}
	f.insert(events...)
	const total = 500
	const workers = 4
	// On PostgreSQL each worker is its own store (as separate processes are);
	// SQLite allows one process per data directory, so its workers share one.
	stores := []store.Store{f.s}
	for len(stores) < workers {
		if e.Shared {
			stores = append(stores, e.Open(t))
		} else {
			stores = append(stores, f.s)
		}
	}

	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	claimed := map[string]int{}
	var errs []error
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			owner := fmt.Sprintf("worker-%d", w)
			fail := func(err error) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", owner, err))
				mu.Unlock()
			}
			for range total {
				jobs, err := stores[w].ClaimDeliveries(ctx, store.ClaimOptions{Owner: owner, Limit: 10, Lease: 10 * time.Minute, Now: f.base})
				if err != nil {
					fail(err)
					return
				}
				if len(jobs) == 0 {
					return
				}
				outs := make([]store.Outcome, 0, len(jobs))
				mu.Lock()
				for _, j := range jobs {
					claimed[j.Delivery.ID]++
					if j.LeaseOwner != owner {
						errs = append(errs, fmt.Errorf("%s: claimed %s leased to %q", owner, j.Delivery.ID, j.LeaseOwner))
					}
					outs = append(outs, outcome(j, store.StateDelivered, f.base))
				}
				mu.Unlock()
				if _, err := stores[w].CompleteAttempts(ctx, outs, f.base); err != nil {
					fail(err)
					return
				}
			}
			fail(errors.New("did not finish"))
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	sum := 0
	for id, n := range claimed {
		sum += n
		if n != 1 {
			t.Errorf("delivery %s claimed %d times", id, n)
		}
	}
	check(t, "distinct deliveries claimed", len(claimed), total)
	check(t, "claims in all", sum, total)
	counts, err := f.s.CountDeliveries(f.ctx)
	f.must(err)
	check(t, "counts", counts, store.Counts{store.StateDelivered: total})
	var delivered int64
	for _, id := range subIDs {
		delivered += f.getSub(p.ID, id).SuccessfulDeliveries
	}
	check(t, "successful deliveries over subscriptions", delivered, int64(total))
}

// --- completing ---

func testCompleteDelivered(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.subscription(p.ID)
	first := f.publish(p.ID, "t", f.at(-2*time.Minute), sub.ID)[0]
	second := f.publish(p.ID, "t", f.at(-time.Minute), sub.ID)[0]
	jobs := f.claim("w", f.base, 10)
	if len(jobs) != 2 {
		t.Fatalf("claimed %d jobs, want 2", len(jobs))
	}
	byID := map[string]store.Job{jobs[0].Delivery.ID: jobs[0], jobs[1].Delivery.ID: jobs[1]}
	fail := outcome(byID[first], store.StateRetrying, f.at(time.Second))
	if dis := f.complete(f.at(time.Second), fail); len(dis) != 0 {
		t.Errorf("disabled after one failure: %+v", dis)
	}
	check(t, "failures after a retry", f.getSub(p.ID, sub.ID).ConsecutiveFailures, 1)

	ok := outcome(byID[second], store.StateDelivered, f.at(2*time.Second))
	ok.Attempt.StatusCode = 204
	ok.Attempt.DurationMS = 321
	ok.Attempt.ResponseBody = "thanks"
	ok.Attempt.ResponseHeaders = "Content-Type: text/plain\nX-Request-Id: r1\n"
	f.complete(f.at(3*time.Second), ok)

	d := f.getDelivery(p.ID, second)
	check(t, "state", d.State, store.StateDelivered)
	check(t, "attempts", d.Attempts, 1)
	check(t, "delivered at", d.DeliveredAt, ptr(f.at(2*time.Second)))
	check(t, "last status", d.LastStatus, 204)
	check(t, "last duration", d.LastDurationMS, int64(321))
	check(t, "last error", d.LastError, "")
	check(t, "url", d.URL, sub.URL)
	check(t, "updated at", d.UpdatedAt, f.at(3*time.Second))

	attempts, err := f.s.ListAttempts(f.ctx, p.ID, second)
	f.must(err)
	want := ok.Attempt
	want.Number = 1
	check(t, "attempts", attempts, []store.Attempt{want})
	other := f.project()
	attempts, err = f.s.ListAttempts(f.ctx, other.ID, second)
	f.must(err)
	check(t, "attempts seen from another project", len(attempts), 0)

	got := f.getSub(p.ID, sub.ID)
	check(t, "total deliveries", got.TotalDeliveries, int64(1))
	check(t, "successful deliveries", got.SuccessfulDeliveries, int64(1))
	check(t, "failed deliveries", got.FailedDeliveries, int64(0))
	check(t, "last success", got.LastSuccessAt, ptr(f.at(2*time.Second)))
	check(t, "last failure", got.LastFailureAt, ptr(f.at(time.Second)))
	check(t, "consecutive failures after success", got.ConsecutiveFailures, 0)
	check(t, "still active", got.Active, true)

	// The failed attempt's fields.
	d = f.getDelivery(p.ID, first)
	check(t, "retrying state", d.State, store.StateRetrying)
	check(t, "retrying last status", d.LastStatus, 500)
	check(t, "retrying last error", d.LastError, "HTTP 500")
	check(t, "retrying last error code", d.LastErrorCode, "http_status")
	check(t, "retrying delivered at", d.DeliveredAt, (*time.Time)(nil))
	attempts, err = f.s.ListAttempts(f.ctx, p.ID, first)
	f.must(err)
	want = fail.Attempt
	want.Number = 1
	check(t, "failed attempt", attempts, []store.Attempt{want})
}

func testCompleteRetryingFailed(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.subscription(p.ID)
	id := f.publish(p.ID, "t", f.at(-time.Minute), sub.ID)[0]
	jobs := f.claim("w", f.base, 10)
	if len(jobs) != 1 {
		t.Fatalf("claimed %d jobs, want 1", len(jobs))
	}
	r := outcome(jobs[0], store.StateRetrying, f.at(time.Second))
	r.NextAttemptAt = f.at(90 * time.Second)
	f.complete(f.at(time.Second), r)
	d := f.getDelivery(p.ID, id)
	check(t, "state", d.State, store.StateRetrying)
	check(t, "attempts", d.Attempts, 1)
	check(t, "next attempt", d.NextAttemptAt, f.at(90*time.Second))
	s := f.getSub(p.ID, sub.ID)
	check(t, "consecutive failures", s.ConsecutiveFailures, 1)
	check(t, "failed deliveries while retrying", s.FailedDeliveries, int64(0))
	check(t, "last failure", s.LastFailureAt, ptr(f.at(time.Second)))

	check(t, "claim before the retry is due", len(f.claim("w2", f.at(89*time.Second), 10)), 0)
	jobs = f.claim("w2", f.at(90*time.Second), 10)
	if len(jobs) != 1 {
		t.Fatalf("claimed %d jobs at retry time, want 1", len(jobs))
	}
	fl := outcome(jobs[0], store.StateFailed, f.at(91*time.Second))
	f.complete(f.at(91*time.Second), fl)
	d = f.getDelivery(p.ID, id)
	check(t, "state", d.State, store.StateFailed)
	check(t, "attempts", d.Attempts, 2)
	attempts, err := f.s.ListAttempts(f.ctx, p.ID, id)
	f.must(err)
	var numbers []int
	for _, a := range attempts {
		numbers = append(numbers, a.Number)
	}
	check(t, "attempt numbers", numbers, []int{1, 2})
	s = f.getSub(p.ID, sub.ID)
	check(t, "consecutive failures", s.ConsecutiveFailures, 2)
	check(t, "failed deliveries", s.FailedDeliveries, int64(1))
	check(t, "total deliveries", s.TotalDeliveries, int64(1))
	check(t, "successful deliveries", s.SuccessfulDeliveries, int64(0))
	check(t, "last failure", s.LastFailureAt, ptr(f.at(91*time.Second)))
	check(t, "failed is not due", len(f.claim("w3", f.at(time.Hour), 10)), 0)
}

func testCompleteRequiresLease(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.subscription(p.ID)
	id := f.publish(p.ID, "t", f.at(-time.Minute), sub.ID)[0]
	jobs := f.claim("A", f.base, 10, func(o *store.ClaimOptions) { o.Lease = time.Second })
	if len(jobs) != 1 {
		t.Fatalf("claimed %d jobs, want 1", len(jobs))
	}
	before := f.getDelivery(p.ID, id)
	subBefore := f.getSub(p.ID, sub.ID)
	assertUntouched := func(what string) {
		t.Helper()
		check(t, what+": delivery", f.getDelivery(p.ID, id), before)
		attempts, err := f.s.ListAttempts(f.ctx, p.ID, id)
		f.must(err)
		check(t, what+": attempts", len(attempts), 0)
		check(t, what+": subscription", f.getSub(p.ID, sub.ID), subBefore)
	}

	stranger := outcome(jobs[0], store.StateDelivered, f.base)
	stranger.LeaseOwner = "B"
	f.complete(f.base, stranger)
	assertUntouched("outcome from a non-owner")

	// B takes over after A's lease ran out; A's late outcome is ignored.
	stolen := f.claim("B", f.at(2*time.Second), 10)
	check(t, "claim after expiry", jobIDs(stolen), []string{id})
	before = f.getDelivery(p.ID, id)
	late := outcome(jobs[0], store.StateDelivered, f.at(3*time.Second))
	late.Disable = true
	late.DisableReason = "410"
	if dis := f.complete(f.at(3*time.Second), late); len(dis) != 0 {
		t.Errorf("ignored outcome disabled a subscription: %+v", dis)
	}
	assertUntouched("outcome from the previous owner")

	f.complete(f.at(4*time.Second), outcome(stolen[0], store.StateFailed, f.at(4*time.Second)))
	check(t, "state after owner's outcome", f.getDelivery(p.ID, id).State, store.StateFailed)
	before = f.getDelivery(p.ID, id)
	subBefore = f.getSub(p.ID, sub.ID)
	f.complete(f.at(5*time.Second), outcome(stolen[0], store.StateDelivered, f.at(5*time.Second)))
	check(t, "repeated outcome: delivery", f.getDelivery(p.ID, id), before)
	check(t, "repeated outcome: subscription", f.getSub(p.ID, sub.ID), subBefore)
	attempts, err := f.s.ListAttempts(f.ctx, p.ID, id)
	f.must(err)
	check(t, "attempts after repeated outcome", len(attempts), 1)
}

func testAutoDisable(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.subscription(p.ID)
	var events []store.NewEvent
	for i := range 12 {
		events = append(events, newEvent(p.ID, "t", f.at(-time.Minute+time.Duration(i)*time.Millisecond), sub.ID))
	}
	f.insert(events...)
	jobs := f.claim("w", f.base, 100)
	if len(jobs) != 12 {
		t.Fatalf("claimed %d jobs, want 12", len(jobs))
	}
	var outs []store.Outcome
	for _, j := range jobs {
		outs = append(outs, outcome(j, store.StateRetrying, f.at(time.Second)))
	}
	outs[9].State = store.StateFailed // failures count whatever the new state
	outs[9].NextAttemptAt = time.Time{}
	v := f.version()
	check(t, "disabled after 9 failures", len(f.complete(f.at(time.Second), outs[:9]...)), 0)
	check(t, "active after 9 failures", f.getSub(p.ID, sub.ID).Active, true)
	dis := f.complete(f.at(2*time.Second), outs[9])
	if len(dis) != 1 {
		t.Fatalf("disabled after the 10th failure: %+v, want one", dis)
	}
	check(t, "disabled project", dis[0].ProjectID, p.ID)
	check(t, "disabled subscription", dis[0].SubscriptionID, sub.ID)
	check(t, "disabled failures", dis[0].Failures, 10)
	if dis[0].Reason == "" {
		t.Error("disabled without a reason")
	}
	got := f.getSub(p.ID, sub.ID)
	check(t, "active after 10 failures", got.Active, false)
	check(t, "stored reason", got.DisabledReason, dis[0].Reason)
	if nv := f.version(); nv <= v {
		t.Errorf("SubscriptionsVersion after auto-disable: got %d, want > %d", nv, v)
	}
	check(t, "disabled again when already inactive", len(f.complete(f.at(3*time.Second), outs[10:]...)), 0)
	check(t, "failures keep counting", f.getSub(p.ID, sub.ID).ConsecutiveFailures, 12)

	// Crossing the threshold inside one call reports the subscription once.
	sub2 := f.subscription(p.ID)
	events = events[:0]
	for i := range 12 {
		events = append(events, newEvent(p.ID, "t", f.at(-time.Minute+time.Duration(i)*time.Millisecond), sub2.ID))
	}
	f.insert(events...)
	jobs = f.claim("w2", f.base, 100)
	outs = outs[:0]
	for _, j := range jobs {
		outs = append(outs, outcome(j, store.StateRetrying, f.at(time.Second)))
	}
	check(t, "claimed for sub2", len(outs), 12)
	dis = f.complete(f.at(time.Second), outs...)
	// A batch is applied as a whole: the count reported is the run at its end.
	check(t, "disabled in one call", dis, []store.Disabled{{ProjectID: p.ID, SubscriptionID: sub2.ID, Reason: "12 consecutive failed attempts", Failures: 12}})

	// Successes in between reset the count.
	sub3 := f.subscription(p.ID)
	events = events[:0]
	for i := range 15 {
		events = append(events, newEvent(p.ID, "t", f.at(-time.Minute+time.Duration(i)*time.Millisecond), sub3.ID))
	}
	f.insert(events...)
	jobs = f.claim("w3", f.base, 100)
	check(t, "claimed for sub3", len(jobs), 15)
	outs = outs[:0]
	for i, j := range jobs {
		state := store.StateRetrying
		if i == 7 {
			state = store.StateDelivered
		}
		outs = append(outs, outcome(j, state, f.at(time.Second)))
	}
	check(t, "disabled with a success in between", len(f.complete(f.at(time.Second), outs...)), 0)
	got = f.getSub(p.ID, sub3.ID)
	check(t, "sub3 active", got.Active, true)
	check(t, "sub3 consecutive failures", got.ConsecutiveFailures, 7)
}

func dis0Reason(dis []store.Disabled) string {
	if len(dis) == 0 {
		return ""
	}
	return dis[0].Reason
}

func testOutcomeDisable(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.subscription(p.ID)
	f.publish(p.ID, "t", f.at(-time.Minute), sub.ID)
	f.publish(p.ID, "t", f.at(-time.Minute), sub.ID)
	jobs := f.claim("w", f.base, 10)
	if len(jobs) != 2 {
		t.Fatalf("claimed %d jobs, want 2", len(jobs))
	}
	v := f.version()
	o := outcome(jobs[0], store.StateFailed, f.at(time.Second))
	o.Attempt.StatusCode = 410
	o.Disable = true
	o.DisableReason = "endpoint returned 410 Gone"
	dis := f.complete(f.at(time.Second), o)
	check(t, "disabled", dis, []store.Disabled{{ProjectID: p.ID, SubscriptionID: sub.ID, Reason: "endpoint returned 410 Gone", Failures: 1}})
	got := f.getSub(p.ID, sub.ID)
	check(t, "active", got.Active, false)
	check(t, "reason", got.DisabledReason, "endpoint returned 410 Gone")
	check(t, "updated at", got.UpdatedAt, f.at(time.Second))
	if nv := f.version(); nv <= v {
		t.Errorf("SubscriptionsVersion after disable: got %d, want > %d", nv, v)
	}
	o2 := outcome(jobs[1], store.StateFailed, f.at(2*time.Second))
	o2.Disable = true
	o2.DisableReason = "again"
	check(t, "disabled when already inactive", len(f.complete(f.at(2*time.Second), o2)), 0)
	check(t, "reason kept", f.getSub(p.ID, sub.ID).DisabledReason, "endpoint returned 410 Gone")
	check(t, "outcome still recorded", f.getDelivery(p.ID, jobs[1].Delivery.ID).State, store.StateFailed)
}

func testReleaseLeases(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.subscription(p.ID)
	var ids []string
	for i := range 3 {
		ids = append(ids, f.publish(p.ID, "t", f.at(-time.Minute+time.Duration(i)*time.Millisecond), sub.ID)...)
	}
	other := f.publish(p.ID, "t", f.at(-time.Second), sub.ID)
	check(t, "claim by B", jobIDs(f.claim("B", f.base, 1)), []string{ids[0]})
	check(t, "claim by A", jobIDs(f.claim("A", f.base, 10)), sorted(ids[1:], other))
	check(t, "claim by C while leased", len(f.claim("C", f.base, 10)), 0)
	f.must(f.s.ReleaseLeases(f.ctx, "A"))
	check(t, "claim by C after A released", jobIDs(f.claim("C", f.base, 10)), sorted(ids[1:], other))
	f.must(f.s.ReleaseLeases(f.ctx, "nobody"))
	check(t, "B keeps its lease", len(f.claim("D", f.base, 10)), 0)
}

func testRescueLeases(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	sub := f.subscription(p.ID)
	var ids []string
	for i := range 3 {
		ids = append(ids, f.publish(p.ID, "t", f.at(-time.Minute+time.Duration(i)*time.Millisecond), sub.ID)...)
	}
	// alive and dead both claim; only dead stops sending heartbeats.
	f.must(f.s.Heartbeat(f.ctx, "alive", f.at(-time.Minute)))
	f.must(f.s.Heartbeat(f.ctx, "dead", f.at(-time.Minute)))
	check(t, "claim by alive", jobIDs(f.claim("alive", f.base, 1)), []string{ids[0]})
	check(t, "claim by dead", jobIDs(f.claim("dead", f.base, 1)), []string{ids[1]})
	check(t, "claim by never-registered", jobIDs(f.claim("ghost", f.base, 1)), []string{ids[2]})
	f.must(f.s.Heartbeat(f.ctx, "alive", f.base))

	n, err := f.s.RescueLeases(f.ctx, "self", f.at(-30*time.Second))
	f.must(err)
	check(t, "released (dead and ghost)", n, 2)
	check(t, "claimable again", jobIDs(f.claim("self", f.base, 10)), sorted([]string{ids[1], ids[2]}))

	// A dead owner's task leases are released too, so its submissions are retried at once.
	tk := f.task(p.ID, func(t *store.Task) { t.NextSubmitAt = f.at(-time.Minute) })
	claimed, err := f.s.ClaimTasksToSubmit(f.ctx, "dead", tokenHashes(10), time.Hour, f.base)
	f.must(err)
	check(t, "task claimed by the dead owner", len(claimed), 1)
	_, err = f.s.RescueLeases(f.ctx, "self", f.at(-30*time.Second))
	f.must(err)
	claimed, err = f.s.ClaimTasksToSubmit(f.ctx, "self", tokenHashes(10), time.Hour, f.base)
	f.must(err)
	if len(claimed) != 1 || claimed[0].ID != tk.ID {
		t.Errorf("task lease of a dead owner not rescued: claimed %d tasks", len(claimed))
	}

	// self is never rescued from, whatever its heartbeat says.
	n, err = f.s.RescueLeases(f.ctx, "self", f.at(time.Hour))
	f.must(err)
	check(t, "self keeps its leases; alive's lease released once stale", n, 1)
	f.must(f.s.RemoveNode(f.ctx, "alive"))
	check(t, "only the stale lease is claimable; self keeps its own", jobIDs(f.claim("other", f.base, 10)), []string{ids[0]})
}

func testNextDueAt(t *testing.T, e Storage) {
	f := setup(t, e)
	next := func() (time.Time, bool) {
		t.Helper()
		at, ok, err := f.s.NextDueAt(f.ctx)
		f.must(err)
		return at, ok
	}
	if at, ok := next(); ok {
		t.Errorf("NextDueAt on empty store: %v, true", at)
	}
	p := f.project()
	sub := f.subscription(p.ID)
	off := f.subscription(p.ID)
	f.publish(p.ID, "t", f.at(-30*time.Minute), sub.ID)
	f.publish(p.ID, "t", f.at(-20*time.Minute), sub.ID)
	jobs := f.claim("w", f.base, 10)
	check(t, "claimed", len(jobs), 2)
	f.complete(f.base, outcome(jobs[0], store.StateDelivered, f.base), outcome(jobs[1], store.StateFailed, f.base))
	if at, ok := next(); ok {
		t.Errorf("NextDueAt with only finished deliveries: %v, true", at)
	}
	f.publish(p.ID, "t", f.at(-time.Hour), off.ID)
	f.must(f.s.SetSubscriptionActive(f.ctx, p.ID, off.ID, false, "", f.base))
	if at, ok := next(); ok {
		t.Errorf("NextDueAt with only an inactive subscription's delivery: %v, true", at)
	}
	f.publish(p.ID, "t", f.at(5*time.Minute), sub.ID)
	f.publish(p.ID, "t", f.at(2*time.Minute), sub.ID)
	at, ok := next()
	check(t, "NextDueAt ok", ok, true)
	check(t, "NextDueAt", at, f.at(2*time.Minute))
	f.must(f.s.SetSubscriptionActive(f.ctx, p.ID, off.ID, true, "", f.base))
	at, _ = next()
	check(t, "NextDueAt after re-activation", at, f.at(-time.Hour))
}

// --- replay and recover ---

func testReplayDelivery(t *testing.T, e Storage) {
	f := setup(t, e)
	p, other := f.project(), f.project()
	sub, sub2 := f.subscription(p.ID), f.subscription(p.ID)
	failed := f.publish(p.ID, "t", f.at(-time.Minute), sub.ID)[0]
	jobs := f.claim("w", f.base, 10)
	check(t, "claimed", jobIDs(jobs), []string{failed})
	f.complete(f.at(time.Second), outcome(jobs[0], store.StateFailed, f.at(time.Second)))

	_, err := f.s.ReplayDelivery(f.ctx, other.ID, sub.ID, failed, f.at(time.Minute))
	wantErr(t, "ReplayDelivery(other project)", err, store.ErrNotFound)
	_, err = f.s.ReplayDelivery(f.ctx, p.ID, sub2.ID, failed, f.at(time.Minute))
	wantErr(t, "ReplayDelivery(other subscription)", err, store.ErrNotFound)
	_, err = f.s.ReplayDelivery(f.ctx, p.ID, sub.ID, newID(), f.at(time.Minute))
	wantErr(t, "ReplayDelivery(missing)", err, store.ErrNotFound)
	check(t, "state after refused replays", f.getDelivery(p.ID, failed).State, store.StateFailed)

	d, err := f.s.ReplayDelivery(f.ctx, p.ID, sub.ID, failed, f.at(time.Minute))
	f.must(err)
	check(t, "replayed state", d.State, store.StatePending)
	check(t, "replayed attempts", d.Attempts, 1)
	check(t, "replayed budget start", d.BudgetStart, 1)
	check(t, "returned = stored", d, f.getDelivery(p.ID, failed))
	jobs = f.claim("w2", f.at(time.Minute), 10)
	check(t, "replayed delivery is claimable", jobIDs(jobs), []string{failed})

	// While the lease is live the replay conflicts.
	_, err = f.s.ReplayDelivery(f.ctx, p.ID, sub.ID, failed, f.at(time.Minute+time.Second))
	wantErr(t, "ReplayDelivery(leased)", err, store.ErrConflict)
	f.complete(f.at(time.Minute+2*time.Second), outcome(jobs[0], store.StateDelivered, f.at(time.Minute+2*time.Second)))
	d = f.getDelivery(p.ID, failed)
	check(t, "attempts after replayed attempt", d.Attempts, 2)
	check(t, "budget start kept", d.BudgetStart, 1)

	// A delivered delivery can be sent again.
	d, err = f.s.ReplayDelivery(f.ctx, p.ID, sub.ID, failed, f.at(2*time.Minute))
	f.must(err)
	check(t, "replayed delivered: state", d.State, store.StatePending)
	check(t, "replayed delivered: budget start", d.BudgetStart, 2)
	check(t, "replayed delivered: delivered at", d.DeliveredAt, (*time.Time)(nil))

	// A replay after a lease expired takes the delivery from its old owner: the
	// owner's late outcome is ignored and the delivery is claimable again.
	jobs = f.claim("slow", f.at(2*time.Minute), 10, func(o *store.ClaimOptions) { o.Lease = time.Second })
	check(t, "claimed by slow", jobIDs(jobs), []string{failed})
	_, err = f.s.ReplayDelivery(f.ctx, p.ID, sub.ID, failed, f.at(3*time.Minute))
	f.must(err)
	before := f.getDelivery(p.ID, failed)
	f.complete(f.at(3*time.Minute), outcome(jobs[0], store.StateFailed, f.at(3*time.Minute)))
	check(t, "late outcome after replay", f.getDelivery(p.ID, failed), before)
	check(t, "claimable after replay", jobIDs(f.claim("w3", f.at(3*time.Minute), 10)), []string{failed})
}

func testRecoverDeliveries(t *testing.T, e Storage) {
	f := setup(t, e)
	p, other := f.project(), f.project()
	sub, sub2 := f.subscription(p.ID), f.subscription(p.ID)
	from, to := f.at(-3*time.Hour), f.at(-time.Hour)
	type mk struct {
		at    time.Time
		typ   string
		sub   string
		state string
	}
	plan := map[string]mk{
		"beforeFrom":  {from.Add(-time.Millisecond), "a", sub.ID, store.StateFailed},
		"atFrom":      {from, "a", sub.ID, store.StateFailed},
		"middleB":     {f.at(-2 * time.Hour), "b", sub.ID, store.StateFailed},
		"middleC":     {f.at(-2 * time.Hour), "c", sub.ID, store.StateFailed},
		"atTo":        {to, "a", sub.ID, store.StateFailed},
		"afterTo":     {to.Add(time.Millisecond), "a", sub.ID, store.StateFailed},
		"delivered":   {f.at(-2 * time.Hour), "a", sub.ID, store.StateDelivered},
		"retrying":    {f.at(-2 * time.Hour), "a", sub.ID, store.StateRetrying},
		"otherSub":    {f.at(-2 * time.Hour), "a", sub2.ID, store.StateFailed},
		"pendingLate": {f.at(-2 * time.Hour), "a", sub.ID, ""},
	}
	ids := map[string]string{}
	for name, m := range plan {
		ids[name] = f.publish(p.ID, m.typ, m.at, m.sub)[0]
	}
	jobs := f.claim("w", f.base, 100)
	var outs []store.Outcome
	for _, j := range jobs {
		for name, id := range ids {
			if id == j.Delivery.ID && plan[name].state != "" {
				outs = append(outs, outcome(j, plan[name].state, f.base))
			}
		}
	}
	f.complete(f.base, outs...)
	f.must(f.s.ReleaseLeases(f.ctx, "w"))
	state := func(name string) string { return f.getDelivery(p.ID, ids[name]).State }

	n, err := f.s.RecoverDeliveries(f.ctx, store.RecoverFilter{ProjectID: other.ID, SubscriptionID: sub.ID, From: from, To: to}, f.at(time.Minute))
	f.must(err)
	check(t, "recovered through another project", n, 0)

	n, err = f.s.RecoverDeliveries(f.ctx, store.RecoverFilter{ProjectID: p.ID, SubscriptionID: sub.ID, From: from, To: to, EventTypes: []string{"a", "b"}}, f.at(time.Minute))
	f.must(err)
	check(t, "recovered with types a, b", n, 3)
	for name, want := range map[string]string{
		"beforeFrom": store.StateFailed, "atFrom": store.StatePending, "middleB": store.StatePending, "middleC": store.StateFailed,
		"atTo": store.StatePending, "afterTo": store.StateFailed, "delivered": store.StateDelivered, "retrying": store.StateRetrying,
		"otherSub": store.StateFailed, "pendingLate": store.StatePending,
	} {
		check(t, "state of "+name, state(name), want)
	}
	d := f.getDelivery(p.ID, ids["atFrom"])
	check(t, "recovered budget start", d.BudgetStart, d.Attempts)
	check(t, "recovered attempts", d.Attempts, 1)

	n, err = f.s.RecoverDeliveries(f.ctx, store.RecoverFilter{ProjectID: p.ID, SubscriptionID: sub.ID, From: from, To: to}, f.at(time.Minute))
	f.must(err)
	check(t, "recovered all types", n, 1)
	check(t, "state of middleC", state("middleC"), store.StatePending)
	jobs = f.claim("w2", f.at(time.Minute), 100)
	check(t, "recovered are claimable", jobIDs(jobs), sorted([]string{ids["atFrom"], ids["middleB"], ids["middleC"], ids["atTo"], ids["pendingLate"], ids["retrying"]}))
}

// --- listing, deleting, counting, pruning ---

func testListDeliveries(t *testing.T, e Storage) {
	f := setup(t, e)
	p, other := f.project(), f.project()
	s1, s2 := f.subscription(p.ID), f.subscription(p.ID)
	so := f.subscription(other.ID)
	var d1, d2 []string // oldest first
	for i := range 4 {
		at := f.at(time.Duration(i-10) * time.Minute)
		d1 = append(d1, f.publish(p.ID, "t", at, s1.ID)...)
		d2 = append(d2, f.publish(p.ID, "t", at.Add(time.Second), s2.ID)...)
	}
	f.publish(other.ID, "t", f.at(-10*time.Minute), so.ID)
	jobs := f.claim("w", f.base, 100, func(o *store.ClaimOptions) { o.Exclude = []string{so.ID} })
	for _, j := range jobs {
		if j.Delivery.ID == d1[1] {
			f.complete(f.base, outcome(j, store.StateDelivered, f.base))
		}
		if j.Delivery.ID == d2[2] {
			f.complete(f.base, outcome(j, store.StateFailed, f.base))
		}
	}
	list := func(fl store.DeliveryFilter) []string {
		t.Helper()
		fl.ProjectID = p.ID
		ds, err := f.s.ListDeliveries(f.ctx, fl)
		f.must(err)
		return deliveryIDs(ds)
	}
	rev := func(ids ...string) []string {
		out := slices.Clone(ids)
		slices.Reverse(out)
		return out
	}
	check(t, "all, newest first", list(store.DeliveryFilter{}), []string{d2[3], d1[3], d2[2], d1[2], d2[1], d1[1], d2[0], d1[0]})
	check(t, "subscription 1", list(store.DeliveryFilter{SubscriptionID: s1.ID}), rev(d1...))
	check(t, "delivered", list(store.DeliveryFilter{State: store.StateDelivered}), []string{d1[1]})
	check(t, "failed of subscription 2", list(store.DeliveryFilter{SubscriptionID: s2.ID, State: store.StateFailed}), []string{d2[2]})
	check(t, "failed of subscription 1", list(store.DeliveryFilter{SubscriptionID: s1.ID, State: store.StateFailed}), []string{})
	check(t, "pending of subscription 1", list(store.DeliveryFilter{SubscriptionID: s1.ID, State: store.StatePending}), []string{d1[3], d1[2], d1[0]})
	from, to := f.at(-9*time.Minute), f.at(-8*time.Minute) // d1[1] .. d1[2] inclusive
	check(t, "from/to", list(store.DeliveryFilter{From: &from, To: &to}), []string{d1[2], d2[1], d1[1]})
	check(t, "from", list(store.DeliveryFilter{SubscriptionID: s1.ID, From: &from}), []string{d1[3], d1[2], d1[1]})
	check(t, "to", list(store.DeliveryFilter{SubscriptionID: s2.ID, To: &to}), []string{d2[1], d2[0]})
	check(t, "limit 3", list(store.DeliveryFilter{Limit: 3}), []string{d2[3], d1[3], d2[2]})
	check(t, "limit 3 offset 3", list(store.DeliveryFilter{Limit: 3, Offset: 3}), []string{d1[2], d2[1], d1[1]})
	check(t, "offset past the end", list(store.DeliveryFilter{Limit: 3, Offset: 8}), []string{})
	check(t, "event id", list(store.DeliveryFilter{EventID: f.getDelivery(p.ID, d2[0]).EventID}), []string{d2[0]})
	check(t, "other project's subscription", list(store.DeliveryFilter{SubscriptionID: so.ID}), []string{})
}

func testDeleteSubscription(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	gone, kept := f.subscription(p.ID), f.subscription(p.ID)
	ne := newEvent(p.ID, "t", f.at(-time.Minute), gone.ID, kept.ID)
	f.insert(ne)
	jobs := f.claim("w", f.base, 10)
	check(t, "claimed", len(jobs), 2)
	var outs []store.Outcome
	for _, j := range jobs {
		outs = append(outs, outcome(j, store.StateRetrying, f.base))
	}
	f.complete(f.base, outs...)
	goneID, keptID := ne.DeliveryIDs[0], ne.DeliveryIDs[1]

	f.must(f.s.DeleteSubscription(f.ctx, p.ID, gone.ID))
	_, err := f.s.GetDelivery(f.ctx, p.ID, goneID)
	wantErr(t, "GetDelivery(deleted subscription's)", err, store.ErrNotFound)
	attempts, err := f.s.ListAttempts(f.ctx, p.ID, goneID)
	f.must(err)
	check(t, "deleted subscription's attempts", len(attempts), 0)
	ds, err := f.s.ListDeliveries(f.ctx, store.DeliveryFilter{ProjectID: p.ID, SubscriptionID: gone.ID})
	f.must(err)
	check(t, "deleted subscription's deliveries", len(ds), 0)

	check(t, "other delivery kept", f.getDelivery(p.ID, keptID).State, store.StateRetrying)
	attempts, err = f.s.ListAttempts(f.ctx, p.ID, keptID)
	f.must(err)
	check(t, "other attempts kept", len(attempts), 1)
	if _, err := f.s.GetEvent(f.ctx, p.ID, ne.Event.ID); err != nil {
		t.Errorf("event of a deleted subscription's delivery: %v", err)
	}
	counts, err := f.s.CountDeliveries(f.ctx)
	f.must(err)
	check(t, "counts", counts, store.Counts{store.StateRetrying: 1})
}

func testCountDeliveries(t *testing.T, e Storage) {
	f := setup(t, e)
	counts, err := f.s.CountDeliveries(f.ctx)
	f.must(err)
	check(t, "counts on empty store", len(counts), 0)
	p1, p2 := f.project(), f.project()
	s1, s2 := f.subscription(p1.ID), f.subscription(p2.ID)
	for range 5 {
		f.publish(p1.ID, "t", f.at(-time.Minute), s1.ID)
		f.publish(p2.ID, "t", f.at(-time.Minute), s2.ID)
	}
	jobs := f.claim("w", f.base, 6)
	states := []string{store.StateDelivered, store.StateDelivered, store.StateDelivered, store.StateFailed, store.StateRetrying, store.StateRetrying}
	var outs []store.Outcome
	for i, j := range jobs {
		outs = append(outs, outcome(j, states[i], f.base))
	}
	f.complete(f.base, outs...)
	counts, err = f.s.CountDeliveries(f.ctx)
	f.must(err)
	check(t, "counts", counts, store.Counts{store.StatePending: 4, store.StateRetrying: 2, store.StateDelivered: 3, store.StateFailed: 1})
}

func testPrune(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	s1, s2 := f.subscription(p.ID), f.subscription(p.ID)
	old := f.at(-48 * time.Hour)
	mk := func(at time.Time) store.NewEvent {
		ne := newEvent(p.ID, "t", at, s1.ID, s2.ID)
		f.insert(ne)
		return ne
	}
	done := mk(old)                               // delivered + delivered
	mixed := mk(old.Add(time.Millisecond))        // delivered + failed
	pending := mk(old.Add(2 * time.Millisecond))  // delivered + pending
	retrying := mk(old.Add(3 * time.Millisecond)) // failed + retrying
	recent := mk(f.at(-time.Minute))              // delivered + delivered, but new
	empty := newEvent(p.ID, "t", old)             // matched nothing: nothing left to do
	f.insert(empty)

	plan := map[string]string{
		done.DeliveryIDs[0]: store.StateDelivered, done.DeliveryIDs[1]: store.StateDelivered,
		mixed.DeliveryIDs[0]: store.StateDelivered, mixed.DeliveryIDs[1]: store.StateFailed,
		pending.DeliveryIDs[0]:  store.StateDelivered,
		retrying.DeliveryIDs[0]: store.StateFailed, retrying.DeliveryIDs[1]: store.StateRetrying,
		recent.DeliveryIDs[0]: store.StateDelivered, recent.DeliveryIDs[1]: store.StateDelivered,
	}
	jobs := f.claim("w", f.base, 100)
	var outs []store.Outcome
	for _, j := range jobs {
		if st, ok := plan[j.Delivery.ID]; ok {
			outs = append(outs, outcome(j, st, f.base))
		}
	}
	check(t, "outcomes", len(outs), len(plan))
	f.complete(f.base, outs...)
	f.must(f.s.ReleaseLeases(f.ctx, "w"))

	cutoff := f.at(-24 * time.Hour)
	n, err := f.s.Prune(f.ctx, cutoff, 2)
	f.must(err)
	check(t, "pruned with limit 2", n, 2)
	n, err = f.s.Prune(f.ctx, cutoff, 100)
	f.must(err)
	check(t, "pruned the rest", n, 1)
	n, err = f.s.Prune(f.ctx, cutoff, 100)
	f.must(err)
	check(t, "pruned again", n, 0)

	for _, ne := range []store.NewEvent{done, mixed, empty} {
		_, err := f.s.GetEvent(f.ctx, p.ID, ne.Event.ID)
		wantErr(t, "GetEvent(pruned)", err, store.ErrNotFound)
		for _, id := range ne.DeliveryIDs {
			_, err := f.s.GetDelivery(f.ctx, p.ID, id)
			wantErr(t, "GetDelivery(pruned)", err, store.ErrNotFound)
			attempts, err := f.s.ListAttempts(f.ctx, p.ID, id)
			f.must(err)
			check(t, "attempts of pruned delivery", len(attempts), 0)
		}
	}
	for _, ne := range []store.NewEvent{pending, retrying, recent} {
		if _, err := f.s.GetEvent(f.ctx, p.ID, ne.Event.ID); err != nil {
			t.Errorf("kept event %s: %v", ne.Event.ID, err)
		}
		for _, id := range ne.DeliveryIDs {
			f.getDelivery(p.ID, id)
			if st := plan[id]; st == store.StateDelivered || st == store.StateFailed {
				attempts, err := f.s.ListAttempts(f.ctx, p.ID, id)
				f.must(err)
				check(t, "attempts of kept delivery", len(attempts), 1)
			}
		}
	}
	counts, err := f.s.CountDeliveries(f.ctx)
	f.must(err)
	check(t, "counts after prune", counts, store.Counts{store.StateDelivered: 3, store.StatePending: 1, store.StateFailed: 1, store.StateRetrying: 1})
}

func testEventTypeExamples(t *testing.T, e Storage) {
	f := setup(t, e)
	p1, p2 := f.project(), f.project()
	newest := map[string]string{}
	for i, typ := range []string{"task.created", "task.solved", "task.created", "zeta.old", "task.failed", "task.solved"} {
		ne := newEvent(p1.ID, typ, f.at(time.Duration(i)*time.Second))
		ne.Event.Data = json.RawMessage(fmt.Sprintf(`{"n": %d}`, i))
		f.insert(ne)
		newest[typ] = ne.Event.ID
	}
	f.insert(newEvent(p2.ID, "other.project", f.at(time.Hour)))
	examples := func(scan, limit int) []string {
		t.Helper()
		evs, err := f.s.EventTypeExamples(f.ctx, p1.ID, scan, limit)
		f.must(err)
		out := []string{}
		for _, ev := range evs {
			if ev.ProjectID != p1.ID {
				t.Errorf("EventTypeExamples returned an event of project %s", ev.ProjectID)
			}
			out = append(out, ev.Type+"="+ev.ID)
		}
		return out
	}
	check(t, "EventTypeExamples newest of each type, by type", examples(100, 100), []string{
		"task.created=" + newest["task.created"], "task.failed=" + newest["task.failed"],
		"task.solved=" + newest["task.solved"], "zeta.old=" + newest["zeta.old"]})
	check(t, "EventTypeExamples limit", examples(100, 2), []string{
		"task.created=" + newest["task.created"], "task.failed=" + newest["task.failed"]})
	// Only the newest scan events are looked at: the two newest are task.failed
	// and task.solved.
	check(t, "EventTypeExamples scan", examples(2, 100), []string{
		"task.failed=" + newest["task.failed"], "task.solved=" + newest["task.solved"]})
	evs, err := f.s.EventTypeExamples(f.ctx, p1.ID, 100, 1)
	f.must(err)
	if len(evs) != 1 || string(evs[0].Data) != `{"n": 2}` && string(evs[0].Data) != `{"n":2}` {
		t.Errorf("EventTypeExamples payload = %+v, want the newest task.created's {\"n\": 2}", evs)
	}
}
