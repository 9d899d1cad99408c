package bot

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/templates"
)

// The refusals say why; none names a card.
const (
	refusedAdmin  = "Only admins can use /"
	refusedLinked = "works in a chat that receives codes"
	refusedKey    = "shows only the cards linked to this chat"
)

// isRefusal reports whether a reply is the refusal that says why.
func isRefusal(got, why string) bool { return strings.Contains(got, why) }

func TestStartAndHelp(t *testing.T) {
	e := newEnv(t)
	e.link(cardKey("C-LINKED-1111"), chat(chatA))
	tests := []struct {
		name       string
		chat, user int64
		text       string
		want       []string
		avoid      []string
	}{
		{"start shows the chat id", stranger, stranger, "/start", []string{"Hello", fmt.Sprint(stranger), "Nothing is linked here yet"}, nil},
		{"start in a linked group", chatA, stranger, "/start", []string{fmt.Sprint(chatA), "Codes for the cards linked here"}, []string{"1111"}},
		{"help for anyone: only what they may run", stranger, stranger, "/help", []string{"/start", "/help"}, []string{"/link", "/history", "/codes", "/invite"}},
		{"help in a linked chat", chatA, member, "/help", []string{"/links", "/history", "/codes"}, []string{"/link card", "/invite"}},
		{"help for an admin", stranger, admin, "/help", []string{"/link card ID", "/unlink", "/invite", "/history"}, nil},
		{"command addressed to this bot in a group", chatB, stranger, "/help@" + bottest.BotUsername, []string{"/start"}, nil},
		{"unknown command in private", stranger, stranger, "/frobnicate", []string{"Unknown command /frobnicate", "/help"}, []string{"did you mean"}},
		{"a typo gets the closest command", admin, admin, "/lnk", []string{"Unknown command /lnk — did you mean /link? Send /help"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.reply(tt.chat, tt.user, tt.text)
			mustContain(t, got, tt.want...)
			mustNotContain(t, got, tt.avoid...)
		})
	}
}

func TestCommandsForOtherBotsAreIgnored(t *testing.T) {
	e := newEnv(t)
	ignored := []int{
		e.tg.SendCommand(chatA, admin, "/help@some_other_bot"),
		e.tg.SendCommand(chatA, stranger, "/weather"), // another bot's command in a group
	}
	// Updates are handled in order: once this one is answered, the earlier
	// ones have been handled too.
	e.reply(chatA, admin, "/help")
	for _, m := range e.tg.Messages(chatA) {
		for _, id := range ignored {
			if m.ReplyTo == id {
				t.Errorf("the bot answered message %d: %q", id, m.Text)
			}
		}
	}
}

func TestLinkLinksUnlink(t *testing.T) {
	e := newEnv(t)

	// A non-admin cannot link, and the refusal reveals nothing.
	got := e.reply(chatA, stranger, "/link card 4000123412351234")
	if !isRefusal(got, refusedAdmin) {
		t.Errorf("non-admin /link: %q", got)
	}
	if links, _ := e.store.LinksForChat(e.ctx, chatA); len(links) != 0 {
		t.Fatalf("a refused /link linked: %+v", links)
	}
	if got := e.reply(chatA, stranger, "/links"); !isRefusal(got, refusedLinked) {
		t.Errorf("/links in an unlinked chat: %q", got)
	}

	got = e.reply(chatA, admin, "/link card 4000123412351234")
	mustContain(t, got, "Linked card …1234 to this chat")
	mustNotContain(t, got, "4000123412351234")
	got = e.reply(chatA, admin, "/link customer CUST-7", bottest.InThread(42))
	mustContain(t, got, "Linked customer CUST-7 to this chat (topic 42)")

	links, err := e.store.LinksForChat(e.ctx, chatA)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"card:4000123412351234@" + chat(chatA).String(): true, "customer:CUST-7@" + fmt.Sprint(chatA) + "/42": true}
	for _, l := range links {
		if !want[l.Key.String()+"@"+l.Target.String()] {
			t.Errorf("unexpected link %s → %s", l.Key, l.Target)
		}
		delete(want, l.Key.String()+"@"+l.Target.String())
		if l.Key.Type == otpbot.KeyCard && l.CreatedBy != admin {
			t.Errorf("link created by %d, want the admin", l.CreatedBy)
		}
	}
	if len(want) > 0 {
		t.Errorf("links missing: %v", want)
	}

	// Anyone in the linked chat may list its links; another chat may not.
	got = e.reply(chatA, member, "/links")
	mustContain(t, got, "card …1234", "customer CUST-7 (topic 42)")
	if got := e.reply(chatB, member, "/links"); !isRefusal(got, refusedLinked) {
		t.Errorf("/links from another chat: %q", got)
	}

	if got := e.reply(chatA, member, "/unlink card 4000123412351234"); !isRefusal(got, refusedAdmin) {
		t.Errorf("non-admin /unlink: %q", got)
	}
	mustContain(t, e.reply(chatA, admin, "/unlink card 4000123412351234"), "Unlinked card …1234")
	mustContain(t, e.reply(chatA, admin, "/unlink card 4000123412351234"), "is not linked to this chat")
	// The topic link is a different target: unlinking from the chat itself
	// leaves it.
	mustContain(t, e.reply(chatA, admin, "/unlink customer CUST-7"), "is not linked")
	mustContain(t, e.reply(chatA, admin, "/unlink customer CUST-7", bottest.InThread(42)), "Unlinked customer CUST-7")
	if got := e.reply(chatA, member, "/links"); !isRefusal(got, refusedLinked) {
		t.Errorf("/links after everything was unlinked: %q", got)
	}
	mustContain(t, e.reply(chatA, admin, "/links"), "Nothing is linked")
}

func TestUsage(t *testing.T) {
	e := newEnv(t)
	tests := []struct{ text, want string }{
		{"/link", "/link card ID"},
		{"/link card", "/link card ID"},
		{"/link wallet W1", "/link card ID"},
		{"/unlink card A B", "/unlink card ID"},
		{"/invite", "/invite card ID"},
		{"/history card", "/history [ID] [N]"},
		{"/history C1 many", "/history [ID] [N]"},
		{"/history", "/history [ID] [N]"}, // an admin in an unlinked chat must name a key
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			mustContain(t, e.reply(chatB, admin, tt.text), "Usage:", tt.want)
		})
	}
}

var inviteURL = regexp.MustCompile(`https://t\.me/` + bottest.BotUsername + `\?start=([A-Za-z0-9_-]+)`)

func (e *env) invite(key string) string {
	e.t.Helper()
	got := e.reply(admin, admin, "/invite "+key)
	m := inviteURL.FindStringSubmatch(got)
	if m == nil {
		e.t.Fatalf("no invite link in %q", got)
	}
	return m[1]
}

func TestInvite(t *testing.T) {
	e := newEnv(t)
	if got := e.reply(chatA, stranger, "/invite card 5555666677778888"); !isRefusal(got, refusedAdmin) {
		t.Errorf("non-admin /invite: %q", got)
	}
	token := e.invite("card 5555666677778888")
	if len(token) < 22 || len(token) > 64 {
		t.Errorf("token %d characters: want ≥128 bits in base64url, ≤64 characters", len(token))
	}
	if other := e.invite("card 5555666677778888"); other == token {
		t.Error("two invites got the same token")
	}

	got := e.reply(private, member, "/start "+token)
	mustContain(t, got, "This chat now receives card …8888")
	links, _ := e.store.LinksForChat(e.ctx, private)
	if len(links) != 1 || links[0].Key != cardKey("5555666677778888") {
		t.Fatalf("links of the redeeming chat: %+v", links)
	}

	// Single use: the second chat gets nothing.
	mustContain(t, e.reply(chatB, stranger, "/start "+token), "not valid")
	if links, _ := e.store.LinksForChat(e.ctx, chatB); len(links) != 0 {
		t.Errorf("a used invite linked a second chat: %+v", links)
	}

	// Redeemed in a group topic, the topic is linked.
	token = e.invite("customer CUST-9")
	mustContain(t, e.reply(chatA, stranger, "/start@"+bottest.BotUsername+" "+token, bottest.InThread(7)), "now receives customer CUST-9 (topic 7)")
	links, _ = e.store.LinksForChat(e.ctx, chatA)
	if len(links) != 1 || links[0].Target != (otpbot.Target{ChatID: chatA, ThreadID: 7}) {
		t.Errorf("links after a redeem in a topic: %+v", links)
	}

	// Expired after 24h.
	token = e.invite("card 1111222233334445")
	e.clock.Advance(24*time.Hour + time.Second)
	mustContain(t, e.reply(chatB, stranger, "/start "+token), "not valid")

	// Garbage is refused without a store lookup failing.
	mustContain(t, e.reply(chatB, stranger, "/start ../../etc"), "not valid")
}

func TestInviteRace(t *testing.T) {
	e := newEnv(t)
	token := e.invite("card 9999000011112222")
	// Two chats open the link at the same moment: the handler is called
	// concurrently, as two processes behind one store would.
	var wg sync.WaitGroup
	for i, c := range []int64{chatA, chatB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			upd := tgbotapi.Update{UpdateID: 1 + i, Message: &tgbotapi.Message{
				MessageID: 500 + i, From: &tgbotapi.User{ID: stranger}, Chat: &tgbotapi.Chat{ID: c, Type: "supergroup"},
				Text: "/start " + token, Entities: []tgbotapi.MessageEntity{{Type: "bot_command", Offset: 0, Length: 6}},
			}}
			if err := e.cmds.HandleUpdate(e.ctx, upd); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// The replies go out in the background once the commands are done.
	e.tg.WaitFor(t, func() bool { return len(e.tg.Messages(chatA)) > 0 && len(e.tg.Messages(chatB)) > 0 })
	won := 0
	for _, c := range []int64{chatA, chatB} {
		links, _ := e.store.LinksForChat(e.ctx, c)
		won += len(links)
		msgs := e.tg.Messages(c)
		if len(msgs) != 1 {
			t.Fatalf("chat %d got %d replies", c, len(msgs))
		}
		if len(links) == 1 {
			mustContain(t, msgs[0].Text, "now receives card …2222")
		} else {
			mustContain(t, msgs[0].Text, "not valid")
		}
	}
	if won != 1 {
		t.Errorf("%d chats linked by one invite, want exactly 1", won)
	}
}

func TestHistory(t *testing.T) {
	e := newEnv(t)
	e.link(cardKey("CARD-0001"), chat(chatA))
	for i := 1; i <= 12; i++ {
		e.push(fmt.Sprintf("ev%02d", i), "CARD-0001", fmt.Sprintf("CODE%02d", i), 5*time.Minute)
		e.clock.Advance(time.Minute)
	}
	e.push("other", "CARD-0002", "OTHERCODE", 5*time.Minute)

	t.Run("an unlinked chat is refused", func(t *testing.T) {
		if got := e.reply(chatB, stranger, "/history"); !isRefusal(got, refusedLinked) {
			t.Errorf("got %q", got)
		}
		if got := e.reply(chatB, stranger, "/history CARD-0001"); !isRefusal(got, refusedLinked) {
			t.Errorf("got %q", got)
		}
	})
	t.Run("a linked chat sees its keys, newest first, default 10, never a code", func(t *testing.T) {
		got := e.reply(chatA, member, "/history")
		mustContain(t, got, "History of card …0001", "3-D Secure code", "•••• 0001", "Shop ev12", "Shop ev03")
		mustNotContain(t, got, "CODE", "Shop ev02", "Shop ev01", "Shop other")
		if strings.Index(got, "Shop ev12") > strings.Index(got, "Shop ev11") {
			t.Errorf("not newest first:\n%s", got)
		}
	})
	t.Run("N", func(t *testing.T) {
		got := e.reply(chatA, member, "/history CARD-0001 2")
		mustContain(t, got, "Shop ev12", "Shop ev11")
		mustNotContain(t, got, "Shop ev10")
		if strings.Count(e.reply(chatA, member, "/history 3"), "3-D Secure code") != 3 {
			t.Error("/history 3 did not list 3 events")
		}
	})
	t.Run("a linked chat cannot read another card", func(t *testing.T) {
		if got := e.reply(chatA, member, "/history CARD-0002"); !isRefusal(got, refusedKey) {
			t.Errorf("got %q", got)
		}
	})
	t.Run("an admin reads any key, card then customer", func(t *testing.T) {
		got := e.reply(chatB, admin, "/history CARD-0002")
		mustContain(t, got, "History of card …0002", "Shop other")
		mustNotContain(t, got, "OTHERCODE")
		got = e.reply(chatB, admin, "/history CUST-CARD-0002")
		mustContain(t, got, "History of customer CUST-CARD-0002", "Shop other")
		mustContain(t, e.reply(chatB, admin, "/history NOPE-1"), "No events yet")
	})
}

func TestHistorySplitsLongListings(t *testing.T) {
	e := newEnv(t)
	e.link(cardKey("CARD-0001"), chat(chatA))
	long := strings.Repeat("M", 180)
	for i := range 50 {
		now := e.clock.Now()
		ev := otpbot.Event{ID: fmt.Sprint("h", i), Provider: otpbot.ProviderUPay, Name: "CC_CONSUME", Kind: otpbot.KindInfo,
			CardID: "CARD-0001", Merchant: fmt.Sprintf("%s-%02d", long, i), ReceivedAt: now}
		if _, err := e.store.Ingest(e.ctx, ev); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
	}
	id := e.tg.SendCommand(chatA, member, "/history 50")
	var parts []string
	e.tg.WaitFor(t, func() bool {
		parts = parts[:0]
		for _, m := range e.tg.Messages(chatA) {
			if m.ReplyTo == id {
				parts = append(parts, m.Text)
			}
		}
		return len(parts) >= 3 && strings.Contains(parts[len(parts)-1], fmt.Sprintf("(%d/%d)", len(parts), len(parts)))
	})
	total := 0
	for i, p := range parts {
		if n, _ := templates.VisibleLen(p); n > templates.MaxLen {
			t.Errorf("part %d has %d characters", i+1, n)
		}
		total += strings.Count(p, "Payment")
	}
	if total != 50 {
		t.Errorf("the parts hold %d events, want 50", total)
	}
	if !strings.Contains(parts[0], long+"-49") || !strings.Contains(parts[len(parts)-1], long+"-00") {
		t.Error("not newest first across parts")
	}
}

func TestCodes(t *testing.T) {
	e := newEnv(t)
	e.link(cardKey("CARD-1234"), chat(chatA))
	e.link(cardKey("CARD-5678"), chat(chatB))
	e.push("a1", "CARD-1234", "111111", 5*time.Minute)
	e.push("a2", "CARD-1234", "222222", 2*time.Minute)
	e.push("b1", "CARD-5678", "333333", 5*time.Minute)
	e.clock.Advance(30 * time.Second)

	if got := e.reply(stranger, stranger, "/codes"); !isRefusal(got, refusedLinked) {
		t.Errorf("/codes in an unlinked chat: %q", got)
	}
	got := e.reply(chatA, member, "/codes")
	mustContain(t, got, "Shop a1", "expires in 4:30", "Shop a2", "expires in 1:30", "•••• 1234",
		"<code>111111</code>", "<code>222222</code>")
	mustNotContain(t, got, "333333", "Shop b1", "5678")
	if strings.Index(got, "Shop a2") > strings.Index(got, "Shop a1") {
		t.Errorf("the code expiring first should come first:\n%s", got)
	}

	e.clock.Advance(2 * time.Minute) // a2 expired
	got = e.reply(chatA, member, "/codes")
	mustContain(t, got, "Shop a1", "expires in 2:30")
	mustNotContain(t, got, "Shop a2")

	e.clock.Advance(5 * time.Minute)
	mustContain(t, e.reply(chatA, member, "/codes"), "No code is valid")
}

// A /codes reply shows live codes, so it must not outlive them: it is
// deleted when the first code it lists expires, or, when Telegram will no
// longer delete it (older than 48 hours), edited to a text without them.
func TestCodesReplyGoesAtTheFirstExpiry(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tooOld   bool
		deletion string
	}{{"deleted", false, ""}, {"too old to delete: redacted", true, "can't be deleted"}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.link(cardKey("CARD-1234"), chat(chatA))
			e.codeMessage(chatA, e.push("a1", "CARD-1234", "111111", 5*time.Minute))
			e.codeMessage(chatA, e.push("a2", "CARD-1234", "222222", 2*time.Minute))
			e.clock.Advance(30 * time.Second)

			cmd := e.tg.SendCommand(chatA, member, "/codes")
			var reply bottest.Message
			e.tg.WaitFor(t, func() bool {
				for _, m := range e.tg.Messages(chatA) {
					if m.ReplyTo == cmd {
						reply = m
						return true
					}
				}
				return false
			})
			mustContain(t, reply.Text, "<code>111111</code>", "<code>222222</code>", "expires in 4:30", "expires in 1:30")
			if !reply.Protect {
				t.Error("the /codes reply can be forwarded")
			}
			if tc.tooOld {
				e.tg.FailNext("deleteMessage", 1, 400, "Bad Request: message can't be deleted for everyone", 0)
			}

			// a2 expires: the reply goes with it.
			e.clock.Advance(90 * time.Second)
			e.d.Poke()
			e.tg.WaitFor(t, func() bool {
				m, ok := e.tg.Message(chatA, reply.ID)
				return !ok || !strings.Contains(m.Text, "111111")
			})
			m, ok := e.tg.Message(chatA, reply.ID)
			if ok != tc.tooOld {
				t.Fatalf("reply still there: %v, want %v", ok, tc.tooOld)
			}
			if ok {
				mustNotContain(t, m.Text, "111111", "222222")
				mustContain(t, m.Plain(), "expired")
			}
			if n := len(e.tg.Calls("deleteMessage")); n != 1 {
				t.Errorf("%d deleteMessage calls", n)
			}
		})
	}
}

func TestParseHistory(t *testing.T) {
	tests := []struct {
		args  string
		id    string
		n     int
		types int
		ok    bool
	}{
		{"", "", 10, 2, true},
		{"5", "", 5, 2, true},
		{"999", "", 50, 2, true},
		{"1234", "1234", 10, 2, true},
		{"C-1 7", "C-1", 7, 2, true},
		{"card 12", "12", 10, 1, true},
		{"customer N1 3", "N1", 3, 1, true},
		{"0", "", 0, 0, false},
		{"C-1 -2", "", 0, 0, false},
		{"a b c", "", 0, 0, false},
		{"card", "", 0, 0, false},
	}
	for _, tt := range tests {
		h, ok := parseHistory(strings.Fields(tt.args))
		if ok != tt.ok || (ok && (h.id != tt.id || h.n != tt.n || len(h.types) != tt.types)) {
			t.Errorf("parseHistory(%q) = %+v, %v; want id %q n %d types %d ok %v", tt.args, h, ok, tt.id, tt.n, tt.types, tt.ok)
		}
	}
}

func TestNewCommandsNeedsItsParts(t *testing.T) {
	tmpl, _ := templates.New("")
	var c replier = (*telegram.Client)(nil)
	for _, o := range []CommandsOptions{{Client: c, Templates: tmpl}, {Store: openStore(t, time.Now), Templates: tmpl}, {Store: openStore(t, time.Now), Client: c}} {
		if _, err := NewCommands(o); err == nil {
			t.Errorf("NewCommands(%+v) accepted missing parts", o)
		}
	}
}
