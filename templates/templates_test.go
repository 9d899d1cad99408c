package templates

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

var t0 = time.Date(2024, 3, 14, 10, 30, 0, 0, time.UTC)

// golden compares got with testdata/name.golden (or writes it with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./templates -update to create it)", err)
	}
	if got+"\n" != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

func mustNew(t *testing.T, dir string) *Set {
	t.Helper()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func otp() otpbot.Event {
	return otpbot.Event{
		ID: "o1", Group: "o1", Provider: otpbot.ProviderUPay, Name: "3DS_CONFIRM", Kind: otpbot.KindCode,
		CardID: "c-77", CustomerNo: "CUST9", CardLast4: "1234", Amount: "12.50", Currency: "EUR",
		Merchant: "Amazon", Code: "482913",
		ReceivedAt: t0, ExpiresAt: t0.Add(5 * time.Minute),
	}
}

func approval() otpbot.Event {
	return otpbot.Event{
		ID: "a1", Group: "auth:283", Provider: otpbot.ProviderHyperCard, Name: "AUTH_3DS", Kind: otpbot.KindApproval,
		CardID: "15723682800000053333", CardLast4: "3333", Amount: "1.00", Currency: "EUR",
		Merchant: "Amazon", Country: "US", AuthID: "283", AuthResult: 2, Status: "waiting for approval",
		ReceivedAt: t0, ExpiresAt: t0.Add(10 * time.Minute),
	}
}

func TestRenderMessageGolden(t *testing.T) {
	s := mustNew(t, "")
	link := otp()
	link.Name, link.Code, link.Type = "NE_VERIFY", "", "3DS_CONFIRM_LINK"
	link.Link = "https://pay.example.com/confirm?id=1&x=2"
	appLink := link
	appLink.Link = "upayapp://confirm/7781"
	bare := otpbot.Event{ID: "b", Kind: otpbot.KindCode, Name: "OPT_CODE", CardID: "1085185460000094505", Code: "888666", ReceivedAt: t0}
	evil := otp()
	evil.Merchant, evil.Code, evil.Amount, evil.Currency = `<b>&"x`, `<i>1&2</i>`, `1<2`, `"EUR"`
	noStatus := approval()
	noStatus.Status = ""
	// A code delivered without what it only displays: no card number, no
	// merchant, an amount dropped as malformed beside its currency. The
	// lines it would fill are absent, not half shown.
	degraded := otp()
	degraded.CardLast4, degraded.CardID, degraded.Merchant, degraded.Amount = "", "", "", ""

	tests := []struct {
		name  string
		msg   otpbot.Message
		now   time.Time
		code  bool // the code (or link) must be in the text
		avoid []string
	}{
		{"code_live", otpbot.Message{Event: otp(), State: otpbot.StateLive}, t0.Add(30 * time.Second), true, nil},
		{"code_live_last_second", otpbot.Message{Event: otp(), State: otpbot.StateLive}, t0.Add(5*time.Minute - 300*time.Millisecond), true, nil},
		{"code_live_link", otpbot.Message{Event: link, State: otpbot.StateLive}, t0, true, nil},
		{"code_live_applink", otpbot.Message{Event: appLink, State: otpbot.StateLive}, t0, true, []string{"<a ", "#ZgotmplZ"}},
		{"code_live_no_expiry", otpbot.Message{Event: bare, State: otpbot.StateLive}, t0, true, []string{"expires", "1085185460000094505"}},
		{"code_live_escaped", otpbot.Message{Event: evil, State: otpbot.StateLive}, t0, false, []string{`<b>&`, `<i>1`}},
		{"code_live_degraded", otpbot.Message{Event: degraded, State: otpbot.StateLive}, t0, true, []string{"Card", "Merchant", "Amount", "EUR"}},
		{"code_expired", otpbot.Message{Event: otp(), State: otpbot.StateExpired}, t0.Add(6 * time.Minute), false, []string{"482913"}},
		{"code_live_past_expiry", otpbot.Message{Event: otp(), State: otpbot.StateLive}, t0.Add(5 * time.Minute), false, []string{"482913"}},
		{"code_expired_link", otpbot.Message{Event: link, State: otpbot.StateExpired}, t0.Add(6 * time.Minute), false, []string{"pay.example.com"}},
		{"message_hidden", otpbot.Message{Event: otp(), State: otpbot.StateHidden}, t0, false, []string{"482913"}},
		{"message_failed", otpbot.Message{Event: otp(), State: otpbot.StateFailed}, t0, false, []string{"482913"}},
		{"approval_live", otpbot.Message{Event: approval(), State: otpbot.StateLive}, t0.Add(90 * time.Second), false, nil},
		{"approval_live_result_only", otpbot.Message{Event: noStatus, State: otpbot.StateLive}, t0, false, nil},
		{"approval_expired", otpbot.Message{Event: approval(), State: otpbot.StateExpired}, t0.Add(11 * time.Minute), false, []string{"expires in"}},
		{"message_decided", otpbot.Message{Event: approval(), State: otpbot.StateDecided, Decision: DecisionText(true, "@ann", t0.Add(93*time.Second))}, t0.Add(2 * time.Minute), false, []string{"❌"}},
		{"message_decided_declined", otpbot.Message{Event: approval(), State: otpbot.StateDecided, Decision: DecisionText(false, "Bob <b>", t0)}, t0, false, []string{"✅", "<b>Bob"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.RenderMessage(tt.msg, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			secret := tt.msg.Event.Code + tt.msg.Event.Link
			if tt.code && !strings.Contains(got, "<code>"+tt.msg.Event.Code+"</code>") && !strings.Contains(got, "pay.example.com/confirm") &&
				!strings.Contains(got, "<code>"+tt.msg.Event.Link+"</code>") {
				t.Errorf("the live code is missing:\n%s", got)
			}
			if !tt.code && secret != "" && tt.msg.Event.Merchant != `<b>&"x` && strings.Contains(got, secret) {
				t.Errorf("the code is shown in state %s:\n%s", tt.msg.State, got)
			}
			for _, a := range tt.avoid {
				if strings.Contains(got, a) {
					t.Errorf("%q appears in:\n%s", a, got)
				}
			}
			golden(t, tt.name, got)
		})
	}
}

func TestRenderApprovalGolden(t *testing.T) {
	s := mustNew(t, "")
	live := otpbot.Message{Event: approval(), State: otpbot.StateLive}
	decided := live
	decided.State, decided.Decision = otpbot.StateDecided, DecisionText(false, "@bob", t0)
	tests := []struct {
		name string
		msg  otpbot.Message
		now  time.Time
		step ApprovalStep
		want []string
	}{
		{"approval_confirm", live, t0.Add(time.Minute), ApprovalStep{Confirm: ConfirmApprove}, []string{"Approve this purchase?", "Confirm approve", "expires in 9:00"}},
		{"approval_confirm_decline", live, t0.Add(time.Minute), ApprovalStep{Confirm: ConfirmDecline}, []string{"Decline this purchase?", "Confirm decline"}},
		{"approval_problem", live, t0.Add(2 * time.Minute), ApprovalStep{Problem: ProblemUnreachable}, []string{"Could not reach HyperCard — try again", "expires in 8:00"}},
		{"approval_problem_refused", live, t0.Add(2 * time.Minute), ApprovalStep{Problem: ProblemRefused}, []string{"did not accept"}},
		// A step never brings a finished request back: it renders as the
		// message stands.
		{"approval_confirm_expired", live, t0.Add(10 * time.Minute), ApprovalStep{Confirm: ConfirmApprove}, []string{"expired"}},
		{"message_decided_step", decided, t0, ApprovalStep{Problem: ProblemUnreachable}, []string{"❌ <b>Declined by @bob at 10:30 UTC</b>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.RenderApproval(tt.msg, tt.now, tt.step)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q not in:\n%s", w, got)
				}
			}
			golden(t, tt.name, got)
		})
	}
}

func TestDecisionText(t *testing.T) {
	at := time.Date(2024, 3, 14, 12, 3, 59, 0, time.FixedZone("CET", 3600))
	stored := DecisionText(true, "@ann|x", at)
	if stored != "approved|2024-03-14T11:03:59Z|@ann|x" {
		t.Errorf("stored: %q", stored)
	}
	d, ok := ParseDecision(stored)
	if !ok || !d.Approved || d.By != "@ann|x" || !d.At.Equal(at) {
		t.Errorf("ParseDecision(%q) = %+v, %v", stored, d, ok)
	}
	s := mustNew(t, "")
	if got := s.Default().DecisionLabel(stored); got != "Approved by @ann|x at 11:03 UTC" {
		t.Errorf("label: %q", got)
	}
	if got := s.For("en", "Europe/Madrid").DecisionLabel(DecisionText(false, "Bob", at)); got != "Declined by Bob at 12:03 CET" {
		t.Errorf("label in Madrid: %q", got)
	}
	// A decision stored before this form is shown as it was stored.
	if got := s.Default().DecisionLabel("Declined by Bob at 11:03 UTC"); got != "Declined by Bob at 11:03 UTC" {
		t.Errorf("old decision: %q", got)
	}
	if d, ok := ParseDecision("Declined by Bob at 11:03 UTC"); ok || d.Approved {
		t.Errorf("old decline read as %+v, %v", d, ok)
	}
}

func TestRenderGolden(t *testing.T) {
	s := mustNew(t, "")
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	card := otpbot.Key{Type: otpbot.KeyCard, ID: "15723682800000053333"}
	cust := otpbot.Key{Type: otpbot.KeyCustomer, ID: "CUST9"}
	topic := otpbot.Target{ChatID: -1001234, ThreadID: 42}
	hist := []otpbot.HistoryEntry{
		{Event: otpbot.Event{Name: "CC_CONSUME", CardID: "c-77", CardLast4: "1234", Amount: "12.50", Currency: "EUR", Merchant: "Amazon", Status: "successful", OccurredAt: t0.Add(2 * time.Minute)}, Outcome: otpbot.OutcomeRecorded},
		{Event: otpbot.Event{Name: "3DS_OTP", CardID: "c-77", CardLast4: "1234", ReceivedAt: t0.Add(time.Minute)}, Outcome: otpbot.OutcomeQueued},
		{Event: otpbot.Event{Name: "OPT_CODE", CardID: "c-77", ReceivedAt: t0}, Outcome: otpbot.OutcomeUnrouted},
		{Event: otpbot.Event{Name: "3DS_CONFIRM", CardID: "c-77", Reason: "detail.validateCode missing", ReceivedAt: t0}, Outcome: otpbot.OutcomeRejected},
	}
	red := otp().Redacted()
	// Events that follow a code in its transaction (follow_up). The
	// code is set to show that the template never prints it.
	consume := otpbot.Event{Provider: otpbot.ProviderUPay, Name: "CC_CONSUME", Kind: otpbot.KindInfo, Trace: "TR1",
		CardID: "c-77", CardLast4: "1234", Amount: "12.50", Currency: "EUR", Merchant: "Amazon <EU>", Status: "successful",
		Code: "482913"}
	refused := consume
	refused.Name, refused.Status, refused.Reason = "CC_AUTHORIZATION", "failed", "insufficient funds"
	unnamed := otpbot.Event{Provider: otpbot.ProviderUPay, Name: "CE_EVENT", Kind: otpbot.KindInfo, Trace: "TR1", Status: "frozen"}
	tests := []struct {
		name string
		tmpl string
		data any
	}{
		{"start", "start", StartView{ChatID: 5551234, Name: "Ann"}},
		{"start_linked_topic", "start", StartView{ChatID: -1001234, ThreadID: 42, Name: "<Ann>", Linked: true}},
		{"help_anyone", "help", HelpView{}},
		{"help_linked", "help", HelpView{Linked: true}},
		{"help", "help", HelpView{Admin: true, Settings: true}},
		{"help_private", "help", HelpView{Settings: true}},
		{"start_admin", "start", StartView{ChatID: 9001, Name: "Ann", Admin: true}},
		{"start_group", "start", StartView{ChatID: -1001234, Group: true}},
		{"refused", "refused", RefusedView{Command: "link", Reason: RefusedAdmin, UserID: 222}},
		{"refused_linked", "refused", RefusedView{Command: "codes", Reason: RefusedLinked, UserID: 222}},
		{"refused_key", "refused", RefusedView{Command: "history", Reason: RefusedKey, UserID: 222}},
		{"refused_group_admin", "refused", RefusedView{Command: "language", Reason: RefusedGroupAdmin, UserID: 222}},
		{"unknown", "unknown", UnknownView{Command: "lnk", Suggest: "link"}},
		{"unknown_far", "unknown", UnknownView{Command: "weather"}},
		{"language", "language", LanguageView{Current: LanguageOption{Code: "en", Name: "English"},
			Languages: []LanguageOption{{Code: "en", Name: "English"}, {Code: "ru", Name: "Русский"}}}},
		{"language_changed", "language", LanguageView{Current: LanguageOption{Code: "en", Name: "English"}, Chosen: true, Changed: true}},
		{"language_unknown", "language", LanguageView{Current: LanguageOption{Code: "en", Name: "English"}, Unknown: "xx",
			Languages: []LanguageOption{{Code: "en", Name: "English"}}, Chosen: true}},
		{"timezone", "timezone", TimeZoneView{Zone: "UTC", Abbr: "UTC", Now: t0, Default: "UTC"}},
		{"timezone_changed", "timezone", TimeZoneView{Zone: "Asia/Shanghai", Abbr: "CST", Now: t0.In(shanghai), Chosen: true, Changed: true, Default: "UTC"}},
		{"timezone_unknown", "timezone", TimeZoneView{Zone: "UTC", Abbr: "UTC", Now: t0, Unknown: "Mars/Olympus", Default: "UTC"}},
		{"usage", "usage", UsageView{Usage: "/link card ID | /link customer NO"}},
		{"card_number", "card_number", CardNumberView{Confirm: "/link card ID confirm"}},
		{"card_number_history", "card_number", CardNumberView{}},
		{"error", "error", nil},
		{"link_ok", "link_ok", LinkView{Key: card, Target: topic}},
		{"link_ok_customer", "link_ok", LinkView{Key: cust, Target: otpbot.Target{ChatID: 5}}},
		{"link_ok_named", "link_ok", LinkView{Key: card, Target: otpbot.Target{ChatID: 5}, Name: "Travel <EU>"}},
		{"unlink_ok", "unlink_ok", LinkView{Key: card, Target: otpbot.Target{ChatID: 5}}},
		{"unlink_missing", "unlink_missing", LinkView{Key: cust, Target: topic}},
		{"links", "links", LinksView{ChatID: -1001234, Links: []otpbot.Link{
			{Key: card, Target: topic, Replies: true, Name: "Travel"},
			{Key: cust, Target: otpbot.Target{ChatID: -1001234}, Broken: true, BrokenReason: "Forbidden: bot was kicked"},
		}}},
		{"links_empty", "links", LinksView{ChatID: 5}},
		{"invite", "invite", InviteView{Key: card, URL: "https://t.me/otp_bot?start=AbC-_0123456789abcdefghijk", ExpiresAt: t0.Add(24 * time.Hour), Valid: 24 * time.Hour}},
		{"invite_redeemed", "invite_redeemed", LinkView{Key: card, Target: otpbot.Target{ChatID: 5}}},
		{"invite_invalid", "invite_invalid", nil},
		{"history", "history", HistoryView{Key: card, Entries: hist, Part: 1, Parts: 1}},
		{"history_chat_part", "history", HistoryView{Entries: hist[:1], Part: 2, Parts: 3}},
		{"history_empty", "history", HistoryView{Key: cust, Part: 1, Parts: 1}},
		{"codes", "codes", CodesView{Codes: []CodeLine{
			{Event: red, Code: otp().Code, Card: s.CardLabel(red, ""), Left: 270 * time.Second, LeftText: Remaining(270 * time.Second)},
			{Event: red, Link: "https://pay.example.com/confirm?id=1&x=2", Card: s.CardLabel(red, ""), Left: 280 * time.Second, LeftText: Remaining(280 * time.Second)},
			{Event: red, Link: "upayapp://confirm/7781", Card: s.CardLabel(red, ""), Left: 290 * time.Second, LeftText: Remaining(290 * time.Second)},
			{Event: approval(), Card: s.CardLabel(approval(), ""), Left: time.Hour + 5*time.Second, LeftText: Remaining(time.Hour + 5*time.Second)},
		}, Part: 1, Parts: 1, DeleteIn: Remaining(270 * time.Second)}},
		{"codes_empty", "codes", CodesView{Part: 1, Parts: 1}},
		{"codes_gone", "codes_gone", nil},
		{"follow_up", "follow_up", FollowUpView{Event: consume, Card: s.CardLabel(consume, "")}},
		{"follow_up_failed", "follow_up", FollowUpView{Event: refused, Card: s.CardLabel(refused, "")}},
		{"follow_up_unnamed", "follow_up", FollowUpView{Event: unnamed}},
		{"replies", "replies", RepliesView{On: true, Target: otpbot.Target{ChatID: 5}, Links: 2}},
		{"replies_off_topic", "replies", RepliesView{Target: topic, Links: 1}},
		{"replies_nothing_linked", "replies", RepliesView{On: true, Target: topic}},
		{"ops_unrouted", "ops_unrouted", OpsView{Event: red, Keys: red.Keys()}},
		{"ops_rejected", "ops_rejected", OpsView{Event: otpbot.Event{Provider: otpbot.ProviderHyperCard, Name: "OPT_CODE", CardID: "c-77", Reason: "code is required"}, Keys: []otpbot.Key{{Type: otpbot.KeyCard, ID: "c-77"}}}},
		{"ops_broken", "ops_broken", OpsView{Target: topic, Reason: "Forbidden: bot was blocked by the user", Keys: []otpbot.Key{card, cust}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Render(tt.tmpl, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(got, "15723682800000053333") {
				t.Errorf("a full card id is shown:\n%s", got)
			}
			if tt.tmpl == "follow_up" && strings.Contains(got, "482913") {
				t.Errorf("a follow-up shows a code:\n%s", got)
			}
			golden(t, tt.name, got)
		})
	}
}

// Every built-in template must have a golden case, so a new template cannot
// slip in untested.
func TestEveryTemplateHasGolden(t *testing.T) {
	entries, err := os.ReadDir("builtin/en")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ext)
		if definitionsOnly[name] {
			continue // only definitions, used by the others (locales_test.go covers each)
		}
		if _, err := os.Stat(filepath.Join("testdata", name+".golden")); err != nil {
			t.Errorf("template %s has no golden file %s.golden", name, name)
		}
	}
}

func TestCutAt4096(t *testing.T) {
	s := mustNew(t, "")
	ev := otp()
	ev.Merchant = strings.Repeat("A&B<", 1500) // 6000 visible characters, entities inside
	got, err := s.RenderMessage(otpbot.Message{Event: ev, State: otpbot.StateLive}, t0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := VisibleLen(got)
	if err != nil {
		t.Fatalf("cut output does not parse: %v", err)
	}
	if n > MaxLen {
		t.Fatalf("visible length %d > %d", n, MaxLen)
	}
	if n < MaxLen-8 {
		t.Errorf("cut far too early: %d", n)
	}
	if !strings.HasSuffix(got, "…") || !strings.Contains(got, "<code>482913</code>") {
		t.Errorf("want the code kept and an ellipsis at the end, got ...%s", got[len(got)-40:])
	}
	golden(t, "cut_4096", got)
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{"short stays", "<b>hi</b>", 10, "<b>hi</b>"},
		{"exact fits", "abcde", 5, "abcde"},
		{"closes open tags", "<b>bold <i>italic text</i></b>", 8, "<b>bold <i>it…</i></b>"},
		{"never splits an entity", "a&amp;b&lt;c", 3, "a&amp;…"},
		{"entity counts once", "&lt;&lt;&lt;", 3, "&lt;&lt;&lt;"},
		{"link kept whole", `<a href="https://x.io/?a=1&amp;b=2">link text</a>`, 5, `<a href="https://x.io/?a=1&amp;b=2">link…</a>`},
		{"astral rune counts two", "😀😀😀", 5, "😀😀…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Truncate(tt.in, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

func TestRemaining(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{270 * time.Second, "4:30"},
		{270*time.Second + 400*time.Millisecond, "4:30"}, // a refresh a little early
		{269*time.Second + 600*time.Millisecond, "4:30"}, // a little late
		{59 * time.Second, "0:59"},
		{200 * time.Millisecond, "0:01"}, // still valid: never 0:00
		{0, "0:00"},
		{-time.Second, "0:00"},
		{time.Hour + 2*time.Minute + 3*time.Second, "1:02:03"},
	}
	for _, tt := range tests {
		if got := Remaining(tt.d); got != tt.want {
			t.Errorf("Remaining(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestOverrides(t *testing.T) {
	write := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	t.Run("replaces by name, others stay built-in", func(t *testing.T) {
		dir := write(t, map[string]string{"refused.tmpl": "Nope, {{\"<not>\"}}.", "notes.txt": "ignored"})
		s := mustNew(t, dir)
		got, _ := s.Render("refused", nil)
		if got != "Nope, &lt;not&gt;." {
			t.Errorf("override: got %q", got)
		}
		got, _ = s.Render("error", nil)
		if !strings.Contains(got, "Something went wrong") {
			t.Errorf("built-in lost: %q", got)
		}
	})
	t.Run("an override under a template's earlier name still applies", func(t *testing.T) {
		dir := write(t, map[string]string{"thread_reply.tmpl": "Later: {{.Event.Name}}"})
		got, err := mustNew(t, dir).Render("follow_up", FollowUpView{Event: otpbot.Event{Name: "CC_CONSUME"}})
		if err != nil || got != "Later: CC_CONSUME" {
			t.Errorf("got %q, %v", got, err)
		}
	})
	t.Run("a partial can be overridden", func(t *testing.T) {
		dir := write(t, map[string]string{"partials.tmpl": `{{define "details"}} [{{.Card}}]{{end}}{{define "label"}}CODE{{end}}`})
		got, err := mustNew(t, dir).RenderMessage(otpbot.Message{Event: otp(), State: otpbot.StateHidden}, t0)
		if err != nil || got != "🙈 <b>CODE</b>: code hidden [•••• 1234]" {
			t.Errorf("got %q, %v", got, err)
		}
	})
	errs := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"unknown name", map[string]string{"code.tmpl": "x"}, "overrides no built-in"},
		{"syntax error", map[string]string{"start.tmpl": "{{if}"}, "parse start"},
		{"missing field", map[string]string{"start.tmpl": "{{.Nope}}"}, "render start"},
		{"tag Telegram refuses", map[string]string{"help.tmpl": "<div>x</div>"}, "<div> is not supported"},
		{"empty text", map[string]string{"refused.tmpl": "{{/* nothing */}} <b> </b>\n"}, "render refused (en): empty text"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(write(t, tt.files))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := New(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing dir must be an error")
	}
}

func TestRenderPages(t *testing.T) {
	s := mustNew(t, "")
	var entries []otpbot.HistoryEntry
	for i := range 60 {
		entries = append(entries, otpbot.HistoryEntry{Event: otpbot.Event{
			Name: "CC_CONSUME", CardID: "c-77", CardLast4: "1234", Amount: "1.00", Currency: "EUR",
			Merchant: strings.Repeat("M", 100) + string(rune('a'+i%26)), ReceivedAt: t0.Add(-time.Duration(i) * time.Minute),
		}, Outcome: otpbot.OutcomeRecorded})
	}
	key := otpbot.Key{Type: otpbot.KeyCard, ID: "c-77"}
	pages, err := s.RenderPages("history", len(entries), func(from, to, part, parts int) any {
		return HistoryView{Key: key, Entries: entries[from:to], Part: part, Parts: parts}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 2 {
		t.Fatalf("60 long entries should need several messages, got %d", len(pages))
	}
	lines := 0
	for i, p := range pages {
		n, _ := VisibleLen(p)
		if n > MaxLen || strings.HasSuffix(p, "…") {
			t.Errorf("page %d: %d visible characters, cut=%v", i+1, n, strings.HasSuffix(p, "…"))
		}
		if !strings.Contains(p, "("+string(rune('1'+i))+"/") {
			t.Errorf("page %d lacks its part number: %.60s", i+1, p)
		}
		lines += strings.Count(p, "Payment")
	}
	if lines != 60 {
		t.Errorf("pages hold %d entries, want all 60", lines)
	}
	empty, err := s.RenderPages("history", 0, func(from, to, part, parts int) any {
		return HistoryView{Key: key, Part: part, Parts: parts}
	})
	if err != nil || len(empty) != 1 || !strings.Contains(empty[0], "No events yet") {
		t.Errorf("empty history: %q, %v", empty, err)
	}
}

func TestWebLinkAndPlainText(t *testing.T) {
	for link, want := range map[string]bool{
		"https://pay.example.com/c?id=1": true, "http://x.test/": true, "upayapp://confirm/1": false,
		"javascript:alert(1)": false, "tg://resolve?domain=x": false, "https://": false, "": false,
	} {
		if got := WebLink(link); got != want {
			t.Errorf("WebLink(%q) = %v", link, got)
		}
	}
	if got := PlainText(`🔐 <b>Code</b>` + "\n" + `<code>1&amp;2</code> <a href="https://x.test">link</a>`); got != "🔐 Code\n1&2 link" {
		t.Errorf("PlainText = %q", got)
	}
}
