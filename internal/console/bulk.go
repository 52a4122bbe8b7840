package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"

	"carrier/internal/store"
	"carrier/internal/subscription"
)

// A bulk retry replays the failed deliveries a log filter selects. It runs
// in the background on the node that started it, page by page of the log
// (oldest first), so its progress is visible and it can be cancelled. It is
// idempotent per delivery: only deliveries still failed when it reaches them
// are replayed (a replayed one is pending, so a second run, or a run started
// twice, skips it). A restart ends the job; running it again picks up what
// is still failed.

// maxDryRun bounds the dry-run count (the page says "at least" past it).
const maxDryRun = 100000

type bulkJob struct {
	ID      string
	Project string
	Filter  logFilter
	Query   string
	Total   int // the dry-run count when started
	Started time.Time

	mu        sync.Mutex
	Done      int // deliveries looked at
	Replayed  int
	Skipped   int // no longer failed
	Errors    int
	LastError string
	Finished  *time.Time
	Cancelled bool
	cancel    context.CancelFunc
}

type bulkSnapshot struct {
	ID, Query, LastError                   string
	Total, Done, Replayed, Skipped, Errors int
	Finished, Cancelled                    bool
	Percent                                int
	Started                                time.Time
}

func (j *bulkJob) snapshot() bulkSnapshot {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := bulkSnapshot{ID: j.ID, Query: j.Query, LastError: j.LastError, Total: j.Total, Done: j.Done, Replayed: j.Replayed, Skipped: j.Skipped,
		Errors: j.Errors, Finished: j.Finished != nil, Cancelled: j.Cancelled, Started: j.Started}
	if j.Total > 0 {
		s.Percent = min(100, 100*j.Done/j.Total)
	} else if s.Finished {
		s.Percent = 100
	}
	return s
}

type bulkRunner struct {
	mu   sync.Mutex
	jobs map[string]*bulkJob
}

func (b *bulkRunner) get(project, id string) (*bulkJob, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, ok := b.jobs[id]
	return j, ok && j.Project == project
}

// running returns the project's unfinished job of the same filter: starting
// the same bulk retry twice (a double submit) gives the one job.
func (b *bulkRunner) running(project, query string) *bulkJob {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, j := range b.jobs {
		if j.Project == project && j.Query == query && j.snapshot().Finished == false {
			return j
		}
	}
	return nil
}

// retryFilter is the filter's failed deliveries: a bulk retry replays
// failed ones only.
func retryFilter(f logFilter) logFilter {
	f.States, f.Order, f.After = []string{store.StateFailed}, "oldest", ""
	return f
}

// dryRun counts what a bulk retry would replay, up to maxDryRun.
func (c *Console) dryRun(ctx context.Context, project string, f logFilter) (int, bool, error) {
	q, err := retryFilter(f).query(project, 500)
	if err != nil {
		return 0, false, err
	}
	n := 0
	for n < maxDryRun {
		ds, err := c.d.Store.DeliveryLog(ctx, q)
		if err != nil {
			return 0, false, err
		}
		n += len(ds)
		if len(ds) < q.Limit {
			return n, false, nil
		}
		last := ds[len(ds)-1]
		q.After = &store.DeliveryCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return n, true, nil
}

type bulkData struct {
	Filter        logFilter
	Query         string
	States        []string
	Count         int
	AtLeast       bool
	Subscriptions []store.Subscription
	Jobs          []bulkSnapshot
}

// bulkPage shows the dry-run count of a filter and the project's jobs.
func (c *Console) bulkPage(w http.ResponseWriter, r *http.Request) {
	f := parseFilter(r.URL.Query())
	_, subs := c.subscriptionNames(r)
	data := bulkData{Filter: f, Query: f.values().Encode(), States: states, Subscriptions: subs}
	var err error
	if data.Count, data.AtLeast, err = c.dryRun(r.Context(), project(r), f); err != nil {
		r.URL.RawQuery += "&error=" + url.QueryEscape(err.Error())
		c.render(w, r, "bulk", "Bulk retry", data, http.StatusBadRequest)
		return
	}
	c.bulk.mu.Lock()
	for _, j := range c.bulk.jobs {
		if j.Project == project(r) {
			data.Jobs = append(data.Jobs, j.snapshot())
		}
	}
	c.bulk.mu.Unlock()
	c.render(w, r, "bulk", "Bulk retry", data, http.StatusOK)
}

// bulkStart starts a bulk retry of the filter in the form.
func (c *Console) bulkStart(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f := parseFilter(r.PostForm)
	pid := project(r)
	query := retryFilter(f).values().Encode()
	if j := c.bulk.running(pid, query); j != nil {
		http.Redirect(w, r, c.prefix+"/bulk/"+j.ID, http.StatusSeeOther)
		return
	}
	total, _, err := c.dryRun(r.Context(), pid, f)
	if err != nil {
		c.back(w, r, "/bulk", "", err.Error())
		return
	}
	raw := make([]byte, 8)
	rand.Read(raw)
	ctx, cancel := context.WithCancel(context.Background())
	j := &bulkJob{ID: hex.EncodeToString(raw), Project: pid, Filter: retryFilter(f), Query: query, Total: total, Started: time.Now(), cancel: cancel}
	c.bulk.mu.Lock()
	c.bulk.jobs[j.ID] = j
	c.bulk.mu.Unlock()
	go c.runBulk(ctx, j)
	http.Redirect(w, r, c.prefix+"/bulk/"+j.ID, http.StatusSeeOther)
}

func (c *Console) runBulk(ctx context.Context, j *bulkJob) {
	defer func() {
		now := time.Now()
		j.mu.Lock()
		j.Finished = &now
		j.mu.Unlock()
		j.cancel()
	}()
	q, err := j.Filter.query(j.Project, 100)
	if err != nil {
		j.mu.Lock()
		j.LastError = err.Error()
		j.mu.Unlock()
		return
	}
	for ctx.Err() == nil {
		ds, err := c.d.Store.DeliveryLog(ctx, q)
		if err != nil {
			j.mu.Lock()
			j.Errors++
			j.LastError = err.Error()
			j.mu.Unlock()
			return
		}
		for _, d := range ds {
			if ctx.Err() != nil {
				break
			}
			cur, err := c.d.Store.GetDelivery(ctx, j.Project, d.ID)
			replayed, skipped := false, false
			if err == nil && cur.State != store.StateFailed {
				skipped = true
			} else if err == nil {
				_, err = c.d.Subscriptions.Replay(ctx, j.Project, d.SubscriptionID, d.ID, subscription.Subscriptions)
				var inFlight *subscription.InFlightError
				if errors.As(err, &inFlight) {
					skipped, err = true, nil
				} else {
					replayed = err == nil
				}
			}
			j.mu.Lock()
			j.Done++
			switch {
			case err != nil:
				j.Errors++
				j.LastError = err.Error()
			case replayed:
				j.Replayed++
			case skipped:
				j.Skipped++
			}
			j.mu.Unlock()
		}
		if len(ds) < q.Limit || ctx.Err() != nil {
			break
		}
		last := ds[len(ds)-1]
		q.After = &store.DeliveryCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	if ctx.Err() != nil {
		j.mu.Lock()
		j.Cancelled = true
		j.mu.Unlock()
	}
}

func (c *Console) bulkJobPage(w http.ResponseWriter, r *http.Request) {
	j, ok := c.bulk.get(project(r), r.PathValue("id"))
	if !ok {
		http.Error(w, "no such bulk retry", http.StatusNotFound)
		return
	}
	c.render(w, r, "bulkjob", "Bulk retry "+j.ID, j.snapshot(), http.StatusOK)
}

func (c *Console) bulkCancel(w http.ResponseWriter, r *http.Request) {
	j, ok := c.bulk.get(project(r), r.PathValue("id"))
	if !ok {
		http.Error(w, "no such bulk retry", http.StatusNotFound)
		return
	}
	j.cancel()
	c.back(w, r, "/bulk/"+j.ID, "Cancelling: deliveries already replayed stay replayed.", "")
}
