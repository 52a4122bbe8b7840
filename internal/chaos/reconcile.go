package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Slack is how long after a fault ends a duplicate or an overlapping send is
// still put down to it: a killed node's leases are taken over after the
// delivery lease (or the rescuer's 15 s node timeout), plus a claim round.
const Slack = 20 * time.Second

// Check is one line of the reconciliation report.
type Check struct {
	Name      string
	Value     int64
	Violation bool // a non-zero Value is a violation
	// Known marks a violation the harness found that is not fixed yet: it is
	// printed as one, with its note, but does not fail the run.
	Known bool
	Note  string
}

// record is what the reconciliation reads besides the database.
type record struct {
	accepted []Accepted
	receipts []Receipt
	faults   []Fault
	subs     map[string]string
	rounds   []round
	start    time.Time
	interval time.Duration // latency buckets (0: one bucket)
}

type round struct {
	node, service string
	start, end    int64 // unix ms
}

// Latency is publish → first delivery (2xx at the sink) over one interval.
type Latency struct {
	From     time.Duration // since the load started
	Count    int64
	P50, P99 float64 // ms
	Max      float64
}

// reconcile loads what the harness saw into the private server, next to
// Carrier's tables, and checks it there with SQL.
func reconcile(ctx context.Context, url string, r record) ([]Check, []Latency, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close(ctx)
	if err := load(ctx, conn, r); err != nil {
		return nil, nil, fmt.Errorf("load records: %w", err)
	}
	slack := Slack.Microseconds()
	inFault := func(col string) string {
		return fmt.Sprintf(`EXISTS (SELECT 1 FROM chaos.faults f WHERE %s BETWEEN f.start_us - 2000000 AND f.end_us + %d)`, col, slack)
	}
	checks := []struct {
		name      string
		violation bool
		note      string
		q         string
	}{
		{"events accepted (202)", false, "", `SELECT count(*) FROM chaos.accepted`},
		{"  of which spooled (store unavailable)", false, "", `SELECT count(*) FROM chaos.accepted WHERE spooled`},
		{"deliveries expected (event x matching subscription)", false, "", `SELECT count(*) FROM chaos.expected`},
		{"requests received by the sink", false, "", `SELECT count(*) FROM chaos.receipts`},
		{"  of which the sending node is unknown", false, "", `SELECT count(*) FROM chaos.receipts WHERE node = ''`},
		{"attempts recorded", false, "", `SELECT count(*) FROM attempts`},
		{"lost: expected, never answered 2xx by the sink", true, "", `SELECT count(*) FROM chaos.expected x LEFT JOIN chaos.per p USING (event_id, sub) WHERE COALESCE(p.oks, 0) = 0`},
		{"lost: expected, no delivery row or not delivered", true, "", `SELECT count(*) FROM chaos.expected x LEFT JOIN deliveries d ON d.event_id = x.event_id AND d.subscription_id = x.sub_id WHERE d.state IS DISTINCT FROM 'delivered'`},
		{"unexpected deliveries (no matching subscription)", true, "", `SELECT count(*) FROM deliveries d JOIN chaos.subs s ON s.id = d.subscription_id JOIN events e ON e.id = d.event_id WHERE s.name = 'odd' AND e.type <> 'chaos.odd'`},
		{"one event to one subscription under several webhook-ids", true, "", `SELECT count(*) FROM chaos.per WHERE ids > 1`},
		{"webhook-id not the delivery of that event and subscription", true, "", `SELECT count(*) FROM chaos.receipts r JOIN chaos.subs s ON s.name = r.sub LEFT JOIN deliveries d ON d.id = r.webhook_id
			WHERE d.id IS NULL OR d.event_id <> r.event_id OR d.subscription_id <> s.id`},
		{"deliveries whose attempt count differs from their attempt rows", true, "", `SELECT count(*) FROM deliveries d WHERE d.attempts <> (SELECT count(*) FROM attempts a WHERE a.delivery_id = d.id)`},
		{"deliveries with more answered attempts recorded than answers sent", true, "", `WITH rc AS (SELECT webhook_id, count(*) FILTER (WHERE status > 0) n FROM chaos.receipts GROUP BY 1),
			at AS (SELECT delivery_id, count(*) FILTER (WHERE status_code > 0) n FROM attempts GROUP BY 1)
			SELECT count(*) FROM at LEFT JOIN rc ON rc.webhook_id = at.delivery_id WHERE at.n > COALESCE(rc.n, 0)`},
		{"sends never recorded as attempts (node killed, paused, cut off)", false, "", `SELECT GREATEST((SELECT count(*) FROM chaos.receipts) - (SELECT count(*) FROM attempts), 0)`},
		{"duplicates: 2xx after the first for one webhook-id", false, "", `SELECT count(*) FROM chaos.oks WHERE rn > 1`},
		{"duplicates outside a fault window", true, "", `SELECT count(*) FROM chaos.oks WHERE rn > 1 AND NOT ` + inFault("start_us")},
		{"overlapping sends of one delivery, two nodes, in a fault window", false, "", `SELECT count(*) FROM chaos.overlaps WHERE a_node <> b_node AND ` + inFault("b_start")},
		{"overlapping sends of one delivery, two nodes, outside faults (double claim)", true, "", `SELECT count(*) FROM chaos.overlaps WHERE a_node <> b_node AND NOT ` + inFault("b_start")},
		{"overlapping sends of one delivery, one node, outside faults", true, "", `SELECT count(*) FROM chaos.overlaps WHERE a_node = b_node AND NOT ` + inFault("b_start")},
		{"FIFO: a key's event sent before the previous one was delivered", true, "", `SELECT count(*) FROM chaos.fifo WHERE prev_state = 'delivered' AND first_send < prev_ok AND NOT (spooled OR prev_spooled)`},
		{"FIFO: the same, around a spooled publish (FIFO publishes are refused, not spooled)", true, "", `SELECT count(*) FROM chaos.fifo WHERE prev_state = 'delivered' AND first_send < prev_ok AND (spooled OR prev_spooled)`},
		{"FIFO: deliveries checked", false, "", `SELECT count(*) FROM chaos.fifo WHERE prev_state IS NOT NULL`},
		{"leader-only rounds", false, "", `SELECT count(*) FROM chaos.rounds`},
		{"leader-only rounds overlapping on two nodes, one of them paused or cut off meanwhile", false, "a round the pause or the cut caught halfway", `SELECT count(*) FROM chaos.round_overlaps WHERE stalled`},
		{"leader-only rounds overlapping on two nodes", true, "", `SELECT count(*) FROM chaos.round_overlaps WHERE NOT stalled`},
		{"nodes that ran leader-only rounds", false, "", `SELECT count(DISTINCT node) FROM chaos.rounds`},
		{"faults injected", false, "", `SELECT count(*) FROM chaos.faults`},
	}
	var out []Check
	for _, c := range checks {
		var v int64
		if err := conn.QueryRow(ctx, c.q).Scan(&v); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", c.name, err)
		}
		out = append(out, Check{Name: c.name, Value: v, Violation: c.violation, Known: strings.HasPrefix(c.note, "KNOWN"), Note: c.note})
	}
	lat, err := latencies(ctx, conn, r)
	return out, lat, err
}

func latencies(ctx context.Context, conn *pgx.Conn, r record) ([]Latency, error) {
	bucket := r.interval.Microseconds()
	if bucket <= 0 {
		bucket = 1 << 50
	}
	rows, err := conn.Query(ctx, `SELECT (x.sent - $1) / $2 AS b, count(*),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY (p.first_ok_end - x.sent) / 1000.0),
			percentile_cont(0.99) WITHIN GROUP (ORDER BY (p.first_ok_end - x.sent) / 1000.0),
			max((p.first_ok_end - x.sent) / 1000.0)
		FROM chaos.expected x JOIN chaos.per p USING (event_id, sub) WHERE p.oks > 0 GROUP BY 1 ORDER BY 1`, r.start.UnixMicro(), bucket)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Latency
	for rows.Next() {
		var b int64
		var l Latency
		if err := rows.Scan(&b, &l.Count, &l.P50, &l.P99, &l.Max); err != nil {
			return nil, err
		}
		l.From = time.Duration(b*bucket) * time.Microsecond
		out = append(out, l)
	}
	return out, rows.Err()
}

func load(ctx context.Context, conn *pgx.Conn, r record) error {
	for _, q := range []string{
		`DROP SCHEMA IF EXISTS chaos CASCADE`, `CREATE SCHEMA chaos`,
		`CREATE TABLE chaos.accepted (event_id text, key text, type text, seq int, sent bigint, acked bigint, spooled bool)`,
		`CREATE TABLE chaos.receipts (id bigint, webhook_id text, event_id text, sub text, node text, start_us bigint, end_us bigint, status int)`,
		`CREATE TABLE chaos.faults (kind text, node int, start_us bigint, end_us bigint)`,
		`CREATE TABLE chaos.subs (name text, id text)`,
		`CREATE TABLE chaos.rounds (node text, service text, start_ms bigint, end_ms bigint)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	var rows [][]any
	for _, a := range r.accepted {
		rows = append(rows, []any{a.EventID, a.Key, a.Type, a.Seq, a.Sent, a.Acked, a.Spooled})
	}
	if err := copyRows(ctx, conn, "accepted", []string{"event_id", "key", "type", "seq", "sent", "acked", "spooled"}, rows); err != nil {
		return err
	}
	rows = rows[:0]
	for i, rc := range r.receipts {
		rows = append(rows, []any{int64(i), rc.WebhookID, rc.EventID, rc.Sub, rc.Node, rc.Start, rc.End, rc.Status})
	}
	if err := copyRows(ctx, conn, "receipts", []string{"id", "webhook_id", "event_id", "sub", "node", "start_us", "end_us", "status"}, rows); err != nil {
		return err
	}
	rows = rows[:0]
	for _, f := range r.faults {
		rows = append(rows, []any{f.Kind, f.Node, f.Start.UnixMicro(), f.End.UnixMicro()})
	}
	if err := copyRows(ctx, conn, "faults", []string{"kind", "node", "start_us", "end_us"}, rows); err != nil {
		return err
	}
	rows = rows[:0]
	for name, id := range r.subs {
		rows = append(rows, []any{name, id})
	}
	if err := copyRows(ctx, conn, "subs", []string{"name", "id"}, rows); err != nil {
		return err
	}
	rows = rows[:0]
	for _, rd := range r.rounds {
		rows = append(rows, []any{rd.node, rd.service, rd.start, rd.end})
	}
	if err := copyRows(ctx, conn, "rounds", []string{"node", "service", "start_ms", "end_ms"}, rows); err != nil {
		return err
	}
	for _, q := range []string{
		`CREATE INDEX ON chaos.receipts (webhook_id, start_us)`,
		`CREATE INDEX ON chaos.receipts (event_id, sub)`,
		`CREATE TABLE chaos.expected AS SELECT a.event_id, a.key, a.seq, a.sent, a.spooled, s.name AS sub, s.id AS sub_id
			FROM chaos.accepted a JOIN chaos.subs s ON s.name = 'plain' OR (s.name = 'fifo' AND a.type = 'chaos.even') OR (s.name = 'odd' AND a.type = 'chaos.odd')`,
		`CREATE TABLE chaos.per AS SELECT event_id, sub, min(start_us) AS first_send,
			min(end_us) FILTER (WHERE status BETWEEN 200 AND 299) AS first_ok_end,
			count(*) FILTER (WHERE status BETWEEN 200 AND 299) AS oks, count(DISTINCT webhook_id) AS ids
			FROM chaos.receipts GROUP BY 1, 2`,
		`CREATE INDEX ON chaos.per (event_id, sub)`,
		`CREATE TABLE chaos.oks AS SELECT webhook_id, start_us, row_number() OVER (PARTITION BY webhook_id ORDER BY start_us, id) AS rn
			FROM chaos.receipts WHERE status BETWEEN 200 AND 299`,
		`CREATE TABLE chaos.overlaps AS SELECT a.webhook_id, a.node AS a_node, b.node AS b_node, b.start_us AS b_start
			FROM chaos.receipts a JOIN chaos.receipts b ON a.webhook_id = b.webhook_id AND a.id <> b.id
			AND (a.start_us, a.id) < (b.start_us, b.id) AND b.start_us < a.end_us`,
		`CREATE TABLE chaos.fifo AS SELECT *, lag(first_ok_end) OVER w AS prev_ok, lag(state) OVER w AS prev_state, lag(spooled) OVER w AS prev_spooled
			FROM (SELECT x.key, x.seq, x.spooled, p.first_send, p.first_ok_end, d.state FROM chaos.expected x
				JOIN chaos.per p USING (event_id, sub) JOIN deliveries d ON d.event_id = x.event_id AND d.subscription_id = x.sub_id
				WHERE x.sub = 'fifo') f
			WINDOW w AS (PARTITION BY key ORDER BY seq)`,
		// Two nodes' rounds overlap. When the overlap lies within a pause of
		// one of them (SIGSTOP caught its round halfway) or within its cut
		// from PostgreSQL (its round was waiting for the database), that node
		// did nothing meanwhile: it is stalled, not a second leader at work.
		`CREATE TABLE chaos.round_overlaps AS SELECT a.node AS a_node, b.node AS b_node,
			EXISTS (SELECT 1 FROM chaos.faults f WHERE f.kind IN ('pause', 'partition')
				AND 'n' || (f.node + 1) IN (split_part(a.node, '.', 1), split_part(b.node, '.', 1))
				AND f.start_us / 1000 <= GREATEST(a.start_ms, b.start_ms) AND f.end_us / 1000 >= LEAST(a.end_ms, b.end_ms)) AS stalled
			FROM chaos.rounds a JOIN chaos.rounds b ON a.node < b.node AND a.start_ms < b.end_ms AND b.start_ms < a.end_ms`,
		`ANALYZE`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%.60s: %w", q, err)
		}
	}
	return nil
}

func copyRows(ctx context.Context, conn *pgx.Conn, table string, cols []string, rows [][]any) error {
	_, err := conn.CopyFrom(ctx, pgx.Identifier{"chaos", table}, cols, pgx.CopyFromRows(rows))
	return err
}

// readRounds reads the leader-only rounds the nodes logged (at debug level).
func readRounds(logs map[string]string) ([]round, error) {
	var out []round
	for name, path := range logs {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if !strings.Contains(string(line), `"maintenance round"`) {
				continue
			}
			var l struct {
				Service string `json:"service"`
				Start   int64  `json:"start_ms"`
				End     int64  `json:"end_ms"`
			}
			if json.Unmarshal(line, &l) == nil {
				out = append(out, round{node: name, service: l.Service, start: l.Start, end: l.End})
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out, nil
}
