package deliver

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/internal/wait"
	"github.com/otpbot/otpbot/templates"
)

// NoticeQueue is where Ops puts its reports: the outbox, as TaskNotice.
type NoticeQueue interface {
	Enqueue(ctx context.Context, tasks ...otpbot.Task) error
}

// OpsRenderer renders the ops templates ("ops_unrouted", "ops_rejected",
// "ops_broken" with a templates.OpsView); templates.Set implements it.
type OpsRenderer interface {
	Render(name string, data any) (string, error)
}

// OpsOptions configure Ops.
type OpsOptions struct {
	// Queue receives the reports as TaskNotice; required when Chat is set.
	Queue NoticeQueue
	// Chat is the ops chat (telegram.ops_chat); ChatID 0 means none: the
	// reports are only logged.
	Chat otpbot.Target
	// Renderer renders the ops templates; nil uses plain built-in texts.
	Renderer OpsRenderer
	Logger   *slog.Logger
	Now      func() time.Time
	// Interval is the least time between two reports in the ops chat;
	// what happens in between is aggregated. Default one minute.
	Interval time.Duration
	// Gather is how long a first report waits for more to aggregate with
	// after a quiet period. Default 3s.
	Gather time.Duration
}

// Ops tells operators what needs their attention: pushes for keys no chat
// is linked to, rejected and unknown pushes, targets Telegram refused for
// good, and prolonged Telegram failures. Reports are aggregated ("3 pushes
// for unlinked card …1234") and sent at most once per interval to the ops
// chat through the outbox; without an ops chat they are only logged. A
// report never holds a code, a link or a full card number.
//
// All methods are safe on a nil *Ops (they do nothing).
type Ops struct {
	opts OpsOptions
	log  *slog.Logger
	now  func() time.Time
	kick chan struct{}

	mu        sync.Mutex
	buckets   map[string]*opsBucket
	lastFlush time.Time
}

type opsCategory int

const (
	opsUnrouted opsCategory = iota
	opsRejected
	opsUnknown
	opsBroken
	opsFailing
	opsRefused
	opsDegraded
	opsExpired // a code that expired on arrival
	opsNotable // a history event an operator must act on (a failed card application)
)

type opsBucket struct {
	cat         opsCategory
	ev          otpbot.Event // redacted
	target      otpbot.Target
	reason      string
	count       int
	first, last time.Time
}

// NewOps creates Ops.
func NewOps(opts OpsOptions) *Ops {
	o := &Ops{opts: opts, log: opts.Logger, now: opts.Now, kick: make(chan struct{}, 1), buckets: map[string]*opsBucket{}}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.opts.Interval <= 0 {
		o.opts.Interval = time.Minute
	}
	if o.opts.Gather <= 0 {
		o.opts.Gather = 3 * time.Second
	}
	return o
}

// Report records a push that needs an operator: unrouted (no chat linked),
// rejected (authentic but invalid), of an unknown event, a code that
// expired on arrival (its Reason says how old it was), or a history event
// with an Alert (a failed card application, which names no card so no
// cardholder hears of it). Other pushes and repeats are ignored. It never
// blocks on Telegram.
func (o *Ops) Report(_ context.Context, ev otpbot.Event, res otpbot.IngestResult) {
	if o == nil || res.Duplicate {
		return
	}
	var cat opsCategory
	reason := ev.Reason
	switch {
	case res.Outcome == otpbot.OutcomeUnrouted:
		cat = opsUnrouted
	case res.Outcome == otpbot.OutcomeRejected || ev.Kind == otpbot.KindRejected:
		cat = opsRejected
	case res.Outcome == otpbot.OutcomeExpired:
		cat = opsExpired
	case ev.Kind == otpbot.KindUnknown:
		cat = opsUnknown
	case ev.Alert != "":
		cat = opsNotable
		if reason == "" {
			reason = ev.Remark
		}
	default:
		return
	}
	ev = ev.Redacted()
	key := "-"
	if k, ok := ev.RouteKey(); ok {
		key = k.String()
	}
	o.add(fmt.Sprintf("%d|%s|%s|%s", cat, ev.Provider, ev.Name, key), opsBucket{cat: cat, ev: ev, reason: reason})
}

// Degraded records a code or approval request that was delivered without
// some of its display fields (missing or malformed in the push): the
// cardholder got the code, but the platform sends something otpbot cannot
// show. ev is redacted; it never blocks on Telegram. The webhooks call it
// at most once a minute per provider, event and fields.
func (o *Ops) Degraded(_ context.Context, ev otpbot.Event, fields []string) {
	if o == nil {
		return
	}
	ev = ev.Redacted()
	list := strings.Join(fields, ", ")
	o.add(fmt.Sprintf("%d|%s|%s|%s", opsDegraded, ev.Provider, ev.Name, list),
		opsBucket{cat: opsDegraded, ev: ev, reason: list})
}

// Broken records that Telegram refused target for good.
func (o *Ops) Broken(target otpbot.Target, reason string) {
	if o == nil {
		return
	}
	o.add(fmt.Sprintf("%d|%s", opsBroken, target), opsBucket{cat: opsBroken, target: target, reason: reason})
}

// Refused records that Telegram refused a message for target as a bad
// request (HTML it cannot parse, a button it rejects): retrying the same
// request cannot help, so an operator should look at the templates or the
// push. reason is Telegram's description, never the message.
func (o *Ops) Refused(target otpbot.Target, reason string) {
	if o == nil {
		return
	}
	o.add(fmt.Sprintf("%d|%s", opsRefused, target), opsBucket{cat: opsRefused, target: target, reason: reason})
}

// Failing records that sends to target keep failing (attempts so far).
func (o *Ops) Failing(target otpbot.Target, attempts int, err error) {
	if o == nil {
		return
	}
	reason := ""
	if err != nil {
		reason = err.Error()
	}
	o.add(fmt.Sprintf("%d|%s", opsFailing, target), opsBucket{cat: opsFailing, target: target, reason: reason})
}

func (o *Ops) add(key string, b opsBucket) {
	now := o.now()
	o.mu.Lock()
	if cur := o.buckets[key]; cur != nil {
		cur.count++
		cur.last = now
		if b.reason != "" {
			cur.reason = b.reason
		}
	} else {
		b.count, b.first, b.last = 1, now, now
		o.buckets[key] = &b
	}
	o.mu.Unlock()
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// Run flushes the reports until ctx ends: a first report after a quiet
// period goes out after a short gathering delay, later ones at most once
// per interval. A last flush is attempted on the way out.
func (o *Ops) Run(ctx context.Context) error {
	if o == nil {
		<-ctx.Done()
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = o.Flush(flushCtx)
			cancel()
			return nil
		case <-o.kick:
		}
		o.mu.Lock()
		pause := o.opts.Gather
		if next := o.lastFlush.Add(o.opts.Interval); next.Sub(o.now()) > pause {
			pause = next.Sub(o.now())
		}
		o.mu.Unlock()
		if !wait.Sleep(ctx, pause) {
			continue // the ctx case above flushes
		}
		if err := o.Flush(ctx); err != nil {
			o.log.Warn("ops report not queued; kept for the next one", "err", err)
		}
	}
}

// Flush sends (or, without an ops chat, logs) everything recorded since
// the last flush as one report. On a queue failure the records are kept.
func (o *Ops) Flush(ctx context.Context) error {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	buckets := make([]*opsBucket, 0, len(o.buckets))
	for _, b := range o.buckets {
		buckets = append(buckets, b)
	}
	o.mu.Unlock()
	if len(buckets) == 0 {
		return nil
	}
	sort.Slice(buckets, func(i, j int) bool {
		if buckets[i].cat != buckets[j].cat {
			return buckets[i].cat < buckets[j].cat
		}
		return buckets[i].first.Before(buckets[j].first)
	})
	for _, b := range buckets {
		o.log.Warn("ops report", b.logAttrs()...)
	}
	now := o.now()
	if o.opts.Chat.ChatID != 0 && o.opts.Queue != nil {
		text := o.compose(buckets)
		task := otpbot.Task{
			ID:       "ops:" + strconv.FormatInt(now.UnixNano(), 10),
			Kind:     otpbot.TaskNotice,
			Priority: otpbot.PriorityOther,
			Target:   o.opts.Chat,
			Due:      now,
			Created:  now,
			Text:     text,
		}
		if err := o.opts.Queue.Enqueue(ctx, task); err != nil {
			return fmt.Errorf("ops: enqueue report: %w", err)
		}
	}
	o.mu.Lock()
	// Drop what was reported; counts that grew meanwhile stay as new.
	for k, cur := range o.buckets {
		for _, b := range buckets {
			if cur == b {
				delete(o.buckets, k)
			}
		}
	}
	o.lastFlush = now
	o.mu.Unlock()
	return nil
}

// maxReport keeps a report under Telegram's 4096 characters with room for
// the closing line.
const maxReport = 3800

// compose renders buckets into one report, most important first.
func (o *Ops) compose(buckets []*opsBucket) string {
	var parts []string
	size := 0
	for i, b := range buckets {
		part := o.section(b)
		if n := utf8.RuneCountInString(part); size+n > maxReport {
			parts = append(parts, o.render("ops_more", len(buckets)-i, func() string {
				return fmt.Sprintf("…and %d more (see the logs).", len(buckets)-i)
			}))
			break
		} else {
			size += n + 2
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "\n\n")
}

// section is one bucket's text, from its template (or the built-in text),
// plus how often it happened.
func (o *Ops) section(b *opsBucket) string {
	view := templates.OpsView{Event: b.ev, Keys: b.ev.Keys(), Target: b.target, Reason: b.reason}
	text := o.render(b.template(), view, b.plain)
	if b.count > 1 {
		text += "\n" + o.render("ops_repeat", templates.OpsRepeatView{Count: b.count, Since: b.first}, func() string {
			return fmt.Sprintf("<i>%d times since %s UTC</i>", b.count, b.first.UTC().Format("15:04:05"))
		})
	}
	return text
}

// render renders the named ops template with data; without templates
// (Ops built with no Renderer: logs-only setups, tests), or should one
// fail, builtin gives the text.
func (o *Ops) render(name string, data any, builtin func() string) string {
	if o.opts.Renderer == nil {
		return builtin()
	}
	out, err := o.opts.Renderer.Render(name, data)
	if err != nil {
		o.log.Warn("ops template failed; using the built-in text", "template", name, "err", err)
		return builtin()
	}
	return out
}

// template is the name of the template of b's category.
func (b *opsBucket) template() string {
	return [...]string{"ops_unrouted", "ops_rejected", "ops_unknown", "ops_broken", "ops_failing", "ops_refused",
		"ops_degraded", "ops_expired", "ops_notable"}[b.cat]
}

// plain is the built-in text of a bucket, escaped for HTML: what Ops
// sends without templates (see render).
func (b *opsBucket) plain() string {
	e := html.EscapeString
	ev := b.ev
	var keys []string
	for _, k := range ev.Keys() {
		keys = append(keys, e(keyText(k)))
	}
	what := e(string(ev.Provider) + " " + ev.Name)
	var s string
	switch b.cat {
	case opsUnrouted:
		s = "📭 <b>Unrouted " + what + "</b>"
	case opsRejected:
		s = "⚠️ <b>Rejected " + what + "</b>"
	case opsUnknown:
		s = "❓ <b>Unknown event " + what + "</b>"
	case opsBroken:
		s = "🔌 <b>Delivery stopped</b> to " + e(b.target.String())
	case opsFailing:
		s = "⏳ <b>Telegram keeps failing</b> for " + e(b.target.String())
	case opsRefused:
		s = "❗ <b>Telegram refused a message</b> for " + e(b.target.String())
	case opsDegraded:
		s = "🩹 <b>Delivered " + what + " without some fields</b>"
	case opsExpired:
		s = "⌛ <b>" + what + " expired on arrival</b>: not sent"
	case opsNotable:
		s = "📣 <b>" + what + ": " + e(ev.Alert) + "</b>"
		if ev.CardType != "" {
			s += "\nCard type " + e(ev.CardType)
		}
	}
	if len(keys) > 0 {
		s += "\n" + strings.Join(keys, ", ")
	}
	if ev.CardLast4 != "" {
		s += "\n💳 •••• " + e(ev.CardLast4)
	}
	switch {
	case b.reason == "":
	case b.cat == opsDegraded:
		s += "\nMissing: " + e(b.reason)
	default:
		s += "\nReason: " + e(b.reason)
	}
	return s
}

// keyText names a key for ops: card ids masked (some platforms use the card
// number as id), customer numbers in full.
func keyText(k otpbot.Key) string {
	if k.Type == otpbot.KeyCard {
		return "card " + otpbot.MaskID(k.ID)
	}
	return string(k.Type) + " " + k.ID
}

func (b *opsBucket) logAttrs() []any {
	cat := [...]string{"unrouted", "rejected", "unknown", "broken", "failing", "refused", "degraded", "expired", "event"}[b.cat]
	attrs := []any{"report", cat, "count", b.count}
	if b.ev.Name != "" {
		attrs = append(attrs, "provider", string(b.ev.Provider), "event", b.ev.Name)
	}
	if k, ok := b.ev.RouteKey(); ok {
		attrs = append(attrs, "key", k)
	}
	if b.ev.CardLast4 != "" {
		attrs = append(attrs, "card", otpbot.CardNumber(b.ev.CardLast4))
	}
	if b.target.ChatID != 0 {
		attrs = append(attrs, "target", b.target)
	}
	if b.reason != "" {
		attrs = append(attrs, "reason", b.reason)
	}
	return attrs
}
