// Package telegram is otpbot's wire to Telegram: the client around
// telegram-bot-api/v5 with a context per call (client.go, params.go), the
// error classes a failed call falls into (errors.go), the update intake by
// polling or webhook (updates.go), and the one rate budget every call takes
// from, in this process or shared through Redis (limiter.go,
// limiter_redis.go, paced.go).
package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/internal/promreg"
)

// ClientOptions configure a Client.
type ClientOptions struct {
	// Token is the bot token from @BotFather. Required; never logged.
	Token string
	// Endpoint is the Bot API URL pattern with two %s (token, method):
	// "" means Telegram's, "http://host:port/bot%s/%s" a local Bot API
	// server or the fake in bottest.
	Endpoint string
	// HTTPClient does the requests; nil means a plain http.Client. Its
	// Timeout, if set, must exceed the long-poll timeout.
	HTTPClient *http.Client
	// Logger receives start-up retries; nil discards.
	Logger *slog.Logger
	// Registerer receives otpbot_telegram_calls_total and
	// otpbot_telegram_rate_limited_total; nil registers nothing.
	Registerer prometheus.Registerer
	// CallTimeout bounds one call (long polls get their poll timeout on
	// top); 0 means 30s.
	CallTimeout time.Duration
}

// Client is otpbot's narrow door to the Bot API. It wraps telegram-bot-api/v5,
// which is frozen at Bot API 5.5 and has sharp edges, so that nothing else in
// otpbot touches the library's requests:
//
//   - every call carries its context (the library's methods take none), so
//     a long poll stops at once on shutdown;
//   - every error is an *APIError with the token scrubbed out (the library's
//     transport errors embed the request URL, token included) and a class the
//     delivery loop acts on;
//   - requests are built here as today's Bot API defines them, never by
//     the library's configs: what it predates (message_thread_id,
//     protect_content, copy_text buttons, secret_token) and what replaced
//     the parameters it still sends (link_preview_options for
//     disable_web_page_preview, reply_parameters for reply_to_message_id
//     and allow_sending_without_reply, both since Bot API 7.0) go as raw
//     parameters through MakeRequest; bottest checks every one against
//     the published schema.
//
// A Client is safe for concurrent use.
type Client struct {
	base        tgbotapi.BotAPI // template copied per call; never called directly
	token       string
	http        *http.Client
	log         *slog.Logger
	callTimeout time.Duration
	me          tgbotapi.User

	calls       *prometheus.CounterVec
	rateLimited prometheus.Counter
}

// libraryLogger silences telegram-bot-api's package-level logger once per
// process. The library only logs from code paths we do not use (its own
// update loop, Debug mode), but those lines can include request URLs and so
// the token; SetLogger is the library's only switch and it is global, which
// is why this is the one piece of global state in otpbot: it is set to a
// discarding logger, idempotently, never to anything configurable.
var libraryLogger sync.Once

type discardLogger struct{}

func (discardLogger) Println(...any)        {}
func (discardLogger) Printf(string, ...any) {}

// ctxDoer gives the library a request bound to one call's context, and
// turns an answer that is not the Bot API's JSON (an HTML error page from
// Telegram's front end, say a 502 during an outage) into an *APIError
// that names the HTTP status, rather than letting the library fail to
// decode it.
type ctxDoer struct {
	ctx    context.Context
	client *http.Client
	method string
}

func (d ctxDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.client.Do(req.WithContext(d.ctx))
	if err != nil || resp.StatusCode < 400 || strings.Contains(resp.Header.Get("Content-Type"), "json") {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	kind := "no JSON"
	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "html") {
		kind = "HTML"
	}
	return nil, &APIError{
		Method:      d.method,
		Code:        resp.StatusCode,
		Description: fmt.Sprintf("%s (%s)", strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode))), kind),
		Class:       classifyAPI(resp.StatusCode, ""),
	}
}

// NewClient creates a Client and calls getMe, retrying with capped backoff
// while Telegram is unreachable or answers 5xx, until ctx ends: a Telegram
// hiccup at start-up must not kill the process. A rejected token (401/404)
// fails at once, since waiting cannot fix it.
func NewClient(ctx context.Context, opts ClientOptions) (*Client, error) {
	if opts.Token == "" {
		return nil, errors.New("telegram client: token is required")
	}
	libraryLogger.Do(func() { _ = tgbotapi.SetLogger(discardLogger{}) })
	endpoint := opts.Endpoint
	if endpoint == "" {
		endpoint = tgbotapi.APIEndpoint
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		// Built by hand rather than with NewBotAPIWithClient, which calls
		// getMe without a context and gives up at the first failure.
		base:        tgbotapi.BotAPI{Token: opts.Token, Buffer: 100},
		token:       opts.Token,
		http:        hc,
		log:         log,
		callTimeout: opts.CallTimeout,
		calls: promreg.Register(opts.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpbot_telegram_calls_total",
			Help: "Telegram Bot API calls by method and outcome (ok or the error class).",
		}, []string{"method", "outcome"})),
		rateLimited: promreg.Register(opts.Registerer, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "otpbot_telegram_rate_limited_total",
			Help: "Telegram answers 429 Too Many Requests.",
		})),
	}
	if c.callTimeout <= 0 {
		c.callTimeout = 30 * time.Second
	}
	c.base.SetAPIEndpoint(endpoint)

	backoff := 250 * time.Millisecond
	const maxBackoff = 15 * time.Second
	for attempt := 1; ; attempt++ {
		me, err := c.Me(ctx)
		if err == nil {
			c.me = me
			return c, nil
		}
		var ae *APIError
		if errors.As(err, &ae) && (ae.Code == 401 || ae.Code == 404) {
			return nil, fmt.Errorf("telegram client: token rejected: %w", err)
		}
		pause := backoff
		if ra := RetryAfterOf(err); ra > pause {
			pause = ra
		}
		log.Warn("telegram getMe failed, retrying", "attempt", attempt, "wait", pause, "err", err)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("telegram client: getMe: %w", errors.Join(ctx.Err(), err))
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// Probe asks Telegram whether it answers (getMe).
func (c *Client) Probe(ctx context.Context) error {
	_, err := c.Me(ctx)
	return err
}

// Username is the bot's @username (without @), from getMe at start-up.
func (c *Client) Username() string { return c.me.UserName }

// Me calls getMe.
func (c *Client) Me(ctx context.Context) (tgbotapi.User, error) {
	raw, err := c.call(ctx, "getMe", nil, 0)
	if err != nil {
		return tgbotapi.User{}, err
	}
	var u tgbotapi.User
	if err := json.Unmarshal(raw, &u); err != nil {
		return tgbotapi.User{}, fmt.Errorf("telegram getMe: decode: %w", err)
	}
	return u, nil
}

// Send sends m as a new HTML message (plain text when m.Plain) and
// returns its Telegram message id.
func (c *Client) Send(ctx context.Context, m OutMessage) (int, error) {
	p := tgbotapi.Params{
		"chat_id":              strconv.FormatInt(m.Target.ChatID, 10),
		"text":                 m.Text,
		"parse_mode":           tgbotapi.ModeHTML,
		"link_preview_options": noLinkPreview,
	}
	if m.Plain {
		delete(p, "parse_mode")
	}
	if m.Target.ThreadID != 0 {
		p["message_thread_id"] = strconv.Itoa(m.Target.ThreadID)
	}
	if m.Protect {
		p["protect_content"] = "true"
	}
	if m.ReplyTo != 0 {
		p["reply_parameters"] = replyParameters(m.ReplyTo)
	}
	if len(m.Buttons) > 0 {
		kb, err := keyboardJSON(m.Buttons)
		if err != nil {
			return 0, err
		}
		p["reply_markup"] = kb
	}
	raw, err := c.call(ctx, "sendMessage", p, 0)
	if err != nil {
		return 0, err
	}
	var msg struct {
		MessageID int `json:"message_id"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil || msg.MessageID == 0 {
		return 0, &APIError{Method: "sendMessage", Class: ClassRetryable, Description: "malformed result"}
	}
	return msg.MessageID, nil
}

// Edit replaces the text (and keyboard: nil Buttons removes it) of the
// message messageID in m.Target's chat. Telegram's "message is not
// modified" is success: the cardholder already sees this text.
func (c *Client) Edit(ctx context.Context, messageID int, m OutMessage) error {
	kb, err := keyboardJSON(m.Buttons)
	if err != nil {
		return err
	}
	p := tgbotapi.Params{
		"chat_id":              strconv.FormatInt(m.Target.ChatID, 10),
		"message_id":           strconv.Itoa(messageID),
		"text":                 m.Text,
		"parse_mode":           tgbotapi.ModeHTML,
		"link_preview_options": noLinkPreview,
		// Always sent, so that an edit without buttons removes them
		// explicitly rather than relying on Telegram's default.
		"reply_markup": kb,
	}
	if m.Plain {
		delete(p, "parse_mode")
	}
	_, err = c.call(ctx, "editMessageText", p, 0)
	if ClassOf(err) == ClassNotModified {
		return nil
	}
	return err
}

// ClearButtons removes the inline keyboard of a message and reports
// whether there was one to remove, with the message's text (or caption)
// as Telegram returns it. It changes nothing in a message that is not the
// bot's (Telegram refuses to edit it), nor in one without a keyboard ("not
// modified"): that is what makes it a safe probe for a copy of a code
// message whose id the bot never learned (see orphans.go).
func (c *Client) ClearButtons(ctx context.Context, target otpbot.Target, messageID int) (changed bool, text string, err error) {
	kb, err := keyboardJSON(nil)
	if err != nil {
		return false, "", err
	}
	resp, err := c.call(ctx, "editMessageReplyMarkup", tgbotapi.Params{
		"chat_id":      strconv.FormatInt(target.ChatID, 10),
		"message_id":   strconv.Itoa(messageID),
		"reply_markup": kb,
	}, 0)
	switch ClassOf(err) {
	case 0:
		var m struct{ Text, Caption string }
		_ = json.Unmarshal(resp, &m) // an answer without a message leaves text empty
		return true, m.Text + m.Caption, nil
	case ClassNotModified, ClassBadRequest:
		return false, "", nil
	}
	return false, "", err
}

// Delete deletes the bot's message messageID in target's chat. A message
// that is gone already ("message to delete not found") counts as deleted.
// Telegram refuses to delete a message older than 48 hours in most chats:
// that failure is a ClassBadRequest APIError whose description says the
// message can't be deleted (see CannotDelete).
func (c *Client) Delete(ctx context.Context, target otpbot.Target, messageID int) error {
	p := tgbotapi.Params{
		"chat_id":    strconv.FormatInt(target.ChatID, 10),
		"message_id": strconv.Itoa(messageID),
	}
	_, err := c.call(ctx, "deleteMessage", p, 0)
	var ae *APIError
	if errors.As(err, &ae) && strings.Contains(strings.ToLower(ae.Description), "message to delete not found") {
		return nil
	}
	return err
}

// CannotDelete reports whether err is Telegram refusing to delete a message
// (too old, or not the bot's to delete): an edit is the only way left to
// change what it shows.
func CannotDelete(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Class == ClassBadRequest &&
		strings.Contains(strings.ToLower(ae.Description), "message can't be deleted")
}

// AnswerCallback answers a callback query (a button press), optionally
// with a notification text or an alert.
func (c *Client) AnswerCallback(ctx context.Context, callbackID, text string, alert bool) error {
	p := tgbotapi.Params{"callback_query_id": callbackID}
	p.AddNonEmpty("text", text)
	if alert {
		p["show_alert"] = "true"
	}
	_, err := c.call(ctx, "answerCallbackQuery", p, 0)
	return err
}

// allowedUpdates are the update types otpbot handles.
const allowedUpdates = `["message","callback_query"]`

// Update is a tgbotapi.Update plus what Bot API 5.5 does not decode: the
// forum topic its message (or the message under its button) belongs to.
type Update struct {
	tgbotapi.Update
	// ThreadID is message_thread_id, 0 outside forum topics.
	ThreadID int
}

// rawThread extracts message_thread_id from an update's message or
// callback message.
type rawThread struct {
	Message *struct {
		ThreadID int  `json:"message_thread_id"`
		IsTopic  bool `json:"is_topic_message"`
	} `json:"message"`
	CallbackQuery *struct {
		Message *struct {
			ThreadID int  `json:"message_thread_id"`
			IsTopic  bool `json:"is_topic_message"`
		} `json:"message"`
	} `json:"callback_query"`
}

// ParseUpdate decodes one update (a webhook body, or an element of a
// getUpdates result) with its forum topic.
func ParseUpdate(data []byte) (Update, error) {
	var u Update
	if err := json.Unmarshal(data, &u.Update); err != nil {
		return Update{}, fmt.Errorf("parse update: %w", err)
	}
	var rt rawThread
	if err := json.Unmarshal(data, &rt); err != nil {
		return Update{}, fmt.Errorf("parse update: %w", err)
	}
	// In a forum, replies outside topics carry the replied-to message's
	// thread id too; only is_topic_message marks a real topic.
	switch {
	case rt.Message != nil && rt.Message.IsTopic:
		u.ThreadID = rt.Message.ThreadID
	case rt.CallbackQuery != nil && rt.CallbackQuery.Message != nil && rt.CallbackQuery.Message.IsTopic:
		u.ThreadID = rt.CallbackQuery.Message.ThreadID
	}
	return u, nil
}

// GetUpdates long-polls for updates from offset, waiting up to
// timeoutSeconds. Cancelling ctx ends the poll at once.
func (c *Client) GetUpdates(ctx context.Context, offset, timeoutSeconds int) ([]tgbotapi.Update, error) {
	ups, err := c.GetTopicUpdates(ctx, offset, timeoutSeconds)
	if err != nil {
		return nil, err
	}
	out := make([]tgbotapi.Update, len(ups))
	for i, u := range ups {
		out[i] = u.Update
	}
	return out, nil
}

// GetTopicUpdates is GetUpdates keeping each update's forum topic, which
// tgbotapi.Update cannot hold.
func (c *Client) GetTopicUpdates(ctx context.Context, offset, timeoutSeconds int) ([]Update, error) {
	p := tgbotapi.Params{
		"offset":          strconv.Itoa(offset),
		"timeout":         strconv.Itoa(timeoutSeconds),
		"allowed_updates": allowedUpdates,
	}
	raw, err := c.call(ctx, "getUpdates", p, time.Duration(timeoutSeconds)*time.Second)
	if err != nil {
		return nil, err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, &APIError{Method: "getUpdates", Class: ClassRetryable, Description: "malformed result"}
	}
	out := make([]Update, 0, len(items))
	for _, it := range items {
		u, err := ParseUpdate(it)
		if err != nil {
			return nil, &APIError{Method: "getUpdates", Class: ClassRetryable, Description: "malformed update"}
		}
		out = append(out, u)
	}
	return out, nil
}

// SetWebhook points Telegram at url; Telegram then sends secretToken in
// X-Telegram-Bot-Api-Secret-Token with every update.
func (c *Client) SetWebhook(ctx context.Context, url, secretToken string) error {
	p := tgbotapi.Params{"url": url, "allowed_updates": allowedUpdates}
	p.AddNonEmpty("secret_token", secretToken)
	_, err := c.call(ctx, "setWebhook", p, 0)
	return err
}

// DeleteWebhook switches Telegram back to getUpdates, keeping pending
// updates.
func (c *Client) DeleteWebhook(ctx context.Context) error {
	_, err := c.call(ctx, "deleteWebhook", tgbotapi.Params{}, 0)
	return err
}

// call makes one request with ctx and maps its failure; extra is added to
// the call timeout (the long-poll wait).
func (c *Client) call(ctx context.Context, method string, p tgbotapi.Params, extra time.Duration) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout+extra)
	defer cancel()
	// A copy of the library's bot per call: its only per-request knob is
	// the HTTPClient field, and the copy lets each call carry its own
	// context without a lock. The struct holds no mutex, so the copy is
	// safe.
	b := c.base
	b.Client = ctxDoer{ctx: ctx, client: c.http, method: method}
	resp, err := b.MakeRequest(method, p)
	if err != nil {
		ae := toAPIError(ctx, method, c.token, err)
		outcome := ae.Class.String()
		if errors.Is(ae, context.Canceled) {
			outcome = "canceled"
		}
		c.calls.WithLabelValues(method, outcome).Inc()
		if ae.Class == ClassRateLimited {
			c.rateLimited.Inc()
		}
		return nil, ae
	}
	c.calls.WithLabelValues(method, "ok").Inc()
	return resp.Result, nil
}
