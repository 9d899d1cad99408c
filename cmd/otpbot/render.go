package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/deliver"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/templates"
	"github.com/otpbot/otpbot/webhooks"
)

// maxRenderBody bounds what render reads, like http.max_body_bytes bounds
// a push.
const maxRenderBody = 16 << 20

// cmdRender prints the Telegram message(s) a push body would produce, as
// the cardholder would see them, without sending anything: the live
// message with its buttons, then the same message once the code expired.
func cmdRender(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, configFlag := newFlags("render", stderr)
	provider := fs.String("provider", "", "upay or hypercard")
	file := fs.String("file", "", "push body (JSON); stdin when empty or -")
	asHTML := fs.Bool("html", false, "print the HTML sent to Telegram instead of the text shown")
	at := fs.String("at", "", "render as if the push arrived at this time (RFC 3339 or Unix seconds); default now")
	lang := fs.String("lang", "", "the chat's language (en, ru, zh, es, pt-BR, tr, or one templates.dir adds); default templates.default_language")
	zone := fs.String("timezone", "", "the chat's IANA time zone; default templates.timezone")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	parse, err := parserFor(*provider)
	if err != nil {
		return err
	}
	path, err := configPath(*configFlag, getenv)
	if err != nil {
		return err
	}
	cfg, err := loadRenderConfig(path, getenv)
	if err != nil {
		return err
	}
	now := time.Now()
	if *at != "" {
		if now, err = parseWhen(*at); err != nil {
			return &usageError{"render: -at: " + err.Error()}
		}
	}
	body, err := readBody(*file)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	tmpl, err := templates.Load(templateOptions(&cfg))
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	loc, err := renderLocale(tmpl, *lang, *zone)
	if err != nil {
		return err
	}
	// Render shows no identity, so a throwaway key stands in for the
	// store's installation secret.
	parser := webhooks.Parser{IDSecret: []byte(randomHex(webhooks.MinIDSecretBytes)), Codes: codeConfig(&cfg),
		AuthResults: validAuthResults(&cfg)}
	ev, err := parse(parser, body, now)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	return renderEvent(stdout, loc, ev, now, *asHTML)
}

// renderLocale is the templates render writes in: -lang and -timezone,
// else the configured defaults.
func renderLocale(tmpl *templates.Set, lang, zone string) (*templates.Locale, error) {
	l := tmpl.DefaultLanguage()
	if lang != "" {
		var ok bool
		if l, ok = tmpl.Match(lang); !ok {
			return nil, &usageError{fmt.Sprintf("render: -lang %q: not one of %s", lang, strings.Join(tmpl.Languages(), ", "))}
		}
	}
	if zone != "" {
		if _, err := templates.LoadZone(zone); err != nil {
			return nil, &usageError{fmt.Sprintf("render: -timezone %q: not an IANA time zone", zone)}
		}
	}
	return tmpl.For(l, zone), nil
}

// parserFor picks the parser of a provider.
func parserFor(provider string) (func(webhooks.Parser, []byte, time.Time) (otpbot.Event, error), error) {
	switch strings.ToLower(provider) {
	case "upay":
		return webhooks.Parser.ParseUPay, nil
	case "hypercard":
		return webhooks.Parser.ParseHyperCard, nil
	case "":
		return nil, &usageError{"-provider is required: upay or hypercard"}
	}
	return nil, &usageError{fmt.Sprintf("-provider must be upay or hypercard (got %q)", provider)}
}

// readBody reads the push body from a file, or stdin for "" and "-".
func readBody(path string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "" && path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxRenderBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(b) > maxRenderBody {
		return nil, errors.New("read body: larger than 16 MiB")
	}
	return b, nil
}

func parseWhen(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Parse(time.RFC3339, s)
}

// renderEvent prints what an event becomes.
func renderEvent(w io.Writer, tmpl *templates.Locale, ev otpbot.Event, now time.Time, asHTML bool) error {
	route := "no card or customer: nobody would receive it"
	if k, ok := ev.RouteKey(); ok {
		route = "every chat linked to " + keyLabel(k)
		if k.Type == otpbot.KeyCard {
			route = "every chat linked to card " + otpbot.MaskID(k.ID)
		}
	}
	fmt.Fprintf(w, "%s %s (%s)\n", ev.Provider, ev.Name, ev.Kind)
	if !ev.Kind.Pushed() {
		where := "in the history of every event (admins: /history events)"
		if k, ok := ev.RouteKey(); ok {
			where = "in the history of " + keyLabel(k) + " and of every event (admins: /history events)"
		}
		switch ev.Kind {
		case otpbot.KindRejected:
			fmt.Fprintf(w, "Rejected: %s. Acknowledged, recorded %s for ops, not sent to any chat.\n", ev.Reason, where)
		case otpbot.KindUnknown:
			fmt.Fprintf(w, "Unknown event: acknowledged, recorded %s, not sent to any chat.\n", where)
		default:
			fmt.Fprintf(w, "Recorded %s, not sent to any chat.\n", where)
		}
		if ev.Alert != "" {
			fmt.Fprintf(w, "Ops are told: %s.\n", ev.Alert)
		}
		return renderHistoryLine(w, tmpl, ev, asHTML)
	}
	msg := otpbot.Message{Group: ev.Group, Event: ev, State: otpbot.NextState("", ev), UpdatedAt: now}
	expired := ev.Expired(now)
	header := "\n--- the message ---"
	if !expired {
		fmt.Fprintf(w, "Sent to %s.\n", route)
	} else {
		fmt.Fprintf(w, "Not sent: it expired at %s, before %s; otpbot records it in history and sends nothing to %s.\n",
			ev.ExpiresAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), route)
		// What the deliverer makes of a live message past its expiry: the
		// expired form, which has no buttons.
		msg.State = otpbot.StateExpired
		header = "\n--- the message, were it sent: expired ---"
	}
	text, err := tmpl.RenderMessage(msg, now)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	fmt.Fprintln(w, header)
	printMessage(w, text, sentButtons(tmpl, msg), asHTML)
	if !ev.ExpiresAt.IsZero() && !expired && !msg.State.Final() {
		expired, err := tmpl.RenderMessage(msg, ev.ExpiresAt)
		if err != nil {
			return fmt.Errorf("render: %w", err)
		}
		fmt.Fprintf(w, "\n--- the same message at expiry (%s) ---\n", ev.ExpiresAt.UTC().Format(time.RFC3339))
		printMessage(w, expired, nil, asHTML)
	}
	return nil
}

// renderHistoryLine prints the /history line of a history-only event.
func renderHistoryLine(w io.Writer, tmpl *templates.Locale, ev otpbot.Event, asHTML bool) error {
	outcome := otpbot.OutcomeRecorded
	if ev.Kind == otpbot.KindRejected {
		outcome = otpbot.OutcomeRejected
	}
	view := templates.HistoryView{Key: otpbot.EventsKey, Part: 1, Parts: 1,
		Entries: []otpbot.HistoryEntry{{Event: ev.Redacted(), Outcome: outcome}}}
	text, err := tmpl.Render("history", view)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	fmt.Fprintln(w, "\n--- its line in /history events ---")
	_, line, _ := strings.Cut(text, "\n") // without the title
	printMessage(w, line, nil, asHTML)
	return nil
}

// sentButtons is the keyboard the deliverer sends with msg: the live
// buttons (copy the code, open the link, "Used it") only while it is live,
// none once its state is final. (Approve / Decline under an approval
// request need providers.hypercard.api and the running bot; render shows
// the keyboard without them.)
func sentButtons(loc *templates.Locale, msg otpbot.Message) [][]telegram.Button {
	if msg.State != otpbot.StateLive {
		return nil
	}
	return deliver.DefaultButtons(loc, msg)
}

// keyLabel names a routing key in render's own (English) lines: a card id
// masked to its last four characters, a customer number in full.
func keyLabel(k otpbot.Key) string {
	if k.Type == otpbot.KeyCard {
		return "card " + otpbot.MaskID(k.ID)
	}
	return string(k.Type) + " " + k.ID
}

// printMessage prints a message and its buttons.
func printMessage(w io.Writer, text string, buttons [][]telegram.Button, asHTML bool) {
	if asHTML {
		fmt.Fprintln(w, text)
	} else {
		fmt.Fprintln(w, htmlToText(text))
	}
	for _, row := range buttons {
		var labels []string
		for _, b := range row {
			labels = append(labels, "[ "+b.Text+" ]")
		}
		fmt.Fprintln(w, strings.Join(labels, " "))
	}
}

var (
	anchorRE = regexp.MustCompile(`(?s)<a\s+href="([^"]*)"[^>]*>(.*?)</a>`)
	tagRE    = regexp.MustCompile(`<[^>]*>`)
)

// htmlToText shows Telegram HTML the way a chat displays it: tags gone,
// entities decoded, a link as its text followed by its address.
func htmlToText(s string) string {
	// The address is parked between two control characters, which no tag
	// contains, while the tags go.
	s = anchorRE.ReplaceAllString(s, "$2 \x00$1\x01")
	s = tagRE.ReplaceAllString(s, "")
	s = strings.NewReplacer("\x00", "<", "\x01", ">").Replace(s)
	return html.UnescapeString(s)
}
