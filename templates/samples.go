package templates

import (
	"time"

	"github.com/otpbot/otpbot"
)

// samples returns, for every template that is rendered on its own, data of
// the shape it is executed with. New renders each once so that an override
// that refers to a missing field or prints a tag Telegram rejects fails at
// start instead of when the first code arrives.
func samples() map[string]any {
	now := time.Date(2024, 3, 14, 10, 30, 0, 0, time.UTC)
	ev := otpbot.Event{
		ID: "sample", Group: "sample", Provider: otpbot.ProviderUPay, Name: "3DS_OTP",
		Kind: otpbot.KindCode, CardID: "card-1", CustomerNo: "C-1", CardLast4: "1234",
		Amount: "1.00", Currency: "EUR", Merchant: "Shop", Country: "DE", Status: "pending",
		Code: "123456", CodeLabel: "3-D Secure code", Link: "https://example.com/confirm",
		AuthResult: 1, AuthState: otpbot.AuthUnknown, Reason: "missing field", Remark: "remark",
		Type: "2", Direction: "1", OriginalAmount: "1.10", OriginalCurrency: "USD", Tracking: "T1", Carrier: "DHL",
		CardType: "4000", ReceivedAt: now, ExpiresAt: now.Add(5 * time.Minute),
	}
	msg := MessageView{Event: ev, State: otpbot.StateLive, Decision: "Approved", Card: CardOf(ev),
		Left: 5 * time.Minute, LeftText: Remaining(5 * time.Minute), Now: now}
	confirm, problem := msg, msg
	confirm.Confirm, problem.Problem = ConfirmApprove, ProblemUnreachable
	key := otpbot.Key{Type: otpbot.KeyCard, ID: "card-1"}
	target := otpbot.Target{ChatID: -100123, ThreadID: 7}
	link := LinkView{Key: key, Target: target, Name: "Travel"}
	red := ev.Redacted()
	ops := OpsView{Event: red, Keys: ev.Keys(), Target: target, Reason: "bot was blocked"}
	return map[string]any{
		"code_live":        msg,
		"code_expired":     msg,
		"approval_live":    msg,
		"approval_expired": msg,
		"approval_confirm": confirm,
		"approval_problem": problem,
		"message_hidden":   msg,
		"message_decided":  msg,
		"message_failed":   msg,
		"start":            StartView{ChatID: -100123, ThreadID: 7, Name: "Ann", Admin: true, Linked: true},
		"help":             HelpView{Admin: true, Linked: true},
		"refused":          nil,
		"usage":            UsageView{Usage: "/link card ID"},
		"card_number":      CardNumberView{Confirm: "/link card ID confirm"},
		"error":            nil,
		"link_ok":          link,
		"unlink_ok":        link,
		"unlink_missing":   link,
		"links":            LinksView{ChatID: -100123, Links: []otpbot.Link{{Key: key, Target: target, Broken: true, BrokenReason: "blocked", Replies: true, Name: "Travel"}}},
		"invite":           InviteView{Key: key, URL: "https://t.me/bot?start=abc", ExpiresAt: now},
		"invite_redeemed":  link,
		"invite_invalid":   nil,
		"history": HistoryView{Key: key, Entries: []otpbot.HistoryEntry{{Event: red, Outcome: otpbot.OutcomeUnrouted}}, Part: 1, Parts: 2,
			Names: map[string]string{ev.CardID: "Travel"}},
		"codes": CodesView{Codes: []CodeLine{{Event: red, Code: ev.Code, Link: ev.Link, Card: "•••• 1234", Left: time.Minute, LeftText: "1:00"}},
			Part: 1, Parts: 2, DeleteIn: "1:00"},
		"codes_gone":   nil,
		"thread_reply": ThreadView{Event: red, Card: CardOf(red)},
		"replies":      RepliesView{On: true, Target: target, Links: 1},
		"ops_unrouted": ops,
		"ops_rejected": ops,
		"ops_broken":   ops,
	}
}
