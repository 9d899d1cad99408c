package storetest

import (
	"sort"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

var porterTests = []subtest{
	{"export and import round trip", testPorterRoundTrip},
}

// export returns every record of s, normalised and in a stable order.
func (e *env) export() []otpbot.Record {
	e.t.Helper()
	var recs []otpbot.Record
	err := e.s.Export(e.ctx, func(r otpbot.Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		e.t.Fatalf("Export: %v", err)
	}
	return recs
}

// canonical normalises records and sorts them, for set comparisons.
func canonical(recs []otpbot.Record) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, js(normRecord(r)))
	}
	sort.Strings(out)
	return out
}

func testPorterRoundTrip(t *testing.T, newStore NewStoreFunc) {
	src := newEnv(t, newStore)
	t0 := src.clock.Now()

	// A mark that leaves the dedupe window before the export.
	src.ingest(infoEvent("ancient", "C9", t0))
	now := src.clock.Advance(src.opts.DedupeWindow + time.Hour)

	src.link(cardC1, chatA)
	src.link(cardC1, chatBT7)
	src.link(custU1, chatA) // e1 names C1 and U1: chatA still gets one message
	src.link(cardC2, chatC)
	if err := src.s.MarkBroken(src.ctx, chatC, "Bad Request: chat not found"); err != nil {
		t.Fatalf("MarkBroken: %v", err)
	}
	newInvite(src, "inv1", cardC2)

	both := codeEvent("e1", "C1", now)
	both.CustomerNo = "U1"
	src.ingest(both)
	src.ingest(infoEvent("i1", "C1", src.clock.Advance(time.Second)))
	src.ingest(approvalEvent("a1", "X9", "C1", 0, src.clock.Advance(time.Second)))
	src.ingest(codeEvent("u1", "C2", src.clock.Advance(time.Second))) // unrouted: broken link
	src.ingest(openCard("o1", src.clock.Advance(time.Second)))        // under the events key only

	// A sent message with a pending tick, a leased task, a retried one and a notice.
	now = src.clock.Advance(time.Second)
	jobs := src.claim(now, 2) // the two sends of e1
	if len(jobs) != 2 {
		t.Fatalf("claimed %v", jobIDs(jobs))
	}
	sent := *jobs[0].Message
	sent.TelegramID, sent.SentAt, sent.UpdatedAt, sent.Rendered = 501, now, now, "r1"
	tick := otpbot.Task{ID: otpbot.TaskID(sent.ID, otpbot.TaskRefresh), Kind: otpbot.TaskRefresh,
		Priority: otpbot.PriorityRefresh, MessageID: sent.ID, Target: sent.Target,
		Due: now.Add(30 * time.Second), Created: now.Add(30 * time.Second)}
	if err := src.s.Complete(src.ctx, jobs[0], &sent, tick); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if err := src.s.Retry(src.ctx, jobs[1], now.Add(5*time.Second), "telegram: 502"); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	leased := src.claim(now, 1) // the approval's send stays leased
	if len(leased) != 1 {
		t.Fatalf("claimed %v", jobIDs(leased))
	}
	src.enqueue(task("notice1", otpbot.PriorityOther, now))
	if _, err := src.s.Once(src.ctx, "update:1", time.Hour); err != nil {
		t.Fatalf("Once: %v", err)
	}

	recs := src.export()
	for _, r := range recs {
		if r.History != nil {
			noSecrets(t, "exported history", r.History.Event)
		}
		if r.Dedupe != nil && r.Dedupe.ID == "ancient" {
			t.Fatalf("exported a dedupe mark outside the window: %s", js(r.Dedupe))
		}
	}

	dst := src.second(newStore)
	if err := dst.s.Import(dst.ctx, recs); err != nil {
		t.Fatalf("Import: %v", err)
	}
	equal(t, "export of the imported store", canonical(dst.export()), canonical(recs))

	for _, key := range []otpbot.Key{cardC1, cardC2, custU1, {Type: otpbot.KeyCard, ID: "C9"}, otpbot.EventsKey} {
		equal(t, "links of "+key.String(), dst.links(key), src.links(key))
		var want []otpbot.HistoryEntry
		for _, h := range src.history(key, 100) {
			want = append(want, normHistory(h))
		}
		var got []otpbot.HistoryEntry
		for _, h := range dst.history(key, 100) {
			got = append(got, normHistory(h))
		}
		equal(t, "history of "+key.String(), got, want)
	}
	for _, chat := range []int64{chatA.ChatID, chatB.ChatID, chatC.ChatID} {
		srcLinks, err := src.s.LinksForChat(src.ctx, chat)
		if err != nil {
			t.Fatalf("LinksForChat: %v", err)
		}
		dstLinks, err := dst.s.LinksForChat(dst.ctx, chat)
		if err != nil {
			t.Fatalf("LinksForChat: %v", err)
		}
		equal(t, "links of a chat", sortLinks(dstLinks), sortLinks(srcLinks))
		srcMsgs, err := src.s.MessagesForChat(src.ctx, chat)
		if err != nil {
			t.Fatalf("MessagesForChat: %v", err)
		}
		for _, m := range srcMsgs {
			equal(t, "message "+m.ID, normMessage(dst.message(m.ID)), normMessage(m))
		}
	}
	if got := dst.message(sent.ID); got.Event.Code != secret || got.TelegramID != 501 {
		t.Fatalf("imported live message: %s", js(got))
	}

	srcPending, err := src.s.Pending(src.ctx)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	dstPending, err := dst.s.Pending(dst.ctx)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	for p, st := range srcPending {
		if d := dstPending[p]; d.Count != st.Count || (st.Count > 0 && !d.Oldest.Equal(st.Oldest)) {
			t.Fatalf("Pending[%d] after import = %s, want %s", p, js(d), js(st))
		}
	}

	// Every task is in the imported outbox, the leased one claimable at once.
	later := now.Add(time.Minute)
	var wantTasks []otpbot.Task
	for _, j := range src.claimAll(later.Add(time.Hour)) {
		wantTasks = append(wantTasks, normTask(j.Task))
	}
	var gotTasks []otpbot.Task
	for _, j := range dst.claimAll(later) {
		gotTasks = append(gotTasks, normTask(j.Task))
	}
	sortTasks(wantTasks)
	sortTasks(gotTasks)
	if len(gotTasks) != 5 {
		t.Fatalf("imported outbox has %d tasks, want 5: %s", len(gotTasks), js(gotTasks))
	}
	equal(t, "imported tasks", gotTasks, wantTasks)

	// Invites and dedupe marks work in the new store.
	if _, err := dst.s.RedeemInvite(dst.ctx, "inv1", chatA, now); err != nil {
		t.Fatalf("RedeemInvite after import: %v", err)
	}
	if res := dst.ingest(both); !res.Duplicate {
		t.Fatalf("a push seen before the import is new again: %s", js(res))
	}
	if res := dst.ingest(infoEvent("ancient", "C9", now)); res.Duplicate {
		t.Fatalf("a mark outside the window came back")
	}
}
