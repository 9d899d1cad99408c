package bot

// The chat's language and time zone: which templates a reply is written
// in, what the bot learns of a private chat's user, /language (with a
// button per language) and /timezone.

import (
	"context"
	"strings"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/templates"
)

// callbackLanguage is the button of one language under a /language reply:
// "lang:CODE".
const callbackLanguage = "lang"

// chatLocale returns the templates a reply in chatID is written in and the
// chat's settings: the language the chat chose, else (a private chat) its
// user's Telegram language, else the default. In a private chat it
// remembers the user's language when it changed, for the code messages
// the deliverer sends with no user at hand; and it takes the admins'
// command menu back from a user who is no longer one. Settings that cannot
// be read leave the defaults: the command still runs.
func (c *Commands) chatLocale(ctx context.Context, chatID int64, private bool, from *tgbotapi.User) (*templates.Locale, otpbot.ChatSettings) {
	cs, err := c.chats.Settings(ctx, chatID)
	if err != nil {
		c.log.Warn("chat settings not read; answering in the default language", "chat", chatID, "err", err)
		return c.tmpl.Default(), otpbot.ChatSettings{ChatID: chatID}
	}
	if !private || from == nil {
		return c.tmpl.ForChat(cs, ""), cs
	}
	if lang := from.LanguageCode; lang != "" && lang != cs.UserLanguage {
		c.setChat(ctx, chatID, otpbot.SettingUserLanguage, lang)
		cs.UserLanguage = lang
	}
	if cs.Menu == otpbot.MenuAdmin && !c.admins[from.ID] {
		c.dropAdminMenu(chatID)
	}
	return c.tmpl.ForChat(cs, from.LanguageCode), cs
}

// setChat changes one setting of a chat and has this process's templates
// read it at once; a failure is logged (the setting stays as it was).
func (c *Commands) setChat(ctx context.Context, chatID int64, setting otpbot.ChatSetting, value string) bool {
	err := c.store.SetChatSetting(ctx, chatID, setting, value)
	c.chats.Forget(chatID)
	if err != nil {
		c.log.Warn("chat setting not saved", "chat", chatID, "setting", setting, "err", err)
		return false
	}
	return true
}

// setReplySetting changes one setting of the command's chat (setChat) and
// the reply's locale with it, so the answer already speaks the new
// language or zone.
func (c *Commands) setReplySetting(ctx context.Context, r *request, setting otpbot.ChatSetting, value string) bool {
	if !c.setChat(ctx, r.target.ChatID, setting, value) {
		return false
	}
	r.settings = r.settings.Set(setting, value)
	r.loc = c.replyLocale(r.settings, r)
	return true
}

// language answers /language: without an argument the chat's language
// and a button per language; "/language CODE" chooses one; "/language
// auto" goes back to the language chosen automatically.
func (c *Commands) language(ctx context.Context, r *request) error {
	if len(r.args) > 1 {
		return c.usage(ctx, r, "/language [CODE]")
	}
	view := c.languageView(r.loc, r.settings)
	if len(r.args) == 0 {
		return c.okButtons(ctx, r, "language", view, c.languageButtons())
	}
	code := r.args[0]
	lang, ok := c.tmpl.Match(code)
	switch {
	case strings.EqualFold(code, "auto"):
		lang = ""
	case !ok:
		view.Unknown = code
		return c.okButtons(ctx, r, "language", view, c.languageButtons())
	}
	if !c.setReplySetting(ctx, r, otpbot.SettingLanguage, lang) {
		return errSettingNotSaved
	}
	c.log.Info("chat language set", "target", r.target, "language", lang, "by", r.user)
	view = c.languageView(r.loc, r.settings)
	view.Changed = true
	return c.ok(ctx, r, "language", view)
}

// replyLocale is the templates of a request's chat after its settings
// changed.
func (c *Commands) replyLocale(cs otpbot.ChatSettings, r *request) *templates.Locale {
	if r.private && r.msg != nil && r.msg.From != nil {
		return c.tmpl.ForChat(cs, r.msg.From.LanguageCode)
	}
	return c.tmpl.ForChat(cs, "")
}

// languageView is the data of the "language" template for a chat written
// in loc.
func (c *Commands) languageView(loc *templates.Locale, cs otpbot.ChatSettings) templates.LanguageView {
	view := templates.LanguageView{Current: option(loc.Language()), Chosen: cs.Language != ""}
	for _, l := range c.tmpl.Languages() {
		view.Languages = append(view.Languages, option(l))
	}
	return view
}

func option(lang string) templates.LanguageOption {
	return templates.LanguageOption{Code: lang, Name: templates.LanguageName(lang)}
}

// languageButtons is a button per language, two to a row, each named in
// its own language.
func (c *Commands) languageButtons() [][]telegram.Button {
	var rows [][]telegram.Button
	for i, l := range c.tmpl.Languages() {
		b := telegram.Button{Text: templates.LanguageName(l), Data: callbackLanguage + ":" + l}
		if i%2 == 0 {
			rows = append(rows, []telegram.Button{b})
		} else {
			rows[len(rows)-1] = append(rows[len(rows)-1], b)
		}
	}
	return rows
}

// chooseLanguage answers a tap on a language button: anyone in a private
// chat, an admin in a group, sets the chat's language; the message then
// says so in that language, without its buttons.
func (c *Commands) chooseLanguage(ctx context.Context, q *callbackRequest) (string, bool, error) {
	if !q.private && !q.admin {
		c.log.Info("command refused", "user", q.user, "command", "language", "reason", templates.RefusedGroupAdmin, "chat", q.chatID)
		return answerNotAdmin, true, nil
	}
	lang, ok := c.tmpl.Match(q.arg)
	if !ok || lang != q.arg {
		return answerBroken, false, nil
	}
	if !c.setChat(ctx, q.chatID, otpbot.SettingLanguage, lang) {
		return "", false, errSettingNotSaved
	}
	q.settings.Language = lang
	q.loc = c.tmpl.ForChat(q.settings, "")
	c.log.Info("chat language set", "chat", q.chatID, "language", lang, "by", q.user)
	view := c.languageView(q.loc, q.settings)
	view.Changed = true
	text, err := q.loc.Render("language", view)
	if err != nil {
		return "", false, err
	}
	target := otpbot.Target{ChatID: q.chatID, ThreadID: telegram.ThreadFrom(ctx)}
	if err := c.client.Edit(ctx, q.messageID, telegram.OutMessage{Target: target, Text: text}); err != nil {
		c.log.Warn("language reply not edited", "chat", q.chatID, "err", err)
	}
	q.answerData = option(lang)
	return answerLanguage, false, nil
}

// timezone answers /timezone: without an argument the chat's time zone;
// "/timezone Area/City" chooses one (an IANA name, its case forgiven);
// "/timezone default" goes back to templates.timezone.
func (c *Commands) timezone(ctx context.Context, r *request) error {
	if len(r.args) > 1 {
		return c.usage(ctx, r, "/timezone [Area/City]")
	}
	view := c.zoneView(r.loc, r.settings)
	if len(r.args) == 0 {
		return c.ok(ctx, r, "timezone", view)
	}
	zone := ""
	if arg := r.args[0]; !strings.EqualFold(arg, "default") {
		var ok bool
		if zone, ok = zoneName(arg); !ok {
			view.Unknown = arg
			return c.ok(ctx, r, "timezone", view)
		}
	}
	if !c.setReplySetting(ctx, r, otpbot.SettingTimeZone, zone) {
		return errSettingNotSaved
	}
	c.log.Info("chat time zone set", "target", r.target, "zone", zone, "by", r.user)
	view = c.zoneView(r.loc, r.settings)
	view.Changed = true
	return c.ok(ctx, r, "timezone", view)
}

// zoneView is the data of the "timezone" template for a chat written in
// loc.
func (c *Commands) zoneView(loc *templates.Locale, cs otpbot.ChatSettings) templates.TimeZoneView {
	now := c.now().In(loc.Zone())
	return templates.TimeZoneView{Zone: loc.Zone().String(), Abbr: now.Format("MST"), Now: now,
		Chosen: cs.TimeZone != "", Default: c.tmpl.DefaultZone().String()}
}

// zoneName returns the IANA name of a zone as typed, trying it as given,
// then with each part capitalised as the database spells most names
// ("europe/madrid" is Europe/Madrid, "america/new_york"
// America/New_York), then upper case ("utc").
func zoneName(typed string) (string, bool) {
	for _, name := range []string{typed, titleZone(typed), strings.ToUpper(typed)} {
		if _, err := templates.LoadZone(name); err == nil && name != "" {
			return name, true
		}
	}
	return "", false
}

// titleZone capitalises each word of a zone name: the letter after a
// start, "/", "_" or "-".
func titleZone(s string) string {
	b := []byte(strings.ToLower(s))
	for i := range b {
		if (i == 0 || b[i-1] == '/' || b[i-1] == '_' || b[i-1] == '-') && b[i] >= 'a' && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}
