package templates

import (
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

// What the providers' documents give, in words: approval states, card
// names and ids, and the history of every kind of event.

func TestApprovalStateGolden(t *testing.T) {
	s := mustNew(t, "")
	withState := func(st otpbot.AuthState, result int) otpbot.Event {
		ev := approval()
		ev.Status, ev.AuthState, ev.AuthResult = "", st, result
		return ev
	}
	tests := []struct {
		name  string
		msg   otpbot.Message
		want  []string
		avoid []string
	}{
		// A decided push in a message still stored live (or rendered by
		// otpbot render) shows the decision all the same.
		{"approval_approved_by_push", otpbot.Message{Event: withState(otpbot.AuthApproved, 2), State: otpbot.StateLive},
			[]string{"✅ <b>Purchase approved</b>", "Amazon"}, []string{"expires", "waiting", "result", "2"}},
		{"approval_declined_by_push", otpbot.Message{Event: withState(otpbot.AuthDeclined, 3), State: otpbot.StateDecided},
			[]string{"❌ <b>Purchase declined</b>"}, []string{"expires", "result", "Approved"}},
		// Decided after its countdown ran out: the decision, not "expired".
		{"approval_expired_then_declined", otpbot.Message{Event: withState(otpbot.AuthDeclined, 3), State: otpbot.StateExpired},
			[]string{"❌ <b>Purchase declined</b>"}, []string{"expired"}},
		{"approval_live_unknown_result", otpbot.Message{Event: withState(otpbot.AuthUnknown, 7), State: otpbot.StateLive},
			[]string{"Purchase waiting for approval", "expires in 9:00"}, []string{"7", "result"}},
		{"message_decided_here_and_at_hypercard", otpbot.Message{Event: withState(otpbot.AuthApproved, 2), State: otpbot.StateDecided,
			Decision: DecisionText(true, "@ann", t0)}, []string{"✅ <b>Approved by @ann at 10:30 UTC</b>", "HyperCard: approved"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.RenderMessage(tt.msg, t0.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			mustHave(t, got, tt.want, tt.avoid)
			golden(t, tt.name, got)
		})
	}
	// A step (confirm, problem) never brings back the buttons' question on
	// a request its push decided.
	got, err := s.RenderApproval(otpbot.Message{Event: withState(otpbot.AuthApproved, 2), State: otpbot.StateLive}, t0,
		ApprovalStep{Confirm: ConfirmApprove})
	if err != nil {
		t.Fatal(err)
	}
	mustHave(t, got, []string{"Purchase approved"}, []string{"Approve this purchase?"})
}

func TestCardNamesAndIDsGolden(t *testing.T) {
	s := mustNew(t, "")
	byID := otpbot.Event{ID: "b", Kind: otpbot.KindCode, Name: "OPT_CODE", CardID: "1085185460000094505", Code: "888666",
		ReceivedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
	tests := []struct {
		name  string
		msg   otpbot.Message
		want  []string
		avoid []string
	}{
		// A card id's tail is not a card number's: never the PAN mask.
		{"code_live_card_id", otpbot.Message{Event: byID, State: otpbot.StateLive}, []string{"💳 card …4505"}, []string{"••••", "1085185460000094505"}},
		{"code_live_card_id_named", otpbot.Message{Event: byID, State: otpbot.StateLive, CardName: "Travel"},
			[]string{"💳 Travel (card …4505)"}, []string{"••••"}},
		{"code_live_named", otpbot.Message{Event: otp(), State: otpbot.StateLive, CardName: "Travel <EU>"},
			[]string{"💳 Travel &lt;EU&gt; •••• 1234"}, nil},
		{"code_expired_named", otpbot.Message{Event: otp(), State: otpbot.StateExpired, CardName: "Travel"},
			[]string{"💳 Travel •••• 1234"}, []string{"482913"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.RenderMessage(tt.msg, t0.Add(30*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			mustHave(t, got, tt.want, tt.avoid)
			golden(t, tt.name, got)
		})
	}
	for _, tt := range []struct {
		ev         otpbot.Event
		name, want string
	}{
		{otpbot.Event{CardLast4: "1234", CardID: "C1"}, "", "•••• 1234"},
		{otpbot.Event{CardID: "1085185460000094505"}, "", "card …4505"},
		{otpbot.Event{CardID: "C1"}, "", "card C1"},
		{otpbot.Event{CardID: "C1"}, "Work", "Work (card C1)"},
		{otpbot.Event{CardLast4: "1234"}, "Work", "Work •••• 1234"},
		{otpbot.Event{CustomerNo: "U1"}, "Work", "Work"},
		{otpbot.Event{CustomerNo: "U1"}, "", ""},
	} {
		if got := s.CardLabel(tt.ev, tt.name); got != tt.want {
			t.Errorf("CardLabel(%+v, %q) = %q, want %q", tt.ev, tt.name, got, tt.want)
		}
	}
}

// every returns one history entry of each kind the documents give, the
// newest first.
func every() []otpbot.HistoryEntry {
	at := func(m int) time.Time { return t0.Add(-time.Duration(m) * time.Minute) }
	up := func(name string, m int, e otpbot.Event) otpbot.HistoryEntry {
		e.Provider, e.Name, e.ReceivedAt, e.OccurredAt = otpbot.ProviderUPay, name, at(m), at(m)
		if e.Kind == "" {
			e.Kind = otpbot.KindInfo
		}
		return otpbot.HistoryEntry{Event: e, Outcome: otpbot.OutcomeRecorded}
	}
	hc := func(name string, m int, e otpbot.Event) otpbot.HistoryEntry {
		h := up(name, m, e)
		h.Event.Provider = otpbot.ProviderHyperCard
		return h
	}
	card := otpbot.Event{CardID: "C1", CustomerNo: "CU1", CardLast4: "1234"}
	with := func(e otpbot.Event, f func(*otpbot.Event)) otpbot.Event { f(&e); return e }
	expired := up("OPT_CODE", 14, otpbot.Event{Kind: otpbot.KindCode, CardID: "1085185460000094505",
		Reason: "10m0s old by the provider's clock when it arrived, longer than its lifetime of 5m0s"})
	expired.Outcome = otpbot.OutcomeExpired
	rejected := hc("", 15, otpbot.Event{Kind: otpbot.KindRejected, Reason: "no notify_type"})
	rejected.Outcome = otpbot.OutcomeRejected
	return []otpbot.HistoryEntry{
		up("CC_CONSUME", 0, with(card, func(e *otpbot.Event) {
			e.Type, e.Direction, e.Amount, e.Currency, e.Merchant, e.Status = "2", "2", "12.5", "EUR", "Amazon EU", "successful"
			e.OriginalAmount, e.OriginalCurrency = "1.399E+1", "USD"
		})),
		up("CC_WITHDRAW_CASH", 1, with(card, func(e *otpbot.Event) {
			e.Type, e.Amount, e.Currency, e.Status, e.Reason = "4", "100", "JPY", "payment failed", "Insufficient balance"
		})),
		up("CC_RECHARGE", 2, with(card, func(e *otpbot.Event) {
			e.Type, e.Amount, e.Currency, e.Status = "6", "0.125", "BHD", "successful"
		})),
		up("NE_VERIFY", 3, with(card, func(e *otpbot.Event) { e.Kind, e.Type = otpbot.KindCode, "TX_WDR_PWD_MODIFY" })),
		up("KS_KYC", 4, otpbot.Event{CustomerNo: "CU1", Type: "2", Status: "refused"}),
		up("MF_MATERIAL_FLOW", 5, otpbot.Event{CardID: "C3", Status: "dispatched", Tracking: "SF123456789", Carrier: "SF Express"}),
		up("CA_APPLY", 6, otpbot.Event{CardID: "C2", CustomerNo: "CU1", Amount: "10.00", Status: "paid"}),
		hc("CANCEL_CARD", 7, otpbot.Event{CardID: "20230413145817505390", Amount: "100.00", Status: "cancelled"}),
		hc("BUY_COIN", 8, otpbot.Event{CardID: "6283244889900010107", Status: "failed", Reason: "insufficient balance"}),
		hc("OPEN_CARD", 9, otpbot.Event{CardType: "40000002", Status: "failed", Remark: "KYC data incomplete"}),
		hc("CARD_CONFIG_CHANGE", 10, otpbot.Event{CardType: "40000002"}),
		hc("AUTH_3DS", 11, otpbot.Event{Kind: otpbot.KindApproval, CardID: "15723682800000053333", CardLast4: "3333",
			Amount: "1.00", Currency: "EUR", Merchant: "Amazon", AuthResult: 7, AuthState: otpbot.AuthUnknown}),
		hc("AUTH_3DS", 12, otpbot.Event{Kind: otpbot.KindApproval, CardID: "15723682800000053333", CardLast4: "3333",
			Amount: "1.00", Currency: "EUR", Merchant: "Amazon", AuthResult: 3, AuthState: otpbot.AuthDeclined}),
		hc("CONSUME", 13, otpbot.Event{CardID: "6654358889900018888"}),
		expired,
		rejected,
	}
}

func TestHistoryInWordsGolden(t *testing.T) {
	s := mustNew(t, "")
	entries := every()
	tests := []struct {
		name  string
		view  HistoryView
		want  []string
		avoid []string
	}{
		{"history_every_kind", HistoryView{Key: otpbot.Key{Type: otpbot.KeyCard, ID: "C1"}, Entries: entries, Part: 1, Parts: 1,
			Names: map[string]string{"C1": "Travel"}},
			[]string{
				"Payment (purchase) · Travel •••• 1234 · 12.50 EUR (original 13.99 USD) · direction 2 · Amazon EU · successful",
				"Cash withdrawal (withdrawal) · Travel •••• 1234 · 100 JPY · payment failed · reason: Insufficient balance",
				"Top-up (management fee)", "0.125 BHD",
				"Verification code (change of the cash withdrawal password)",
				"Identity check (passport) · refused",
				"Card dispatched · card C3 · dispatched · tracking SF123456789 (SF Express)",
				"Card cancelled · card …5390 · refund 100.00 · cancelled",
				"Crypto purchase · card …0107 · failed · reason: insufficient balance",
				"Purchase approval · •••• 3333 · 1.00 EUR · Amazon · waiting for an answer (auth_result 7)",
				"Purchase approval · •••• 3333 · 1.00 EUR · Amazon · declined",
				"New transaction · card …8888",
				"One-time code · card …4505 · expired on arrival: 10m0s old by the provider",
				"Unreadable push · rejected: no notify_type",
			},
			[]string{"CC_CONSUME", "•••• 4505", "•••• 5390", "1.399E+1", "12.5 EUR"}},
		{"history_events", HistoryView{Key: otpbot.EventsKey, Entries: entries[4:11], Part: 1, Parts: 1},
			[]string{"<b>History of every event</b>", "UPay · Identity check (passport) · customer CU1 · refused",
				"HyperCard · Card application · card type 40000002 · failed · remark: KYC data incomplete",
				"HyperCard · Card type settings changed · card type 40000002"},
			[]string{"events:all"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Render("history", tt.view)
			if err != nil {
				t.Fatal(err)
			}
			mustHave(t, got, tt.want, tt.avoid)
			golden(t, tt.name, got)
		})
	}
}

// Every event name of both documents reads as words, never as sent.
func TestEventNamesInWords(t *testing.T) {
	s := mustNew(t, "")
	names := []string{
		"CC_CONSUME", "CC_REFUND", "CC_WITHDRAW_CASH", "CC_REDEEM", "CC_RECHARGE", "3DS_OTP", "3DS_CONFIRM", "CR_RECHARGE",
		"CA_APPLY", "NE_VERIFY", "KS_KYC", "CSC_STATUS_CHANGE", "MF_MATERIAL_FLOW", "CS_APPROVED", "CE_EVENT", "CC_AUTHORIZATION",
		"OPEN_CARD", "RECHARGE", "OPERATION", "CONSUME", "BUY_COIN", "CANCEL_CARD", "AUTH_3DS", "OPT_CODE", "CARD_CONFIG_CHANGE",
	}
	var entries []otpbot.HistoryEntry
	for _, n := range names {
		entries = append(entries, otpbot.HistoryEntry{Event: otpbot.Event{Name: n, ReceivedAt: t0}, Outcome: otpbot.OutcomeRecorded})
	}
	got, err := s.Render("history", HistoryView{Key: otpbot.EventsKey, Entries: entries, Part: 1, Parts: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.Contains(got, n) {
			t.Errorf("%s is shown as sent:\n%s", n, got)
		}
	}
	// A name no document gives stays as received.
	got, err = s.Render("history", HistoryView{Entries: []otpbot.HistoryEntry{{Event: otpbot.Event{Name: "XX_NEW_THING", ReceivedAt: t0}}}, Part: 1, Parts: 1})
	if err != nil || !strings.Contains(got, "XX_NEW_THING") {
		t.Errorf("an unknown name: %q, %v", got, err)
	}
}

func TestMoneyInMinorUnits(t *testing.T) {
	for _, tt := range []struct{ amount, currency, want string }{
		{"12.5", "USD", "12.50 USD"}, {"1.2E+1", "USD", "12.00 USD"}, {"100.00", "JPY", "100 JPY"},
		{"0.125", "BHD", "0.125 BHD"}, {"100.00", "", "100.00"}, {"", "EUR", ""}, {"12 EUR", "EUR", "12 EUR EUR"},
	} {
		if got := Money(tt.amount, tt.currency); got != tt.want {
			t.Errorf("Money(%q, %q) = %q, want %q", tt.amount, tt.currency, got, tt.want)
		}
	}
}

func mustHave(t *testing.T, got string, want, avoid []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%q not in:\n%s", w, got)
		}
	}
	for _, a := range avoid {
		if strings.Contains(got, a) {
			t.Errorf("%q in:\n%s", a, got)
		}
	}
}
