package storetest

import (
	"sync"
	"testing"

	"github.com/otpbot/otpbot"
)

var chatTests = []subtest{
	{"a chat without settings", testChatDefaults},
	{"each setting on its own", testChatSettings},
	{"concurrent settings", testChatConcurrent},
	{"export and import", testChatPorter},
}

// setChat changes one setting or fails the test.
func (e *env) setChat(chat int64, setting otpbot.ChatSetting, value string) {
	e.t.Helper()
	if err := e.s.SetChatSetting(e.ctx, chat, setting, value); err != nil {
		e.t.Fatalf("SetChatSetting(%d, %s, %q): %v", chat, setting, value, err)
	}
}

// chat returns a chat's settings or fails the test.
func (e *env) chat(chat int64) otpbot.ChatSettings {
	e.t.Helper()
	cs, err := e.s.ChatSettings(e.ctx, chat)
	if err != nil {
		e.t.Fatalf("ChatSettings(%d): %v", chat, err)
	}
	return cs
}

func testChatDefaults(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	equal(t, "settings of an unknown chat", e.chat(chatA.ChatID), otpbot.ChatSettings{ChatID: chatA.ChatID})
	if err := e.s.SetChatSetting(e.ctx, chatA.ChatID, "colour", "blue"); err == nil {
		t.Fatal("an unknown setting was accepted")
	}
}

func testChatSettings(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	group, user := chatA.ChatID, int64(4242)
	e.setChat(group, otpbot.SettingLanguage, "ru")
	e.setChat(group, otpbot.SettingTimeZone, "Asia/Shanghai")
	e.setChat(user, otpbot.SettingUserLanguage, "pt-br")
	e.setChat(user, otpbot.SettingMenu, otpbot.MenuAdmin)
	equal(t, "group settings", e.chat(group), otpbot.ChatSettings{ChatID: group, Language: "ru", TimeZone: "Asia/Shanghai"})
	equal(t, "private chat settings", e.chat(user), otpbot.ChatSettings{ChatID: user, UserLanguage: "pt-br", Menu: otpbot.MenuAdmin})

	// A change leaves the other settings alone; "" clears one.
	e.setChat(group, otpbot.SettingLanguage, "es")
	e.setChat(group, otpbot.SettingTimeZone, "")
	equal(t, "group settings after changes", e.chat(group), otpbot.ChatSettings{ChatID: group, Language: "es"})
	e.setChat(group, otpbot.SettingLanguage, "")
	equal(t, "group settings cleared", e.chat(group), otpbot.ChatSettings{ChatID: group})
	equal(t, "another chat untouched", e.chat(user), otpbot.ChatSettings{ChatID: user, UserLanguage: "pt-br", Menu: otpbot.MenuAdmin})
}

// Two processes changing two settings of one chat at once both win.
func testChatConcurrent(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	const rounds = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds)
	for i := range rounds {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- e.s.SetChatSetting(e.ctx, chatA.ChatID, otpbot.SettingLanguage, []string{"ru", "tr"}[i%2])
		}()
		go func() {
			defer wg.Done()
			errs <- e.s.SetChatSetting(e.ctx, chatA.ChatID, otpbot.SettingUserLanguage, []string{"zh", "es"}[i%2])
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("SetChatSetting: %v", err)
		}
	}
	e.setChat(chatA.ChatID, otpbot.SettingTimeZone, "UTC")
	got := e.chat(chatA.ChatID)
	if got.Language == "" || got.UserLanguage == "" || got.TimeZone != "UTC" {
		t.Fatalf("a concurrent change was lost: %s", js(got))
	}
}

func testChatPorter(t *testing.T, newStore NewStoreFunc) {
	src := newEnv(t, newStore)
	src.setChat(chatA.ChatID, otpbot.SettingLanguage, "zh")
	src.setChat(chatA.ChatID, otpbot.SettingTimeZone, "Asia/Shanghai")
	src.setChat(77, otpbot.SettingUserLanguage, "tr")
	src.setChat(78, otpbot.SettingLanguage, "es")
	src.setChat(78, otpbot.SettingLanguage, "") // nothing left: no record
	recs := src.export()
	n := 0
	for _, r := range recs {
		if r.Chat != nil {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("exported %d chat records, want 2: %s", n, js(recs))
	}
	dst := src.second(newStore)
	if err := dst.s.Import(dst.ctx, recs); err != nil {
		t.Fatalf("Import: %v", err)
	}
	equal(t, "export of the imported store", canonical(dst.export()), canonical(recs))
	equal(t, "imported group", dst.chat(chatA.ChatID), otpbot.ChatSettings{ChatID: chatA.ChatID, Language: "zh", TimeZone: "Asia/Shanghai"})
	equal(t, "imported private chat", dst.chat(77), otpbot.ChatSettings{ChatID: 77, UserLanguage: "tr"})
}
