package webhooks

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/otpbot/otpbot"
)

// Reporter is told about pushes ops should see: unrouted, rejected and
// unknown ones, codes that expired on arrival (Outcome expired, Reason
// saying how old the code was), and history events with an Alert (a
// failed card application). It is called before the provider
// gets its answer, so it must only queue its report (never wait on
// Telegram). It receives the event without its code or link.
type Reporter interface {
	Report(ctx context.Context, ev otpbot.Event, res otpbot.IngestResult)
}

// FollowUps adds a history-only event to the conversation of an earlier
// code message of the same transaction (the CC_CONSUME after a 3DS_OTP with
// the same UPay trace), in the chats that asked for it. The handler calls
// it for a new (not repeated) info event with a trace, after Ingest
// committed and before the provider gets its answer, so it must be quick
// and only queue work (UPay wants its answer within 5 seconds). It
// receives the event without its code or link. What it queues is a
// courtesy: the event is already in history whatever becomes of it.
type FollowUps interface {
	FollowUp(ctx context.Context, ev otpbot.Event)
}

// DegradedReporter is what a Reporter may also implement to hear of the
// code events and approval requests that were delivered although a field
// other than their code and routing keys was missing or malformed (a UPay
// 3DS_OTP without trace, a card number without four digits, an AUTH_3DS
// without expired_time...): the message shows the field as absent, or a
// default (the codes' TTL for an expiry), and an operator should know that
// the platform sends such pushes.
//
// The handler calls it at most once per DegradedReportInterval for each
// provider, event name and set of fields, after Ingest committed and
// before the provider gets its answer, so it must only queue its report.
// ev is one such push, without its code or link; fields are the names the
// push uses ("trace", "detail.cardNumber", "expired_time"), in the
// document's order. Every such push is counted in
// otpbot_pushes_degraded_total whatever the Reporter does.
type DegradedReporter interface {
	Degraded(ctx context.Context, ev otpbot.Event, fields []string)
}

// DegradedReportInterval is the least time between two calls of
// DegradedReporter.Degraded for the same provider, event and fields.
const DegradedReportInterval = time.Minute

// tell hands a stored push to the hooks that want to hear of it: ops (an
// unrouted, rejected or unknown push; a code delivered without some
// field) and the follow-ups of earlier code messages (an info event with a
// trace). Repeats are not told again.
func (h *Handler) tell(ctx context.Context, p *provider, ps *push, now time.Time) {
	ev, res := ps.ev, ps.res
	if res.Duplicate {
		return
	}
	if h.rep != nil && (res.Outcome == otpbot.OutcomeUnrouted || res.Outcome == otpbot.OutcomeRejected ||
		res.Outcome == otpbot.OutcomeExpired || ev.Kind == otpbot.KindRejected || ev.Kind == otpbot.KindUnknown ||
		ev.Alert != "") {
		h.rep.Report(ctx, ev.Redacted(), res)
	}
	if len(ps.degraded) > 0 && ev.Kind.Pushed() {
		for _, f := range ps.degraded {
			h.metrics.degraded.WithLabelValues(string(p.name), ev.Name, f).Inc()
		}
		key := string(p.name) + "|" + ev.Name + "|" + strings.Join(ps.degraded, ",")
		if h.degraded != nil && h.throttle.allow(key, now, DegradedReportInterval) {
			h.degraded.Degraded(ctx, ev.Redacted(), append([]string(nil), ps.degraded...))
		}
	}
	if h.followUps != nil && ev.Kind == otpbot.KindInfo && ev.Trace != "" {
		h.followUps.FollowUp(ctx, ev.Redacted())
	}
}

// throttleKeys bounds the throttle's memory: past it, keys whose interval
// is over are forgotten. Keys are provider, known event and a set of its
// declared fields, so there are few in practice.
const throttleKeys = 256

// throttle lets one call per key through per interval.
type throttle struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// allow reports whether a call for key may go through at now, and if so
// counts it.
func (t *throttle) allow(key string, now time.Time, every time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.last[key]; ok && now.Sub(last) < every {
		return false
	}
	if t.last == nil {
		t.last = map[string]time.Time{}
	}
	if len(t.last) >= throttleKeys {
		for k, last := range t.last {
			if now.Sub(last) >= every {
				delete(t.last, k)
			}
		}
	}
	t.last[key] = now
	return true
}
