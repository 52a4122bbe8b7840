package console

import (
	"fmt"
	"net/http"
	"time"

	"carrier/internal/store"
)

type queueView struct {
	store.Queue
	Counts     store.QueueCounts
	Oldest     *time.Time   // when its oldest message was sent; nil when empty
	DeadLetter *store.Queue // the queue's dead-letter queue
	DLQDepth   int64
	// Sources are the queues that dead-letter into this one: it can be
	// redriven back to them.
	Sources []string
}

func (v queueView) Depth() int64 { return v.Counts.Visible + v.Counts.InFlight + v.Counts.Delayed }

type queuesData struct {
	Enabled bool
	Queues  []queueView
}

func (c *Console) queuesPage(w http.ResponseWriter, r *http.Request) {
	if c.d.Queues == nil {
		c.render(w, r, "queues", "Pull queues", queuesData{}, http.StatusOK)
		return
	}
	ctx, pid := r.Context(), project(r)
	qs, err := c.d.Store.ListQueues(ctx, pid)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := queuesData{Enabled: true}
	byID := map[string]int{}
	now := time.Now()
	for _, q := range qs {
		counts, err := c.d.Store.QueueCounts(ctx, pid, q.ID, now)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		v := queueView{Queue: q, Counts: counts}
		if at, ok, err := c.d.Store.OldestQueueMessage(ctx, pid, q.ID, now); err != nil {
			c.fail(w, r, err)
			return
		} else if ok {
			v.Oldest = &at
		}
		byID[q.ID] = len(data.Queues)
		data.Queues = append(data.Queues, v)
	}
	for i := range data.Queues {
		v := &data.Queues[i]
		if j, ok := byID[v.DeadLetterQueueID]; ok && v.MaxReceiveCount > 0 {
			dlq := &data.Queues[j]
			v.DeadLetter, v.DLQDepth = &dlq.Queue, dlq.Depth()
			dlq.Sources = append(dlq.Sources, v.Name)
		}
	}
	c.render(w, r, "queues", "Pull queues", data, http.StatusOK)
}

// queueRedrive moves a dead-letter queue's messages back to the queues they
// came from, as POST /v1/queues/{id}/redrive does: 100 at a time, up to 1000.
func (c *Console) queueRedrive(w http.ResponseWriter, r *http.Request) {
	if c.d.Queues == nil {
		c.back(w, r, "/queues", "", "Pull queues are off.")
		return
	}
	ctx, pid := r.Context(), project(r)
	q, err := c.d.Store.GetQueue(ctx, pid, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	const max = 1000
	total := 0
	for total < max {
		n, err := c.d.Queues.Redrive(ctx, pid, q.ID, min(100, max-total))
		if err != nil {
			c.back(w, r, "/queues", "", err.Error())
			return
		}
		total += n
		if n == 0 {
			break
		}
	}
	c.back(w, r, "/queues", fmt.Sprintf("%d messages of %s moved back to their source queues.", total, q.Name), "")
}
