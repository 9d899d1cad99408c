package deliver

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/telegram"
)

// authEvent is a HyperCard AUTH_3DS for card with the given auth_result.
func (e *dlEnv) authEvent(authID, card string, result int, ttl time.Duration) otpbot.Event {
	now := e.clock.Now()
	return otpbot.Event{
		ID: "hc-" + authID + "-" + strconv.Itoa(result), Group: "hypercard:AUTH_3DS:" + authID,
		Provider: otpbot.ProviderHyperCard, Name: "AUTH_3DS", Kind: otpbot.KindApproval,
		CardID: card, CardLast4: "3333", Amount: "25.00", Currency: "EUR", Merchant: "Shop " + authID,
		Country: "DE", AuthID: authID, AuthResult: result, ReceivedAt: now, ExpiresAt: now.Add(ttl),
	}
}

// second starts another Deliverer on the same store, as a second process
// sharing it would run, and stops it when the test ends.
func (e *dlEnv) second(mod ...func(*DelivererOptions)) *Deliverer {
	e.t.Helper()
	opts := e.opts
	opts.Store = e.store
	opts.Registerer = prometheus.NewRegistry()
	for _, m := range mod {
		m(&opts)
	}
	d, err := NewDeliverer(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Run(ctx)
	}()
	e.t.Cleanup(func() {
		cancel()
		<-done
	})
	return d
}

// A second AUTH_3DS that arrives while another process's send of the
// first is still in flight must not send a second message: the update
// finds no Telegram message yet and leaves the work to the send, whose
// store write then conflicts and queues the update that shows the latest
// result.
func TestDeliverUpdateBeforeTheSendLandedSendsNothing(t *testing.T) {
	e := newDlEnv(t)
	target := otpbot.Target{ChatID: dlChat}
	e.link("A1", target)
	release := e.tg.Hold("sendMessage")
	e.start(func(o *DelivererOptions) { o.Workers = 1 })
	first := e.authEvent("350", "A1", 1, 10*time.Minute)
	e.push(first)
	e.tg.WaitFor(t, func() bool { return e.tg.Waiting("sendMessage") == 1 })

	other := e.second()
	e.clock.Advance(time.Second)
	// The latest push decides the request (auth_result 3, read as
	// declined), which the message must show.
	declined := e.authEvent("350", "A1", 3, 10*time.Minute)
	declined.AuthState = otpbot.AuthDeclined
	e.push(declined)
	other.Poke()
	// Either the update is done without a call, or (the bug) it is a
	// second send, held like the first.
	e.tg.WaitFor(t, func() bool {
		return e.tg.Waiting("sendMessage") == 2 ||
			testutil.ToFloat64(other.deliveries.WithLabelValues(string(otpbot.TaskUpdate), "skipped")) == 1
	})
	release()
	e.waitMessages(dlChat, 1)
	e.tg.WaitFor(t, func() bool { return other.busy.Load() == 0 })
	e.settle()
	msgs := e.tg.Messages(dlChat)
	if len(msgs) != 1 {
		t.Fatalf("%d messages for one approval request, want 1", len(msgs))
	}
	if !strings.Contains(msgs[0].Plain(), "Purchase declined") {
		t.Fatalf("the message does not show the latest result:\n%s", msgs[0].Plain())
	}
	if st := e.message(otpbot.MessageKey(first.Group, target)); st.TelegramID != e.tg.Messages(dlChat)[0].ID {
		t.Fatalf("stored telegram id %d", st.TelegramID)
	}
}

// Waiting for the rate limiter is not a failure: a task the limiter put
// off several times and that then fails once at Telegram is retried after
// the first backoff step, and ops do not hear that Telegram "keeps
// failing".
func TestDeliverLimiterDeferralsAreNotFailures(t *testing.T) {
	e := newDlEnv(t)
	target := otpbot.Target{ChatID: dlChat}
	e.link("C1", target)
	lim := telegram.NewLimiter(telegram.LimiterOptions{GlobalPerSec: 1e6, GlobalBurst: 1e6, ChatPerSec: 1, ChatBurst: 1,
		GroupPerMin: 1e8, GroupBurst: 1e6, Now: e.clock.Now})
	e.start(func(o *DelivererOptions) {
		o.Limiter = lim
		o.MaxInlineWait = time.Millisecond
		o.FailureReportAfter = 4
	})
	put := func() float64 {
		return testutil.ToFloat64(e.d.deliveries.WithLabelValues(string(otpbot.TaskSend), "deferred")) +
			testutil.ToFloat64(e.d.deliveries.WithLabelValues(string(otpbot.TaskSend), "retried"))
	}
	e.push(e.codeEvent("a", "C1", 5*time.Minute))
	e.waitMessages(dlChat, 1)
	e.settle()
	// The second code finds the chat's budget spent, three times.
	e.push(e.codeEvent("b", "C1", 5*time.Minute))
	e.tg.WaitFor(t, func() bool { return put() == 1 })
	for i := 2; i <= 3; i++ {
		e.settle()
		e.clock.Advance(time.Second)
		if w := lim.Take(context.Background(), target, telegram.Urgent).For; w != 0 {
			t.Fatalf("the test could not take the chat's budget: wait %v", w)
		}
		e.d.Poke()
		e.tg.WaitFor(t, func() bool { return put() == float64(i) })
	}
	e.settle()
	// Now Telegram fails once.
	e.tg.FailNext("sendMessage", 1, 502, "Bad Gateway", 0)
	e.advance(time.Second)
	e.tg.WaitFor(t, func() bool { return e.calls("sendMessage", dlChat) == 2 })
	e.settle()
	at, ok, err := e.store.NextDue(context.Background())
	if err != nil || !ok {
		t.Fatalf("next due %v %v", ok, err)
	}
	if wait := at.Sub(e.clock.Now()); wait > 1500*time.Millisecond {
		t.Fatalf("retry in %v after one failure: the limiter's deferrals were counted as failed attempts", wait)
	}
	e.ops.mu.Lock()
	reports := len(e.ops.buckets)
	e.ops.mu.Unlock()
	if reports != 0 {
		t.Fatalf("ops were told about %d problems after a single failed call", reports)
	}
	e.advance(2 * time.Second)
	e.waitMessages(dlChat, 2)
}

// within polls cond every 5ms for at most d; false when it never held.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// Countdown work never delays a code: with every live countdown's refresh
// stuck in a Telegram edit that does not answer, a new code still goes out
// at once, in a worker the refreshes may not take.
func TestDeliverStuckRefreshesNeverDelayACode(t *testing.T) {
	e := newDlEnv(t)
	const live = 12
	for i := range live {
		e.link("R"+strconv.Itoa(i), otpbot.Target{ChatID: -1003000000000 - int64(i)})
	}
	e.link("NEW", otpbot.Target{ChatID: dlChat})
	// Refresh calls are not cut off during the test: the workers kept for
	// codes are what lets the code through.
	e.start(func(o *DelivererOptions) { o.RefreshTimeout = time.Minute })
	for i := range live {
		e.push(e.codeEvent("r"+strconv.Itoa(i), "R"+strconv.Itoa(i), 5*time.Minute))
	}
	e.tg.WaitFor(t, func() bool { return len(e.tg.Calls("sendMessage")) == live })
	e.settle()

	// Every countdown is due and Telegram does not answer edits.
	release := e.tg.Hold("editMessageText")
	defer release()
	e.advance(dlTicker)
	e.tg.WaitFor(t, func() bool { return e.tg.Waiting("editMessageText") >= 1 })

	e.push(e.codeEvent("new", "NEW", 5*time.Minute))
	// The stuck edits hold for as long as the test lets them; a code
	// sent within a few seconds did not wait for them.
	if !within(5*time.Second, func() bool { return len(e.tg.Messages(dlChat)) == 1 }) {
		t.Fatalf("the new code was not sent while %d refreshes were stuck", e.tg.Waiting("editMessageText"))
	}
	if n := e.tg.Waiting("editMessageText"); n >= e.opts.Workers {
		t.Fatalf("%d refreshes in flight with %d workers: none kept for codes", n, e.opts.Workers)
	}
	release()
}

// A refresh stuck in a Telegram call gives its worker back after
// RefreshTimeout rather than after most of the lease.
func TestDeliverStuckRefreshIsCutShort(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	e.start(func(o *DelivererOptions) { o.RefreshTimeout = 100 * time.Millisecond })
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	e.waitMessages(dlChat, 1)
	e.settle()
	release := e.tg.Hold("editMessageText")
	defer release()
	e.advance(dlTicker)
	e.tg.WaitFor(t, func() bool { return e.tg.Waiting("editMessageText") == 1 })
	// The lease is 20s: a call bounded by it would hold the worker for 15s.
	if !within(5*time.Second, func() bool {
		return testutil.ToFloat64(e.d.deliveries.WithLabelValues(string(otpbot.TaskRefresh), "retried")) == 1
	}) {
		t.Fatal("the stuck refresh still holds its worker")
	}
	release()
}

// flakyStore fails the next UpdateMessage and Complete calls with
// ErrUnavailable, as a Redis failover would; CompleteMessage, which does
// the work of both, fails while either count lasts.
type flakyStore struct {
	DeliveryStore
	failUpdates  atomic.Int32
	failComplete atomic.Int32
}

func (f *flakyStore) UpdateMessage(ctx context.Context, prev time.Time, msg otpbot.Message, next ...otpbot.Task) error {
	if f.failUpdates.Add(-1) >= 0 {
		return fmt.Errorf("redis update message: %w", otpbot.ErrUnavailable)
	}
	return f.DeliveryStore.UpdateMessage(ctx, prev, msg, next...)
}

func (f *flakyStore) Complete(ctx context.Context, job otpbot.Job, msg *otpbot.Message, next ...otpbot.Task) error {
	if f.failComplete.Add(-1) >= 0 {
		return fmt.Errorf("redis complete: %w", otpbot.ErrUnavailable)
	}
	return f.DeliveryStore.Complete(ctx, job, msg, next...)
}

func (f *flakyStore) CompleteMessage(ctx context.Context, job otpbot.Job, prev time.Time, msg otpbot.Message, next ...otpbot.Task) error {
	if f.failUpdates.Add(-1) >= 0 || f.failComplete.Add(-1) >= 0 {
		return fmt.Errorf("redis complete message: %w", otpbot.ErrUnavailable)
	}
	return f.DeliveryStore.CompleteMessage(ctx, job, prev, msg, next...)
}

// A store that is briefly unavailable right after Telegram accepted a code
// must not lead to a second message: the writes that record the send are
// retried until they land.
func TestDeliverStoreHiccupAfterTheSendSendsOnce(t *testing.T) {
	e := newDlEnv(t)
	target := otpbot.Target{ChatID: dlChat}
	e.link("C1", target)
	flaky := &flakyStore{DeliveryStore: e.store}
	flaky.failUpdates.Store(3)
	flaky.failComplete.Store(2)
	e.start(func(o *DelivererOptions) { o.Store = flaky })
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	e.waitMessages(dlChat, 1)
	e.tg.WaitFor(t, func() bool { return e.d.busy.Load() == 0 })
	// Whatever was left for later is due by now.
	e.advance(time.Minute)
	e.settle()
	if n := len(e.tg.Messages(dlChat)); n != 1 {
		t.Fatalf("%d messages for one code", n)
	}
	st := e.message(otpbot.MessageKey("ev1", target))
	if st.TelegramID != e.tg.Messages(dlChat)[0].ID {
		t.Fatalf("stored telegram id %d", st.TelegramID)
	}
}

// At shutdown a Telegram call that hangs is cut off at the drain deadline:
// Run returns soon after, with the job handed back to the outbox (due at
// once, no attempt counted) before it returns, and the next start sends
// the code without waiting for the lease to run out.
func TestDeliverShutdownCutsAHungCallAtTheDrainDeadline(t *testing.T) {
	e := newDlEnv(t)
	target := otpbot.Target{ChatID: dlChat}
	e.link("C1", target)
	release := e.tg.Hold("sendMessage")
	defer release()
	e.start(func(o *DelivererOptions) { o.DrainTimeout = 100 * time.Millisecond })
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	e.tg.WaitFor(t, func() bool { return e.tg.Waiting("sendMessage") == 1 })
	e.cancel()
	e.cancel = nil
	// The call would otherwise run for three quarters of the 20s lease.
	select {
	case err := <-e.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still waits for the hung call")
	}
	at, ok, err := e.store.NextDue(context.Background())
	if err != nil || !ok || at.After(e.clock.Now()) {
		t.Fatalf("after Run returned the send is due at %v (ok %v, %v), want now: not handed back", at, ok, err)
	}
	release()
	e.start()
	e.waitMessages(dlChat, 1)
	e.settle()
	if n := len(e.tg.Messages(dlChat)); n != 1 {
		t.Fatalf("%d messages", n)
	}
}

// When two processes both sent a code (one took the job over after the
// other's lease ran out while its call hung), the one whose save finds the
// other's message already recorded removes its own copy: the chat keeps
// one message, the one whose countdown runs. If the copy cannot be
// deleted it is edited to the expired form, so no unmanaged live code
// stays on screen.
func TestDeliverDuplicateAfterATakeoverIsRemoved(t *testing.T) {
	for _, tc := range []struct {
		name       string
		deleteFail bool
	}{{"deleted", false}, {"delete fails: redacted", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newDlEnv(t)
			target := otpbot.Target{ChatID: dlChat}
			e.link("C1", target)
			if tc.deleteFail {
				e.tg.FailNext("deleteMessage", 1, 500, "Internal Server Error", 0)
			}
			release := e.tg.Hold("sendMessage")
			defer release()
			e.start()
			e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
			e.tg.WaitFor(t, func() bool { return e.tg.Waiting("sendMessage") == 1 })
			// The first process's lease runs out while its call hangs; a
			// second process takes the send over.
			e.clock.Advance(e.opts.Lease + time.Second)
			other := e.second()
			other.Poke()
			e.tg.WaitFor(t, func() bool { return e.tg.Waiting("sendMessage") == 2 })
			release()
			e.tg.WaitFor(t, func() bool { return e.tg.MessageCount() == 2 })
			e.tg.WaitFor(t, func() bool { return other.busy.Load() == 0 })
			e.settle()

			st := e.message(otpbot.MessageKey("ev1", target))
			var live []bottest.Message
			for _, m := range e.tg.Messages(dlChat) {
				if strings.Contains(m.Text, dlCode) {
					live = append(live, m)
				}
			}
			if len(live) != 1 || live[0].ID != st.TelegramID {
				t.Fatalf("%d messages show the code (stored id %d): %+v", len(live), st.TelegramID, live)
			}
			// A copy whose deletion failed stays redacted, unless the
			// other process's search for an interrupted send's copy found
			// and deleted it first.
			if n := len(e.tg.Messages(dlChat)); n != 1 && !(tc.deleteFail && n == 2) {
				t.Fatalf("%d messages left in the chat", n)
			}
		})
	}
}

// A send Telegram refuses as a bad request (a template override with a
// broken tag, a button it rejects) is tried once more as plain text
// without buttons, so the code still arrives, and ops hear about it.
func TestDeliverBadRequestFallsBackToPlainText(t *testing.T) {
	e := newDlEnv(t)
	target := otpbot.Target{ChatID: dlChat}
	e.link("C1", target)
	e.tg.FailNext("sendMessage", 1, 400, `Bad Request: can't parse entities: Unsupported start tag "x" at byte offset 3`, 0)
	e.start()
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	m := e.waitMessages(dlChat, 1)[0]
	if !strings.Contains(m.Text, dlCode) || m.ParseMode != "" || m.Buttons != nil || strings.Contains(m.Text, "<code>") {
		t.Fatalf("fallback message: %+v", m)
	}
	e.settle()
	st := e.message(otpbot.MessageKey("ev1", target))
	if st.TelegramID != m.ID || st.State != otpbot.StateLive {
		t.Fatalf("stored %+v", st)
	}
	if err := e.ops.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	note := e.waitMessages(dlOps, 1)[0]
	if !strings.Contains(note.Plain(), "can't parse entities") || !strings.Contains(note.Plain(), strconv.FormatInt(dlChat, 10)) ||
		strings.Contains(note.Text, dlCode) {
		t.Fatalf("ops notice: %s", note.Plain())
	}
	// The countdown goes on, in HTML again.
	e.advance(dlTicker)
	m = e.waitText(dlChat, m.ID, "expires in 4:30")
	if m.ParseMode != "HTML" {
		t.Fatalf("refresh parse mode %q", m.ParseMode)
	}
}

// A confirmation "link" that is not a web address cannot be a URL button
// (Telegram refuses the whole message): it is shown like a code instead.
func TestDeliverNonWebLinkIsShownLikeACode(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	e.start()
	ev := e.codeEvent("ev1", "C1", 5*time.Minute)
	ev.Name, ev.Code, ev.Type, ev.Link = "NE_VERIFY", "", "3DS_CONFIRM_LINK", "upayapp://confirm/7781"
	e.push(ev)
	m := e.waitMessages(dlChat, 1)[0]
	if !strings.Contains(m.Text, "<code>upayapp://confirm/7781</code>") {
		t.Fatalf("the link is not shown like a code:\n%s", m.Text)
	}
	for _, row := range m.Buttons {
		for _, b := range row {
			if b.URL != "" {
				t.Fatalf("URL button %+v", b)
			}
		}
	}
}

// A group upgraded to a supergroup answers with the supergroup's id: the
// links move there and the code is sent there, nothing is marked broken.
func TestDeliverFollowsAGroupUpgradedToASupergroup(t *testing.T) {
	e := newDlEnv(t)
	const group, super int64 = -4001, -1004001
	e.link("C1", otpbot.Target{ChatID: group})
	e.tg.Migrate(group, super)
	e.start()
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	m := e.waitMessages(super, 1)[0]
	if !strings.Contains(m.Text, dlCode) {
		t.Fatalf("message in the supergroup: %s", m.Plain())
	}
	e.settle()
	links, err := e.store.LinksForKey(context.Background(), otpbot.Key{Type: otpbot.KeyCard, ID: "C1"})
	if err != nil || len(links) != 1 || links[0].Target.ChatID != super || links[0].Broken {
		t.Fatalf("links %+v %v, want one unbroken link to the supergroup", links, err)
	}
	// The countdown goes on in the supergroup.
	e.advance(dlTicker)
	e.waitText(super, m.ID, "expires in 4:30")
	// And the next code goes straight there.
	e.push(e.codeEvent("ev2", "C1", 5*time.Minute))
	e.waitMessages(super, 2)
}
