package storetest

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

var queueTests = []subtest{
	{"claim order and limit", testClaimOrder},
	{"claim attaches the message", testClaimMessage},
	{"lease and takeover", testLeaseTakeover},
	{"complete", testComplete},
	{"complete in a final state drops the code", testCompleteFinal},
	{"claim drops the code of a live message past its expiry", testClaimExpiredLive},
	{"complete enqueues the next tick in the same slot", testCompleteSameSlot},
	{"enqueue coalesces", testEnqueueCoalesces},
	{"enqueue over a leased task", testEnqueueOverLeased},
	{"retry", testRetry},
	{"next due", testNextDue},
	{"pending", testPending},
	{"wake", testWake},
	{"concurrent claims share the work", testConcurrentClaims},
}

// sortTasks orders tasks by ID, for set comparisons.
func sortTasks(ts []otpbot.Task) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
}

// task builds a task without a message.
func task(id string, p otpbot.Priority, due time.Time) otpbot.Task {
	return otpbot.Task{ID: id, Kind: otpbot.TaskNotice, Priority: p, Target: chatA, Due: due, Created: due, Text: "report " + id}
}

// jobIDs lists the task ids of jobs in order.
func jobIDs(jobs []otpbot.Job) []string {
	ids := []string{}
	for _, j := range jobs {
		ids = append(ids, j.Task.ID)
	}
	return ids
}

func testClaimOrder(t *testing.T, newStore NewStoreFunc) {
	tests := []struct {
		name   string
		max    int
		claims [][]string
	}{
		{"all at once", 10, [][]string{{"c", "b", "d", "a"}, {}}},
		{"two at a time", 2, [][]string{{"c", "b"}, {"d", "a"}, {}}},
		{"one at a time", 1, [][]string{{"c"}, {"b"}, {"d"}, {"a"}, {}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, newStore)
			now := e.clock.Now()
			e.enqueue(
				task("a", otpbot.PriorityRefresh, now.Add(-time.Minute)),
				task("b", otpbot.PriorityCode, now),
				task("c", otpbot.PriorityCode, now.Add(-2*time.Minute)),
				task("d", otpbot.PriorityUpdate, now.Add(-5*time.Minute)),
				task("e", otpbot.PriorityCode, now.Add(10*time.Second)), // not due yet
			)
			for i, want := range tc.claims {
				equal(t, fmt.Sprintf("claim %d", i+1), jobIDs(e.claim(now, tc.max)), want)
			}
			// Still inside the others' leases.
			equal(t, "claim when e is due", jobIDs(e.claim(now.Add(10*time.Second), tc.max)), []string{"e"})
		})
	}
}

func testClaimMessage(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	now := e.clock.Now()
	ev := codeEvent("e1", "C1", now)
	e.ingest(ev)
	notice := task("n1", otpbot.PriorityOther, now)
	e.enqueue(notice)
	jobs := e.claimAll(now)
	if len(jobs) != 2 {
		t.Fatalf("claimed %d jobs, want 2", len(jobs))
	}
	send, note := jobs[0], jobs[1]
	if send.Message == nil {
		t.Fatalf("send job without its message")
	}
	equal(t, "send job message", normMessage(*send.Message), normMessage(e.claimedMessage(send)))
	if send.Message.Event.Code != secret {
		t.Fatalf("the claimed live message lost its code")
	}
	if note.Message != nil {
		t.Fatalf("notice job has a message: %s", js(note.Message))
	}
	equal(t, "notice task", normTask(note.Task), normTask(notice))
	for _, j := range jobs {
		if j.Lease == "" || !j.LeaseUntil.Equal(now.Add(30*time.Second)) {
			t.Fatalf("job %s lease %q until %v, want a token until %v", j.Task.ID, j.Lease, j.LeaseUntil, now.Add(30*time.Second))
		}
	}
}

func testLeaseTakeover(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	now := e.clock.Now()
	e.enqueue(task("t1", otpbot.PriorityCode, now))
	first := e.claim(now, 5)
	if len(first) != 1 {
		t.Fatalf("first claim got %d jobs", len(first))
	}
	if got := e.claim(now.Add(10*time.Second), 5); len(got) != 0 {
		t.Fatalf("claim during the lease got %v", jobIDs(got))
	}
	e.wantNextDue(now.Add(30*time.Second), true)
	second := e.claim(now.Add(31*time.Second), 5)
	if len(second) != 1 || second[0].Task.ID != "t1" {
		t.Fatalf("claim after the lease got %v", jobIDs(second))
	}
	if second[0].Lease == first[0].Lease {
		t.Fatalf("takeover kept the lease token %q", first[0].Lease)
	}
	wantErr(t, "Complete by the old holder", e.s.Complete(e.ctx, first[0], nil), otpbot.ErrLeaseLost)
	wantErr(t, "Retry by the old holder", e.s.Retry(e.ctx, first[0], now.Add(time.Minute), "x"), otpbot.ErrLeaseLost)
	if err := e.s.Complete(e.ctx, second[0], nil); err != nil {
		t.Fatalf("Complete by the new holder: %v", err)
	}
	e.wantNextDue(time.Time{}, false)
	wantErr(t, "Complete twice", e.s.Complete(e.ctx, second[0], nil), otpbot.ErrLeaseLost)
	if got := e.claim(now.Add(time.Hour), 5); len(got) != 0 {
		t.Fatalf("completed task claimed again: %v", jobIDs(got))
	}
}

func testComplete(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	now := e.clock.Now()
	e.ingest(codeEvent("e1", "C1", now))
	jobs := e.claimAll(now)
	if len(jobs) != 1 {
		t.Fatalf("claimed %d jobs", len(jobs))
	}
	job := jobs[0]
	sent := e.clock.Advance(300 * time.Millisecond)
	msg := *job.Message
	msg.TelegramID, msg.SentAt, msg.UpdatedAt, msg.Rendered = 42, sent, sent, "h1"
	tick := otpbot.Task{
		ID: otpbot.TaskID(msg.ID, otpbot.TaskRefresh), Kind: otpbot.TaskRefresh, Priority: otpbot.PriorityRefresh,
		MessageID: msg.ID, Target: chatA, Due: now.Add(30 * time.Second), Created: now.Add(30 * time.Second),
	}
	if err := e.s.Complete(e.ctx, job, &msg, tick); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	stored := e.message(msg.ID)
	equal(t, "stored message", normMessage(stored), normMessage(msg))
	if stored.Event.Code != secret {
		t.Fatalf("a live message lost its code")
	}
	e.wantNextDue(now.Add(30*time.Second), true)
	if got := e.claim(now.Add(29*time.Second), 5); len(got) != 0 {
		t.Fatalf("claimed before the tick was due: %v", jobIDs(got))
	}
	next := e.claim(now.Add(30*time.Second), 5)
	if len(next) != 1 {
		t.Fatalf("tick not claimed: %v", jobIDs(next))
	}
	equal(t, "tick", normTask(next[0].Task), normTask(tick))
	if next[0].Message == nil || next[0].Message.TelegramID != 42 {
		t.Fatalf("tick job message: %s", js(next[0].Message))
	}
}

func testCompleteFinal(t *testing.T, newStore NewStoreFunc) {
	for _, state := range []otpbot.MessageState{otpbot.StateExpired, otpbot.StateHidden, otpbot.StateDecided, otpbot.StateFailed} {
		t.Run(string(state), func(t *testing.T) {
			e := newEnv(t, newStore)
			e.link(cardC1, chatA)
			now := e.clock.Now()
			e.ingest(codeEvent("e1", "C1", now))
			job := e.claimAll(now)[0]
			msg := *job.Message
			msg.State, msg.UpdatedAt = state, e.clock.Advance(time.Second)
			if err := e.s.Complete(e.ctx, job, &msg); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			// A store may forget a final message; if it keeps it, no code.
			m, ok, err := e.s.Message(e.ctx, msg.ID)
			if err != nil {
				t.Fatalf("Message: %v", err)
			}
			if ok {
				noSecrets(t, "final message", m.Event)
				if m.State != state {
					t.Fatalf("state %q, want %q", m.State, state)
				}
			}
			e.wantNextDue(time.Time{}, false)
		})
	}
}

func testCompleteSameSlot(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	now := e.clock.Now()
	id := otpbot.TaskID("g@1001", otpbot.TaskRefresh)
	tick := otpbot.Task{ID: id, Kind: otpbot.TaskRefresh, Priority: otpbot.PriorityRefresh, MessageID: "g@1001",
		Target: chatA, Due: now, Created: now}
	e.enqueue(tick)
	job := e.claimAll(now)[0]
	next := tick
	next.Kind, next.Due, next.Created = otpbot.TaskExpire, now.Add(30*time.Second), now.Add(30*time.Second)
	next.ID = otpbot.TaskID("g@1001", otpbot.TaskExpire)
	if next.ID != id {
		t.Fatalf("refresh and expire should share a slot")
	}
	if err := e.s.Complete(e.ctx, job, nil, next); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	e.wantNextDue(now.Add(30*time.Second), true)
	got := e.claimAll(now.Add(30 * time.Second))
	if len(got) != 1 {
		t.Fatalf("next tick not pending: %v", jobIDs(got))
	}
	equal(t, "next tick", normTask(got[0].Task), normTask(next))
}

func testEnqueueCoalesces(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	now := e.clock.Now()
	first := task("x", otpbot.PriorityRefresh, now.Add(10*time.Second))
	second := first
	second.Kind, second.Due, second.Text = otpbot.TaskExpire, now.Add(20*time.Second), "replaced"
	e.enqueue(first)
	e.enqueue(second)
	pending, err := e.s.Pending(e.ctx)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	if c := pending[otpbot.PriorityRefresh].Count; c != 1 {
		t.Fatalf("%d tasks pending, want 1", c)
	}
	e.wantNextDue(now.Add(20*time.Second), true)
	if got := e.claimAll(now.Add(15 * time.Second)); len(got) != 0 {
		t.Fatalf("the replaced task was claimed: %v", jobIDs(got))
	}
	got := e.claimAll(now.Add(20 * time.Second))
	if len(got) != 1 {
		t.Fatalf("claimed %v", jobIDs(got))
	}
	equal(t, "coalesced task", normTask(got[0].Task), normTask(second))

	// Several tasks in one call, one of them twice: the last one wins.
	third := task("y", otpbot.PriorityCode, now)
	fourth := third
	fourth.Text = "last"
	e.enqueue(third, task("z", otpbot.PriorityCode, now), fourth)
	got = e.claimAll(now.Add(20 * time.Second))
	equal(t, "claimed", jobIDs(got), []string{"y", "z"})
	if got[0].Task.Text != "last" {
		t.Fatalf("task y text %q, want the last enqueued", got[0].Task.Text)
	}
}

func testEnqueueOverLeased(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	now := e.clock.Now()
	e.enqueue(task("x", otpbot.PriorityUpdate, now))
	old := e.claimAll(now)[0]
	renewed := task("x", otpbot.PriorityUpdate, now.Add(time.Second))
	renewed.Text = "newer work"
	e.enqueue(renewed)
	e.wantNextDue(now.Add(time.Second), true)
	got := e.claimAll(now.Add(time.Second))
	if len(got) != 1 || got[0].Task.Text != "newer work" {
		t.Fatalf("the re-enqueued task is not claimable: %s", js(got))
	}
	wantErr(t, "Complete of the replaced job", e.s.Complete(e.ctx, old, nil), otpbot.ErrLeaseLost)
	if err := e.s.Complete(e.ctx, got[0], nil); err != nil {
		t.Fatalf("Complete of the new job: %v", err)
	}
	e.wantNextDue(time.Time{}, false)
}

func testRetry(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	now := e.clock.Now()
	orig := task("r", otpbot.PriorityCode, now)
	e.enqueue(orig)
	job := e.claimAll(now)[0]
	for attempt := 1; attempt <= 2; attempt++ {
		at := now.Add(time.Duration(attempt) * time.Minute)
		reason := fmt.Sprintf("telegram: 502 Bad Gateway (%d)", attempt)
		if err := e.s.Retry(e.ctx, job, at, reason); err != nil {
			t.Fatalf("Retry: %v", err)
		}
		e.wantNextDue(at, true)
		if got := e.claimAll(at.Add(-time.Second)); len(got) != 0 {
			t.Fatalf("claimed before the retry time: %v", jobIDs(got))
		}
		got := e.claimAll(at)
		if len(got) != 1 {
			t.Fatalf("retried task not claimed at %v", at)
		}
		want := orig
		want.Due, want.Attempts, want.LastError = at, attempt, reason
		equal(t, "retried task", normTask(got[0].Task), normTask(want))
		job = got[0]
	}
}

func testNextDue(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	now := e.clock.Now()
	e.wantNextDue(time.Time{}, false)
	e.enqueue(task("late", otpbot.PriorityCode, now.Add(5*time.Minute)))
	e.wantNextDue(now.Add(5*time.Minute), true)
	e.enqueue(task("refresh", otpbot.PriorityRefresh, now.Add(2*time.Minute)))
	e.wantNextDue(now.Add(2*time.Minute), true)
	e.enqueue(task("soon", otpbot.PriorityOther, now.Add(-time.Minute)))
	e.wantNextDue(now.Add(-time.Minute), true)
	// Leased: claimable again when the lease runs out.
	if got := e.claimAll(now); len(got) != 1 {
		t.Fatalf("claimed %v", jobIDs(got))
	}
	e.wantNextDue(now.Add(30*time.Second), true)
}

func testPending(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	now := e.clock.Now()
	mk := func(id string, p otpbot.Priority, created time.Time) otpbot.Task {
		tk := task(id, p, now)
		tk.Created = created
		return tk
	}
	e.enqueue(
		mk("c1", otpbot.PriorityCode, now.Add(-time.Minute)),
		mk("c2", otpbot.PriorityCode, now.Add(-3*time.Minute)),
		mk("r1", otpbot.PriorityRefresh, now.Add(-2*time.Minute)),
	)
	check := func(what string) {
		t.Helper()
		pending, err := e.s.Pending(e.ctx)
		if err != nil {
			t.Fatalf("Pending: %v", err)
		}
		want := map[otpbot.Priority]otpbot.QueueStat{
			otpbot.PriorityCode:    {Count: 2, Oldest: now.Add(-3 * time.Minute)},
			otpbot.PriorityRefresh: {Count: 1, Oldest: now.Add(-2 * time.Minute)},
		}
		total := 0
		for p, st := range pending {
			total += st.Count
			if w, ok := want[p]; ok && (st.Count != w.Count || !st.Oldest.Equal(w.Oldest)) {
				t.Fatalf("%s: Pending[%d] = %s, want %s", what, p, js(st), js(w))
			}
		}
		if total != 3 {
			t.Fatalf("%s: Pending counts %d tasks, want 3: %s", what, total, js(pending))
		}
	}
	check("enqueued")
	if got := e.claim(now, 1); len(got) != 1 {
		t.Fatalf("claim: %v", jobIDs(got))
	}
	check("one leased")
}

func testWake(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	wake := e.s.Wake()
	now := e.clock.Now()

	DrainWake(wake)
	e.enqueue(task("t1", otpbot.PriorityOther, now))
	WaitWake(t, wake, "Enqueue")

	DrainWake(wake)
	e.ingest(codeEvent("e1", "C1", now))
	WaitWake(t, wake, "Ingest of a linked code")

	jobs := e.claimAll(now)
	DrainWake(wake)
	if err := e.s.Retry(e.ctx, jobs[0], now.Add(time.Second), "flood wait"); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	WaitWake(t, wake, "Retry")

	DrainWake(wake)
	if err := e.s.Complete(e.ctx, jobs[1], nil, task("t2", otpbot.PriorityOther, now)); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	WaitWake(t, wake, "Complete with next work")

	DrainWake(wake)
	m := e.message(otpbot.MessageKey("e1", chatA))
	next := m
	next.UpdatedAt = e.clock.Advance(time.Second)
	if err := e.s.UpdateMessage(e.ctx, m.UpdatedAt, next, task("t3", otpbot.PriorityUpdate, now)); err != nil {
		t.Fatalf("UpdateMessage: %v", err)
	}
	WaitWake(t, wake, "UpdateMessage with next work")
}

func testConcurrentClaims(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	now := e.clock.Now()
	const n = 60
	var tasks []otpbot.Task
	for i := range n {
		tasks = append(tasks, task(fmt.Sprintf("t%02d", i), otpbot.Priority(i%4), now.Add(-time.Duration(i)*time.Second)))
	}
	e.enqueue(tasks...)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]int{}
	)
	for range 6 {
		wg.Go(func() {
			// Bounded: a store that hands out leased tasks again must fail
			// here, not spin forever.
			for range n {
				jobs, err := e.s.Claim(e.ctx, now, time.Minute, 4)
				if err != nil {
					t.Errorf("Claim: %v", err)
					return
				}
				if len(jobs) == 0 {
					return
				}
				mu.Lock()
				for _, j := range jobs {
					seen[j.Task.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d distinct tasks claimed, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("task %s claimed %d times", id, c)
		}
	}
}

// testClaimExpiredLive: while Telegram is unreachable a code message stays
// live past its expiry (the expiry edit has not happened yet). Its code is
// no longer valid and must not stay in the store: a claim at or after its
// expiry drops the code and link of the message, keeps it live (so the
// claimed work still edits the Telegram message into its expired form)
// and gives it a new version, so that a writer holding the copy with the
// code loses.
func testClaimExpiredLive(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	t0 := e.clock.Now()
	ev := codeEvent("e1", "C1", t0)
	e.ingest(ev)
	id := otpbot.MessageKey("e1", chatA)

	// Telegram is down: the send fails and is retried after the expiry.
	jobs := e.claimAll(t0)
	if len(jobs) != 1 || jobs[0].Message.Event.Code != secret {
		t.Fatalf("first claim: %s", js(jobs))
	}
	withCode := *jobs[0].Message
	first := jobs[0]
	retryAt := ev.ExpiresAt.Add(time.Minute)
	if err := e.s.Retry(e.ctx, jobs[0], retryAt, "telegram: 502"); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	// Before the expiry a claim changes nothing (nothing is due yet, and
	// the message keeps its code).
	if jobs := e.claimAll(ev.ExpiresAt.Add(-time.Second)); len(jobs) != 0 {
		t.Fatalf("claimed before the retry was due: %v", jobIDs(jobs))
	}
	equal(t, "message before the expiry", normMessage(e.claimedMessage(first)), normMessage(withCode))

	e.clock.Advance(retryAt.Sub(t0))
	before := e.message(id) // with the first claim's mark, if it marks sends
	jobs = e.claimAll(retryAt)
	if len(jobs) != 1 || jobs[0].Task.Kind != otpbot.TaskSend || jobs[0].Message == nil {
		t.Fatalf("claim after the expiry: %s", js(jobs))
	}
	got := *jobs[0].Message
	noSecrets(t, "claimed message past its expiry", got.Event)
	if got.State != otpbot.StateLive {
		t.Fatalf("claimed message state %q, want live (the expiry edit is still to be made)", got.State)
	}
	if !got.UpdatedAt.After(withCode.UpdatedAt) {
		t.Fatalf("UpdatedAt %v not after %v: the change has no new version", got.UpdatedAt, withCode.UpdatedAt)
	}
	want := withCode
	want.Event = ev.Redacted()
	want.UpdatedAt, want.SendStarted = got.UpdatedAt, before.SendStarted
	equal(t, "claimed message", normMessage(got), normMessage(want))
	equal(t, "stored message", normMessage(e.claimedMessage(jobs[0])), normMessage(got))

	// The copy with the code cannot be written back.
	stale := withCode
	stale.UpdatedAt = retryAt
	wantErr(t, "UpdateMessage with the copy holding the code",
		e.s.UpdateMessage(e.ctx, withCode.UpdatedAt, stale), otpbot.ErrConflict)
	noSecrets(t, "stored message after the stale write", e.message(id).Event)

	// The claimed job is still the current one: the deliverer finishes it.
	done := got
	done.State, done.UpdatedAt = otpbot.StateExpired, e.clock.Advance(time.Second)
	if err := e.s.Complete(e.ctx, jobs[0], &done); err != nil {
		t.Fatalf("Complete after the redaction: %v", err)
	}
}
