package bot

// The command menu Telegram shows (setMyCommands): what anyone may run
// for everyone, and the admins' commands too in each admin's private
// chat, one list per language.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/templates"
)

// The commands of the menu, in the order it lists them: those a
// cardholder uses (anyone may run them; /links, /history and /codes in a
// chat that receives codes), then the admins' own.
var (
	publicMenu = []string{"start", "help", "codes", "history", "links", "language", "timezone"}
	adminMenu  = []string{"link", "unlink", "invite", "replies"}
)

// menuLanguages are the languages that get a list of their own: the
// default list ("", in the default language) and one per language with a
// two-letter code.
func (c *Commands) menuLanguages() map[string]*templates.Locale {
	out := map[string]*templates.Locale{"": c.tmpl.Default()}
	for _, l := range c.tmpl.Languages() {
		if code, ok := templates.MenuLanguage(l); ok {
			if _, seen := out[code]; !seen {
				out[code] = c.tmpl.For(l, "")
			}
		}
	}
	return out
}

// menu is the list of names in loc's words.
func menu(loc *templates.Locale, names ...[]string) []telegram.Command {
	var out []telegram.Command
	for _, list := range names {
		for _, n := range list {
			out = append(out, telegram.Command{Name: n, Description: loc.Label("menu_"+n, nil)})
		}
	}
	return out
}

// RegisterMenu sets the command menus: the default scope lists what
// anyone may run, each admin's private chat the admins' commands too,
// each in every language. serve calls it at start, so a changed
// telegram.admins or templates.dir shows at the next start. An admin who
// never opened a chat with the bot has no private chat to set: that is
// logged and skipped. It returns the other failures.
func (c *Commands) RegisterMenu(ctx context.Context) error {
	langs := c.menuLanguages()
	var errs []error
	for code, loc := range langs {
		if err := c.menu.SetMyCommands(ctx, menu(loc, publicMenu), telegram.MenuScope{}, code); err != nil {
			errs = append(errs, fmt.Errorf("command menu (%q): %w", code, err))
		}
	}
	for admin := range c.admins {
		scope := telegram.MenuScope{ChatID: admin}
		set := false
		for code, loc := range langs {
			err := c.menu.SetMyCommands(ctx, menu(loc, publicMenu, adminMenu), scope, code)
			if err == nil {
				set = true
				continue
			}
			if telegram.ClassOf(err) == telegram.ClassBadRequest && strings.Contains(strings.ToLower(err.Error()), "chat not found") {
				c.log.Info("admin command menu not set: the admin has no private chat with the bot yet", "user", admin)
				break
			}
			errs = append(errs, fmt.Errorf("admin command menu (%d, %q): %w", admin, code, err))
		}
		if set {
			c.setChat(ctx, admin, otpbot.SettingMenu, otpbot.MenuAdmin)
		}
	}
	if len(errs) == 0 {
		c.log.Info("command menus set", "languages", len(langs), "admins", len(c.admins))
	}
	return errors.Join(errs...)
}

// dropAdminMenu takes the admins' command menu back from chatID, the
// private chat of a user no longer among telegram.admins, in the
// background (in order with the chat's replies).
func (c *Commands) dropAdminMenu(chatID int64) {
	langs := c.menuLanguages()
	c.outq.push(chatID, func(qctx context.Context) {
		for code := range langs {
			if err := c.menu.DeleteMyCommands(qctx, telegram.MenuScope{ChatID: chatID}, code); err != nil {
				c.log.Warn("admin command menu not removed", "user", chatID, "err", err)
				return
			}
		}
		c.setChat(qctx, chatID, otpbot.SettingMenu, "")
		c.log.Info("admin command menu removed: no longer an admin", "user", chatID)
	})
}
