package templates

import (
	"time"

	"github.com/otpbot/otpbot"
)

// samples returns, for every template and piece, data of the shape it is
// executed with. Load renders each once in every language so that an
// override that refers to a missing field or prints a tag Telegram
// rejects fails at start instead of when the first code arrives. answers
// is Options.Answers.
func samples(answers bool) map[string]any {
	now := time.Date(2024, 3, 14, 10, 30, 0, 0, time.UTC)
	ev := otpbot.Event{
		ID: "sample", Group: "sample", Provider: otpbot.ProviderUPay, Name: "3DS_OTP",
		Kind: otpbot.KindCode, CardID: "card-1", CustomerNo: "C-1", CardLast4: "1234",
		Amount: "1.00", Currency: "EUR", Merchant: "Shop", Country: "DE", Status: "pending",
		Code: "123456", Link: "https://example.com/confirm",
		AuthResult: 1, AuthState: otpbot.AuthUnknown, Reason: "missing field", Remark: "remark", Alert: "card application failed",
		Type: "2", Direction: "1", OriginalAmount: "1.10", OriginalCurrency: "USD", Tracking: "T1", Carrier: "DHL",
		CardType: "4000", ReceivedAt: now, ExpiresAt: now.Add(5 * time.Minute),
	}
	decision := Decision{Approved: true, By: "@ann", At: now}
	msg := MessageView{Event: ev, State: otpbot.StateLive, Decision: "Approved by @ann", Answer: &decision, Card: "•••• 1234",
		Left: 5 * time.Minute, LeftText: Remaining(5 * time.Minute), Now: now, CanDecline: answers}
	approval := msg
	approval.Event.Kind, approval.Event.Name, approval.Event.AuthState = otpbot.KindApproval, "AUTH_3DS", otpbot.AuthPending
	confirm, problem := approval, approval
	confirm.Confirm, problem.Problem = ConfirmApprove, ProblemUnreachable
	key := otpbot.Key{Type: otpbot.KeyCard, ID: "card-1"}
	target := otpbot.Target{ChatID: -100123, ThreadID: 7}
	link := LinkView{Key: key, Target: target, Name: "Travel"}
	red := ev.Redacted()
	ops := OpsView{Event: red, Keys: ev.Keys(), Target: target, Reason: "bot was blocked"}
	lang := LanguageOption{Code: "en", Name: "English"}
	out := map[string]any{
		"code_live":        msg,
		"code_expired":     msg,
		"approval_live":    approval,
		"approval_expired": approval,
		"approval_confirm": confirm,
		"approval_problem": problem,
		"message_hidden":   msg,
		"message_decided":  approval,
		"message_failed":   msg,
		"start":            StartView{ChatID: -100123, ThreadID: 7, Name: "Ann", Admin: true, Linked: true, Group: true},
		"help":             HelpView{Admin: true, Linked: true, Settings: true},
		"refused":          RefusedView{Command: "link", Reason: RefusedAdmin, UserID: 222},
		"unknown":          UnknownView{Command: "lnk", Suggest: "link"},
		"usage":            UsageView{Usage: "/link card ID"},
		"card_number":      CardNumberView{Confirm: "/link card ID confirm"},
		"error":            nil,
		"link_ok":          link,
		"unlink_ok":        link,
		"unlink_missing":   link,
		"links":            LinksView{ChatID: -100123, Links: []otpbot.Link{{Key: key, Target: target, Broken: true, BrokenReason: "blocked", Replies: true, Name: "Travel"}}},
		"invite":           InviteView{Key: key, URL: "https://t.me/bot?start=abc", ExpiresAt: now, Valid: 24 * time.Hour},
		"invite_redeemed":  link,
		"invite_invalid":   nil,
		"history": HistoryView{Key: key, Entries: []otpbot.HistoryEntry{{Event: red, Outcome: otpbot.OutcomeUnrouted}}, Part: 1, Parts: 2,
			Names: map[string]string{ev.CardID: "Travel"}},
		"codes": CodesView{Codes: []CodeLine{{Event: red, Code: ev.Code, Link: ev.Link, Card: "•••• 1234", Left: time.Minute, LeftText: "1:00"}},
			Part: 1, Parts: 2, DeleteIn: "1:00"},
		"codes_gone":   nil,
		"follow_up":    FollowUpView{Event: red, Card: "•••• 1234"},
		"replies":      RepliesView{On: true, Target: target, Links: 1},
		"language":     LanguageView{Current: lang, Languages: []LanguageOption{lang}, Chosen: true, Changed: true},
		"timezone":     TimeZoneView{Zone: "UTC", Abbr: "UTC", Now: now, Chosen: true, Changed: true, Default: "UTC"},
		"ops_unrouted": ops,
		"ops_rejected": ops,
		"ops_broken":   ops,
		"ops_unknown":  ops,
		"ops_failing":  ops,
		"ops_refused":  ops,
		"ops_degraded": ops,
		"ops_expired":  ops,
		"ops_notable":  ops,
	}
	for name, data := range samplePieces(now, key, target, decision) {
		out[name] = data
	}
	return out
}

// samplePieces is the sample data of the pieces (see pieceNames) and of
// the parts of an ops report.
func samplePieces(now time.Time, key otpbot.Key, target otpbot.Target, decision Decision) map[string]any {
	pieces := map[string]any{
		"card_label": CardView{Last4: "1234", Name: "Travel"},
		"key":        key,
		"target":     target,
		"decision":   decision,
		"duration":   24 * time.Hour,
		"ops_repeat": OpsRepeatView{Count: 3, Since: now},
		"ops_more":   2,

		"answer_answered_here": "Approved by @ann",
		"answer_language":      LanguageOption{Code: "en", Name: "English"},
	}
	for _, name := range plainPieces {
		pieces[name] = nil
	}
	return pieces
}

// plainPieces are the pieces rendered without data: button labels, the
// answers to button presses, the descriptions of the command menu.
var plainPieces = []string{
	"button_copy_code", "button_open_link", "button_copy_link", "button_hide",
	"button_approve", "button_decline", "button_confirm_approve", "button_confirm_decline", "button_cancel",
	"answer_hidden", "answer_already_hidden", "answer_gone", "answer_broken", "answer_failed",
	"answer_ask_approve", "answer_ask_decline", "answer_cancelled", "answer_approved", "answer_declined",
	"answer_unreachable", "answer_api_refused", "answer_busy", "answer_expired", "answer_answered",
	"answer_not_linked", "answer_not_allowed", "answer_not_displayed", "answer_not_admin",
	"menu_start", "menu_help", "menu_links", "menu_history", "menu_codes", "menu_language", "menu_timezone",
	"menu_link", "menu_unlink", "menu_invite", "menu_replies",
}

// pieceNames are the pieces Load checks as plain text (Locale.Text).
var pieceNames = func() map[string]bool {
	m := map[string]bool{"card_label": true, "key": true, "target": true, "decision": true, "duration": true,
		"answer_answered_here": true, "answer_language": true}
	for _, n := range plainPieces {
		m[n] = true
	}
	return m
}()
