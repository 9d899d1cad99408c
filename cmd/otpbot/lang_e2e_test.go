package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/otpbot/otpbot/bot/bottest"
)

// replyTo waits for the bot's reply to message id in chat and returns
// its text as the chat shows it.
func replyTo(t testing.TB, fake *bottest.Server, chat int64, id int) string {
	t.Helper()
	var got string
	waitUntil(t, fmt.Sprintf("the reply to message %d in chat %d", id, chat), func() bool {
		for _, m := range fake.Messages(chat) {
			if m.ReplyTo == id {
				got = m.Plain()
				return true
			}
		}
		return false
	})
	return got
}

// buttonLabels lists the labels of a message's buttons.
func buttonLabels(m bottest.Message) []string {
	var out []string
	for _, row := range m.Buttons {
		for _, b := range row {
			out = append(out, b.Text)
		}
	}
	return out
}

var inviteStartRE = regexp.MustCompile(`\?start=([A-Za-z0-9_-]+)`)

// End to end, in the cardholder's language: a private chat whose user's
// Telegram speaks Russian gets its code, countdown and expiry in Russian,
// Russian buttons included; /language es switches that chat; a group that
// chose Asia/Shanghai reads /history in that zone. The command menus are
// set at start, per scope and language.
func TestEndToEndLanguagesAndTimeZones(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	in := startServe(t, testConfig(t, dir, fake, "codes:\n  ttl: 3s\n  countdown_interval: 1s\n"), nil)

	// The menus: everyone's and the admin's, each in every language.
	waitUntil(t, "command menus", func() bool { return len(fake.Calls("setMyCommands")) == 14 })
	adminRU := false
	for _, c := range fake.Calls("setMyCommands") {
		if c.Code != 0 {
			t.Errorf("setMyCommands answered %d", c.Code)
		}
		var cmds []struct{ Command, Description string }
		if err := json.Unmarshal([]byte(c.Params["commands"]), &cmds); err != nil {
			t.Fatal(err)
		}
		if c.Params["scope"] == fmt.Sprintf(`{"type":"chat","chat_id":%d}`, adminID) && c.Params["language_code"] == "ru" {
			adminRU = strings.Contains(c.Params["commands"], `"command":"link","description":"Привязать карту или клиента к этому чату"`)
		}
		if c.Params["scope"] == `{"type":"default"}` && strings.Contains(c.Params["commands"], `"link"`) {
			t.Errorf("the default menu lists an admin command: %s", c.Params["commands"])
		}
	}
	if !adminRU {
		t.Error("the admin's private chat has no Russian menu with /link")
	}

	// A Russian-speaking cardholder opens an invite link.
	invite := fake.SendCommand(adminID, adminID, "/invite card C-RU")
	m := inviteStartRE.FindStringSubmatch(replyTo(t, fake, adminID, invite))
	if m == nil {
		t.Fatal("no invite link in the reply")
	}
	const user = int64(3001)
	ru := bottest.LanguageCode("ru")
	if got := replyTo(t, fake, user, fake.SendCommand(user, user, "/start "+m[1], ru)); !strings.Contains(got, "Теперь этот чат получает коды: карта C-RU") {
		t.Fatalf("/start TOKEN answered %q", got)
	}

	in.pushUPay(upayOTP("ORD-RU", "C-RU", "314159"))
	waitUntil(t, "the code in Russian", func() bool { return len(messagesWith(fake, user, "314159")) == 1 })
	code := messagesWith(fake, user, "314159")[0]
	for _, want := range []string{"Код 3-D Secure", "•••• 1234", "истекает через 0:0", "Никому не сообщайте этот код"} {
		if !strings.Contains(code.Plain(), want) {
			t.Errorf("the code message lacks %q: %q", want, code.Plain())
		}
	}
	if got := strings.Join(buttonLabels(code), " | "); got != "📋 Копировать код | ✅ Использован — скрыть" {
		t.Errorf("buttons %q", got)
	}
	waitUntil(t, "a countdown refresh in Russian", func() bool {
		cur, _ := fake.Message(user, code.ID)
		return cur.Edits > 0 && strings.Contains(cur.Plain(), "истекает через 0:0")
	})
	waitUntil(t, "the expiry in Russian", func() bool {
		cur, _ := fake.Message(user, code.ID)
		return strings.Contains(cur.Plain(), "Код 3-D Secure: срок истёк") && !strings.Contains(cur.Plain(), "314159")
	})

	// The cardholder switches the chat to Spanish.
	if got := replyTo(t, fake, user, fake.SendCommand(user, user, "/language es", ru)); !strings.Contains(got, "A partir de ahora escribo en este chat en Español") {
		t.Fatalf("/language es answered %q", got)
	}
	in.pushUPay(upayOTP("ORD-ES", "C-RU", "271828"))
	waitUntil(t, "the code in Spanish", func() bool { return len(messagesWith(fake, user, "271828")) == 1 })
	es := messagesWith(fake, user, "271828")[0]
	if !strings.Contains(es.Plain(), "Código 3-D Secure") || !strings.Contains(strings.Join(buttonLabels(es), " "), "Copiar código") {
		t.Errorf("the next code is not in Spanish: %q %v", es.Plain(), buttonLabels(es))
	}

	// A group that chose Asia/Shanghai reads its history in that zone.
	const group = int64(-1003001)
	linkCard(t, fake, group, "C-CN")
	if got := replyTo(t, fake, group, fake.SendCommand(group, adminID, "/timezone Asia/Shanghai")); !strings.Contains(got, "Asia/Shanghai (CST)") {
		t.Fatalf("/timezone answered %q", got)
	}
	in.pushUPay(upayOTP("ORD-CN", "C-CN", "161803"))
	waitUntil(t, "the group's code", func() bool { return len(messagesWith(fake, group, "161803")) == 1 })
	history := replyTo(t, fake, group, fake.SendCommand(group, adminID, "/history"))
	if !regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d CST · 3-D Secure code · •••• 1234`).MatchString(history) {
		t.Errorf("/history is not in the group's zone: %q", history)
	}
	if strings.Contains(history, "UTC") {
		t.Errorf("/history shows UTC: %q", history)
	}
}
