package dest_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"carrier/internal/dest"
	"carrier/internal/dispatch"
	"carrier/internal/store"
)

// fakeKind records the jobs sent to it.
type fakeKind struct {
	name string
	sent []string
}

func (k *fakeKind) Name() string                                  { return k.name }
func (k *fakeKind) Validate(json.RawMessage) error                { return nil }
func (k *fakeKind) Redact(sub store.Subscription) json.RawMessage { return sub.Destination }
func (k *fakeKind) Summary(json.RawMessage) string                { return k.name }
func (k *fakeKind) Send(_ context.Context, job store.Job, _ time.Time) dispatch.Result {
	k.sent = append(k.sent, job.Delivery.ID)
	return dispatch.Result{Delivered: true}
}

func job(kind, id string) store.Job {
	return store.Job{Subscription: store.Subscription{Kind: kind}, Delivery: store.Delivery{ID: id}}
}

func TestRegistrySendsEachJobWithItsKind(t *testing.T) {
	hook, chat := &fakeKind{name: "hook"}, &fakeKind{name: "chat"}
	r := dest.NewRegistry("hook")
	r.Register(hook)
	r.Register(chat)

	ctx := context.Background()
	r.Send(ctx, job("chat", "d1"), time.Now())
	r.Send(ctx, job("", "d2"), time.Now()) // stored without a kind: the unset kind
	res := r.Send(ctx, job("pager", "d3"), time.Now())

	if len(hook.sent) != 1 || hook.sent[0] != "d2" || len(chat.sent) != 1 || chat.sent[0] != "d1" {
		t.Fatalf("hook sent %v, chat sent %v", hook.sent, chat.sent)
	}
	if res.Delivered || res.Retryable || res.ErrorCode != "unknown_destination" {
		t.Fatalf("unknown kind: %+v", res)
	}
	if k, ok := r.Lookup(""); !ok || k != hook {
		t.Fatalf(`Lookup("") = %v, %v`, k, ok)
	}
	if _, ok := r.Lookup("pager"); ok {
		t.Fatal("Lookup found an unregistered kind")
	}
	if got := r.Names(); len(got) != 2 || got[0] != "hook" || got[1] != "chat" {
		t.Fatalf("Names = %v", got)
	}
}

func TestRegistryRefusesAKindTwice(t *testing.T) {
	r := dest.NewRegistry("hook")
	r.Register(&fakeKind{name: "hook"})
	defer func() {
		if recover() == nil {
			t.Fatal("registering a name twice did not panic")
		}
	}()
	r.Register(&fakeKind{name: "hook"})
}
