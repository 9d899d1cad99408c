// Package templates renders every text otpbot sends to Telegram: code and
// approval messages in each state, command replies and ops notices.
//
// Templates are Go html/template files (*.tmpl). The built-in ones are
// embedded in the binary; a folder (templates.dir) may hold files with the
// same names that replace them one by one. Everything a template prints is
// escaped for Telegram's HTML parse mode, the output may only use the tags
// Telegram understands, and it is cut to Telegram's 4096 visible characters.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"html"
	"html/template"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/otpbot/otpbot"
)

//go:embed builtin/*.tmpl
var builtin embed.FS

// ext is the file name extension of a template; the name is the file name
// without it.
const ext = ".tmpl"

// Set is a parsed set of templates, safe for concurrent use.
type Set struct {
	t *template.Template
}

// New parses the built-in templates and lays the *.tmpl files of dir over
// them (dir may be ""). An override must have the name of a built-in
// template, so that a typo does not silently leave the built-in in place.
// Every template is executed once with sample data, so a broken override
// is reported at start rather than when the first code arrives.
func New(dir string) (*Set, error) {
	files := map[string]string{}
	entries, err := fs.ReadDir(builtin, "builtin")
	if err != nil {
		return nil, fmt.Errorf("templates: read built-in: %w", err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(builtin, "builtin/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("templates: read built-in %s: %w", e.Name(), err)
		}
		files[strings.TrimSuffix(e.Name(), ext)] = string(b)
	}
	if dir != "" {
		// A missing folder is a configuration error, not "no overrides".
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("templates: dir: %w", err)
		}
		matches, err := filepath.Glob(filepath.Join(dir, "*"+ext))
		if err != nil {
			return nil, fmt.Errorf("templates: dir %s: %w", dir, err)
		}
		for _, path := range matches {
			name := strings.TrimSuffix(filepath.Base(path), ext)
			if _, ok := files[name]; !ok {
				return nil, fmt.Errorf("templates: %s overrides no built-in template (known: %s)", path, strings.Join(sortedKeys(files), ", "))
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("templates: %w", err)
			}
			files[name] = string(b)
		}
	}

	root := template.New("").Funcs(funcs).Option("missingkey=error")
	// Parse in a fixed order so that a {{define}} repeated across files
	// resolves the same way on every start.
	for _, name := range sortedKeys(files) {
		if _, err := root.New(name).Parse(files[name]); err != nil {
			return nil, fmt.Errorf("templates: parse %s%s: %w", name, ext, err)
		}
	}
	s := &Set{t: root}
	sample := samples()
	for _, name := range sortedKeys(files) {
		data, ok := sample[name]
		if !ok {
			continue // a partial: exercised by the templates that use it
		}
		if _, err := s.Render(name, data); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Render executes the named template (the file name without ".tmpl") with
// data, one of the views of this package, and returns HTML ready for
// Telegram: escaped, only Telegram's tags, at most MaxLen visible characters.
func (s *Set) Render(name string, data any) (string, error) {
	t := s.t.Lookup(name)
	if t == nil {
		return "", fmt.Errorf("templates: no template %q", name)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return "", fmt.Errorf("templates: render %s: %w", name, err)
	}
	out, err := Truncate(strings.TrimSpace(buf.String()), MaxLen)
	if err != nil {
		return "", fmt.Errorf("templates: render %s: %w", name, err)
	}
	if strings.TrimSpace(html.UnescapeString(stripTags(out))) == "" {
		// Telegram refuses an empty message; say which template did it.
		return "", fmt.Errorf("templates: render %s: empty text", name)
	}
	return out, nil
}

// MessageTemplate returns the name of the template that shows a message of
// kind in state.
func MessageTemplate(kind otpbot.Kind, state otpbot.MessageState) string {
	switch state {
	case otpbot.StateLive:
		if kind == otpbot.KindApproval {
			return "approval_live"
		}
		return "code_live"
	case otpbot.StateExpired:
		if kind == otpbot.KindApproval {
			return "approval_expired"
		}
		return "code_expired"
	case otpbot.StateHidden:
		return "message_hidden"
	case otpbot.StateDecided:
		return "message_decided"
	default:
		return "message_failed"
	}
}

// RenderMessage renders a code or approval message as it should look at
// now. A live message whose expiry has passed is shown as expired, so a late
// refresh can never put a stale code back on screen; the code and link are
// handed to the template only while the message is live.
func (s *Set) RenderMessage(msg otpbot.Message, now time.Time) (string, error) {
	state := msg.State
	if state == "" {
		state = otpbot.StateLive
	}
	ev := msg.Event
	if state == otpbot.StateLive && ev.Expired(now) {
		state = otpbot.StateExpired
	}
	if ev.Decided() && (state == otpbot.StateLive || state == otpbot.StateExpired) {
		// Its own push says the request was answered (the store decides
		// the message at ingest; a message stored before that rule, or one
		// rendered by otpbot render, shows it all the same).
		state = otpbot.StateDecided
	}
	view := MessageView{State: state, Decision: msg.Decision, Declined: declined(msg),
		Card: CardLabel(ev, msg.CardName), Now: now}
	if state == otpbot.StateLive {
		if !ev.ExpiresAt.IsZero() {
			view.Left = ev.ExpiresAt.Sub(now)
			view.LeftText = Remaining(view.Left)
		}
	} else {
		ev = ev.Redacted()
	}
	view.Event = ev
	return s.Render(MessageTemplate(ev.Kind, state), view)
}

// The answers an approval step asks the user to confirm (MessageView.Confirm).
const (
	ConfirmApprove = "approve"
	ConfirmDecline = "decline"
)

// The problems an approval step reports (MessageView.Problem).
const (
	// ProblemUnreachable: HyperCard did not answer (network, timeout, 5xx);
	// the request is still open and a new tap tries again.
	ProblemUnreachable = "unreachable"
	// ProblemRefused: HyperCard answered the decision with an error.
	ProblemRefused = "refused"
)

// ApprovalStep is a transient view of a live approval request, shown only
// in the chat where someone tapped: the confirmation a first tap asks for,
// or the failure of the call to HyperCard. Exactly one field is set.
type ApprovalStep struct {
	Confirm string // ConfirmApprove or ConfirmDecline: approval_confirm
	Problem string // ProblemUnreachable or ProblemRefused: approval_problem
}

// RenderApproval renders an approval request at a step of its answer
// (approval_confirm or approval_problem). A message that is no longer a
// live, unexpired, unanswered approval request renders as RenderMessage
// shows it, so a late tap can never bring back a finished request.
func (s *Set) RenderApproval(msg otpbot.Message, now time.Time, step ApprovalStep) (string, error) {
	state := msg.State
	if state == "" {
		state = otpbot.StateLive
	}
	ev := msg.Event
	if state != otpbot.StateLive || ev.Kind != otpbot.KindApproval || ev.Expired(now) || msg.Decision != "" || ev.Decided() ||
		(step.Confirm == "" && step.Problem == "") {
		return s.RenderMessage(msg, now)
	}
	view := MessageView{Event: ev.Redacted(), State: state, Card: CardLabel(ev, msg.CardName), Now: now,
		Confirm: step.Confirm, Problem: step.Problem}
	if !ev.ExpiresAt.IsZero() {
		view.Left = ev.ExpiresAt.Sub(now)
		view.LeftText = Remaining(view.Left)
	}
	name := "approval_problem"
	if step.Confirm != "" {
		name, view.Problem = "approval_confirm", ""
	}
	return s.Render(name, view)
}

// declinedPrefix starts the Decision of a declined request.
const declinedPrefix = "Declined"

// declined reports whether msg's request was declined: by an answer given
// here (its Decision), else by HyperCard's own result.
func declined(msg otpbot.Message) bool {
	if msg.Decision != "" {
		return strings.HasPrefix(msg.Decision, declinedPrefix)
	}
	return msg.Event.AuthState == otpbot.AuthDeclined
}

// DecisionText is what otpbot stores as the Decision of an answered approval
// request and message_decided shows: "Approved by @ann at 12:03 UTC" or
// "Declined by @ann at 12:03 UTC". by names who answered (their @username,
// else their name); at is shown in UTC to the minute.
func DecisionText(approved bool, by string, at time.Time) string {
	verb := "Approved"
	if !approved {
		verb = declinedPrefix
	}
	return verb + " by " + by + " at " + at.UTC().Format("15:04") + " UTC"
}

// Remaining formats the time left of a code as m:ss (h:mm:ss from an hour
// on). It rounds to the nearest second, so a refresh that runs a little
// early or late around a countdown step (expiry minus a multiple of
// codes.countdown_interval) shows the same round value, and a positive
// remainder never shows as 0:00.
func Remaining(d time.Duration) string {
	if d <= 0 {
		return "0:00"
	}
	sec := int64(d.Round(time.Second) / time.Second)
	if sec == 0 {
		sec = 1
	}
	if sec >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", sec/3600, sec/60%60, sec%60)
	}
	return fmt.Sprintf("%d:%02d", sec/60, sec%60)
}

// CardOf returns how a message names the card of ev: "•••• 1234" from
// the card number's last four digits; else, when only the card's id is
// known (HyperCard OPT_CODE, UPay CA_APPLY...), the id's last four
// characters as an id, "card …4505" (never with the card number's mask:
// the tail of an id is not the tail of the number); else "".
func CardOf(ev otpbot.Event) string {
	if ev.CardLast4 != "" {
		return "•••• " + ev.CardLast4
	}
	if ev.CardID != "" {
		return "card " + otpbot.MaskID(ev.CardID)
	}
	return ""
}

// CardLabel is CardOf with the name the chat gave the card (Link.Name):
// "Travel •••• 1234", "Travel (card …4505)"; the name alone when the
// event shows neither number nor id; CardOf when name is "".
func CardLabel(ev otpbot.Event, name string) string {
	card := CardOf(ev)
	switch {
	case name == "":
		return card
	case card == "":
		return name
	case ev.CardLast4 != "":
		return name + " " + card
	}
	return name + " (" + card + ")"
}

// KeyLabel names a routing key in a chat: a card id masked to its last four
// characters ("card …3333", otpbot.MaskID, as logs and ops reports name
// it), a customer number in full.
func KeyLabel(k otpbot.Key) string {
	if k.Type == otpbot.KeyCard {
		return "card " + otpbot.MaskID(k.ID)
	}
	return string(k.Type) + " " + k.ID
}

// WebLink reports whether link is an http(s) address: only such a link is
// shown as a link or a URL button (Telegram refuses a button with another
// scheme, and the whole message with it); anything else is shown like a
// code.
func WebLink(link string) bool {
	u, err := url.Parse(link)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// PlainText turns rendered HTML into the text it shows (tags removed,
// entities decoded), for a message sent without parse mode after
// Telegram refused the HTML.
func PlainText(s string) string { return html.UnescapeString(stripTags(s)) }

var funcs = template.FuncMap{
	"weblink": WebLink,
	"card":    CardOf,
	"key":     KeyLabel,
	"left":    Remaining,
	// money joins an amount and its currency ("1.00 EUR"); the currency may
	// be empty. Without an amount (a push may lack it, or carry one so
	// malformed that it was dropped) it is "", so that no "Amount" line
	// shows a bare currency.
	"money": Money,
	// when prints a time in UTC to the minute, the way history lists it.
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	// clock prints a time in UTC with seconds.
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	// eventTime is when an event happened, or when it arrived if the push
	// does not say.
	"eventTime": func(ev otpbot.Event) time.Time {
		if !ev.OccurredAt.IsZero() {
			return ev.OccurredAt
		}
		return ev.ReceivedAt
	},
	"target": func(t otpbot.Target) string {
		if t.ThreadID == 0 {
			return fmt.Sprintf("chat %d", t.ChatID)
		}
		return fmt.Sprintf("chat %d, topic %d", t.ChatID, t.ThreadID)
	},
}

// Money joins an amount and its currency ("12.50 USD"), the amount in
// the currency's minor units (otpbot.NormalizeAmount: history written
// before amounts were normalised reads the same); the currency may be
// empty. Without an amount (a push may lack it, or carry one so malformed
// that it was dropped) it is "", so that no "Amount" line shows a bare
// currency.
func Money(amount, currency string) string {
	if amount == "" {
		return ""
	}
	if a, ok := otpbot.NormalizeAmount(amount, currency); ok {
		amount = a
	}
	return strings.TrimSpace(amount + " " + currency)
}

// RenderPages renders n items (history entries, live codes) with the named
// template over as few messages as needed to keep each within MaxLen, in
// order. page builds the view of one message from items[from:to], its part
// number (from 1) and the number of parts. With n == 0 it renders one
// message with no items. A single item too long for a message on its own is
// cut like any other text.
func (s *Set) RenderPages(name string, n int, page func(from, to, part, parts int) any) ([]string, error) {
	t := s.t.Lookup(name)
	if t == nil {
		return nil, fmt.Errorf("templates: no template %q", name)
	}
	fits := func(from, to int) (bool, error) {
		var buf bytes.Buffer
		// n as part and parts is at least as wide as the final numbers.
		if err := t.Execute(&buf, page(from, to, n, n)); err != nil {
			return false, fmt.Errorf("templates: render %s: %w", name, err)
		}
		l, err := VisibleLen(strings.TrimSpace(buf.String()))
		if err != nil {
			return false, fmt.Errorf("templates: render %s: %w", name, err)
		}
		return l <= MaxLen, nil
	}
	// Greedy: grow each page while it fits. A page is rendered once per
	// item it holds, which is cheap for the few dozen items of a command
	// reply.
	var bounds [][2]int
	for from := 0; from < n; {
		to := from + 1
		for to < n {
			ok, err := fits(from, to+1)
			if err != nil {
				return nil, err
			}
			if !ok {
				break
			}
			to++
		}
		bounds = append(bounds, [2]int{from, to})
		from = to
	}
	if n == 0 {
		bounds = [][2]int{{0, 0}}
	}
	out := make([]string, 0, len(bounds))
	for i, b := range bounds {
		text, err := s.Render(name, page(b[0], b[1], i+1, len(bounds)))
		if err != nil {
			return nil, err
		}
		out = append(out, text)
	}
	return out, nil
}
