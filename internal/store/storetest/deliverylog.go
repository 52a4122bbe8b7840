package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"carrier/internal/store"
)

// testDeliveryLog pages through the delivery log with every filter, in
// both orders, and checks each listing against the same filter applied in
// Go to all of the project's deliveries: same rows, same order, no row
// twice or missed across pages, nothing of another project.
func testDeliveryLog(t *testing.T, e Storage) {
	f := setup(t, e)
	p, other := f.project().ID, f.project().ID
	a, b := f.subscription(p), f.subscription(p)
	o := f.subscription(other)
	subjects := map[string]string{} // event id -> subject
	for i := range 40 {
		at := f.at(time.Duration(i/2) * time.Second) // pairs share a created_at: the id breaks the tie
		typ := "a"
		if i%2 == 1 {
			typ = "b"
		}
		subs := []string{a.ID}
		if i%4 == 0 {
			subs = append(subs, b.ID)
		}
		ne := newEvent(p, typ, at, subs...)
		subjects[ne.Event.ID] = ne.Event.Subject
		f.insert(ne)
		f.insert(newEvent(other, typ, at, o.ID))
	}
	// Outcomes: delivered (200), failed (500), retrying (500) and the rest
	// left pending (never attempted).
	jobs := f.claim("n1", f.at(time.Hour), 200)
	var outs []store.Outcome
	for i, j := range jobs {
		switch i % 4 {
		case 0:
			outs = append(outs, outcome(j, store.StateDelivered, f.at(time.Hour)))
		case 1:
			outs = append(outs, outcome(j, store.StateFailed, f.at(time.Hour)))
		case 2:
			outs = append(outs, outcome(j, store.StateRetrying, f.at(time.Hour)))
		}
	}
	f.complete(f.at(time.Hour), outs...)
	all, err := f.s.ListDeliveries(f.ctx, store.DeliveryFilter{ProjectID: p, Limit: 1000})
	f.must(err)
	if len(all) != 50 {
		t.Fatalf("%d deliveries", len(all))
	}
	sample := all[17]
	from, to := f.at(5*time.Second), f.at(15*time.Second)
	queries := map[string]store.DeliveryQuery{
		"all":               {},
		"two states":        {States: []string{store.StateFailed, store.StatePending}},
		"three states":      {States: []string{store.StateFailed, store.StateRetrying, store.StateDelivered}},
		"one state":         {States: []string{store.StateDelivered}},
		"subscription":      {SubscriptionID: b.ID},
		"type and states":   {EventType: "b", States: []string{store.StateFailed, store.StateDelivered}},
		"5xx":               {StatusClass: 5},
		"2xx":               {StatusClass: 2},
		"no answer":         {StatusClass: -1},
		"time range":        {From: &from, To: &to},
		"range and states":  {From: &from, To: &to, States: []string{store.StatePending, store.StateRetrying}},
		"delivery id":       {Search: sample.ID},
		"event id":          {Search: sample.EventID},
		"subject":           {Search: subjects[sample.EventID]},
		"subject and state": {Search: subjects[sample.EventID], States: []string{sample.State, store.StateRetrying}},
		"event id, 5xx":     {Search: sample.EventID, StatusClass: 5},
		"nothing":           {Search: "no-such-id"},
		"another project":   {SubscriptionID: o.ID},
	}
	for name, q := range queries {
		for _, oldest := range []bool{false, true} {
			q := q
			q.ProjectID, q.Oldest, q.Limit = p, oldest, 7
			var want []string
			for _, d := range all {
				if logWants(q, d, subjects) {
					want = append(want, d.ID)
				}
			}
			if oldest {
				slices.Reverse(want)
			}
			var got []string
			for page := 0; page < 20; page++ {
				rows, err := f.s.DeliveryLog(f.ctx, q)
				f.must(err)
				for _, d := range rows {
					got = append(got, d.ID)
				}
				if len(rows) < q.Limit {
					break
				}
				last := rows[len(rows)-1]
				q.After = &store.DeliveryCursor{CreatedAt: last.CreatedAt, ID: last.ID}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s (oldest %v): got %d rows %v\nwant %d rows %v", name, oldest, len(got), got, len(want), want)
			}
		}
	}
}

// logWants is DeliveryLog's filter applied to one delivery, in Go.
func logWants(q store.DeliveryQuery, d store.Delivery, subjects map[string]string) bool {
	switch {
	case len(q.States) > 0 && !slices.Contains(q.States, d.State),
		q.SubscriptionID != "" && d.SubscriptionID != q.SubscriptionID,
		q.EventType != "" && d.EventType != q.EventType,
		q.StatusClass > 0 && d.LastStatus/100 != q.StatusClass,
		q.StatusClass == -1 && d.LastStatus != 0,
		q.From != nil && d.CreatedAt.Before(*q.From),
		q.To != nil && !d.CreatedAt.Before(*q.To),
		q.Search != "" && d.ID != q.Search && d.EventID != q.Search && subjects[d.EventID] != q.Search:
		return false
	}
	return true
}
