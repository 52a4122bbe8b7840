package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"carrier/internal/ingest"
	"carrier/internal/queue"
	"carrier/internal/store"
	"carrier/internal/store/storetest"
)

func setup(t *testing.T, e storetest.Engine) (store.Store, context.Context) {
	t.Helper()
	st := e.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if err := st.CreateProject(ctx, store.Project{ID: "p", Name: "p", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return st, ctx
}

// TestReceiveWakesOnSendFromAnotherProcess: a receiver in one process (one
// Service) sees a message sent through another within about a poll interval.
func TestReceiveWakesOnSendFromAnotherProcess(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			st, ctx := setup(t, e)
			a, b := queue.New(st), queue.New(st)
			q, err := a.CreateQueue(ctx, "p", queue.NewQueue{Name: "q"})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan []store.QueueMessage, 1)
			go func() {
				got, err := a.Receive(ctx, "p", q.ID, queue.ReceiveOptions{Max: 1, Wait: 5 * time.Second})
				if err != nil {
					t.Error(err)
				}
				done <- got
			}()
			time.Sleep(100 * time.Millisecond)
			sent := time.Now()
			if _, err := b.Send(ctx, "p", q.ID, []queue.Message{{Body: "hi"}}); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-done:
				if len(got) != 1 || got[0].Body != "hi" {
					t.Fatalf("got %v", got)
				}
				if d := time.Since(sent); d > time.Second {
					t.Errorf("woke %v after a send from another process", d)
				}
			case <-time.After(6 * time.Second):
				t.Fatal("receive did not return")
			}
		})
	}
}

func TestValidationNamesTheField(t *testing.T) {
	st, ctx := setup(t, storetest.Engines(t)[0])
	s := queue.New(st)
	neg := -time.Second
	for _, tc := range []struct {
		in    queue.NewQueue
		field string
	}{
		{queue.NewQueue{Name: ""}, "name"},
		{queue.NewQueue{Name: "a.b"}, "name"},
		{queue.NewQueue{Name: "a", VisibilityTimeout: &neg}, "visibility_timeout_seconds"},
		{queue.NewQueue{Name: "a", MaxReceiveCount: -1}, "max_receive_count"},
	} {
		_, err := s.CreateQueue(ctx, "p", tc.in)
		var verr *ingest.ValidationError
		if !errors.As(err, &verr) || verr.Field != tc.field {
			t.Errorf("%+v: %v, want field %s", tc.in, err, tc.field)
		}
	}
}

// TestCloseEndsLongPolls: Close answers a waiting receive at once.
func TestCloseEndsLongPolls(t *testing.T) {
	st, ctx := setup(t, storetest.Engines(t)[0])
	s := queue.New(st)
	q, err := s.CreateQueue(ctx, "p", queue.NewQueue{Name: "q"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan time.Time, 1)
	go func() {
		s.Receive(ctx, "p", q.ID, queue.ReceiveOptions{Max: 1, Wait: 10 * time.Second})
		done <- time.Now()
	}()
	time.Sleep(100 * time.Millisecond)
	closed := time.Now()
	s.Close()
	select {
	case at := <-done:
		if d := at.Sub(closed); d > time.Second {
			t.Errorf("receive returned %v after Close", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("receive still waiting after Close")
	}
}

// BenchmarkSendReceiveAck measures a queue's round trip on each engine:
// a batch of 10 messages sent, received and acknowledged one by one, as an SQS
// consumer does. It reports messages per second through all three steps.
func BenchmarkSendReceiveAck(b *testing.B) {
	for _, e := range storetest.Engines(b) {
		b.Run(e.Name, func(b *testing.B) {
			st := e.Open(b)
			ctx := context.Background()
			if err := st.CreateProject(ctx, store.Project{ID: "p", Name: "p", CreatedAt: time.Now()}); err != nil {
				b.Fatal(err)
			}
			svc := queue.New(st)
			q, err := svc.CreateQueue(ctx, "p", queue.NewQueue{Name: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			batch := make([]queue.Message, queue.MaxBatch)
			for i := range batch {
				batch[i] = queue.Message{Body: `{"task_id":"01a2","status":"solved","solution":"03AGdBq2-SIM-7000000001"}`}
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := svc.Send(ctx, "p", q.ID, batch); err != nil {
					b.Fatal(err)
				}
				got, err := svc.Receive(ctx, "p", q.ID, queue.ReceiveOptions{Max: queue.MaxBatch})
				if err != nil || len(got) != queue.MaxBatch {
					b.Fatalf("receive: %d messages, %v", len(got), err)
				}
				for _, m := range got {
					if err := st.DeleteMessage(ctx, "p", q.ID, m.ReceiptHandle); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*queue.MaxBatch)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
