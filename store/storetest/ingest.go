package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

var ingestTests = []subtest{
	{"outcomes", testIngestOutcomes},
	{"dedupe window", testIngestDedupe},
	{"concurrent repeats are one push", testIngestConcurrentRepeats},
	{"concurrent distinct pushes", testIngestConcurrentDistinct},
	{"existing message gets an update", testIngestUpdate},
}

func testIngestOutcomes(t *testing.T, newStore NewStoreFunc) {
	type linkSpec struct {
		key    otpbot.Key
		target otpbot.Target
		broken bool
	}
	tests := []struct {
		name        string
		links       []linkSpec
		event       func(at time.Time) otpbot.Event
		want        otpbot.Outcome
		wantTargets []otpbot.Target
	}{
		{
			name:        "code to a linked card",
			links:       []linkSpec{{key: cardC1, target: chatA}},
			event:       func(at time.Time) otpbot.Event { return codeEvent("e1", "C1", at) },
			want:        otpbot.OutcomeQueued,
			wantTargets: []otpbot.Target{chatA},
		},
		{
			name:        "code to a card linked in two chats and a topic",
			links:       []linkSpec{{key: cardC1, target: chatA}, {key: cardC1, target: chatBT7}, {key: cardC2, target: chatC}},
			event:       func(at time.Time) otpbot.Event { return codeEvent("e1", "C1", at) },
			want:        otpbot.OutcomeQueued,
			wantTargets: []otpbot.Target{chatA, chatBT7},
		},
		{
			name:  "code to an unlinked card",
			links: []linkSpec{{key: cardC2, target: chatA}},
			event: func(at time.Time) otpbot.Event { return codeEvent("e1", "C1", at) },
			want:  otpbot.OutcomeUnrouted,
		},
		{
			name:  "code to a broken link only",
			links: []linkSpec{{key: cardC1, target: chatA, broken: true}},
			event: func(at time.Time) otpbot.Event { return codeEvent("e1", "C1", at) },
			want:  otpbot.OutcomeUnrouted,
		},
		{
			name:        "code skips the broken one of two links",
			links:       []linkSpec{{key: cardC1, target: chatA, broken: true}, {key: cardC1, target: chatB}},
			event:       func(at time.Time) otpbot.Event { return codeEvent("e1", "C1", at) },
			want:        otpbot.OutcomeQueued,
			wantTargets: []otpbot.Target{chatB},
		},
		{
			name:        "approval request to a linked card",
			links:       []linkSpec{{key: cardC1, target: chatA}},
			event:       func(at time.Time) otpbot.Event { return approvalEvent("a1", "X9", "C1", 0, at) },
			want:        otpbot.OutcomeQueued,
			wantTargets: []otpbot.Target{chatA},
		},
		{
			name:  "customer code routed by the customer",
			links: []linkSpec{{key: custU1, target: chatAT5}},
			event: func(at time.Time) otpbot.Event {
				ev := codeEvent("e1", "", at)
				ev.CustomerNo = "U1"
				return ev
			},
			want:        otpbot.OutcomeQueued,
			wantTargets: []otpbot.Target{chatAT5},
		},
		{
			name:  "card and customer, only the card linked",
			links: []linkSpec{{key: cardC1, target: chatA}},
			event: func(at time.Time) otpbot.Event {
				ev := codeEvent("e1", "C1", at)
				ev.CustomerNo = "U1"
				return ev
			},
			want:        otpbot.OutcomeQueued,
			wantTargets: []otpbot.Target{chatA},
		},
		{
			name:  "card and customer, only the customer linked",
			links: []linkSpec{{key: custU1, target: chatA}},
			event: func(at time.Time) otpbot.Event {
				ev := codeEvent("e1", "C1", at)
				ev.CustomerNo = "U1"
				return ev
			},
			want:        otpbot.OutcomeQueued,
			wantTargets: []otpbot.Target{chatA},
		},
		{
			name:  "card and customer linked in different chats: both get it",
			links: []linkSpec{{key: cardC1, target: chatA}, {key: custU1, target: chatB}, {key: cardC2, target: chatC}},
			event: func(at time.Time) otpbot.Event {
				ev := codeEvent("e1", "C1", at)
				ev.CustomerNo = "U1"
				return ev
			},
			want:        otpbot.OutcomeQueued,
			wantTargets: []otpbot.Target{chatA, chatB},
		},
		{
			name:  "card and customer linked in the same chat: one message",
			links: []linkSpec{{key: cardC1, target: chatA}, {key: custU1, target: chatA}},
			event: func(at time.Time) otpbot.Event {
				ev := codeEvent("e1", "C1", at)
				ev.CustomerNo = "U1"
				return ev
			},
			want:        otpbot.OutcomeQueued,
			wantTargets: []otpbot.Target{chatA},
		},
		{
			name:  "card and customer linked in two topics of one chat: each topic",
			links: []linkSpec{{key: cardC1, target: chatA}, {key: custU1, target: chatAT5}},
			event: func(at time.Time) otpbot.Event {
				ev := codeEvent("e1", "C1", at)
				ev.CustomerNo = "U1"
				return ev
			},
			want:        otpbot.OutcomeQueued,
			wantTargets: []otpbot.Target{chatA, chatAT5},
		},
		{
			name:  "card link broken, customer link fine",
			links: []linkSpec{{key: cardC1, target: chatA, broken: true}, {key: custU1, target: chatB}},
			event: func(at time.Time) otpbot.Event {
				ev := codeEvent("e1", "C1", at)
				ev.CustomerNo = "U1"
				return ev
			},
			want:        otpbot.OutcomeQueued,
			wantTargets: []otpbot.Target{chatB},
		},
		{
			name:  "customer link broken, card link fine",
			links: []linkSpec{{key: custU1, target: chatB, broken: true}, {key: cardC1, target: chatA}},
			event: func(at time.Time) otpbot.Event {
				ev := codeEvent("e1", "C1", at)
				ev.CustomerNo = "U1"
				return ev
			},
			want:        otpbot.OutcomeQueued,
			wantTargets: []otpbot.Target{chatA},
		},
		{
			// The card's link to the chat broke; the customer was linked
			// to the same chat again afterwards, so the chat receives.
			name:  "same chat broken under the card, relinked under the customer",
			links: []linkSpec{{key: cardC1, target: chatA, broken: true}, {key: custU1, target: chatA}},
			event: func(at time.Time) otpbot.Event {
				ev := codeEvent("e1", "C1", at)
				ev.CustomerNo = "U1"
				return ev
			},
			want:        otpbot.OutcomeQueued,
			wantTargets: []otpbot.Target{chatA},
		},
		{
			name:  "card and customer links both broken",
			links: []linkSpec{{key: cardC1, target: chatA, broken: true}, {key: custU1, target: chatB, broken: true}},
			event: func(at time.Time) otpbot.Event {
				ev := codeEvent("e1", "C1", at)
				ev.CustomerNo = "U1"
				return ev
			},
			want: otpbot.OutcomeUnrouted,
		},
		{
			name:  "code naming no card and no customer",
			links: []linkSpec{{key: cardC1, target: chatA}},
			event: func(at time.Time) otpbot.Event { return codeEvent("e1", "", at) },
			want:  otpbot.OutcomeUnrouted,
		},
		{
			name:  "info event to a linked card",
			links: []linkSpec{{key: cardC1, target: chatA}},
			event: func(at time.Time) otpbot.Event { return infoEvent("i1", "C1", at) },
			want:  otpbot.OutcomeRecorded,
		},
		{
			name:  "unknown event to a linked card",
			links: []linkSpec{{key: cardC1, target: chatA}},
			event: func(at time.Time) otpbot.Event {
				ev := infoEvent("u1", "C1", at)
				ev.Kind, ev.Name = otpbot.KindUnknown, "SOMETHING_NEW"
				return ev
			},
			want: otpbot.OutcomeRecorded,
		},
		{
			name:  "rejected code to a linked card",
			links: []linkSpec{{key: cardC1, target: chatA}},
			event: func(at time.Time) otpbot.Event {
				ev := codeEvent("r1", "C1", at)
				ev.Kind, ev.Reason = otpbot.KindRejected, "detail.code missing"
				return ev
			},
			want: otpbot.OutcomeRejected,
		},
		{
			name:  "code already expired on arrival",
			links: []linkSpec{{key: cardC1, target: chatA}},
			event: func(at time.Time) otpbot.Event {
				ev := codeEvent("x1", "C1", at)
				ev.ExpiresAt = at.Add(-time.Second)
				return ev
			},
			want: otpbot.OutcomeExpired,
		},
		{
			name:  "code expiring exactly on arrival",
			links: []linkSpec{{key: cardC1, target: chatA}},
			event: func(at time.Time) otpbot.Event {
				ev := codeEvent("x1", "C1", at)
				ev.ExpiresAt = at
				return ev
			},
			want: otpbot.OutcomeExpired,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, newStore)
			for _, l := range tc.links {
				e.link(l.key, l.target)
				if l.broken {
					if err := e.s.MarkBroken(e.ctx, l.target, "Forbidden: bot was blocked by the user"); err != nil {
						t.Fatalf("MarkBroken: %v", err)
					}
				}
			}
			now := e.clock.Advance(time.Minute)
			ev := tc.event(now)
			res := e.ingest(ev)
			if res.Duplicate {
				t.Fatalf("first push reported as a duplicate")
			}
			if res.Outcome != tc.want {
				t.Fatalf("Outcome = %q, want %q", res.Outcome, tc.want)
			}
			equal(t, "Targets", sortTargets(res.Targets), sortTargets(tc.wantTargets))

			// History: one redacted entry under each key, with the outcome.
			for _, key := range ev.Keys() {
				h := e.history(key, 10)
				if len(h) != 1 {
					t.Fatalf("History(%v) has %d entries, want 1: %s", key, len(h), js(h))
				}
				noSecrets(t, "history entry", h[0].Event)
				equal(t, "history entry", normHistory(h[0]),
					otpbot.HistoryEntry{Event: normEvent(ev.Redacted()), Outcome: tc.want})
			}

			// Deliveries: a live message holding the code and a send task per target.
			var wantTasks []otpbot.Task
			for _, target := range tc.wantTargets {
				id := otpbot.MessageKey(ev.Group, target)
				m := e.message(id)
				if m.State != otpbot.StateLive || m.ID != id || m.Group != ev.Group || m.Target != target {
					t.Fatalf("message %s: %s", id, js(m))
				}
				equal(t, "message event", normEvent(m.Event), normEvent(ev))
				wantTasks = append(wantTasks, otpbot.Task{
					ID: otpbot.TaskID(id, otpbot.TaskSend), Kind: otpbot.TaskSend,
					Priority: otpbot.PriorityCode, MessageID: id, Target: target,
					Due: normTime(ev.ReceivedAt), Created: normTime(ev.ReceivedAt),
				})
			}
			jobs := e.claimAll(now)
			var gotTasks []otpbot.Task
			for _, j := range jobs {
				gotTasks = append(gotTasks, normTask(j.Task))
				if j.Message == nil {
					t.Fatalf("job %s has no message", j.Task.ID)
				}
				equal(t, "job message", normMessage(*j.Message), normMessage(e.claimedMessage(j)))
			}
			sortTasks(gotTasks)
			sortTasks(wantTasks)
			equal(t, "queued tasks", gotTasks, wantTasks)
			if len(tc.wantTargets) == 0 {
				e.wantNextDue(time.Time{}, false)
				for _, l := range tc.links {
					e.noMessage(otpbot.MessageKey(ev.Group, l.target))
				}
			}
		})
	}
}

func testIngestDedupe(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	t0 := e.clock.Now()
	first := codeEvent("e1", "C1", t0)
	if res := e.ingest(first); res.Duplicate || res.Outcome != otpbot.OutcomeQueued {
		t.Fatalf("first push: %s", js(res))
	}
	steps := []struct {
		name    string
		advance time.Duration
		dup     bool
	}{
		{"a second later", time.Second, true},
		{"an hour later", time.Hour, true},
		{"just inside the window", e.opts.DedupeWindow - time.Hour - 2*time.Second, true},
		{"after the window", 3 * time.Second, false},
	}
	for _, st := range steps {
		at := e.clock.Advance(st.advance)
		again := codeEvent("e1", "C1", at)
		again.Code = "111111" // a repeat is recognised by its ID alone
		res := e.ingest(again)
		if res.Duplicate != st.dup {
			t.Fatalf("%s: Duplicate = %v, want %v", st.name, res.Duplicate, st.dup)
		}
	}
	// The repeats inside the window wrote nothing: one history entry from the
	// first push and one from the push after the window.
	if ids := e.historyIDs(cardC1, 10); len(ids) != 2 {
		t.Fatalf("history has %d entries, want 2: %v", len(ids), ids)
	}
	m := e.message(otpbot.MessageKey("e1", chatA))
	if m.Event.Code != "111111" {
		t.Fatalf("the push after the window did not update the message: code %q", m.Event.Code)
	}
	pending, err := e.s.Pending(e.ctx)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	if pending[otpbot.PriorityCode].Count != 1 || pending[otpbot.PriorityUpdate].Count != 1 {
		t.Fatalf("Pending = %s, want one send and one update", js(pending))
	}
}

func testIngestConcurrentRepeats(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	ev := codeEvent("e1", "C1", e.clock.Now())
	const n = 8
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fresh int
	)
	for range n {
		wg.Go(func() {
			res, err := e.s.Ingest(e.ctx, ev)
			if err != nil {
				t.Errorf("Ingest: %v", err)
				return
			}
			if !res.Duplicate {
				mu.Lock()
				fresh++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if fresh != 1 {
		t.Fatalf("%d of %d racing repeats were accepted as new, want 1", fresh, n)
	}
	if ids := e.historyIDs(cardC1, 10); len(ids) != 1 {
		t.Fatalf("history has %d entries, want 1", len(ids))
	}
	if jobs := e.claimAll(e.clock.Now()); len(jobs) != 1 {
		t.Fatalf("%d tasks queued, want 1", len(jobs))
	}
}

func testIngestConcurrentDistinct(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	e.link(cardC1, chatB)
	now := e.clock.Now()
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := e.s.Ingest(e.ctx, codeEvent(fmt.Sprintf("e%d", i), "C1", now))
			if err != nil {
				t.Errorf("Ingest: %v", err)
				return
			}
			if res.Duplicate || res.Outcome != otpbot.OutcomeQueued || len(res.Targets) != 2 {
				t.Errorf("Ingest e%d: %s", i, js(res))
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	pending, err := e.s.Pending(e.ctx)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	if got := pending[otpbot.PriorityCode]; got.Count != 2*n || !got.Oldest.Equal(now) {
		t.Fatalf("Pending[code] = %s, want %d tasks, oldest %v", js(got), 2*n, now)
	}
	for i := range n {
		for _, target := range []otpbot.Target{chatA, chatB} {
			m := e.message(otpbot.MessageKey(fmt.Sprintf("e%d", i), target))
			if m.Event.Code != secret {
				t.Fatalf("message %s lost its code", m.ID)
			}
		}
	}
	if ids := e.historyIDs(cardC1, 1000); len(ids) != n {
		t.Fatalf("history has %d entries, want %d", len(ids), n)
	}
}

func testIngestUpdate(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	t0 := e.clock.Now()
	first := approvalEvent("a1", "X9", "C1", 0, t0)
	if res := e.ingest(first); res.Outcome != otpbot.OutcomeQueued {
		t.Fatalf("first push: %s", js(res))
	}
	idA := otpbot.MessageKey(first.Group, chatA)
	before := e.message(idA)

	// A second chat is linked after the request was sent: it gets a send,
	// while the chat that already shows the request gets an update.
	e.link(cardC1, chatB)
	t1 := e.clock.Advance(20 * time.Second)
	second := approvalEvent("a2", "X9", "C1", 1, t1)
	second.Status = "approved"
	res := e.ingest(second)
	if res.Duplicate || res.Outcome != otpbot.OutcomeQueued {
		t.Fatalf("second push: %s", js(res))
	}
	equal(t, "Targets", sortTargets(res.Targets), sortTargets([]otpbot.Target{chatA, chatB}))

	after := e.message(idA)
	equal(t, "updated message event", normEvent(after.Event), normEvent(second))
	if after.State != otpbot.StateLive || after.Group != first.Group {
		t.Fatalf("updated message: %s", js(after))
	}
	if after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("Ingest updated the message but kept UpdatedAt %v", before.UpdatedAt)
	}
	// The bot's stale copy must not overwrite the new result.
	stale := before
	stale.Rendered = "stale"
	wantErr(t, "UpdateMessage with the copy read before the update",
		e.s.UpdateMessage(e.ctx, before.UpdatedAt, stale), otpbot.ErrConflict)

	idB := otpbot.MessageKey(first.Group, chatB)
	equal(t, "new target's message event", normEvent(e.message(idB).Event), normEvent(second))

	jobs := e.claimAll(t1)
	var got []otpbot.Task
	for _, j := range jobs {
		got = append(got, normTask(j.Task))
	}
	want := []otpbot.Task{
		{ID: otpbot.TaskID(idA, otpbot.TaskSend), Kind: otpbot.TaskSend, Priority: otpbot.PriorityCode,
			MessageID: idA, Target: chatA, Due: t0, Created: t0},
		{ID: otpbot.TaskID(idB, otpbot.TaskSend), Kind: otpbot.TaskSend, Priority: otpbot.PriorityCode,
			MessageID: idB, Target: chatB, Due: t1, Created: t1},
		{ID: otpbot.TaskID(idA, otpbot.TaskUpdate), Kind: otpbot.TaskUpdate, Priority: otpbot.PriorityUpdate,
			MessageID: idA, Target: chatA, Due: t1, Created: t1},
	}
	equal(t, "claimed tasks in order", got, want)

	// History keeps both pushes, newest first.
	equal(t, "history", e.historyIDs(cardC1, 10), []string{"a2", "a1"})
}

var historyTests = []subtest{
	{"newest first, limited, redacted", testHistoryOrder},
	{"every key of the event", testHistoryKeys},
	{"capped per key", testHistoryCap},
	{"retention", testHistoryRetention},
}

func testHistoryOrder(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	var ids []string
	for i := range 5 {
		at := e.clock.Advance(time.Minute)
		var ev otpbot.Event
		if i%2 == 0 {
			ev = codeEvent(fmt.Sprintf("h%d", i), "C1", at)
		} else {
			ev = infoEvent(fmt.Sprintf("h%d", i), "C1", at)
		}
		e.ingest(ev)
		ids = append([]string{ev.ID}, ids...)
	}
	tests := []struct {
		limit int
		want  []string
	}{
		{1, ids[:1]},
		{3, ids[:3]},
		{5, ids},
		{100, ids},
	}
	for _, tc := range tests {
		equal(t, fmt.Sprintf("History(limit %d)", tc.limit), e.historyIDs(cardC1, tc.limit), tc.want)
	}
	for _, h := range e.history(cardC1, 10) {
		noSecrets(t, "history entry "+h.Event.ID, h.Event)
		want := otpbot.OutcomeQueued
		if h.Event.Kind == otpbot.KindInfo {
			want = otpbot.OutcomeRecorded
		}
		if h.Outcome != want {
			t.Fatalf("entry %s outcome %q, want %q", h.Event.ID, h.Outcome, want)
		}
	}
	if h := e.history(cardC2, 10); len(h) != 0 {
		t.Fatalf("unrelated card has history: %s", js(h))
	}
}

func testHistoryKeys(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	ev := codeEvent("k1", "C1", e.clock.Now())
	ev.CustomerNo = "U1"
	e.ingest(ev)
	e.ingest(infoEvent("k2", "C2", e.clock.Advance(time.Second)))
	for _, tc := range []struct {
		key  otpbot.Key
		want []string
	}{
		{cardC1, []string{"k1"}},
		{custU1, []string{"k1"}},
		{cardC2, []string{"k2"}},
	} {
		equal(t, "History("+tc.key.String()+")", e.historyIDs(tc.key, 10), tc.want)
	}
	for _, key := range []otpbot.Key{cardC1, custU1} {
		h := e.history(key, 10)
		noSecrets(t, "history of "+key.String(), h[0].Event)
		if h[0].Outcome != otpbot.OutcomeUnrouted {
			t.Fatalf("History(%v) outcome %q, want unrouted", key, h[0].Outcome)
		}
	}
}

func testHistoryCap(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore, func(o *otpbot.StoreOptions) { o.HistoryPerKey = 3 })
	for i := range 5 {
		e.ingest(infoEvent(fmt.Sprintf("c%d", i), "C1", e.clock.Advance(time.Second)))
	}
	e.ingest(infoEvent("other", "C2", e.clock.Advance(time.Second)))
	equal(t, "capped history", e.historyIDs(cardC1, 10), []string{"c4", "c3", "c2"})
	equal(t, "other key", e.historyIDs(cardC2, 10), []string{"other"})
	e.ingest(infoEvent("c5", "C1", e.clock.Advance(time.Second)))
	equal(t, "capped history after one more", e.historyIDs(cardC1, 10), []string{"c5", "c4", "c3"})
}

func testHistoryRetention(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore, func(o *otpbot.StoreOptions) { o.HistoryRetention = time.Hour })
	e.ingest(infoEvent("old", "C1", e.clock.Now()))
	e.ingest(infoEvent("new", "C1", e.clock.Advance(40*time.Minute)))
	equal(t, "history within retention", e.historyIDs(cardC1, 10), []string{"new", "old"})
	e.clock.Advance(40 * time.Minute)
	equal(t, "history after the first expired", e.historyIDs(cardC1, 10), []string{"new"})
	e.clock.Advance(time.Hour)
	if ids := e.historyIDs(cardC1, 10); len(ids) != 0 {
		t.Fatalf("history after retention: %v", ids)
	}
}
