package bot

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/otpbot/otpbot"
)

// menuCall is one setMyCommands or deleteMyCommands call, decoded.
type menuCall struct {
	Scope struct {
		Type   string `json:"type"`
		ChatID int64  `json:"chat_id"`
	}
	Lang     string
	Commands []struct{ Command, Description string }
}

func menuCalls(t *testing.T, e *env, method string) []menuCall {
	t.Helper()
	var out []menuCall
	for _, c := range e.tg.Calls(method) {
		var m menuCall
		if err := json.Unmarshal([]byte(c.Params["scope"]), &m.Scope); err != nil {
			t.Fatalf("%s scope %q: %v", method, c.Params["scope"], err)
		}
		m.Lang = c.Params["language_code"]
		if cmds := c.Params["commands"]; cmds != "" {
			if err := json.Unmarshal([]byte(cmds), &m.Commands); err != nil {
				t.Fatalf("commands %q: %v", cmds, err)
			}
		}
		out = append(out, m)
		if c.Code != 0 {
			t.Errorf("%s answered %d", method, c.Code)
		}
	}
	return out
}

// At start the default scope gets what anyone may run and each admin's
// private chat the admins' commands too, one list per language; the fake
// checks every call against the Bot API's schema.
func TestCommandMenus(t *testing.T) {
	e := newEnv(t)
	if err := e.cmds.RegisterMenu(e.ctx); err != nil {
		t.Fatal(err)
	}
	calls := menuCalls(t, e, "setMyCommands")
	langs := []string{"", "en", "es", "pt", "ru", "tr", "zh"}
	got := map[string]menuCall{}
	for _, c := range calls {
		got[fmt.Sprintf("%s/%d/%s", c.Scope.Type, c.Scope.ChatID, c.Lang)] = c
	}
	if len(calls) != 2*len(langs) || len(got) != len(calls) {
		t.Fatalf("%d setMyCommands calls, want one per scope and language: %+v", len(calls), calls)
	}
	for _, lang := range langs {
		def, ok := got["default/0/"+lang]
		if !ok {
			t.Fatalf("no default menu in %q", lang)
		}
		adm, ok := got[fmt.Sprintf("chat/%d/%s", admin, lang)]
		if !ok {
			t.Fatalf("no admin menu in %q", lang)
		}
		var pub, all []string
		for _, c := range def.Commands {
			pub = append(pub, c.Command)
		}
		for _, c := range adm.Commands {
			all = append(all, c.Command)
		}
		if !slices.Equal(pub, publicMenu) || !slices.Equal(all, append(slices.Clone(publicMenu), adminMenu...)) {
			t.Errorf("%q: default %v, admin %v", lang, pub, all)
		}
	}
	for lang, want := range map[string]string{"": "Greeting and this chat's id", "ru": "Приветствие и номер этого чата",
		"zh": "问候语和此聊天的 ID", "pt": "Saudação e identificador deste chat"} {
		if d := got["default/0/"+lang].Commands[0].Description; d != want {
			t.Errorf("/start in %q: %q, want %q", lang, d, want)
		}
	}
	if cs, err := e.store.ChatSettings(e.ctx, admin); err != nil || cs.Menu != otpbot.MenuAdmin {
		t.Errorf("the admin's menu is not remembered: %+v, %v", cs, err)
	}
}

// A user who had the admins' menu and is no longer an admin has it taken
// back the next time they talk to the bot.
func TestAdminMenuTakenBack(t *testing.T) {
	e := newEnv(t)
	if err := e.store.SetChatSetting(e.ctx, stranger, otpbot.SettingMenu, otpbot.MenuAdmin); err != nil {
		t.Fatal(err)
	}
	e.reply(stranger, stranger, "/help")
	var deleted []menuCall
	e.tg.WaitFor(t, func() bool {
		deleted = menuCalls(t, e, "deleteMyCommands")
		return len(deleted) == 7
	})
	for _, d := range deleted {
		if d.Scope.Type != "chat" || d.Scope.ChatID != stranger {
			t.Errorf("deleted the menu of %+v", d.Scope)
		}
	}
	e.tg.WaitFor(t, func() bool {
		cs, err := e.store.ChatSettings(e.ctx, stranger)
		return err == nil && cs.Menu == ""
	})
	// An admin keeps theirs.
	if err := e.store.SetChatSetting(e.ctx, admin, otpbot.SettingMenu, otpbot.MenuAdmin); err != nil {
		t.Fatal(err)
	}
	e.reply(admin, admin, "/help")
	if n := len(e.tg.Calls("deleteMyCommands")); n != 7 {
		t.Errorf("%d deleteMyCommands calls after an admin's command", n)
	}
}
