package bot

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/otpbot/otpbot"
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
	e.push(e.authEvent("350", "A1", 4, 10*time.Minute))
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
	if !strings.Contains(msgs[0].Plain(), "result 4") {
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
	lim := NewLimiter(LimiterOptions{GlobalPerSec: 1e6, GlobalBurst: 1e6, ChatPerSec: 1, ChatBurst: 1,
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
		if w := lim.Take(target, otpbot.PriorityCode); w != 0 {
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
