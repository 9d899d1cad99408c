package bot

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/deliver"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/hyperpay"
	"github.com/otpbot/otpbot/hyperpay/hptest"
	"github.com/otpbot/otpbot/store/storetest"
	"github.com/otpbot/otpbot/templates"
)

// The approval tests run the whole chain: the fake Bot API, the real
// Client, a Poller, Commands with Approvals, the real Deliverer (whose
// Buttons come from Approvals), the embedded store, and the real
// hyperpay.Client signing its requests for the fake HyperCard API, which
// verifies every signature with the matching public key.

const (
	authCard       = "15723682800000053333"
	chatC    int64 = -1001000000003 // a group not linked to authCard
	allowed  int64 = 9004           // a user on the allowed list
)

// merchantKey is one RSA key for the whole package's tests: generating
// one per test would cost more than the tests themselves.
var merchantKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

type approvalEnv struct {
	*env
	hc        *hptest.Server
	approvals *Approvals
	deliverer *deliver.Deliverer
}

type approvalConfig struct {
	approve, decline int
	allowed          []int64
	timeout          time.Duration
}

func newApprovalEnv(t *testing.T, cfg approvalConfig) *approvalEnv {
	t.Helper()
	if cfg.approve == 0 {
		cfg.approve, cfg.decline = 2, 3
	}
	ctx, cancel := context.WithCancel(context.Background())
	clock := storetest.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	e := &approvalEnv{env: &env{t: t, ctx: ctx, tg: bottest.New(t), clock: clock}}
	e.store = openStore(t, e.clock.Now)
	e.client = newClient(t, e.tg)
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	e.tmpl = tmpl

	key := merchantKey()
	e.hc = hptest.New(t, &key.PublicKey)
	e.hc.WantAPIKey("ak-test")
	hc, err := hyperpay.NewClient(hyperpay.ClientConfig{
		BaseURL: e.hc.URL(), APIKey: "ak-test", PrivateKey: key, HTTPClient: e.hc.Client(), Timeout: cfg.timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.approvals, err = NewApprovals(ApprovalOptions{
		Approver: hc, Store: e.store, ApproveResult: cfg.approve, DeclineResult: cfg.decline,
		Timeout: cfg.timeout, AllowedUsers: cfg.allowed, Retryable: hyperpay.Retryable,
		Now: e.clock.Now, Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.cmds = e.newCommands()
	p, err := telegram.NewPoller(telegram.PollerOptions{Client: e.client, Handler: e.cmds, Coord: e.store, Owner: "test",
		LeaseTTL: 3 * time.Second, PollTimeout: 1})
	if err != nil {
		t.Fatal(err)
	}
	limiter := telegram.NewLimiter(telegram.LimiterOptions{ChatPerSec: 100, ChatBurst: 100, GroupPerMin: 6000, GroupBurst: 100})
	e.deliverer, err = deliver.NewDeliverer(deliver.DelivererOptions{Store: e.store, Client: e.client, Renderer: tmpl, Now: e.clock.Now,
		Limiter: limiter, ExtraButtons: e.approvals.Buttons, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = p.Run(ctx) }()
	go func() { defer wg.Done(); _ = e.deliverer.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return e
}

// newCommands builds a command handler on the env's store, client and
// approvals: a second one stands for another process sharing the store.
func (e *approvalEnv) newCommands() *Commands {
	e.t.Helper()
	c, err := NewCommands(CommandsOptions{
		Store: e.store, Client: e.client, Templates: e.tmpl, Admins: []int64{admin},
		Now: e.clock.Now, Username: e.client.Username, Registerer: prometheus.NewRegistry(),
		Approvals: e.approvals,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// pushAuth ingests an AUTH_3DS approval request, as the webhooks would.
func (e *approvalEnv) pushAuth(authID string, result int, ttl time.Duration) otpbot.Event {
	e.t.Helper()
	now := e.clock.Now()
	ev := otpbot.Event{
		ID: "hc-" + authID + "-" + strconv.Itoa(result), Group: "hypercard:AUTH_3DS:" + authID,
		Provider: otpbot.ProviderHyperCard, Name: "AUTH_3DS", Kind: otpbot.KindApproval,
		CardID: authCard, CardLast4: "3333", Amount: "25.00", Currency: "EUR", Merchant: "Shop " + authID,
		Country: "DE", AuthID: authID, AuthResult: result, ReceivedAt: now, ExpiresAt: now.Add(ttl),
	}
	if _, err := e.store.Ingest(e.ctx, ev); err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// request waits for the approval request in chat, with its buttons, and
// for the store to know its Telegram id (a tap is matched by it).
func (e *approvalEnv) request(chat int64, ev otpbot.Event) bottest.Message {
	e.t.Helper()
	m := e.codeMessage(chat, ev)
	e.tg.WaitFor(e.t, func() bool {
		m, _ = e.tg.Message(chat, m.ID)
		st, ok, err := e.store.Message(e.ctx, otpbot.MessageKey(ev.Group, otpbot.Target{ChatID: chat}))
		return hasButton(m, telegram.CallbackApprove) && hasButton(m, telegram.CallbackDecline) && err == nil && ok && st.TelegramID == m.ID
	})
	return m
}

// waitShown waits until the message shows want and returns it.
func (e *approvalEnv) waitShown(chat int64, id int, want string) bottest.Message {
	e.t.Helper()
	var m bottest.Message
	e.tg.WaitFor(e.t, func() bool {
		m, _ = e.tg.Message(chat, id)
		return strings.Contains(m.Text, want)
	})
	return m
}

func (e *approvalEnv) stored(group string, chat int64) otpbot.Message {
	e.t.Helper()
	m, ok, err := e.store.Message(e.ctx, otpbot.MessageKey(group, otpbot.Target{ChatID: chat}))
	if err != nil || !ok {
		e.t.Fatalf("message of chat %d: %v %v", chat, ok, err)
	}
	return m
}

func (e *approvalEnv) decisions() []hptest.Call {
	return e.hc.Decisions()
}

func TestApproveOrDeclineFromLinkedChat(t *testing.T) {
	tests := []struct {
		name             string
		approve, decline int
		button           string
		wantResult       int
		wantAsk, wantAns string
		wantDecision     string
		wantShown        string
	}{
		{"approve", 2, 3, telegram.CallbackApprove, 2, en(answerAskApprove), en(answerApproved),
			"Approved by @user9003 at 12:00 UTC", "✅ <b>Approved by @user9003 at 12:00 UTC</b>"},
		{"decline", 2, 3, telegram.CallbackDecline, 3, en(answerAskDecline), en(answerDeclined),
			"Declined by @user9003 at 12:00 UTC", "❌ <b>Declined by @user9003 at 12:00 UTC</b>"},
		// Which value approves is configuration, not an assumption.
		{"approve with the values swapped", 3, 2, telegram.CallbackApprove, 3, en(answerAskApprove), en(answerApproved),
			"Approved by @user9003 at 12:00 UTC", "✅ <b>Approved by @user9003 at 12:00 UTC</b>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newApprovalEnv(t, approvalConfig{approve: tt.approve, decline: tt.decline})
			e.link(cardKey(authCard), chat(chatA))
			e.link(cardKey(authCard), chat(chatB))
			e.link(cardKey(authCard), chat(private))
			ev := e.pushAuth("283", 1, 10*time.Minute)
			inA, inB, inP := e.request(chatA, ev), e.request(chatB, ev), e.request(private, ev)
			mustContain(t, inA.Text, "Purchase waiting for approval", "Shop 283", "25.00 EUR", "•••• 3333")

			// The first tap asks for confirmation, in that chat only, and
			// calls nothing.
			confirmData, _ := e.firstTap(chatA, member, inA.ID, tt.button)
			e.waitShown(chatA, inA.ID, "this purchase?")
			if b, _ := e.tg.Message(chatB, inB.ID); b.Edits != 0 {
				t.Error("a tap in chat A changed chat B's message")
			}
			if n := len(e.decisions()); n != 0 {
				t.Fatalf("%d API calls before the confirmation", n)
			}

			if got := e.pressAndWait(chatA, member, inA.ID, confirmData); got != tt.wantAns {
				t.Errorf("confirmation answered %q, want %q", got, tt.wantAns)
			}
			calls := e.decisions()
			if len(calls) != 1 {
				t.Fatalf("%d API calls, want exactly 1", len(calls))
			}
			c := calls[0]
			if !c.Verified || c.HTTPStatus != http.StatusOK || c.Code != hyperpay.SuccessCode {
				t.Errorf("API call: verified %v, HTTP %d, code %s", c.Verified, c.HTTPStatus, c.Code)
			}
			if c.AuthID != "283" || !c.AuthIDNumber || c.CardID != authCard || c.AuthResult != tt.wantResult {
				t.Errorf("API call body: auth_id %q (number %v), card_id %q, auth_result %d; want auth_result %d",
					c.AuthID, c.AuthIDNumber, c.CardID, c.AuthResult, tt.wantResult)
			}
			if got, _ := e.hc.AuthResult("283"); got != tt.wantResult {
				t.Errorf("HyperCard holds auth_result %d", got)
			}

			// Every chat shows the decision, and no chat keeps a button.
			for _, m := range []bottest.Message{inA, inB, inP} {
				shown := e.waitShown(m.ChatID, m.ID, tt.wantShown)
				e.tg.WaitFor(t, func() bool {
					shown, _ = e.tg.Message(m.ChatID, m.ID)
					return len(shown.Buttons) == 0
				})
				mustContain(t, shown.Text, "Shop 283", "•••• 3333")
				mustNotContain(t, shown.Text, authCard)
				st := e.stored(ev.Group, m.ChatID)
				if st.State != otpbot.StateDecided || e.tmpl.Default().DecisionLabel(st.Decision) != tt.wantDecision {
					t.Errorf("chat %d stored: state %s, decision %q", m.ChatID, st.State, st.Decision)
				}
			}

			// A later tap anywhere finds the request answered: no call.
			// Even under a stale keyboard (a confirmation step that raced
			// the decision), which the tap has taken away.
			if err := e.client.Edit(e.ctx, inB.ID, telegram.OutMessage{Target: chat(chatB), Text: "stale", Buttons: confirmKeyboard(e.tmpl.Default(), true, "stale")}); err != nil {
				t.Fatal(err)
			}
			got := e.pressAndWait(chatB, member, inB.ID, tt.button+":confirm:stale")
			if got != "Already answered: "+tt.wantDecision+"." {
				t.Errorf("tap after the decision answered %q", got)
			}
			e.tg.WaitFor(t, func() bool {
				m, _ := e.tg.Message(chatB, inB.ID)
				return len(m.Buttons) == 0 && strings.Contains(m.Text, tt.wantShown)
			})
			if n := len(e.decisions()); n != 1 {
				t.Errorf("%d API calls after a tap on a decided request", n)
			}
		})
	}
}

func TestApprovalCancel(t *testing.T) {
	e := newApprovalEnv(t, approvalConfig{})
	e.link(cardKey(authCard), chat(chatA))
	ev := e.pushAuth("290", 1, 10*time.Minute)
	in := e.request(chatA, ev)
	_, cancel := e.firstTap(chatA, member, in.ID, telegram.CallbackDecline)
	e.waitShown(chatA, in.ID, "Decline this purchase?")
	if got := e.pressAndWait(chatA, member, in.ID, cancel); got != en(answerCancelled) {
		t.Errorf("cancel answered %q", got)
	}
	back := e.waitShown(chatA, in.ID, "Purchase waiting for approval")
	if !hasButton(back, telegram.CallbackApprove) || !hasButton(back, telegram.CallbackDecline) {
		t.Errorf("after cancel: buttons %+v", back.Buttons)
	}
	if n := len(e.decisions()); n != 0 {
		t.Errorf("%d API calls after cancel", n)
	}
	if st := e.stored(ev.Group, chatA); st.State != otpbot.StateLive || st.Decision != "" {
		t.Errorf("after cancel: %s %q", st.State, st.Decision)
	}
}

func TestApprovalRefusedWithoutCall(t *testing.T) {
	tests := []struct {
		name    string
		allowed []int64
		// setup prepares the situation and returns who taps where.
		setup func(e *approvalEnv, ev otpbot.Event, inA bottest.Message) (chat, user int64, messageID int)
		want  string
	}{
		{"from an unlinked chat", nil, func(e *approvalEnv, ev otpbot.Event, inA bottest.Message) (int64, int64, int) {
			// Chat C claims chat A's message id: chat C holds no such
			// request, so the tap reaches nothing.
			return chatC, stranger, inA.ID
		}, en(answerGone)},
		{"from a chat unlinked after the push", nil, func(e *approvalEnv, ev otpbot.Event, inA bottest.Message) (int64, int64, int) {
			inB := e.request(chatB, ev)
			if _, err := e.store.Unlink(e.ctx, cardKey(authCard), chat(chatB)); err != nil {
				e.t.Fatal(err)
			}
			return chatB, member, inB.ID
		}, en(answerNotLinked)},
		{"after expiry", nil, func(e *approvalEnv, ev otpbot.Event, inA bottest.Message) (int64, int64, int) {
			e.clock.Advance(10*time.Minute + time.Second)
			return chatA, member, inA.ID
		}, en(answerExpired)},
		{"from a user not on the allowed list, in a group", []int64{allowed}, func(e *approvalEnv, ev otpbot.Event, inA bottest.Message) (int64, int64, int) {
			return chatA, member, inA.ID
		}, en(answerNotAllowed)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newApprovalEnv(t, approvalConfig{allowed: tt.allowed})
			e.link(cardKey(authCard), chat(chatA))
			e.link(cardKey(authCard), chat(chatB))
			ev := e.pushAuth("300", 1, 10*time.Minute)
			inA := e.request(chatA, ev)
			chatID, user, id := tt.setup(e, ev, inA)
			for _, data := range []string{telegram.CallbackApprove, telegram.CallbackApprove + ":confirm", telegram.CallbackDecline + ":confirm"} {
				if got := e.pressAndWait(chatID, user, id, data); got != tt.want {
					t.Errorf("%s answered %q, want %q", data, got, tt.want)
				}
			}
			if n := len(e.decisions()); n != 0 {
				t.Errorf("%d API calls, want none", n)
			}
			if st := e.stored(ev.Group, chatA); st.State == otpbot.StateDecided {
				t.Errorf("the request was decided: %q", st.Decision)
			}
		})
	}
}

func TestApprovalAllowedUsers(t *testing.T) {
	e := newApprovalEnv(t, approvalConfig{allowed: []int64{allowed}})
	e.link(cardKey(authCard), chat(chatA))
	e.link(cardKey(authCard), chat(private))
	ev := e.pushAuth("310", 1, 10*time.Minute)
	inA, inP := e.request(chatA, ev), e.request(private, ev)

	// In a private chat the list does not apply: the chat is its owner's.
	if got := e.pressAndWait(private, member, inP.ID, telegram.CallbackApprove); got != en(answerAskApprove) {
		t.Errorf("private chat owner: %q", got)
	}
	// In the group, a listed user decides.
	if got := e.answer(chatA, allowed, inA.ID, telegram.CallbackApprove); got != en(answerApproved) {
		t.Errorf("allowed user: %q", got)
	}
	if n := len(e.decisions()); n != 1 {
		t.Errorf("%d API calls", n)
	}
	e.waitShown(private, inP.ID, "Approved by @user9004")
}

func TestApprovalButtonsGoAtExpiry(t *testing.T) {
	e := newApprovalEnv(t, approvalConfig{})
	e.link(cardKey(authCard), chat(chatA))
	e.link(cardKey(authCard), chat(chatB))
	ev := e.pushAuth("320", 1, 2*time.Minute)
	inA, inB := e.request(chatA, ev), e.request(chatB, ev)
	e.clock.Advance(2 * time.Minute)
	e.deliverer.Poke()
	for _, m := range []bottest.Message{inA, inB} {
		gone := e.waitShown(m.ChatID, m.ID, "Purchase approval expired")
		if len(gone.Buttons) != 0 {
			t.Errorf("chat %d keeps buttons after expiry: %+v", m.ChatID, gone.Buttons)
		}
	}
}

func TestApprovalAPIFailureThenRetry(t *testing.T) {
	tests := []struct {
		name   string
		fail   func(hc *hptest.Server)
		answer string
		shown  string
	}{
		{"HyperCard answers 503", func(hc *hptest.Server) { hc.FailNext(1, http.StatusServiceUnavailable) },
			en(answerUnreachable), "Could not reach HyperCard — try again"},
		{"HyperCard refuses", func(hc *hptest.Server) { hc.FailNextCode(1, "30001", "system busy") },
			en(answerAPIRefused), "HyperCard did not accept the answer — try again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newApprovalEnv(t, approvalConfig{})
			e.link(cardKey(authCard), chat(chatA))
			e.link(cardKey(authCard), chat(chatB))
			ev := e.pushAuth("330", 1, 10*time.Minute)
			inA, inB := e.request(chatA, ev), e.request(chatB, ev)

			tt.fail(e.hc)
			if got := e.answer(chatA, member, inA.ID, telegram.CallbackApprove); got != tt.answer {
				t.Errorf("failed call answered %q, want %q", got, tt.answer)
			}
			alert := false
			for _, c := range e.tg.Calls("answerCallbackQuery") {
				if c.Params["text"] == tt.answer {
					alert = c.Params["show_alert"] == "true"
				}
			}
			if !alert {
				t.Error("the failure is not shown as an alert")
			}
			failed := e.waitShown(chatA, inA.ID, tt.shown)
			if !hasButton(failed, telegram.CallbackApprove) || !hasButton(failed, telegram.CallbackDecline) {
				t.Errorf("after a failure the buttons must be back: %+v", failed.Buttons)
			}
			if st := e.stored(ev.Group, chatA); st.State != otpbot.StateLive || st.Decision != "" {
				t.Errorf("after a failure: %s %q", st.State, st.Decision)
			}
			if n := len(e.decisions()); n != 1 {
				t.Fatalf("%d API calls after one tap", n)
			}

			// Nothing is retried on its own; the user's next tap (and its
			// confirmation) is.
			if got := e.answer(chatA, member, failed.ID, telegram.CallbackApprove); got != en(answerApproved) {
				t.Errorf("second tap answered %q", got)
			}
			calls := e.decisions()
			if len(calls) != 2 || calls[1].HTTPStatus != http.StatusOK || calls[1].AuthResult != 2 || !calls[1].Verified {
				t.Fatalf("calls after the retry: %+v", calls)
			}
			for _, m := range []bottest.Message{inA, inB} {
				done := e.waitShown(m.ChatID, m.ID, "Approved by @user9003")
				mustNotContain(t, done.Text, "try again")
			}
		})
	}
}

// callbackUpdate is a button press as Telegram delivers it, for a second
// process that receives it through its own handler (a webhook, say).
func callbackUpdate(id string, chatID, user int64, messageID int, data string) tgbotapi.Update {
	return tgbotapi.Update{CallbackQuery: &tgbotapi.CallbackQuery{
		ID:      id,
		From:    &tgbotapi.User{ID: user, UserName: "user" + strconv.FormatInt(user, 10)},
		Message: &tgbotapi.Message{MessageID: messageID, Chat: &tgbotapi.Chat{ID: chatID, Type: "supergroup"}},
		Data:    data,
	}}
}

func TestApprovalRaceMakesOneCall(t *testing.T) {
	e := newApprovalEnv(t, approvalConfig{})
	e.link(cardKey(authCard), chat(chatA))
	e.link(cardKey(authCard), chat(chatB))
	ev := e.pushAuth("340", 1, 10*time.Minute)
	inA, inB := e.request(chatA, ev), e.request(chatB, ev)
	other := e.newCommands() // another process on the same store
	confirmA, _ := e.firstTap(chatA, member, inA.ID, telegram.CallbackApprove)
	confirmB, _ := e.firstTap(chatB, stranger, inB.ID, telegram.CallbackDecline)

	// Chat A confirms first; its call is held at HyperCard.
	release := e.hc.Hold()
	idA := e.tg.PressButton(chatA, member, inA.ID, confirmA)
	e.tg.WaitFor(t, func() bool { return e.hc.Waiting() == 1 })

	// Meanwhile chat B (declining) and a double tap in chat A arrive at
	// the other process.
	for i, tap := range []struct {
		chat, user int64
		id         int
		data       string
	}{{chatB, stranger, inB.ID, confirmB}, {chatA, member, inA.ID, confirmA}} {
		cbID := "race" + strconv.Itoa(i)
		if err := other.HandleUpdate(e.ctx, callbackUpdate(cbID, tap.chat, tap.user, tap.id, tap.data)); err != nil {
			t.Fatal(err)
		}
		if got := answerOf(e, cbID); got != en(answerBusy) {
			t.Errorf("tap %d while the first is under way answered %q", i, got)
		}
	}
	if n := len(e.decisions()); n != 1 {
		t.Fatalf("%d API calls while the first is held", n)
	}

	release()
	if got := answerOf(e, idA); got != en(answerApproved) {
		t.Errorf("the first tap answered %q", got)
	}
	// The decision is the first tap's, in both chats.
	for _, m := range []bottest.Message{inA, inB} {
		e.waitShown(m.ChatID, m.ID, "Approved by @user9003")
	}
	// B tries again: the request is answered, nothing is called.
	if err := other.HandleUpdate(e.ctx, callbackUpdate("late", chatB, stranger, inB.ID, confirmB)); err != nil {
		t.Fatal(err)
	}
	if got := answerOf(e, "late"); !strings.HasPrefix(got, "Already answered: Approved by @user9003") {
		t.Errorf("late tap answered %q", got)
	}
	calls := e.decisions()
	if len(calls) != 1 || calls[0].AuthResult != 2 {
		t.Errorf("calls: %+v", calls)
	}
}

// answerOf waits for the bot's answer to callback query id.
func answerOf(e *approvalEnv, id string) string {
	e.t.Helper()
	return callbackAnswer(e.t, e.tg, id)
}

func callbackAnswer(t *testing.T, tg *bottest.Server, id string) string {
	t.Helper()
	var answer string
	tg.WaitFor(t, func() bool {
		for _, c := range tg.Calls("answerCallbackQuery") {
			if c.Params["callback_query_id"] == id {
				answer = c.Params["text"]
				return true
			}
		}
		return false
	})
	return answer
}

func TestApprovalLaterPushUpdatesMessage(t *testing.T) {
	e := newApprovalEnv(t, approvalConfig{})
	e.link(cardKey(authCard), chat(chatA))
	ev := e.pushAuth("350", 1, 10*time.Minute)
	in := e.request(chatA, ev)
	mustContain(t, in.Text, "Purchase waiting for approval")
	mustNotContain(t, in.Text, "result")

	// HyperCard pushes a changed auth_result the mapping does not know
	// while the request is open: it stays open, with its buttons, and the
	// number is never shown.
	e.clock.Advance(time.Second)
	e.pushAuth("350", 4, 10*time.Minute)
	e.tg.WaitFor(t, func() bool { return e.stored(ev.Group, chatA).Event.AuthResult == 4 })
	e.tg.WaitFor(t, func() bool { return e.deliverer.Idle() })
	upd, _ := e.tg.Message(chatA, in.ID)
	if !hasButton(upd, telegram.CallbackApprove) || strings.Contains(upd.Text, "result") {
		t.Errorf("an open request lost its buttons or shows its result: %q %+v", upd.Text, upd.Buttons)
	}

	e.answer(chatA, member, in.ID, telegram.CallbackDecline)
	e.waitShown(chatA, in.ID, "Declined by @user9003")

	// The final push after the decision edits the message in place and
	// never brings the buttons back.
	e.clock.Advance(time.Second)
	e.pushAuth("350", 3, 10*time.Minute)
	e.tg.WaitFor(t, func() bool {
		st := e.stored(ev.Group, chatA)
		return st.Event.AuthResult == 3
	})
	e.tg.WaitFor(t, func() bool { return e.deliverer.Idle() })
	final, _ := e.tg.Message(chatA, in.ID)
	if len(final.Buttons) != 0 || !strings.Contains(final.Text, "Declined by @user9003") {
		t.Errorf("after the final push: %q %+v", final.Text, final.Buttons)
	}
	if st := e.stored(ev.Group, chatA); st.State != otpbot.StateDecided {
		t.Errorf("the final push changed the state to %s", st.State)
	}
	if n := len(e.decisions()); n != 1 {
		t.Errorf("%d API calls", n)
	}
}

func TestCodesListsPendingApprovals(t *testing.T) {
	e := newApprovalEnv(t, approvalConfig{})
	e.link(cardKey(authCard), chat(chatA))
	e.link(cardKey("CARD-4321"), chat(chatA))
	ev := e.pushAuth("360", 1, 10*time.Minute)
	code := e.push("c1", "CARD-4321", "135790", 5*time.Minute)
	in := e.request(chatA, ev)
	e.codeMessage(chatA, code)

	got := e.reply(chatA, member, "/codes")
	mustContain(t, got, "Purchase approval", "Shop 360", "25.00 EUR", "awaiting an answer", "expires in 10:00", "Shop c1",
		"<code>135790</code>")

	e.answer(chatA, member, in.ID, telegram.CallbackApprove)
	e.waitShown(chatA, in.ID, "Approved by")
	got = e.reply(chatA, member, "/codes")
	mustNotContain(t, got, "Shop 360")
	mustContain(t, got, "Shop c1")
}

func TestApprovalsOff(t *testing.T) {
	// Without providers.hypercard.api there is no Approvals: requests come
	// without buttons and a forged tap is refused.
	e := newEnv(t)
	e.link(cardKey(authCard), chat(chatA))
	now := e.clock.Now()
	ev := otpbot.Event{ID: "off", Group: "hypercard:AUTH_3DS:9", Provider: otpbot.ProviderHyperCard, Name: "AUTH_3DS",
		Kind: otpbot.KindApproval, CardID: authCard, Merchant: "Shop off", AuthID: "9", ReceivedAt: now, ExpiresAt: now.Add(time.Minute)}
	if _, err := e.store.Ingest(e.ctx, ev); err != nil {
		t.Fatal(err)
	}
	m := e.codeMessage(chatA, ev)
	if len(m.Buttons) != 0 {
		t.Errorf("buttons without approvals: %+v", m.Buttons)
	}
	if got := e.pressAndWait(chatA, member, m.ID, telegram.CallbackApprove+":confirm"); got != en(answerBroken) {
		t.Errorf("tap answered %q", got)
	}
}

func TestNewApprovalsChecks(t *testing.T) {
	store := openStore(t, time.Now)
	ok := ApprovalOptions{Approver: approverFunc(nil), Store: store, ApproveResult: 2, DeclineResult: 3}
	tests := []struct {
		name string
		edit func(*ApprovalOptions)
		want string
	}{
		{"no approver", func(o *ApprovalOptions) { o.Approver = nil }, "approver is required"},
		{"no store", func(o *ApprovalOptions) { o.Store = nil }, "store is required"},
		{"no results", func(o *ApprovalOptions) { o.DeclineResult = 0 }, "results are required"},
		{"same results", func(o *ApprovalOptions) { o.DeclineResult = 2 }, "must differ"},
		{"negative timeout", func(o *ApprovalOptions) { o.Timeout = -time.Second }, "timeout"},
		{"negative confirmation lifetime", func(o *ApprovalOptions) { o.ConfirmTTL = -time.Second }, "confirmation lifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			if _, err := NewApprovals(o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := NewApprovals(ok); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

type approverFunc func(ctx context.Context, authID, cardID string, result int) error

func (f approverFunc) Decide(ctx context.Context, authID, cardID string, result int) error {
	return f(ctx, authID, cardID, result)
}

func TestApprovalButtons(t *testing.T) {
	a, err := NewApprovals(ApprovalOptions{Approver: approverFunc(nil), Store: openStore(t, time.Now), ApproveResult: 2, DeclineResult: 3})
	if err != nil {
		t.Fatal(err)
	}
	open := otpbot.Message{State: otpbot.StateLive, Event: otpbot.Event{Kind: otpbot.KindApproval,
		Provider: otpbot.ProviderHyperCard, AuthID: "1", CardID: "c"}}
	decided := open
	decided.Decision = "Approved by @x at 12:00 UTC"
	noAuth := open
	noAuth.Event.AuthID = ""
	code := otpbot.Message{State: otpbot.StateLive, Event: otpbot.Event{Kind: otpbot.KindCode, Code: "1"}}
	tests := []struct {
		name string
		msg  otpbot.Message
		want []string // callback data of the buttons
	}{
		{"open request", open, []string{telegram.CallbackApprove, telegram.CallbackDecline}},
		{"decided", decided, nil},
		{"no auth id", noAuth, nil},
		{"a code gets no extra rows (the default keyboard is the deliverer's)", code, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, row := range a.Buttons(tmplSet(t).Default(), tt.msg) {
				for _, b := range row {
					if b.Data != "" {
						got = append(got, b.Data)
					}
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("buttons %v, want %v", got, tt.want)
			}
		})
	}
}
