package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

// The history of every event (otpbot.EventsKey), the names chats give
// their cards, and approval requests that a push decides.

var eventsTests = []subtest{
	{"every event under the events key, keyless ones too", testEventsKey},
	{"the events key is capped like any key", testEventsKeyCap},
	{"the events key cannot be linked or invited", testEventsKeyNotLinkable},
	{"a message names the card as its chat's link does", testCardName},
	{"a push that decides an approval request decides its message", testDecidedAtIngest},
}

// openCard is a HyperCard OPEN_CARD: an event without card or customer.
func openCard(id string, at time.Time) otpbot.Event {
	return otpbot.Event{
		ID: id, Group: id, Provider: otpbot.ProviderHyperCard, Name: "OPEN_CARD", Kind: otpbot.KindInfo,
		Status: "failed", CardType: "40000002", Remark: "Remark", ReceivedAt: at,
	}
}

func testEventsKey(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	both := codeEvent("e1", "C1", e.clock.Now())
	both.CustomerNo = "U1"
	e.ingest(both)
	if res := e.ingest(openCard("o1", e.clock.Advance(time.Second))); res.Outcome != otpbot.OutcomeRecorded {
		t.Fatalf("keyless event: %s", js(res))
	}
	rejected := openCard("r1", e.clock.Advance(time.Second))
	rejected.Kind, rejected.Reason = otpbot.KindRejected, "no notify_type"
	e.ingest(rejected)
	e.ingest(infoEvent("i1", "C2", e.clock.Advance(time.Second)))

	equal(t, "history of every event", e.historyIDs(otpbot.EventsKey, 10), []string{"i1", "r1", "o1", "e1"})
	equal(t, "history of the card", e.historyIDs(cardC1, 10), []string{"e1"})
	equal(t, "history of the customer", e.historyIDs(custU1, 10), []string{"e1"})
	h := e.history(otpbot.EventsKey, 10)
	noSecrets(t, "events history", h[3].Event)
	wantOutcomes := []otpbot.Outcome{otpbot.OutcomeRecorded, otpbot.OutcomeRejected, otpbot.OutcomeRecorded, otpbot.OutcomeQueued}
	for i, want := range wantOutcomes {
		if h[i].Outcome != want {
			t.Fatalf("events history entry %s: outcome %q, want %q", h[i].Event.ID, h[i].Outcome, want)
		}
	}
	if got := normEvent(h[2].Event); got.CardType != "40000002" || got.Remark != "Remark" {
		t.Fatalf("the keyless event lost its fields: %s", js(got))
	}
	// A repeat is not listed twice.
	if res := e.ingest(openCard("o1", e.clock.Advance(time.Second))); !res.Duplicate {
		t.Fatalf("repeat: %s", js(res))
	}
	equal(t, "history of every event after a repeat", e.historyIDs(otpbot.EventsKey, 2), []string{"i1", "r1"})
}

func testEventsKeyCap(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore, func(o *otpbot.StoreOptions) { o.HistoryPerKey = 3 })
	for i := range 4 {
		e.ingest(openCard(fmt.Sprintf("o%d", i), e.clock.Advance(time.Second)))
	}
	e.ingest(infoEvent("i1", "C1", e.clock.Advance(time.Second)))
	equal(t, "capped events history", e.historyIDs(otpbot.EventsKey, 10), []string{"i1", "o3", "o2"})
	equal(t, "the card keeps its own", e.historyIDs(cardC1, 10), []string{"i1"})
}

func testEventsKeyNotLinkable(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	err := e.s.Link(e.ctx, otpbot.Link{Key: otpbot.EventsKey, Target: chatA, CreatedAt: e.clock.Now()})
	wantErr(t, "Link(events key)", err, otpbot.ErrNotLinkable)
	err = e.s.CreateInvite(e.ctx, otpbot.Invite{Hash: "h-events", Key: otpbot.EventsKey, ExpiresAt: e.clock.Now().Add(time.Hour)})
	wantErr(t, "CreateInvite(events key)", err, otpbot.ErrNotLinkable)
	if links := e.links(otpbot.EventsKey); len(links) != 0 {
		t.Fatalf("the events key has links: %s", js(links))
	}
	// An event still reaches nobody through it.
	if res := e.ingest(codeEvent("c1", "C1", e.clock.Now())); res.Outcome != otpbot.OutcomeUnrouted {
		t.Fatalf("a code for an unlinked card: %s", js(res))
	}
}

func testCardName(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	named := otpbot.Link{Key: cardC1, Target: chatA, CreatedAt: e.clock.Now(), CreatedBy: 42, Name: `Travel "EU" <&>`}
	if err := e.s.Link(e.ctx, named); err != nil {
		t.Fatalf("Link: %v", err)
	}
	e.link(cardC1, chatB)   // not named in this chat
	e.link(custU1, chatBT7) // reached through the customer: no card name
	for _, l := range e.links(cardC1) {
		if want := map[otpbot.Target]string{chatA: named.Name}[l.Target]; l.Name != want {
			t.Fatalf("link to %s named %q, want %q", l.Target, l.Name, want)
		}
	}

	ev := codeEvent("n1", "C1", e.clock.Now())
	ev.CustomerNo = "U1"
	e.ingest(ev)
	for target, want := range map[otpbot.Target]string{chatA: named.Name, chatB: "", chatBT7: ""} {
		if got := e.message(otpbot.MessageKey(ev.Group, target)).CardName; got != want {
			t.Fatalf("message in %s names the card %q, want %q", target, got, want)
		}
	}

	// The name stays with the message through the deliverer's writes.
	id := otpbot.MessageKey(ev.Group, chatA)
	jobs := e.claimAll(e.clock.Now())
	for _, j := range jobs {
		if j.Task.MessageID != id {
			continue
		}
		m := *j.Message
		if m.CardName != named.Name {
			t.Fatalf("claimed message names the card %q", m.CardName)
		}
		m.TelegramID, m.UpdatedAt = 77, e.clock.Advance(time.Second)
		if err := e.s.Complete(e.ctx, j, &m); err != nil {
			t.Fatalf("Complete: %v", err)
		}
	}
	m := e.message(id)
	if m.CardName != named.Name || m.TelegramID != 77 {
		t.Fatalf("after Complete: %s", js(m))
	}
	prev := m.UpdatedAt
	m.State, m.UpdatedAt = otpbot.StateHidden, e.clock.Advance(time.Second)
	if err := e.s.UpdateMessage(e.ctx, prev, m); err != nil {
		t.Fatalf("UpdateMessage: %v", err)
	}
	if got := e.message(id).CardName; got != named.Name {
		t.Fatalf("after UpdateMessage the card is named %q", got)
	}
	// A second push of the group in the chat keeps the name.
	again := ev
	again.ID = "n2"
	e.ingest(again)
	if got := e.message(id).CardName; got != named.Name {
		t.Fatalf("after an update by a push the card is named %q", got)
	}
}

func testDecidedAtIngest(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	t0 := e.clock.Now()
	pending := approvalEvent("p1", "X1", "C1", 1, t0)
	pending.AuthState = otpbot.AuthPending
	e.ingest(pending)
	id := otpbot.MessageKey(pending.Group, chatA)
	if m := e.message(id); m.State != otpbot.StateLive {
		t.Fatalf("pending request: %s", js(m))
	}

	declined := approvalEvent("p2", "X1", "C1", 3, e.clock.Advance(10*time.Second))
	declined.AuthState = otpbot.AuthDeclined
	if res := e.ingest(declined); res.Outcome != otpbot.OutcomeQueued {
		t.Fatalf("deciding push: %s", js(res))
	}
	m := e.message(id)
	if m.State != otpbot.StateDecided || m.Event.AuthState != otpbot.AuthDeclined || m.Decision != "" {
		t.Fatalf("request declined by a push: %s", js(m))
	}
	var kinds []otpbot.TaskKind
	for _, j := range e.claimAll(e.clock.Now()) {
		kinds = append(kinds, j.Task.Kind)
	}
	equal(t, "tasks", kinds, []otpbot.TaskKind{otpbot.TaskSend, otpbot.TaskUpdate})

	// A pending push after the decision does not reopen it.
	late := approvalEvent("p3", "X1", "C1", 1, e.clock.Advance(time.Second))
	late.AuthState = otpbot.AuthPending
	e.ingest(late)
	if m := e.message(id); m.State != otpbot.StateDecided {
		t.Fatalf("a pending push reopened a decided request: %s", js(m))
	}

	// A request whose first push is already decided is sent decided.
	first := approvalEvent("q1", "X2", "C1", 2, e.clock.Advance(time.Second))
	first.AuthState = otpbot.AuthApproved
	e.ingest(first)
	if m := e.message(otpbot.MessageKey(first.Group, chatA)); m.State != otpbot.StateDecided {
		t.Fatalf("a request decided on arrival: %s", js(m))
	}

	// An unknown result is pending.
	odd := approvalEvent("u1", "X3", "C1", 7, e.clock.Advance(time.Second))
	odd.AuthState = otpbot.AuthUnknown
	e.ingest(odd)
	if m := e.message(otpbot.MessageKey(odd.Group, chatA)); m.State != otpbot.StateLive {
		t.Fatalf("a request with an unknown result: %s", js(m))
	}
	equal(t, "history keeps every push", e.historyIDs(cardC1, 10), []string{"u1", "q1", "p3", "p2", "p1"})
}
