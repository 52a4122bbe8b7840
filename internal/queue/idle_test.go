package queue_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"carrier/internal/queue"
	"carrier/internal/store"
	"carrier/internal/store/storetest"
)

// receiveCounter is the real store, counting receives: the queue service's
// only write while a long poll waits.
type receiveCounter struct {
	store.Store
	receives atomic.Int64
}

func (c *receiveCounter) ReceiveMessages(ctx context.Context, projectID, queueID string, max int, visibility time.Duration, now time.Time) ([]store.QueueMessage, error) {
	c.receives.Add(1)
	return c.Store.ReceiveMessages(ctx, projectID, queueID, max, visibility, now)
}

// TestIdleLongPollWritesNothing: a receiver long-polling an empty queue
// only reads, however many polls it makes; a delayed message wakes it when
// it comes due, with one receive.
func TestIdleLongPollWritesNothing(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			st, ctx := setup(t, e)
			counted := &receiveCounter{Store: st}
			s := queue.New(counted)
			s.PollInterval = 20 * time.Millisecond // many polls in the wait
			q, err := s.CreateQueue(ctx, "p", queue.NewQueue{Name: "idle"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Receive(ctx, "p", q.ID, queue.ReceiveOptions{Max: 1, Wait: time.Second})
			if err != nil || len(got) != 0 {
				t.Fatalf("receive on an empty queue: %v, %v", got, err)
			}
			if n := counted.receives.Load(); n != 0 {
				t.Errorf("an idle 1 s long poll made %d receives (write transactions), want 0", n)
			}

			delay := 300 * time.Millisecond
			if _, err := s.Send(ctx, "p", q.ID, []queue.Message{{Body: "later", Delay: &delay}}); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			got, err = s.Receive(ctx, "p", q.ID, queue.ReceiveOptions{Max: 1, Wait: 5 * time.Second})
			if err != nil || len(got) != 1 || got[0].Body != "later" {
				t.Fatalf("receive of the delayed message: %v, %v", got, err)
			}
			if waited := time.Since(start); waited < 200*time.Millisecond {
				t.Errorf("received a message delayed by %v after %v", delay, waited)
			}
			if n := counted.receives.Load(); n != 1 {
				t.Errorf("%d receives to take the delayed message, want 1", n)
			}
		})
	}
}
