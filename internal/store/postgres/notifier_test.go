package postgres_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"carrier/internal/cluster"
	"carrier/internal/store/postgres"
	"carrier/internal/store/storetest"
)

// TestNotifierAcrossConnections: a notification sent by one node's notifier
// reaches another's listener on the same schema, with its payload, and not
// a listener of another schema (another deployment, or another test).
func TestNotifierAcrossConnections(t *testing.T) {
	var pg []storetest.Engine
	for _, e := range storetest.Engines(t) {
		if e.Name == storetest.Postgres {
			pg = append(pg, e)
		}
	}
	if len(pg) == 0 {
		return // Engines reported the skip
	}
	other := storetest.Engines(t)[1] // a second, separate schema
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	sender := postgres.NewNotifier(pg[0].DatabaseURL, log)
	receiver := postgres.NewNotifier(pg[0].DatabaseURL, log)
	stranger := postgres.NewNotifier(other.DatabaseURL, log)
	got := make(chan string, 16)
	strayed := make(chan string, 16)
	receiver.Listen(cluster.TopicQueue, func(p string) {
		if p != "" { // "" says: listening (again), re-read everything
			got <- p
		}
	})
	ready := make(chan struct{}, 1)
	receiver.Listen(cluster.TopicDeliveries, func(p string) {
		if p == "" {
			ready <- struct{}{}
		}
	})
	stranger.Listen(cluster.TopicQueue, func(p string) {
		if p != "" {
			strayed <- p
		}
	})
	for _, n := range []*postgres.Notifier{sender, receiver, stranger} {
		go n.Run(ctx)
	}
	select {
	case <-ready:
	case <-ctx.Done():
		t.Fatal("the receiver never listened")
	}
	time.Sleep(200 * time.Millisecond) // the stranger listens too
	sent := time.Now()
	sender.Notify(cluster.TopicQueue, "queue-1")
	select {
	case p := <-got:
		if p != "queue-1" {
			t.Errorf("payload %q, want queue-1", p)
		}
		t.Logf("notified after %v", time.Since(sent))
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5 s")
	}
	select {
	case p := <-strayed:
		t.Errorf("a listener on another schema got %q", p)
	case <-time.After(300 * time.Millisecond):
	}
}
