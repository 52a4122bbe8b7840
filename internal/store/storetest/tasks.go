package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"carrier/internal/store"
)

// --- task helpers ---

func tokenHash() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// task creates a pending task of projectID, due now and expiring in an hour,
// after applying mods.
func (f *fixture) task(projectID string, mods ...func(*store.Task)) store.Task {
	f.t.Helper()
	t := store.Task{
		ID: newID(), ProjectID: projectID, Method: "userrecaptcha",
		Params:   map[string]string{"googlekey": "6Le-key", "pageurl": "https://example.com/login"},
		Metadata: json.RawMessage(`{"order": 1}`),
		Status:   store.TaskPending, CallbackTokenHash: tokenHash(),
		NextSubmitAt: f.base, ExpiresAt: f.at(time.Hour), Version: 1,
		CreatedAt: f.base, UpdatedAt: f.base,
	}
	for _, m := range mods {
		m(&t)
	}
	f.must(f.s.CreateTask(f.ctx, t))
	return t
}

func (f *fixture) getTask(projectID, id string) store.Task {
	f.t.Helper()
	t, err := f.s.GetTask(f.ctx, projectID, id)
	f.must(err)
	return t
}

func (f *fixture) history(projectID, taskID string) []store.TaskEntry {
	f.t.Helper()
	h, err := f.s.TaskHistory(f.ctx, projectID, taskID)
	f.must(err)
	return h
}

// kinds lists the kinds of entries, in order.
func kinds(h []store.TaskEntry) []string {
	out := []string{}
	for _, e := range h {
		out = append(out, e.Kind)
	}
	return out
}

func taskIDs(ts []store.Task) []string {
	ids := []string{}
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	return ids
}

func deadLetterIDs(ds []store.DeadLetter) []string {
	ids := []string{}
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

// workerStores returns n stores over f's storage: on PostgreSQL separate
// stores (as separate processes have), on SQLite f's store n times (one
// process per data directory).
func (f *fixture) workerStores(n int) []store.Store {
	f.t.Helper()
	stores := []store.Store{f.s}
	for len(stores) < n {
		if f.e.Shared {
			stores = append(stores, f.e.Open(f.t))
		} else {
			stores = append(stores, f.s)
		}
	}
	return stores
}

// --- tasks ---

func testTaskRoundTrip(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	full := f.task(p.ID, func(t *store.Task) {
		t.Method = "hcaptcha"
		t.Params = map[string]string{"sitekey": "abc", "pageurl": "https://example.org/", "json": "1", "empty": ""}
		t.Metadata = json.RawMessage(`{ "customer":"acme",  "n": [1, 2.50] }`)
		t.Status = store.TaskSubmitted
		t.ProviderID = "72491034"
		t.Solution = "03AGdBq24..."
		t.Via = store.ViaPoll
		t.ErrorCode = "ERROR_NO_SLOT_AVAILABLE"
		t.ErrorMessage = "no slot"
		t.Cost = "0.00299"
		t.SubmitAttempts = 3
		t.NextSubmitAt = f.at(-time.Minute)
		t.NextPollAt = f.at(5 * time.Second)
		t.Polls = 7
		t.LeaseOwner = "node-a"
		t.LeaseUntil = f.at(30 * time.Second)
		t.Version = 4
		t.CreatedAt = f.at(-time.Hour)
		t.UpdatedAt = f.at(-time.Second)
		t.SubmittedAt = ptr(f.at(-30 * time.Minute))
		t.CompletedAt = ptr(f.at(-2 * time.Second))
		t.ExpiresAt = f.at(2 * time.Hour)
		t.PingbackURL = "https://mysite.com/pingback?job=7&x=%20y"
	})
	check(t, "GetTask", f.getTask(p.ID, full.ID), full)
	byHash, err := f.s.TaskByTokenHash(f.ctx, full.CallbackTokenHash)
	f.must(err)
	check(t, "TaskByTokenHash", byHash, full)

	h := f.history(p.ID, full.ID)
	if len(h) != 1 {
		t.Fatalf("history of a new task: %+v", h)
	}
	if h[0].ID == "" {
		t.Errorf("created entry has no id")
	}
	h[0].ID = ""
	check(t, "created entry", h[0], store.TaskEntry{TaskID: full.ID, ProjectID: p.ID, Kind: store.TaskCreated, Message: "accepted by Carrier", Detail: json.RawMessage("null"), At: full.CreatedAt})

	// Nil params come back as an empty map, empty metadata as nil; unset times stay unset.
	minimal := f.task(p.ID, func(t *store.Task) {
		t.Params, t.Metadata, t.CallbackTokenHash = nil, nil, ""
		t.NextSubmitAt, t.ExpiresAt = time.Time{}, time.Time{}
	})
	want := minimal
	want.Params = map[string]string{}
	check(t, "minimal task", f.getTask(p.ID, minimal.ID), want)
	// Several tasks may have no callback token; none is found by the empty hash.
	f.task(p.ID, func(t *store.Task) { t.CallbackTokenHash = "" })
	_, err = f.s.TaskByTokenHash(f.ctx, "")
	wantErr(t, "TaskByTokenHash(empty)", err, store.ErrNotFound)
	_, err = f.s.TaskByTokenHash(f.ctx, tokenHash())
	wantErr(t, "TaskByTokenHash(unknown)", err, store.ErrNotFound)
	_, err = f.s.GetTask(f.ctx, p.ID, newID())
	wantErr(t, "GetTask(missing)", err, store.ErrNotFound)

	dupID := full
	dupID.CallbackTokenHash = tokenHash()
	wantErr(t, "CreateTask(same id)", f.s.CreateTask(f.ctx, dupID), store.ErrConflict)
	dupHash := full
	dupHash.ID = newID()
	wantErr(t, "CreateTask(same token hash)", f.s.CreateTask(f.ctx, dupHash), store.ErrConflict)
	_, err = f.s.GetTask(f.ctx, p.ID, dupHash.ID)
	wantErr(t, "GetTask(refused task)", err, store.ErrNotFound)
	check(t, "history of refused task", len(f.history(p.ID, dupHash.ID)), 0)
	check(t, "history after refused duplicate", len(f.history(p.ID, full.ID)), 1)
}

func testTaskUpdate(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	orig := f.task(p.ID)

	upd := orig
	upd.Status = store.TaskSolved
	upd.ProviderID = "991"
	upd.Solution = "token-answer"
	upd.Via = store.ViaCallback
	upd.ErrorCode = "ERROR_CAPTCHA_UNSOLVABLE"
	upd.ErrorMessage = "retry"
	upd.Cost = "0.001"
	upd.SubmitAttempts = 2
	upd.NextSubmitAt = f.at(time.Minute)
	upd.NextPollAt = f.at(2 * time.Minute)
	upd.Polls = 4
	upd.LeaseOwner = "node-b"
	upd.LeaseUntil = f.at(3 * time.Minute)
	upd.UpdatedAt = f.at(4 * time.Minute)
	upd.SubmittedAt = ptr(f.at(time.Second))
	upd.CompletedAt = ptr(f.at(4 * time.Minute))
	upd.ExpiresAt = f.at(5 * time.Hour)
	upd.CallbackTokenHash = tokenHash() // a fresh token per submission try
	// Immutable fields are not written.
	sent := upd
	sent.Method = "other"
	sent.Params = map[string]string{"x": "y"}
	sent.Metadata = json.RawMessage(`{"changed": true}`)
	sent.CreatedAt = f.at(time.Hour)
	sent.Version = 77 // ignored: the version argument counts

	e1 := store.TaskEntry{ID: "zzzz-" + newID(), Kind: store.TaskSubmitDone, Message: "accepted", Detail: json.RawMessage(`{"status":1,"request":"991"}`)}
	e2 := store.TaskEntry{ID: "aaaa-" + newID(), Kind: store.TaskCallback, Message: "solved", At: f.at(4 * time.Minute)}
	e3 := store.TaskEntry{Kind: store.TaskDuplicate}
	got, err := f.s.UpdateTask(f.ctx, sent, orig.Version, []store.TaskEntry{e1, e2, e3})
	f.must(err)
	want := upd
	want.Version = orig.Version + 1
	check(t, "UpdateTask result", got, want)
	check(t, "GetTask after update", f.getTask(p.ID, orig.ID), want)
	byHash, err := f.s.TaskByTokenHash(f.ctx, upd.CallbackTokenHash)
	f.must(err)
	check(t, "TaskByTokenHash(new hash)", byHash, want)
	_, err = f.s.TaskByTokenHash(f.ctx, orig.CallbackTokenHash)
	wantErr(t, "TaskByTokenHash(replaced hash)", err, store.ErrNotFound)

	h := f.history(p.ID, orig.ID)
	check(t, "history kinds (same time: in insertion order)", kinds(h), []string{store.TaskCreated, store.TaskSubmitDone, store.TaskCallback, store.TaskDuplicate})
	if len(h) == 4 {
		e1.TaskID, e1.ProjectID, e1.At = orig.ID, p.ID, upd.UpdatedAt
		check(t, "entry with detail", h[1], e1)
		e2.TaskID, e2.ProjectID, e2.Detail = orig.ID, p.ID, json.RawMessage("null")
		check(t, "entry with time", h[2], e2)
		if h[3].ID == "" || h[3].TaskID != orig.ID || h[3].ProjectID != p.ID || !h[3].At.Equal(upd.UpdatedAt) {
			t.Errorf("filled entry: %+v", h[3])
		}
	}

	// AppendTaskHistory adds entries (ordered by time) and leaves the task alone.
	f.must(f.s.AppendTaskHistory(f.ctx, []store.TaskEntry{
		{TaskID: orig.ID, ProjectID: p.ID, Kind: store.TaskConflict, Message: "late", Detail: json.RawMessage(`"other"`), At: f.at(10 * time.Minute)},
		{TaskID: orig.ID, ProjectID: p.ID, Kind: store.TaskPolled, At: f.at(-time.Minute)},
	}))
	f.must(f.s.AppendTaskHistory(f.ctx, nil))
	h = f.history(p.ID, orig.ID)
	check(t, "history after append", kinds(h), []string{store.TaskPolled, store.TaskCreated, store.TaskSubmitDone, store.TaskCallback, store.TaskDuplicate, store.TaskConflict})
	check(t, "appended detail", string(h[len(h)-1].Detail), `"other"`)
	check(t, "task after append", f.getTask(p.ID, orig.ID), want)

	// A second update from the new version works and clears what it is told to.
	next := got
	next.LeaseOwner, next.LeaseUntil, next.CompletedAt = "", time.Time{}, nil
	got2, err := f.s.UpdateTask(f.ctx, next, got.Version, nil)
	f.must(err)
	next.Version = got.Version + 1
	check(t, "second update", got2, next)
	check(t, "history after update without entries", len(f.history(p.ID, orig.ID)), 6)

	// Another task's token hash is refused, and nothing is written.
	other := f.task(p.ID)
	taken := got2
	taken.CallbackTokenHash, taken.Polls = other.CallbackTokenHash, 99
	_, err = f.s.UpdateTask(f.ctx, taken, got2.Version, []store.TaskEntry{{Kind: store.TaskPolled}})
	wantErr(t, "UpdateTask(another task's token hash)", err, store.ErrConflict)
	check(t, "task after refused update", f.getTask(p.ID, orig.ID), next)
	check(t, "history after refused update", len(f.history(p.ID, orig.ID)), 6)
	// Clearing the hash is allowed, for any number of tasks.
	cleared := next
	cleared.CallbackTokenHash = ""
	_, err = f.s.UpdateTask(f.ctx, cleared, next.Version, nil)
	f.must(err)
	other.CallbackTokenHash = ""
	_, err = f.s.UpdateTask(f.ctx, other, other.Version, nil)
	f.must(err)
}

func testTaskVersionConflict(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	orig := f.task(p.ID)

	a := orig
	a.Status, a.ProviderID, a.UpdatedAt = store.TaskSubmitted, "A", f.at(time.Second)
	gotA, err := f.s.UpdateTask(f.ctx, a, orig.Version, []store.TaskEntry{{Kind: store.TaskSubmitDone, Message: "A"}})
	f.must(err)
	check(t, "winner's version", gotA.Version, orig.Version+1)

	b := orig
	b.Status, b.ProviderID, b.UpdatedAt = store.TaskFailed, "B", f.at(2*time.Second)
	_, err = f.s.UpdateTask(f.ctx, b, orig.Version, []store.TaskEntry{{Kind: store.TaskFinished, Message: "B"}})
	wantErr(t, "UpdateTask(stale version)", err, store.ErrConflict)
	check(t, "task after conflict", f.getTask(p.ID, orig.ID), gotA)
	check(t, "history after conflict", kinds(f.history(p.ID, orig.ID)), []string{store.TaskCreated, store.TaskSubmitDone})

	_, err = f.s.UpdateTask(f.ctx, b, orig.Version+5, nil)
	wantErr(t, "UpdateTask(future version)", err, store.ErrConflict)
	missing := b
	missing.ID = newID()
	_, err = f.s.UpdateTask(f.ctx, missing, 1, []store.TaskEntry{{Kind: store.TaskFinished}})
	wantErr(t, "UpdateTask(missing)", err, store.ErrNotFound)
	check(t, "history of missing task", len(f.history(p.ID, missing.ID)), 0)

	// Racing updates from one version: exactly one wins, the others write nothing.
	const racers = 8
	stores := f.workerStores(4)
	base := f.getTask(p.ID, orig.ID)
	var wg sync.WaitGroup
	results := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			u := base
			u.ProviderID = fmt.Sprintf("racer-%d", i)
			_, results[i] = stores[i%len(stores)].UpdateTask(f.ctx, u, base.Version, []store.TaskEntry{{Kind: store.TaskPolled, Message: u.ProviderID}})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range results {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("racers %d and %d both won", winner, i)
			}
			winner = i
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("racer %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no racer won")
	}
	final := f.getTask(p.ID, orig.ID)
	check(t, "winner's provider id", final.ProviderID, fmt.Sprintf("racer-%d", winner))
	check(t, "version after race", final.Version, base.Version+1)
	h := f.history(p.ID, orig.ID)
	check(t, "history after race", kinds(h), []string{store.TaskCreated, store.TaskSubmitDone, store.TaskPolled})
	check(t, "racing entry", h[len(h)-1].Message, final.ProviderID)
}

func testTaskProjectIsolation(t *testing.T, e Storage) {
	f := setup(t, e)
	p1, p2 := f.project(), f.project()
	a := f.task(p1.ID)
	b := f.task(p2.ID)

	_, err := f.s.GetTask(f.ctx, p2.ID, a.ID)
	wantErr(t, "GetTask(other project)", err, store.ErrNotFound)
	check(t, "TaskHistory(other project)", len(f.history(p2.ID, a.ID)), 0)
	moved := a
	moved.ProjectID = p2.ID
	moved.Status = store.TaskFailed
	_, err = f.s.UpdateTask(f.ctx, moved, a.Version, []store.TaskEntry{{Kind: store.TaskFinished}})
	wantErr(t, "UpdateTask(other project)", err, store.ErrNotFound)
	check(t, "task untouched", f.getTask(p1.ID, a.ID), a)
	check(t, "history untouched", kinds(f.history(p1.ID, a.ID)), []string{store.TaskCreated})

	// The token hash is looked up across projects.
	got, err := f.s.TaskByTokenHash(f.ctx, b.CallbackTokenHash)
	f.must(err)
	check(t, "TaskByTokenHash(project 2)", got, b)

	l1, err := f.s.ListTasks(f.ctx, store.TaskFilter{ProjectID: p1.ID})
	f.must(err)
	check(t, "ListTasks(p1)", l1, []store.Task{a})
	l3, err := f.s.ListTasks(f.ctx, store.TaskFilter{ProjectID: newID()})
	f.must(err)
	check(t, "ListTasks(unknown project) length", len(l3), 0)
}

func testListTasks(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	var all []store.Task // oldest first
	for i := range 105 {
		status := store.TaskPending
		if i%3 == 0 {
			status = store.TaskSolved
		}
		all = append(all, f.task(p.ID, func(t *store.Task) {
			t.Status = status
			t.CreatedAt = f.at(time.Duration(i/2) * time.Second) // pairs share a time: id breaks the tie
		}))
	}
	newest := slices.Clone(all)
	slices.SortFunc(newest, func(a, b store.Task) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		if b.ID > a.ID {
			return 1
		}
		return -1
	})
	list := func(flt store.TaskFilter) []string {
		t.Helper()
		flt.ProjectID = p.ID
		got, err := f.s.ListTasks(f.ctx, flt)
		f.must(err)
		return taskIDs(got)
	}
	filter := func(keep func(store.Task) bool) []string {
		ids := []string{}
		for _, t := range newest {
			if keep(t) {
				ids = append(ids, t.ID)
			}
		}
		return ids
	}
	check(t, "default limit 100, newest first", list(store.TaskFilter{}), taskIDs(newest[:100]))
	check(t, "limit and offset", list(store.TaskFilter{Limit: 5, Offset: 100}), taskIDs(newest[100:]))
	check(t, "status", list(store.TaskFilter{Status: store.TaskSolved}), filter(func(t store.Task) bool { return t.Status == store.TaskSolved }))
	from, to := f.at(10*time.Second), f.at(20*time.Second)
	check(t, "from/to (inclusive)", list(store.TaskFilter{From: &from, To: &to}),
		filter(func(t store.Task) bool { return !t.CreatedAt.Before(from) && !t.CreatedAt.After(to) }))
	check(t, "status and from", list(store.TaskFilter{Status: store.TaskPending, From: &to}),
		filter(func(t store.Task) bool { return t.Status == store.TaskPending && !t.CreatedAt.Before(to) }))
	check(t, "unknown status", list(store.TaskFilter{Status: "nope"}), []string{})
}

func testClaimTasks(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	_, ok, err := f.s.NextTaskDueAt(f.ctx)
	f.must(err)
	check(t, "NextTaskDueAt with no tasks", ok, false)

	due2 := f.task(p.ID, func(t *store.Task) { t.NextSubmitAt = f.at(-time.Minute) })
	due1 := f.task(p.ID, func(t *store.Task) { t.NextSubmitAt = f.at(-2 * time.Minute) })
	due3 := f.task(p.ID, func(t *store.Task) { t.NextSubmitAt = f.base })
	later := f.task(p.ID, func(t *store.Task) { t.NextSubmitAt = f.at(time.Minute) })
	leased := f.task(p.ID, func(t *store.Task) {
		t.NextSubmitAt = f.at(-3 * time.Minute)
		t.LeaseOwner, t.LeaseUntil = "other", f.at(time.Second)
	})
	expiredLease := f.task(p.ID, func(t *store.Task) {
		t.NextSubmitAt = f.at(-30 * time.Second)
		t.LeaseOwner, t.LeaseUntil = "dead", f.at(-time.Millisecond)
	})
	f.task(p.ID, func(t *store.Task) { t.Status = store.TaskSubmitted; t.NextSubmitAt = f.at(-time.Hour) })
	f.task(p.ID, func(t *store.Task) { t.Status = store.TaskSolved; t.NextSubmitAt = f.at(-time.Hour) })

	next, ok, err := f.s.NextTaskDueAt(f.ctx)
	f.must(err)
	check(t, "NextTaskDueAt ok", ok, true)
	// The leased task is due only when its lease runs out, so the earliest is due1.
	check(t, "NextTaskDueAt (a live lease postpones)", next, due1.NextSubmitAt)

	hashes := tokenHashes(3)
	claimed, err := f.s.ClaimTasksToSubmit(f.ctx, "me", hashes, time.Minute, f.base)
	f.must(err)
	check(t, "first claim, oldest due first", taskIDs(claimed), []string{due1.ID, due2.ID, expiredLease.ID})
	for i, c := range claimed {
		want := f.getTask(p.ID, c.ID)
		check(t, fmt.Sprintf("claimed task %d as stored", i), c, want)
		check(t, "token hash of the try", c.CallbackTokenHash, hashes[i])
		check(t, "submission tries", c.SubmitAttempts, 1)
		if found, err := f.s.TaskByTokenHash(f.ctx, hashes[i]); err != nil || found.ID != c.ID {
			t.Errorf("task %d not found by its new token hash: %v", i, err)
		}
		check(t, "lease owner", c.LeaseOwner, "me")
		check(t, "lease until", c.LeaseUntil, f.at(time.Minute))
		check(t, "version bumped", c.Version, int64(2))
	}
	claimed2, err := f.s.ClaimTasksToSubmit(f.ctx, "me2", tokenHashes(10), time.Minute, f.base)
	f.must(err)
	check(t, "second claim takes the rest that is due", taskIDs(claimed2), []string{due3.ID})
	claimed3, err := f.s.ClaimTasksToSubmit(f.ctx, "me2", tokenHashes(10), time.Minute, f.at(500*time.Millisecond))
	f.must(err)
	check(t, "claim before leases run out", taskIDs(claimed3), []string{})

	// The claim changed the version: an update from before it conflicts.
	_, err = f.s.UpdateTask(f.ctx, due1, due1.Version, nil)
	wantErr(t, "UpdateTask(version before claim)", err, store.ErrConflict)
	// The claimer submits and releases its lease.
	sub := claimed[0]
	sub.Status, sub.LeaseOwner, sub.LeaseUntil, sub.SubmittedAt = store.TaskSubmitted, "", time.Time{}, ptr(f.base)
	_, err = f.s.UpdateTask(f.ctx, sub, claimed[0].Version, []store.TaskEntry{{Kind: store.TaskSubmitDone}})
	f.must(err)

	// Once the leases run out the remaining tasks are claimable again, by anyone.
	after := f.at(2 * time.Minute)
	claimed4, err := f.s.ClaimTasksToSubmit(f.ctx, "you", tokenHashes(10), time.Minute, after)
	f.must(err)
	check(t, "claim after leases ran out", taskIDs(claimed4), []string{leased.ID, due2.ID, expiredLease.ID, due3.ID, later.ID})
	for _, c := range claimed4 {
		if c.LeaseOwner != "you" || !c.LeaseUntil.Equal(after.Add(time.Minute)) {
			t.Errorf("task %s: lease %s until %v", c.ID, c.LeaseOwner, c.LeaseUntil)
		}
	}
	check(t, "version after second claim", f.getTask(p.ID, due2.ID).Version, int64(3))
	none, err := f.s.ClaimTasksToSubmit(f.ctx, "you", tokenHashes(0), time.Minute, after)
	f.must(err)
	check(t, "claim with limit 0", len(none), 0)
}

func testConcurrentTaskClaimers(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	const total = 120
	for i := range total {
		f.task(p.ID, func(t *store.Task) { t.NextSubmitAt = f.at(-time.Duration(i) * time.Millisecond) })
	}
	const workers = 4
	stores := f.workerStores(workers)
	var mu sync.Mutex
	claimed := map[string]int{}
	var errs []error
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			owner := fmt.Sprintf("worker-%d", w)
			for range total {
				tasks, err := stores[w].ClaimTasksToSubmit(f.ctx, owner, tokenHashes(7), 10*time.Minute, f.base)
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", owner, err))
					mu.Unlock()
					return
				}
				if len(tasks) == 0 {
					return
				}
				mu.Lock()
				for _, t := range tasks {
					claimed[t.ID]++
					if t.LeaseOwner != owner {
						errs = append(errs, fmt.Errorf("%s got task %s leased to %s", owner, t.ID, t.LeaseOwner))
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("task %s claimed %d times", id, n)
		}
	}
	check(t, "distinct tasks claimed", len(claimed), total)
}

func testTaskSelections(t *testing.T, e Storage) {
	f := setup(t, e)
	p1, p2 := f.project(), f.project()
	now := f.base

	// TasksToPoll: submitted and due, most overdue first, across projects.
	poll2 := f.task(p1.ID, func(t *store.Task) { t.Status = store.TaskSubmitted; t.NextPollAt = f.at(-time.Second) })
	poll1 := f.task(p2.ID, func(t *store.Task) { t.Status = store.TaskSubmitted; t.NextPollAt = f.at(-time.Minute) })
	poll3 := f.task(p1.ID, func(t *store.Task) { t.Status = store.TaskSubmitted; t.NextPollAt = now })
	f.task(p1.ID, func(t *store.Task) { t.Status = store.TaskSubmitted; t.NextPollAt = f.at(time.Millisecond) })
	f.task(p1.ID, func(t *store.Task) { t.Status = store.TaskSolved; t.NextPollAt = f.at(-time.Hour) })
	f.task(p1.ID, func(t *store.Task) { t.Status = store.TaskPending; t.NextPollAt = f.at(-time.Hour) })
	got, err := f.s.TasksToPoll(f.ctx, now, 10)
	f.must(err)
	check(t, "TasksToPoll", taskIDs(got), []string{poll1.ID, poll2.ID, poll3.ID})
	check(t, "TasksToPoll returns whole tasks", got[:min(1, len(got))], []store.Task{poll1})
	got, err = f.s.TasksToPoll(f.ctx, now, 2)
	f.must(err)
	check(t, "TasksToPoll with limit", taskIDs(got), []string{poll1.ID, poll2.ID})

	// TasksToExpire: pending or submitted, ExpiresAt set and passed.
	f2 := setup(t, e.Fresh(t)) // fresh storage: the selections span projects
	q := f2.project()
	exp2 := f2.task(q.ID, func(t *store.Task) { t.Status = store.TaskSubmitted; t.ExpiresAt = f.at(-time.Second) })
	exp1 := f2.task(q.ID, func(t *store.Task) { t.Status = store.TaskPending; t.ExpiresAt = f.at(-time.Minute) })
	f2.task(q.ID, func(t *store.Task) { t.ExpiresAt = f.at(time.Second) })
	f2.task(q.ID, func(t *store.Task) { t.ExpiresAt = time.Time{} }) // never expires
	f2.task(q.ID, func(t *store.Task) { t.Status = store.TaskSolved; t.ExpiresAt = f.at(-time.Hour) })
	f2.task(q.ID, func(t *store.Task) { t.Status = store.TaskExpired; t.ExpiresAt = f.at(-time.Hour) })
	got, err = f2.s.TasksToExpire(f.ctx, now, 10)
	f.must(err)
	check(t, "TasksToExpire", taskIDs(got), []string{exp1.ID, exp2.ID})
	got, err = f2.s.TasksToExpire(f.ctx, now, 1)
	f.must(err)
	check(t, "TasksToExpire with limit", taskIDs(got), []string{exp1.ID})

	// UpdateTask writes its events to the outbox in its transaction: a
	// written update leaves them there, a conflicting one writes none.
	f3 := setup(t, e.Fresh(t))
	r := f3.project()
	sub := f3.task(r.ID, func(t *store.Task) { t.Status = store.TaskSubmitted })
	solved := sub
	solved.Status, solved.Solution, solved.UpdatedAt = store.TaskSolved, "tok", f.base
	event := func() store.OutboxEvent {
		return store.OutboxEvent{ID: newID(), ProjectID: r.ID, Type: "task.solved", Subject: sub.ID, Data: json.RawMessage(`{"task_id":"` + sub.ID + `"}`),
			Attributes: map[string]string{"status": "solved", "method": "userrecaptcha"}, IdempotencyKey: "task:" + sub.ID + ":solved", CreatedAt: f.base}
	}
	written := event()
	_, err = f3.s.UpdateTask(f.ctx, solved, sub.Version, nil, written)
	f.must(err)
	_, err = f3.s.UpdateTask(f.ctx, solved, sub.Version, nil, event())
	wantErr(t, "UpdateTask(stale version) with an event", err, store.ErrConflict)
	rows, err := f3.s.ClaimOutbox(f.ctx, "relay", time.Minute, f.at(time.Second), 10)
	f.must(err)
	check(t, "outbox after UpdateTask", rows, []store.OutboxEvent{written})
}

// --- locks ---

func testTryLock(t *testing.T, e Storage) {
	f := setup(t, e)
	lock := func(name, owner string, until, now time.Time) bool {
		t.Helper()
		ok, err := f.s.TryLock(f.ctx, name, owner, until, now)
		f.must(err)
		return ok
	}
	check(t, "a takes a free lock", lock("poller", "a", f.at(time.Minute), f.base), true)
	check(t, "b is refused while a holds it", lock("poller", "b", f.at(time.Minute), f.at(time.Second)), false)
	check(t, "another lock is independent", lock("expirer", "b", f.at(time.Minute), f.base), true)
	check(t, "a renews", lock("poller", "a", f.at(2*time.Minute), f.at(50*time.Second)), true)
	check(t, "b is refused after a's first lease (renewed)", lock("poller", "b", f.at(3*time.Minute), f.at(90*time.Second)), false)
	check(t, "b is refused at the lease's end", lock("poller", "b", f.at(3*time.Minute), f.at(2*time.Minute)), false)
	check(t, "b takes over once it expired", lock("poller", "b", f.at(4*time.Minute), f.at(2*time.Minute+time.Millisecond)), true)
	check(t, "a is now refused", lock("poller", "a", f.at(5*time.Minute), f.at(3*time.Minute)), false)

	f.must(f.s.Unlock(f.ctx, "poller", "a")) // not a's: nothing happens
	check(t, "a still refused after its own unlock", lock("poller", "a", f.at(5*time.Minute), f.at(3*time.Minute)), false)
	f.must(f.s.Unlock(f.ctx, "poller", "b"))
	check(t, "a takes the unlocked lock", lock("poller", "a", f.at(5*time.Minute), f.at(3*time.Minute)), true)
	f.must(f.s.Unlock(f.ctx, "missing", "a"))

	// Owners racing for a free lock: exactly one wins.
	stores := f.workerStores(4)
	const racers = 8
	for round := range 5 {
		name := fmt.Sprintf("race-%d", round)
		won := make([]bool, racers)
		errs := make([]error, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				won[i], errs[i] = stores[i%len(stores)].TryLock(f.ctx, name, fmt.Sprintf("owner-%d", i), f.at(time.Minute), f.base)
			})
		}
		wg.Wait()
		winners := 0
		for i := range racers {
			if errs[i] != nil {
				t.Errorf("%s: owner-%d: %v", name, i, errs[i])
			}
			if won[i] {
				winners++
			}
		}
		check(t, name+": winners", winners, 1)
	}
}

// --- dead letters ---

func (f *fixture) deadLetter(projectID string, mods ...func(*store.DeadLetter)) store.DeadLetter {
	f.t.Helper()
	d := store.DeadLetter{
		ID: newID(), ProjectID: projectID, TaskID: newID(), Source: "callback", Reason: "unknown_provider_id",
		Message: "no task with provider id 123", Method: "GET", Query: "id=123&code=03AG%20x&code=dup",
		Body: "", ContentType: "", Status: store.DeadLetterPending, CreatedAt: f.base, UpdatedAt: f.base,
	}
	for _, m := range mods {
		m(&d)
	}
	f.must(f.s.CreateDeadLetter(f.ctx, d))
	return d
}

func testDeadLetters(t *testing.T, e Storage) {
	f := setup(t, e)
	p1, p2 := f.project(), f.project()
	full := f.deadLetter(p1.ID, func(d *store.DeadLetter) {
		d.Reason = "malformed_callback"
		d.Method = "POST"
		d.Body = "{\"id\": 1,\n \"ü\": \"\\u0000\"}"
		d.ContentType = "application/json; charset=utf-8"
		d.Redrives = 2
		d.LastError = "still unknown"
		d.Status = store.DeadLetterRedriven
		d.CreatedAt = f.at(-time.Hour)
		d.UpdatedAt = f.at(-time.Minute)
		d.RedrivenAt = ptr(f.at(-time.Minute))
	})
	got, err := f.s.GetDeadLetter(f.ctx, p1.ID, full.ID)
	f.must(err)
	check(t, "GetDeadLetter", got, full)
	_, err = f.s.GetDeadLetter(f.ctx, p2.ID, full.ID)
	wantErr(t, "GetDeadLetter(other project)", err, store.ErrNotFound)
	_, err = f.s.GetDeadLetter(f.ctx, p1.ID, newID())
	wantErr(t, "GetDeadLetter(missing)", err, store.ErrNotFound)
	wantErr(t, "CreateDeadLetter(same id)", f.s.CreateDeadLetter(f.ctx, full), store.ErrConflict)

	// Update writes status, redrives, last error, updated at and redriven at only.
	d := f.deadLetter(p1.ID)
	upd := d
	upd.Status = store.DeadLetterRedriven
	upd.Redrives = 1
	upd.LastError = ""
	upd.UpdatedAt = f.at(time.Minute)
	upd.RedrivenAt = ptr(f.at(time.Minute))
	sent := upd
	sent.Reason, sent.Body, sent.TaskID, sent.CreatedAt = "changed", "changed", "changed", f.at(time.Hour)
	f.must(f.s.UpdateDeadLetter(f.ctx, sent))
	got, err = f.s.GetDeadLetter(f.ctx, p1.ID, d.ID)
	f.must(err)
	check(t, "dead letter after update", got, upd)
	moved := upd
	moved.ProjectID = p2.ID
	moved.Redrives = 9
	wantErr(t, "UpdateDeadLetter(other project)", f.s.UpdateDeadLetter(f.ctx, moved), store.ErrNotFound)
	missing := upd
	missing.ID = newID()
	wantErr(t, "UpdateDeadLetter(missing)", f.s.UpdateDeadLetter(f.ctx, missing), store.ErrNotFound)

	counts, err := f.s.CountDeadLetters(f.ctx)
	f.must(err)
	check(t, "counts", counts, store.Counts{store.DeadLetterRedriven: 2})
	f.deadLetter(p2.ID)
	counts, err = f.s.CountDeadLetters(f.ctx)
	f.must(err)
	check(t, "counts across projects", counts, store.Counts{store.DeadLetterRedriven: 2, store.DeadLetterPending: 1})

	// Listing: newest first, filters, default limit.
	f2 := setup(t, e.Fresh(t))
	q := f2.project()
	task := newID()
	var all []store.DeadLetter
	for i := range 103 {
		all = append(all, f2.deadLetter(q.ID, func(d *store.DeadLetter) {
			d.CreatedAt = f.at(time.Duration(i/2) * time.Second)
			if i%4 == 0 {
				d.Reason = "processing_failed"
			}
			if i%5 == 0 {
				d.Status = store.DeadLetterRedriven
			}
			if i%10 == 0 {
				d.TaskID = task
			}
			if i%3 == 0 {
				d.Source = "spool"
			}
		}))
	}
	f2.deadLetter(f2.project().ID) // another project's
	newest := slices.Clone(all)
	slices.SortFunc(newest, func(a, b store.DeadLetter) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		if b.ID > a.ID {
			return 1
		}
		return -1
	})
	list := func(flt store.DeadLetterFilter) []string {
		t.Helper()
		flt.ProjectID = q.ID
		got, err := f2.s.ListDeadLetters(f.ctx, flt)
		f.must(err)
		return deadLetterIDs(got)
	}
	filter := func(keep func(store.DeadLetter) bool) []string {
		ids := []string{}
		for _, d := range newest {
			if keep(d) {
				ids = append(ids, d.ID)
			}
		}
		return ids
	}
	check(t, "default limit 100, newest first", list(store.DeadLetterFilter{}), deadLetterIDs(newest[:100]))
	check(t, "limit and offset", list(store.DeadLetterFilter{Limit: 10, Offset: 100}), deadLetterIDs(newest[100:]))
	check(t, "status", list(store.DeadLetterFilter{Status: store.DeadLetterRedriven}),
		filter(func(d store.DeadLetter) bool { return d.Status == store.DeadLetterRedriven }))
	check(t, "reason", list(store.DeadLetterFilter{Reason: "processing_failed"}),
		filter(func(d store.DeadLetter) bool { return d.Reason == "processing_failed" }))
	check(t, "task", list(store.DeadLetterFilter{TaskID: task}), filter(func(d store.DeadLetter) bool { return d.TaskID == task }))
	check(t, "source", list(store.DeadLetterFilter{Source: "spool"}), filter(func(d store.DeadLetter) bool { return d.Source == "spool" }))
	from, to := f.at(5*time.Second), f.at(30*time.Second)
	check(t, "from/to and status", list(store.DeadLetterFilter{From: &from, To: &to, Status: store.DeadLetterPending}),
		filter(func(d store.DeadLetter) bool {
			return d.Status == store.DeadLetterPending && !d.CreatedAt.Before(from) && !d.CreatedAt.After(to)
		}))
	check(t, "every filter", list(store.DeadLetterFilter{Status: store.DeadLetterRedriven, Reason: "processing_failed", TaskID: task, Limit: 1}),
		filter(func(d store.DeadLetter) bool {
			return d.Status == store.DeadLetterRedriven && d.Reason == "processing_failed" && d.TaskID == task
		})[:1])
	got2, err := f.s.ListDeadLetters(f.ctx, store.DeadLetterFilter{ProjectID: p2.ID})
	f.must(err)
	check(t, "project 2 lists only its own", len(got2), 1)
}

// --- pruning ---

func testPruneTasks(t *testing.T, e Storage) {
	f := setup(t, e)
	p := f.project()
	cutoff := f.at(-24 * time.Hour)
	old := f.at(-48 * time.Hour)
	done := func(at time.Time) func(*store.Task) {
		return func(t *store.Task) {
			t.Status, t.CreatedAt, t.UpdatedAt, t.CompletedAt = store.TaskSolved, old, at, ptr(at)
		}
	}
	gone1 := f.task(p.ID, done(old))
	gone2 := f.task(p.ID, done(cutoff.Add(-time.Millisecond)))
	f.must(f.s.AppendTaskHistory(f.ctx, []store.TaskEntry{{TaskID: gone1.ID, ProjectID: p.ID, Kind: store.TaskCallback, At: old}}))
	recent := f.task(p.ID, done(cutoff))
	open := f.task(p.ID, func(t *store.Task) { t.CreatedAt, t.UpdatedAt = old, old }) // old but never completed

	dl := func(status string, updated time.Time) store.DeadLetter {
		return f.deadLetter(p.ID, func(d *store.DeadLetter) { d.Status, d.CreatedAt, d.UpdatedAt = status, old, updated })
	}
	dlGone := dl(store.DeadLetterRedriven, old)
	dlRecent := dl(store.DeadLetterRedriven, cutoff)
	dlPending := dl(store.DeadLetterPending, old)

	n, err := f.s.Prune(f.ctx, cutoff, 1)
	f.must(err)
	check(t, "prune with limit 1", n, 1)
	n, err = f.s.Prune(f.ctx, cutoff, 1)
	f.must(err)
	check(t, "prune again with limit 1 (one task left)", n, 1)
	n, err = f.s.Prune(f.ctx, cutoff, 100)
	f.must(err)
	check(t, "prune when nothing is left", n, 0)

	for _, id := range []string{gone1.ID, gone2.ID} {
		_, err := f.s.GetTask(f.ctx, p.ID, id)
		wantErr(t, "GetTask(pruned)", err, store.ErrNotFound)
		check(t, "history of pruned task", len(f.history(p.ID, id)), 0)
	}
	for _, tk := range []store.Task{recent, open} {
		check(t, "kept task", f.getTask(p.ID, tk.ID), tk)
		check(t, "kept task's history", kinds(f.history(p.ID, tk.ID)), []string{store.TaskCreated})
	}
	_, err = f.s.GetDeadLetter(f.ctx, p.ID, dlGone.ID)
	wantErr(t, "GetDeadLetter(pruned)", err, store.ErrNotFound)
	for _, d := range []store.DeadLetter{dlRecent, dlPending} {
		got, err := f.s.GetDeadLetter(f.ctx, p.ID, d.ID)
		f.must(err)
		check(t, "kept dead letter", got, d)
	}
}

// tokenHashes returns n fresh, distinct callback token hashes for claims.
func tokenHashes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "hash-" + newID()
	}
	return out
}
