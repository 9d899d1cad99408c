package bot

import (
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
)

// An AUTH_3DS whose later push decides it shows its decision in words,
// loses its buttons, leaves /codes, and takes no more answers.
func TestApprovalDecidedByPush(t *testing.T) {
	e := newApprovalEnv(t, approvalConfig{})
	e.link(cardKey(authCard), chat(chatA))
	pending := e.pushAuth("283", 1, 10*time.Minute)
	in := e.request(chatA, pending)
	mustContain(t, in.Text, "Purchase waiting for approval")
	mustNotContain(t, in.Text, "result 1")
	mustContain(t, e.reply(chatA, member, "/codes"), "Shop 283", "awaiting an answer")

	// HyperCard pushes the request again, declined (auth_result 3, read
	// through the mapping as the webhooks would).
	e.clock.Advance(20 * time.Second)
	declined := pending
	declined.ID, declined.AuthResult, declined.AuthState = "hc-283-3", 3, otpbot.AuthDeclined
	declined.ReceivedAt = e.clock.Now()
	if _, err := e.store.Ingest(e.ctx, declined); err != nil {
		t.Fatal(err)
	}
	shown := e.waitShown(chatA, in.ID, "Purchase declined")
	e.tg.WaitFor(t, func() bool {
		shown, _ = e.tg.Message(chatA, in.ID)
		return len(shown.Buttons) == 0
	})
	mustContain(t, shown.Text, "❌", "Shop 283", "•••• 3333")
	mustNotContain(t, shown.Text, "waiting", "expires in", "result 3")
	if st := e.stored(pending.Group, chatA); st.State != otpbot.StateDecided {
		t.Errorf("stored state %s, want decided", st.State)
	}
	if got := e.reply(chatA, member, "/codes"); !strings.Contains(got, "No code is valid") {
		t.Errorf("/codes still lists the decided request:\n%s", got)
	}
	if kb := e.approvals.Buttons(e.tmpl.Default(), e.stored(pending.Group, chatA)); kb != nil {
		t.Errorf("buttons for a decided request: %+v", kb)
	}
	// A tap under a stale keyboard calls nothing.
	if got := e.pressAndWait(chatA, member, in.ID, telegram.CallbackApprove); got != en(answerAnswered) {
		t.Errorf("tap on a decided request answered %q", got)
	}
	if n := len(e.decisions()); n != 0 {
		t.Errorf("%d calls to HyperCard for a decided request", n)
	}
	hist := e.reply(chatA, member, "/history")
	mustContain(t, hist, "Purchase approval · •••• 3333 · 25.00 EUR · Shop 283 · declined",
		"Purchase approval · •••• 3333 · 25.00 EUR · Shop 283 · waiting for an answer")
}

// ingestInfo records a history event as the webhooks would.
func (e *env) ingestInfo(ev otpbot.Event) {
	e.t.Helper()
	ev.ReceivedAt = e.clock.Now()
	if ev.Group == "" {
		ev.Group = ev.ID
	}
	if _, err := e.store.Ingest(e.ctx, ev); err != nil {
		e.t.Fatal(err)
	}
	e.clock.Advance(time.Second)
}

func TestHistoryEvents(t *testing.T) {
	e := newEnv(t)
	e.link(cardKey("CARD-0001"), chat(chatA))
	e.ingestInfo(otpbot.Event{ID: "o1", Provider: otpbot.ProviderHyperCard, Name: "OPEN_CARD", Kind: otpbot.KindInfo,
		CardType: "40000002", Status: "failed", Remark: "KYC data incomplete"})
	e.ingestInfo(otpbot.Event{ID: "c1", Provider: otpbot.ProviderHyperCard, Name: "CARD_CONFIG_CHANGE", Kind: otpbot.KindInfo,
		CardType: "40000002"})
	e.push("p1", "CARD-0001", "CODE01", 5*time.Minute)
	e.clock.Advance(time.Second)
	e.ingestInfo(otpbot.Event{ID: "k1", Provider: otpbot.ProviderUPay, Name: "KS_KYC", Kind: otpbot.KindInfo,
		CustomerNo: "CU-77", Type: "2", Status: "passed"})

	t.Run("an admin sees every event, newest first", func(t *testing.T) {
		got := e.reply(chatB, admin, "/history events")
		mustContain(t, got, "History of every event",
			"UPay · Identity check (passport) · customer CU-77 · passed",
			"UPay · 3-D Secure code · •••• 0001",
			"HyperCard · Card type settings changed · card type 40000002",
			"HyperCard · Card application · card type 40000002 · failed · remark: KYC data incomplete")
		mustNotContain(t, got, "CODE01", "OPEN_CARD", "CARD_CONFIG_CHANGE")
		if strings.Index(got, "Identity check") > strings.Index(got, "Card application") {
			t.Errorf("not newest first:\n%s", got)
		}
	})
	t.Run("N", func(t *testing.T) {
		got := e.reply(chatB, admin, "/history EVENTS 1")
		mustContain(t, got, "Identity check")
		mustNotContain(t, got, "Card application", "3-D Secure code")
	})
	t.Run("only admins", func(t *testing.T) {
		if got := e.reply(chatA, member, "/history events"); !isRefusal(got, refusedAdmin) {
			t.Errorf("a linked chat's member got %q", got)
		}
	})
	t.Run("a card whose id is events is still a card", func(t *testing.T) {
		mustContain(t, e.reply(chatB, admin, "/history card events"), "History of card", "No events yet")
	})
	t.Run("bad arguments", func(t *testing.T) {
		mustContain(t, e.reply(chatB, admin, "/history events 0"), "Usage")
		mustContain(t, e.reply(chatB, admin, "/history events many"), "Usage")
	})
}

func TestLinkNamesACard(t *testing.T) {
	e := newEnv(t)
	mustContain(t, e.reply(chatA, admin, "/link card C-7777 Travel  EU"), "Linked card …7777 as “Travel EU”")
	links, err := e.store.LinksForChat(e.ctx, chatA)
	if err != nil || len(links) != 1 || links[0].Name != "Travel EU" {
		t.Fatalf("links %+v, %v", links, err)
	}
	mustContain(t, e.reply(chatA, member, "/links"), "card …7777 “Travel EU”")

	// The card's codes and history name it.
	e.push("n1", "C-7777", "CODE77", 5*time.Minute)
	mustContain(t, e.reply(chatA, member, "/codes"), "Travel EU •••• 7777")
	mustContain(t, e.reply(chatA, member, "/history"), "3-D Secure code · Travel EU •••• 7777")

	// Linking again without a name keeps it; with one renames it.
	e.reply(chatA, admin, "/link card C-7777")
	mustContain(t, e.reply(chatA, member, "/links"), "“Travel EU”")
	mustContain(t, e.reply(chatA, admin, "/link card C-7777 Work"), "as “Work”")
	e.push("n2", "C-7777", "CODE78", 5*time.Minute)
	mustContain(t, e.reply(chatA, member, "/history 1"), "Work •••• 7777")

	tests := []struct {
		name, text string
		want       string
	}{
		{"a card number in the name", "/link card C-8888 my 4000123412351234", "looks like a card number"},
		{"a name too long", "/link card C-8888 " + strings.Repeat("x", 33), "Usage"},
		{"a customer is not named", "/link customer U-1 Family", "Usage"},
		{"a card-number-shaped id needs confirm, name or not", "/link card 4111111111111111 Travel", "confirm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.reply(chatB, admin, tt.text)
			mustContain(t, got, tt.want)
			mustNotContain(t, got, "4111111111111111", "4000123412351234")
			if links, _ := e.store.LinksForChat(e.ctx, chatB); len(links) != 0 {
				t.Fatalf("refused /link linked: %+v", links)
			}
		})
	}
	// A confirmed platform id shaped like a card number takes a name too.
	mustContain(t, e.reply(chatB, admin, "/link card 4111111111111111 confirm Travel"), "as “Travel”")
	links, _ = e.store.LinksForChat(e.ctx, chatB)
	if len(links) != 1 || links[0].Name != "Travel" || links[0].Key.ID != "4111111111111111" {
		t.Fatalf("confirmed link: %+v", links)
	}
}

func TestParseLink(t *testing.T) {
	tests := []struct {
		args     string
		id, name string
		err      error
	}{
		{"card C1", "C1", "", nil},
		{"card C1 Travel", "C1", "Travel", nil},
		{"card C1 My travel card", "C1", "My travel card", nil},
		{"card C1 confirm", "C1", "", nil},
		{"card C1 confirm Travel", "C1", "Travel", nil},
		{"card C1 Confirmed", "C1", "Confirmed", nil},
		{"card C1 Travel 2025", "C1", "Travel 2025", nil},
		{"card C1 123456789", "", "", errCardName},
		{"card 4111111111111111 Travel", "4111111111111111", "Travel", errCardNumber},
		{"customer U1 Family", "", "", errKeyUsage},
		{"customer U1 confirm", "U1", "", nil},
		{"card", "", "", errKeyUsage},
		{"card C1 \u202eevil", "", "", errCardName},
	}
	for _, tt := range tests {
		key, name, err := parseLink(strings.Fields(tt.args))
		if err != tt.err || name != tt.name || (tt.id != "" && key.ID != tt.id) {
			t.Errorf("parseLink(%q) = %v, %q, %v; want id %q, name %q, %v", tt.args, key, name, err, tt.id, tt.name, tt.err)
		}
	}
}
