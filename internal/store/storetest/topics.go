package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"carrier/internal/store"
)

func testTopics(t *testing.T, e Storage) {
	f := setup(t, e)
	p, other := f.project().ID, f.project().ID
	topic := store.Topic{ID: newID(), ProjectID: p, Name: "orders.fifo", FIFO: true, ContentDedup: true,
		Attributes: map[string]string{"DisplayName": "Orders"}, Tags: map[string]string{"team": "ops"}, CreatedAt: f.base, UpdatedAt: f.base}
	f.must(f.s.CreateTopic(f.ctx, topic))
	f.must(f.s.CreateTopic(f.ctx, store.Topic{ID: newID(), ProjectID: p, Name: "alerts", CreatedAt: f.base, UpdatedAt: f.base}))
	if err := f.s.CreateTopic(f.ctx, store.Topic{ID: newID(), ProjectID: p, Name: "alerts", CreatedAt: f.base}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second topic of the same name: %v", err)
	}
	got, err := f.s.TopicByName(f.ctx, p, "orders.fifo")
	f.must(err)
	if !reflect.DeepEqual(got, topic) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, topic)
	}
	if _, err := f.s.TopicByName(f.ctx, other, "orders.fifo"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another project's topic: %v", err)
	}
	list, err := f.s.ListTopics(f.ctx, p)
	f.must(err)
	if len(list) != 2 || list[0].Name != "alerts" || list[1].Name != "orders.fifo" || len(list[0].Attributes) != 0 {
		t.Fatalf("list: %+v", list)
	}
	got.Attributes["Policy"] = `{"Version":"2012-10-17"}`
	got.Tags = map[string]string{}
	got.ContentDedup = false
	got.UpdatedAt = f.base.Add(time.Second)
	f.must(f.s.UpdateTopic(f.ctx, got))
	again, err := f.s.TopicByName(f.ctx, p, "orders.fifo")
	f.must(err)
	if !reflect.DeepEqual(again, got) {
		t.Fatalf("after update:\n got %+v\nwant %+v", again, got)
	}
	if err := f.s.UpdateTopic(f.ctx, store.Topic{ProjectID: other, Name: "orders.fifo"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update another project's topic: %v", err)
	}
	if err := f.s.DeleteTopic(f.ctx, other, "alerts", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete another project's topic: %v", err)
	}
	f.must(f.s.DeleteTopic(f.ctx, p, "alerts", nil))
	if list, _ := f.s.ListTopics(f.ctx, p); len(list) != 1 {
		t.Fatalf("after delete: %+v", list)
	}

	// A topic goes with its subscriptions and their deliveries, in one
	// transaction; naming another project's topic deletes nothing.
	sub := f.subscription(p)
	ids := f.publish(p, "sns.orders.fifo", f.base, sub.ID)
	if err := f.s.DeleteTopic(f.ctx, other, "orders.fifo", []string{sub.ID}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete another project's topic: %v", err)
	}
	f.getSub(p, sub.ID)
	v := f.version()
	f.must(f.s.DeleteTopic(f.ctx, p, "orders.fifo", []string{sub.ID}))
	if _, err := f.s.GetSubscription(f.ctx, p, sub.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the topic's subscription after delete: %v", err)
	}
	if _, err := f.s.GetDelivery(f.ctx, p, ids[0]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the subscription's delivery after delete: %v", err)
	}
	if f.version() == v {
		t.Fatal("deleting a topic with subscriptions did not bump the subscriptions version")
	}
}

// testSigningKeys: nodes racing to create the signing key all get the one
// stored first, and it reads back as written.
func testSigningKeys(t *testing.T, e Storage) {
	f := setup(t, e)
	if _, err := f.s.SigningKey(f.ctx, "sns"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	const racers = 8
	got := make([]store.SigningKey, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = f.s.CreateSigningKey(f.ctx, store.SigningKey{Name: "sns", PrivateKey: fmt.Sprintf("key-%d", i),
				Certificate: fmt.Sprintf("cert-%d", i), CreatedAt: f.base})
		}()
	}
	wg.Wait()
	for i := range racers {
		f.must(errs[i])
		if got[i] != got[0] {
			t.Fatalf("racer %d got %+v, racer 0 %+v", i, got[i], got[0])
		}
	}
	stored, err := f.s.SigningKey(f.ctx, "sns")
	f.must(err)
	if stored != got[0] || stored.PrivateKey[len("key-"):] != stored.Certificate[len("cert-"):] || !stored.CreatedAt.Equal(f.base) {
		t.Fatalf("stored %+v, created %+v", stored, got[0])
	}
}
