package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"carrier/internal/cluster"
)

// Notifier is the cluster notifier of nodes that share a PostgreSQL
// database: LISTEN on one connection of its own, NOTIFY from another.
// Channels are named after the schema Carrier's tables live in, so two
// Carrier deployments on one database (or two tests in their own schemas)
// do not wake each other.
type Notifier struct {
	url string
	log *slog.Logger
	cluster.Listeners

	mu      sync.Mutex
	pending map[[2]string]bool // (topic, payload) waiting to be sent
	signal  chan struct{}
	prefix  string // "carrier.<schema>.", set by Run
	ready   chan struct{}
}

// NewNotifier returns a notifier for the database at url (the same URL as
// the store's).
func NewNotifier(url string, log *slog.Logger) *Notifier {
	return &Notifier{url: url, log: log, pending: map[[2]string]bool{}, signal: make(chan struct{}, 1), ready: make(chan struct{})}
}

// Listen registers fn for topic. Call it before Run.
func (n *Notifier) Listen(topic string, fn func(string)) { n.Add(topic, fn) }

// Notify queues a notification; Run sends it. Repeats of one (topic,
// payload) queued before the send go as one.
func (n *Notifier) Notify(topic, payload string) {
	n.mu.Lock()
	n.pending[[2]string{topic, payload}] = true
	n.mu.Unlock()
	select {
	case n.signal <- struct{}{}:
	default:
	}
}

// Run listens and sends until ctx ends, reconnecting after a failure.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.listen(ctx) }()
	go func() { defer wg.Done(); n.send(ctx) }()
	wg.Wait()
}

// connect opens a connection of the notifier's own, bounded in time.
func (n *Notifier) connect(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	c, err := pgx.Connect(cctx, n.url)
	if err != nil {
		return nil, err
	}
	if n.prefix == "" {
		var schema string
		if err := c.QueryRow(cctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			c.Close(ctx)
			return nil, err
		}
		n.mu.Lock()
		if n.prefix == "" {
			n.prefix = "carrier." + schema + "."
			close(n.ready)
		}
		n.mu.Unlock()
	}
	return c, nil
}

// pause waits before a reconnection; false when ctx ended.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (n *Notifier) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := n.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("cluster notifier: listen", "err", err)
		if !pause(ctx, time.Second) {
			return
		}
	}
}

// listenOnce listens on one connection until it fails. After (re)connecting
// it tells every listener that notifications may have been missed.
func (n *Notifier) listenOnce(ctx context.Context) error {
	c, err := n.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	topics := n.Topics()
	for _, t := range topics {
		if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{n.prefix + t}.Sanitize()); err != nil {
			return fmt.Errorf("listen %s: %w", t, err)
		}
	}
	for _, t := range topics {
		n.Dispatch(t, "")
	}
	for {
		note, err := c.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if topic, ok := strings.CutPrefix(note.Channel, n.prefix); ok {
			n.Dispatch(topic, note.Payload)
		}
	}
}

func (n *Notifier) send(ctx context.Context) {
	select {
	case <-n.ready:
	case <-ctx.Done():
		return
	}
	var c *pgx.Conn
	defer func() {
		if c != nil {
			c.Close(context.Background())
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.signal:
		}
		n.mu.Lock()
		batch := n.pending
		n.pending = map[[2]string]bool{}
		n.mu.Unlock()
		for note := range batch {
			var err error
			if c == nil {
				c, err = n.connect(ctx)
			}
			if err == nil {
				sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err = c.Exec(sctx, `SELECT pg_notify($1, $2)`, n.prefix+note[0], note[1])
				cancel()
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				// A lost hint costs latency only: the slow polls catch up.
				n.log.Warn("cluster notifier: notify", "topic", note[0], "err", err)
				if c != nil {
					c.Close(context.Background())
					c = nil
				}
			}
		}
	}
}
