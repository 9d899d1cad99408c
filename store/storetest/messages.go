package storetest

import (
	"sort"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

var messageTests = []subtest{
	{"unknown message", testMessageUnknown},
	{"messages for chat", testMessagesForChat},
	{"live messages", testLiveMessages},
	{"update message", testUpdateMessage},
	{"update to a final state drops the code", testUpdateMessageFinal},
	{"a message that becomes final drops the hash of its live text", testRenderedClearedWhenFinal},
}

func testMessageUnknown(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.noMessage(otpbot.MessageKey("nope", chatA))
	m := otpbot.Message{ID: "nope@1001", Group: "nope", Target: chatA, State: otpbot.StateLive, UpdatedAt: e.clock.Now()}
	wantErr(t, "UpdateMessage of an unknown message", e.s.UpdateMessage(e.ctx, time.Time{}, m), otpbot.ErrNotFound)
	e.noMessage(m.ID)
}

func testMessagesForChat(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	e.link(cardC1, chatAT5)
	e.link(cardC1, chatB)
	e.ingest(codeEvent("e1", "C1", e.clock.Now()))
	e.ingest(codeEvent("e2", "C1", e.clock.Advance(time.Second)))
	tests := []struct {
		chat int64
		want []string
	}{
		{chatA.ChatID, []string{
			otpbot.MessageKey("e1", chatA), otpbot.MessageKey("e1", chatAT5),
			otpbot.MessageKey("e2", chatA), otpbot.MessageKey("e2", chatAT5),
		}},
		{chatB.ChatID, []string{otpbot.MessageKey("e1", chatB), otpbot.MessageKey("e2", chatB)}},
		{chatC.ChatID, []string{}},
	}
	for _, tc := range tests {
		ms, err := e.s.MessagesForChat(e.ctx, tc.chat)
		if err != nil {
			t.Fatalf("MessagesForChat(%d): %v", tc.chat, err)
		}
		ids := []string{}
		for _, m := range ms {
			ids = append(ids, m.ID)
			equal(t, "listed message", normMessage(m), normMessage(e.message(m.ID)))
		}
		sort.Strings(ids)
		sort.Strings(tc.want)
		equal(t, "messages of the chat", ids, tc.want)
	}
}

// testLiveMessages: the live messages of every chat are listed, and a
// message leaves the list once its state is final.
func testLiveMessages(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	e.link(cardC1, chatB)
	e.ingest(codeEvent("e1", "C1", e.clock.Now()))
	e.ingest(codeEvent("e2", "C1", e.clock.Advance(time.Second)))
	done := e.message(otpbot.MessageKey("e1", chatB))
	final := done
	final.State, final.UpdatedAt = otpbot.StateExpired, e.clock.Advance(time.Second)
	if err := e.s.UpdateMessage(e.ctx, done.UpdatedAt, final); err != nil {
		t.Fatalf("UpdateMessage: %v", err)
	}
	ms, err := e.s.LiveMessages(e.ctx)
	if err != nil {
		t.Fatalf("LiveMessages: %v", err)
	}
	ids := []string{}
	for _, m := range ms {
		ids = append(ids, m.ID)
		equal(t, "listed message", normMessage(m), normMessage(e.message(m.ID)))
	}
	sort.Strings(ids)
	want := []string{otpbot.MessageKey("e1", chatA), otpbot.MessageKey("e2", chatA), otpbot.MessageKey("e2", chatB)}
	sort.Strings(want)
	equal(t, "live messages", ids, want)
}

func testUpdateMessage(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	now := e.clock.Now()
	e.ingest(approvalEvent("a1", "X9", "C1", 0, now))
	id := otpbot.MessageKey("auth-X9", chatA)
	orig := e.message(id)

	v2 := orig
	v2.TelegramID, v2.Rendered, v2.UpdatedAt = 77, "h2", e.clock.Advance(time.Second)
	follow := otpbot.Task{ID: otpbot.TaskID(id, otpbot.TaskUpdate), Kind: otpbot.TaskUpdate,
		Priority: otpbot.PriorityUpdate, MessageID: id, Target: chatA, Due: v2.UpdatedAt, Created: v2.UpdatedAt}
	if err := e.s.UpdateMessage(e.ctx, orig.UpdatedAt, v2, follow); err != nil {
		t.Fatalf("UpdateMessage: %v", err)
	}
	equal(t, "updated message", normMessage(e.message(id)), normMessage(v2))

	// A writer still holding the original version loses, and its follow-up
	// work is not enqueued.
	loser := orig
	loser.Decision, loser.State, loser.UpdatedAt = "declined by @x", otpbot.StateDecided, e.clock.Advance(time.Second)
	lost := task("lost", otpbot.PriorityOther, now)
	wantErr(t, "UpdateMessage with a stale version", e.s.UpdateMessage(e.ctx, orig.UpdatedAt, loser, lost), otpbot.ErrConflict)
	equal(t, "message after the conflict", normMessage(e.message(id)), normMessage(v2))

	jobs := e.claimAll(e.clock.Now())
	equal(t, "queued", jobIDs(jobs), []string{otpbot.TaskID(id, otpbot.TaskSend), follow.ID})
}

func testUpdateMessageFinal(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	e.ingest(codeEvent("e1", "C1", e.clock.Now()))
	id := otpbot.MessageKey("e1", chatA)
	m := e.message(id)
	hidden := m
	hidden.State, hidden.UpdatedAt = otpbot.StateHidden, e.clock.Advance(time.Second)
	if err := e.s.UpdateMessage(e.ctx, m.UpdatedAt, hidden); err != nil {
		t.Fatalf("UpdateMessage: %v", err)
	}
	got, ok, err := e.s.Message(e.ctx, id)
	if err != nil {
		t.Fatalf("Message: %v", err)
	}
	if ok {
		noSecrets(t, "hidden message", got.Event)
		if got.State != otpbot.StateHidden {
			t.Fatalf("state %q, want hidden", got.State)
		}
	}
}

// testRenderedClearedWhenFinal: Rendered is a hash of the text last sent,
// which for a live code message contained the code. A message that becomes
// final (hidden, expired...) must not keep that hash: a store drops a
// Rendered carried over unchanged from the live version, and keeps one the
// deliverer computed for the final text (it differs from the live one).
func testRenderedClearedWhenFinal(t *testing.T, newStore NewStoreFunc) {
	type step struct {
		state    otpbot.MessageState
		rendered string
		want     string // Rendered stored afterwards
	}
	tests := []struct {
		name     string
		complete bool // write with Complete (the deliverer) rather than UpdateMessage (the bot)
		steps    []step
	}{
		{"hidden by the cardholder keeps no live hash", false, []step{
			{otpbot.StateLive, "h-live", "h-live"},
			{otpbot.StateHidden, "h-live", ""},
			{otpbot.StateHidden, "h-hidden", "h-hidden"},
			{otpbot.StateHidden, "h-hidden", "h-hidden"},
		}},
		{"expiry edit keeps the hash of the expired text", true, []step{
			{otpbot.StateLive, "h-live", "h-live"},
			{otpbot.StateExpired, "h-expired", "h-expired"},
		}},
		{"expired without a new render keeps no live hash", true, []step{
			{otpbot.StateLive, "h-live", "h-live"},
			{otpbot.StateExpired, "h-live", ""},
		}},
		{"a live message keeps its hash", false, []step{
			{otpbot.StateLive, "h-1", "h-1"},
			{otpbot.StateLive, "h-2", "h-2"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, newStore)
			e.link(cardC1, chatA)
			e.ingest(codeEvent("e1", "C1", e.clock.Now()))
			id := otpbot.MessageKey("e1", chatA)
			for i, st := range tc.steps {
				cur := e.message(id)
				next := cur
				next.State, next.Rendered, next.TelegramID = st.state, st.rendered, 501
				next.UpdatedAt = e.clock.Advance(time.Second)
				if tc.complete {
					jobs := e.claimAll(e.clock.Now())
					if len(jobs) == 0 {
						e.enqueue(otpbot.Task{ID: otpbot.TaskID(id, otpbot.TaskUpdate), Kind: otpbot.TaskUpdate,
							Priority: otpbot.PriorityUpdate, MessageID: id, Target: chatA, Due: e.clock.Now(), Created: e.clock.Now()})
						jobs = e.claimAll(e.clock.Now())
					}
					if err := e.s.Complete(e.ctx, jobs[0], &next); err != nil {
						t.Fatalf("step %d: Complete: %v", i, err)
					}
				} else if err := e.s.UpdateMessage(e.ctx, cur.UpdatedAt, next); err != nil {
					t.Fatalf("step %d: UpdateMessage: %v", i, err)
				}
				m, ok, err := e.s.Message(e.ctx, id)
				if err != nil || !ok {
					t.Fatalf("step %d: Message: %v, %v", i, ok, err)
				}
				if m.Rendered != st.want || m.State != st.state {
					t.Fatalf("step %d (%s, %q): stored state %s, Rendered %q; want %q", i, st.state, st.rendered, m.State, m.Rendered, st.want)
				}
			}
		})
	}
}
