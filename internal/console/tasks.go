package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"carrier/internal/alert"
	"carrier/internal/outage"
	"carrier/internal/store"
	"carrier/internal/task"
)

// taskPage is how many tasks or dead letters a page lists.
const taskPage = 50

// taskStatuses are the tabs of the tasks page.
var taskStatuses = []string{store.TaskPending, store.TaskSubmitted, store.TaskSolved, store.TaskFailed, store.TaskExpired}

type tasksData struct {
	Enabled    bool
	Statuses   []string
	Status     string
	Tasks      []store.Task
	Offset     int
	Next, Prev string // query strings of the neighbouring pages, "" when none
	Balance    *store.Gauge
	Dead       []store.DeadLetter
	DeadNext   string
}

func pageOffset(q url.Values, name string) int {
	n, err := strconv.Atoi(q.Get(name))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// tasksPage lists a project's tasks of one status, a page at a time (no
// counts: the store would have to count every task), the pending dead
// letters, and the provider balance the prober last read.
func (c *Console) tasksPage(w http.ResponseWriter, r *http.Request) {
	ctx, pid, q := r.Context(), project(r), r.URL.Query()
	data := tasksData{Enabled: c.d.Tasks != nil, Statuses: taskStatuses, Status: store.TaskPending, Offset: pageOffset(q, "offset")}
	for _, s := range taskStatuses {
		if q.Get("status") == s {
			data.Status = s
		}
	}
	var err error
	if data.Tasks, err = c.d.Store.ListTasks(ctx, store.TaskFilter{ProjectID: pid, Status: data.Status, Limit: taskPage, Offset: data.Offset}); err != nil {
		c.fail(w, r, err)
		return
	}
	pageQuery := func(offset, deadOffset int) string {
		v := url.Values{"status": {data.Status}}
		if offset > 0 {
			v.Set("offset", strconv.Itoa(offset))
		}
		if deadOffset > 0 {
			v.Set("dead", strconv.Itoa(deadOffset))
		}
		return v.Encode()
	}
	deadOffset := pageOffset(q, "dead")
	if len(data.Tasks) == taskPage {
		data.Next = pageQuery(data.Offset+len(data.Tasks), deadOffset)
	}
	if data.Offset > 0 {
		data.Prev = pageQuery(max(0, data.Offset-taskPage), deadOffset)
	}
	if data.Dead, err = c.d.Store.ListDeadLetters(ctx, store.DeadLetterFilter{ProjectID: pid, Status: store.DeadLetterPending, Limit: taskPage, Offset: deadOffset}); err != nil {
		c.fail(w, r, err)
		return
	}
	if len(data.Dead) == taskPage {
		data.DeadNext = pageQuery(data.Offset, deadOffset+len(data.Dead))
	}
	data.Balance = c.balance(r)
	c.render(w, r, "tasks", "Tasks", data, http.StatusOK)
}

// balance is the provider balance the prober last recorded (nil when tasks
// are off or it has not read one yet).
func (c *Console) balance(r *http.Request) *store.Gauge {
	if c.d.Tasks == nil {
		return nil
	}
	gauges, err := c.d.Store.ListGauges(r.Context(), alert.GaugeBalance)
	if err != nil {
		c.d.Log.Warn("console: provider balance", "err", err)
		return nil
	}
	for i := range gauges {
		if gauges[i].Item == alert.ProviderItem {
			return &gauges[i]
		}
	}
	return nil
}

var errTasksOff = errors.New("async tasks are off: no provider is configured (CARRIER_PROVIDER_URL)")

// redrive processes a dead letter again as /v1/dead-letters/{id}/redrive
// does: through the spooler (which publishes a spooled publish itself and
// hands any other to the tasks service), else through the tasks service.
func (c *Console) redrive(ctx context.Context, pid, id string) error {
	if c.d.Spool != nil {
		_, err := c.d.Spool.Redrive(ctx, pid, id)
		if errors.Is(err, outage.ErrNotRedrivable) && c.d.Tasks == nil {
			return errTasksOff
		}
		return err
	}
	if c.d.Tasks == nil {
		return errTasksOff
	}
	_, err := c.d.Tasks.Redrive(ctx, pid, id)
	return err
}

func (c *Console) deadLetterRedrive(w http.ResponseWriter, r *http.Request) {
	err := c.redrive(r.Context(), project(r), r.PathValue("id"))
	var rerr *task.RedriveError
	switch {
	case errors.As(err, &rerr):
		c.back(w, r, "/tasks", "", "Still cannot be processed: "+rerr.Error())
	case errors.Is(err, store.ErrNotFound):
		c.back(w, r, "/tasks", "", "No such dead letter.")
	case err != nil:
		c.back(w, r, "/tasks", "", err.Error())
	default:
		c.back(w, r, "/tasks", "Dead letter redriven: it was processed.", "")
	}
}
