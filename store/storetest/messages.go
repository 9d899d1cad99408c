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
	{"update message", testUpdateMessage},
	{"update to a final state drops the code", testUpdateMessageFinal},
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
