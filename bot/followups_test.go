package bot

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/telegram"
)

// The follow-up tests run the real chain of the command tests (fake Bot API,
// real Client, Poller, Commands, Deliverer, bolt store) with FollowUps
// called the way the webhook handler calls it: after Ingest, for a push
// that is not a repeat.

const (
	thCard  = "C-4000123412341234"
	thCust  = "CUST-77"
	thCode  = "774411"
	thTrace = "TR-20250601-1"
)

// newThreadEnv is the command tests' env whose Deliverer has a limiter
// that never holds back: a reply is low-priority work, which a limiter
// short of tokens defers by a wait on the test clock, and that clock only
// moves when a test moves it.
func newThreadEnv(t *testing.T) (*env, *FollowUps) {
	t.Helper()
	e := newEnvLimited(t, func(now func() time.Time) *telegram.Limiter {
		return telegram.NewLimiter(telegram.LimiterOptions{GlobalPerSec: 1e6, GlobalBurst: 1e6, ChatPerSec: 1e6, ChatBurst: 1e6,
			GroupPerMin: 1e8, GroupBurst: 1e6, Now: now})
	})
	th, err := NewFollowUps(FollowUpsOptions{Store: e.store, Renderer: e.tmpl, Now: e.clock.Now, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return e, th
}

// otp is a UPay 3DS_OTP of the transaction trace.
func (e *env) otp(id, trace string) otpbot.Event {
	now := e.clock.Now()
	return otpbot.Event{ID: id, Group: id, Provider: otpbot.ProviderUPay, Name: "3DS_OTP", Kind: otpbot.KindCode,
		Trace: trace, CardID: thCard, CustomerNo: thCust, CardLast4: "1234", Code: thCode,
		ReceivedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
}

// codeWithTrace ingests a UPay 3DS_OTP of the transaction trace and waits
// until its message is in every target and the store knows their
// Telegram ids; it returns the Telegram message id in each target.
func (e *env) codeWithTrace(id, trace string, targets ...otpbot.Target) map[otpbot.Target]int {
	e.t.Helper()
	return e.sendCode(e.otp(id, trace), targets...)
}

// sendCode ingests the code event ev and waits until its message is in
// every target and the store knows their Telegram ids; it returns the
// Telegram message id in each target.
func (e *env) sendCode(ev otpbot.Event, targets ...otpbot.Target) map[otpbot.Target]int {
	e.t.Helper()
	id := ev.Group
	if _, err := e.store.Ingest(e.ctx, ev); err != nil {
		e.t.Fatal(err)
	}
	ids := map[otpbot.Target]int{}
	e.tg.WaitFor(e.t, func() bool {
		for _, target := range targets {
			m, ok, err := e.store.Message(e.ctx, otpbot.MessageKey(id, target))
			if err != nil || !ok || m.TelegramID == 0 {
				return false
			}
			ids[target] = m.TelegramID
		}
		return true
	})
	return ids
}

// payment is the CC_CONSUME of the transaction trace, as parsed by the
// webhooks.
func (e *env) payment(id, trace string) otpbot.Event {
	return otpbot.Event{ID: id, Group: id, Provider: otpbot.ProviderUPay, Name: "CC_CONSUME", Kind: otpbot.KindInfo,
		Trace: trace, CardID: thCard, CustomerNo: thCust, CardLast4: "1234", Amount: "12.50", Currency: "EUR",
		Merchant: "Amazon EU", Status: "successful", ReceivedAt: e.clock.Now()}
}

// deliverPush does what the webhook handler does with a push: Ingest, and
// for a new event, FollowUp.
func (e *env) deliverPush(th *FollowUps, ev otpbot.Event) {
	e.t.Helper()
	res, err := e.store.Ingest(e.ctx, ev)
	if err != nil {
		e.t.Fatal(err)
	}
	if !res.Duplicate {
		th.FollowUp(e.ctx, ev.Redacted())
	}
}

// settle waits until the Deliverer is idle with nothing due now.
func (e *env) settle() {
	e.t.Helper()
	e.tg.WaitFor(e.t, func() bool {
		if !e.d.Idle() {
			return false
		}
		at, ok, err := e.store.NextDue(e.ctx)
		return err == nil && (!ok || at.After(e.clock.Now()))
	})
}

// paymentReplies returns the bot's messages in chat that show the
// payment.
func (e *env) paymentReplies(chat int64) []bottest.Message {
	var out []bottest.Message
	for _, m := range e.tg.Messages(chat) {
		if strings.Contains(m.Plain(), "Payment") {
			out = append(out, m)
		}
	}
	return out
}

func TestFollowUps(t *testing.T) {
	card := cardKey(thCard)
	cust := otpbot.Key{Type: otpbot.KeyCustomer, ID: thCust}
	tests := []struct {
		name    string
		keys    []otpbot.Key // linked to chatA
		replies []string     // /replies commands run in chatA, in order
		trace   string       // of the payment
		pushes  int          // of the same payment
		want    bool         // a reply to the code message
	}{
		{"opted in: the payment answers the code", []otpbot.Key{card}, []string{"on"}, thTrace, 1, true},
		{"not opted in: history only", []otpbot.Key{card}, nil, thTrace, 1, false},
		{"opted in and out again", []otpbot.Key{card}, []string{"on", "off"}, thTrace, 1, false},
		{"another transaction", []otpbot.Key{card}, []string{"on"}, "TR-other", 1, false},
		{"a repeated push answers once", []otpbot.Key{card}, []string{"on"}, thTrace, 3, true},
		{"card and customer linked: one reply", []otpbot.Key{card, cust}, []string{"on"}, thTrace, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, th := newThreadEnv(t)
			for _, k := range tt.keys {
				e.link(k, chat(chatA))
			}
			for _, arg := range tt.replies {
				mustContain(t, e.reply(chatA, admin, "/replies "+arg), "Replies "+arg)
			}
			code := e.codeWithTrace("upay:PN-OTP", thTrace, chat(chatA))[chat(chatA)]
			for range tt.pushes {
				e.deliverPush(th, e.payment("upay:PN-PAY", tt.trace))
			}
			if tt.want {
				e.tg.WaitFor(t, func() bool { return len(e.paymentReplies(chatA)) > 0 })
			}
			e.settle()
			got := e.paymentReplies(chatA)
			if !tt.want {
				if len(got) != 0 {
					t.Fatalf("a reply was sent: %q", got[0].Plain())
				}
				// The payment is in history all the same.
				mustContain(t, e.reply(chatA, member, "/history"), "Payment", "Amazon EU", "successful")
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d replies, want 1", len(got))
			}
			r := got[0]
			if r.ReplyTo != code {
				t.Errorf("the payment answers message %d, want the code message %d", r.ReplyTo, code)
			}
			mustContain(t, r.Plain(), "Payment", "successful", "•••• 1234", "Amazon EU", "12.50 EUR")
			mustNotContain(t, r.Plain(), thCode, "4000123412341234")
			// The code message itself is left as it was.
			if m, _ := e.tg.Message(chatA, code); !strings.Contains(m.Plain(), thCode) {
				t.Errorf("the code message changed: %q", m.Plain())
			}
		})
	}
}

// In a forum, each topic decides for itself: the reply goes to the topic
// that opted in, in that topic, answering the code message there, even
// when another topic of the chat holds a newer message of the
// transaction.
func TestFollowUpsPerTopic(t *testing.T) {
	e, th := newThreadEnv(t)
	topic := otpbot.Target{ChatID: chatA, ThreadID: 7}
	e.link(cardKey(thCard), topic)
	e.link(otpbot.Key{Type: otpbot.KeyCustomer, ID: thCust}, chat(chatA))
	mustContain(t, e.reply(chatA, admin, "/replies on", bottest.InThread(7)), "Replies on in topic 7")
	codes := e.codeWithTrace("upay:PN-OTP", thTrace, chat(chatA), topic)
	// A second code of the transaction for the customer only: the newest
	// message of the trace is then outside the topic.
	second := e.otp("upay:PN-OTP2", thTrace)
	second.CardID = ""
	if newer := e.sendCode(second, chat(chatA))[chat(chatA)]; newer <= codes[topic] {
		t.Fatalf("the customer's code (%d) is not newer than the topic's (%d)", newer, codes[topic])
	}
	e.deliverPush(th, e.payment("upay:PN-PAY", thTrace))

	e.tg.WaitFor(t, func() bool { return len(e.paymentReplies(chatA)) > 0 })
	e.settle()
	got := e.paymentReplies(chatA)
	if len(got) != 1 {
		t.Fatalf("%d replies, want 1 (in topic 7 only)", len(got))
	}
	if got[0].ThreadID != 7 || got[0].ReplyTo != codes[topic] {
		t.Errorf("reply in topic %d answering %d, want topic 7 answering %d", got[0].ThreadID, got[0].ReplyTo, codes[topic])
	}
	// Sent so that it still goes out should the code message be deleted.
	var params map[string]string
	allow := false
	for _, c := range e.tg.Calls("sendMessage") {
		var rp struct {
			MessageID int  `json:"message_id"`
			Allow     bool `json:"allow_sending_without_reply"`
		}
		if json.Unmarshal([]byte(c.Params["reply_parameters"]), &rp) == nil && rp.MessageID == codes[topic] {
			params, allow = c.Params, rp.Allow
		}
	}
	if params == nil || !allow {
		t.Errorf("reply sent with %v: want reply_parameters allowing sending without reply", params)
	}
}

// A chat that opted in but saw no code of the transaction gets nothing:
// there is no message to answer.
func TestFollowUpWithoutCodeMessage(t *testing.T) {
	e, th := newThreadEnv(t)
	e.link(cardKey(thCard), chat(chatA))
	mustContain(t, e.reply(chatA, admin, "/replies on"), "Replies on")
	e.deliverPush(th, e.payment("upay:PN-PAY", thTrace))
	e.settle()
	if got := e.paymentReplies(chatA); len(got) != 0 {
		t.Fatalf("a payment without its code was sent: %q", got[0].Plain())
	}
	mustContain(t, e.reply(chatA, member, "/history"), "Payment")
}

func TestRepliesCommand(t *testing.T) {
	e := newEnv(t)
	e.link(cardKey(thCard), chat(chatA))

	// Only admins may switch it, and a refusal changes nothing.
	if got := e.reply(chatA, member, "/replies on"); !isRefusal(got, refusedAdmin) {
		t.Errorf("non-admin /replies: %q", got)
	}
	links, err := e.store.LinksForChat(e.ctx, chatA)
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Replies {
		t.Fatalf("links after a refused /replies: %+v", links)
	}
	mustNotContain(t, e.reply(chatA, member, "/links"), "replies")
	mustNotContain(t, e.reply(chatA, member, "/help"), "/replies")
	mustContain(t, e.reply(chatA, admin, "/help"), "/replies on")

	for _, bad := range []string{"/replies", "/replies maybe", "/replies on off"} {
		mustContain(t, e.reply(chatA, admin, bad), "Usage:", repliesHelp)
	}
	mustContain(t, e.reply(chatB, admin, "/replies on"), "Nothing is linked to this chat")

	mustContain(t, e.reply(chatA, admin, "/replies ON"), "Replies on")
	mustContain(t, e.reply(chatA, member, "/links"), "card …1234 · replies: on")
	// Renewing the link keeps the chat's choice; a new link starts off.
	e.reply(chatA, admin, "/link card "+thCard)
	e.reply(chatA, admin, "/link customer "+thCust)
	got := e.reply(chatA, member, "/links")
	mustContain(t, got, "card …1234 · replies: on")
	mustNotContain(t, got, "customer "+thCust+" · replies")

	mustContain(t, e.reply(chatA, admin, "/replies off"), "Replies off")
	mustNotContain(t, e.reply(chatA, member, "/links"), "replies: on")

	// It switches every link of this chat and topic, and no other topic.
	e.link(cardKey(thCard), otpbot.Target{ChatID: chatA, ThreadID: 9})
	mustContain(t, e.reply(chatA, admin, "/replies on"), "Replies on")
	if links, err = e.store.LinksForChat(e.ctx, chatA); err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if want := l.Target.ThreadID == 0; l.Replies != want {
			t.Errorf("link %s → %s: replies %v, want %v", l.Key, l.Target, l.Replies, want)
		}
	}
}
