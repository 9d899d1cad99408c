package bot

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/telegram"
)

// buttonTexts lists the labels of a message's buttons.
func buttonTexts(m bottest.Message) string {
	var out []string
	for _, row := range m.Buttons {
		for _, b := range row {
			out = append(out, b.Text)
		}
	}
	return strings.Join(out, " | ")
}

// waitMessage waits until message id in chat shows every want, and
// returns it.
func (e *env) waitMessage(chat int64, id int, want ...string) bottest.Message {
	e.t.Helper()
	var m bottest.Message
	e.tg.WaitFor(e.t, func() bool {
		var ok bool
		m, ok = e.tg.Message(chat, id)
		if !ok {
			return false
		}
		for _, w := range want {
			if !strings.Contains(m.Text, w) {
				return false
			}
		}
		return true
	})
	return m
}

// A private chat whose user's Telegram speaks Russian gets its code, the
// countdown and the expiry in Russian, with Russian buttons; /language es
// switches the chat to Spanish, for the replies and the next code.
func TestPrivateChatInItsUsersLanguage(t *testing.T) {
	e := newEnv(t)
	ru := bottest.LanguageCode("ru")
	e.link(cardKey("CARD-7777"), chat(private))
	mustContain(t, e.reply(private, member, "/start", ru), "Здравствуйте", "Коды карт, привязанных здесь")

	ev := e.push("r1", "CARD-7777", "246810", 5*time.Minute)
	m := e.codeMessage(private, ev)
	mustContain(t, m.Text, "Код 3-D Secure", "<code>246810</code>", "Магазин: Shop r1", "истекает через 5:00",
		"Никому не сообщайте этот код")
	if got := buttonTexts(m); got != "📋 Копировать код | ✅ Использован — скрыть" {
		t.Errorf("buttons %q", got)
	}

	e.clock.Advance(30 * time.Second)
	e.d.Poke()
	e.waitMessage(private, m.ID, "истекает через 4:30")

	e.clock.Advance(5 * time.Minute)
	e.d.Poke()
	gone := e.waitMessage(private, m.ID, "срок истёк")
	mustNotContain(t, gone.Text, "246810")
	if len(gone.Buttons) != 0 {
		t.Errorf("an expired code keeps its buttons: %q", buttonTexts(gone))
	}

	got := e.reply(private, member, "/language es", ru)
	mustContain(t, got, "A partir de ahora escribo en este chat en Español")
	next := e.codeMessage(private, e.push("r2", "CARD-7777", "135790", 5*time.Minute))
	mustContain(t, next.Text, "Código 3-D Secure", "caduca en 5:00", "No compartas nunca este código")
	if got := buttonTexts(next); got != "📋 Copiar código | ✅ Ya lo usé — ocultar" {
		t.Errorf("buttons %q", got)
	}
	mustContain(t, e.reply(private, member, "/help", ru), "Comandos")
	// "auto" goes back to the user's own language.
	mustContain(t, e.reply(private, member, "/language auto", ru), "Теперь я пишу в этот чат на языке: Русский")
}

// /language without a code shows a button per language; a tap in a
// private chat sets it and the message says so in that language.
func TestLanguageButtons(t *testing.T) {
	e := newEnv(t)
	cmd := e.tg.SendCommand(private, member, "/language", bottest.LanguageCode("pt-br"))
	var reply bottest.Message
	e.tg.WaitFor(t, func() bool {
		for _, m := range e.tg.Messages(private) {
			if m.ReplyTo == cmd {
				reply = m
				return true
			}
		}
		return false
	})
	mustContain(t, reply.Text, "Escrevo neste chat em Português (escolhido automaticamente)")
	for _, name := range []string{"English", "Русский", "简体中文", "Español", "Português", "Türkçe"} {
		if !strings.Contains(buttonTexts(reply), name) {
			t.Errorf("no button for %s: %q", name, buttonTexts(reply))
		}
	}
	if got := e.pressAndWait(private, member, reply.ID, callbackLanguage+":tr"); got != "Türkçe ✓" {
		t.Errorf("answered %q", got)
	}
	changed := e.waitMessage(private, reply.ID, "Bundan sonra bu sohbete şu dilde yazacağım: Türkçe")
	if len(changed.Buttons) != 0 {
		t.Errorf("the buttons stay: %q", buttonTexts(changed))
	}
	cs, err := e.store.ChatSettings(e.ctx, private)
	if err != nil || cs.Language != "tr" || cs.UserLanguage != "pt-br" {
		t.Errorf("settings %+v, %v", cs, err)
	}
	mustContain(t, e.reply(private, member, "/language xx"), "“xx” dilini bilmiyorum")
}

// In a group only admins choose the language and the time zone; the
// refusal says why and who asked, and is logged. A group follows
// templates.default_language, never its members' own languages.
func TestGroupSettingsAreForAdmins(t *testing.T) {
	logs := &lockedBuffer{}
	e := newEnv(t)
	e.cmds.log = slog.New(slog.NewTextHandler(logs, nil))
	got := e.reply(chatA, member, "/language ru", bottest.LanguageCode("ru"))
	mustContain(t, got, "In a group only admins can use /language", fmt.Sprint(member), "telegram.admins")
	mustContain(t, logs.String(), `msg="command refused" user=9003 command=language`)
	if got := e.pressAndWait(chatA, member, 1, callbackLanguage+":ru"); got != "In a group only admins can change this." {
		t.Errorf("a member's tap in a group answered %q", got)
	}
	mustContain(t, e.reply(chatA, member, "/timezone Asia/Shanghai"), "In a group only admins can use /timezone")
	mustContain(t, e.reply(chatA, member, "/help", bottest.LanguageCode("ru")), "Commands")

	mustContain(t, e.reply(chatA, admin, "/language ru"), "Теперь я пишу в этот чат на языке: Русский")
	mustContain(t, e.reply(chatA, member, "/help", bottest.LanguageCode("es")), "Команды")
}

// A group that chose Asia/Shanghai sees /history, and the decisions of
// its approval requests, in that zone with its abbreviation.
func TestTimeZoneOfAChat(t *testing.T) {
	e := newEnv(t)
	e.link(cardKey("CARD-8888"), chat(chatA))
	e.codeMessage(chatA, e.push("z1", "CARD-8888", "999000", 5*time.Minute)) // 2025-06-01 12:00 UTC
	mustContain(t, e.reply(chatA, member, "/history"), "2025-06-01 12:00 UTC")

	mustContain(t, e.reply(chatA, admin, "/timezone asia/shanghai"),
		"Times in this chat are now shown in Asia/Shanghai (CST): it is 20:00 there now.")
	mustContain(t, e.reply(chatA, member, "/history"), "2025-06-01 20:00 CST")
	mustContain(t, e.reply(chatB, admin, "/history card CARD-8888"), "2025-06-01 12:00 UTC") // another chat: its own zone
	mustContain(t, e.reply(chatA, admin, "/timezone"), "Asia/Shanghai (CST)", "/timezone default")
	mustContain(t, e.reply(chatA, admin, "/timezone Mars/Olympus"), "“Mars/Olympus” is not a time zone I know")
	mustContain(t, e.reply(chatA, admin, "/timezone default"), "now shown in UTC")
	mustContain(t, e.reply(chatA, member, "/history"), "2025-06-01 12:00 UTC")
}

// /start tells an admin the first steps and a group how to get linked;
// /history N is the last N events.
func TestRepliesSayWhatToDoNext(t *testing.T) {
	e := newEnv(t)
	mustContain(t, e.reply(admin, admin, "/start"), "You are an admin. First steps", "/link card ID", "/invite card ID")
	mustContain(t, e.reply(chatB, stranger, "/start"), "an admin sends <code>/link card ID</code> in this group")
	mustContain(t, e.reply(stranger, stranger, "/link card C1"), "Only admins can use /link. Your user id is <code>9002</code>")

	e.link(cardKey("CARD-2020"), chat(chatA))
	for i := range 25 {
		ev := otpbot.Event{ID: fmt.Sprintf("h%02d", i), Provider: otpbot.ProviderUPay, Name: "CC_CONSUME", Kind: otpbot.KindInfo,
			CardID: "CARD-2020", Merchant: fmt.Sprintf("Shop %02d", i), ReceivedAt: e.clock.Advance(time.Second)}
		if _, err := e.store.Ingest(e.ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	got := e.reply(chatA, member, "/history 20")
	if n := strings.Count(got, "Payment"); n != 20 {
		t.Errorf("/history 20 listed %d events:\n%s", n, got)
	}
	mustContain(t, got, "Shop 24", "Shop 05")
	mustNotContain(t, got, "Shop 04")
}

// The callback answers of the hide button are in the chat's language.
func TestButtonAnswersInTheChatsLanguage(t *testing.T) {
	e := newEnv(t)
	e.link(cardKey("CARD-5151"), chat(private))
	e.reply(private, member, "/language zh")
	m2 := e.codeMessage(private, e.push("b2", "CARD-5151", "626262", 5*time.Minute))
	if got := e.pressAndWait(private, member, m2.ID, telegram.CallbackHide); got != "验证码已隐藏。" {
		t.Errorf("hide answered %q", got)
	}
	e.waitMessage(private, m2.ID, "验证码已隐藏")
}
