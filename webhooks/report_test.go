package webhooks

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/templates"
)

// clock is a test clock the handler reads and the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// degradedMetric reads otpbot_pushes_degraded_total for one label set.
func (e *env) degradedMetric(t *testing.T, provider, event, field string) float64 {
	t.Helper()
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "otpbot_pushes_degraded_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["provider"] == provider && labels["event"] == event && labels["field"] == field {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestDegradedCodesReachOpsOncePerMinute: every code delivered without a
// field is counted and named in its log line, but ops hears of each kind
// (provider, event, fields) at most once per DegradedReportInterval, so a
// platform that leaves out the trace of every push does not flood the ops
// chat. Another kind, or the next interval, is told again; a repeat of a
// push is not told at all.
func TestDegradedCodesReachOpsOncePerMinute(t *testing.T) {
	clk := &clock{t: now}
	e := newEnvWith(t, Config{
		UPay:      UPayConfig{Enabled: true, Token: testToken},
		HyperCard: HyperCardConfig{Enabled: true, Token: testToken},
	}, func(o *Options) { o.Now = clk.now })
	noTrace := func(n int) []byte {
		return []byte(fmt.Sprintf(`{"event":"3DS_OTP","orderNo":"PN-D%d","timestamp":1755248905430,"detail":`+
			`{"cardId":"C1","cardNumber":"5235560000001234","customerNo":"CU1001","3dsCode":"0047%02d","orderNo":"X"}}`, n, n))
	}
	upay := func(body []byte) {
		t.Helper()
		if got := e.post(t, withToken(DefaultUPayPath, testToken), body, nil); !isUPayAck(got) {
			t.Fatalf("push refused: %d %q", got.status, got.body)
		}
	}
	calls := func() int { return len(e.rep.degradedCalls()) }

	upay(noTrace(1))
	upay(noTrace(1)) // a repeat
	clk.add(30 * time.Second)
	upay(noTrace(2))
	if n := calls(); n != 1 {
		t.Fatalf("ops told %d times within a minute, want once", n)
	}
	// Another set of fields is another report.
	upay(mustRead("upay", "3ds_otp_empty_card_number.json"))
	if got := e.rep.degradedCalls(); len(got) != 2 || !slices.Equal(got[1], []string{"detail.cardNumber"}) {
		t.Fatalf("degraded calls %q, want a second one for detail.cardNumber", got)
	}
	// The next minute, the first kind again.
	clk.add(31 * time.Second)
	upay(noTrace(3))
	if n := calls(); n != 3 {
		t.Fatalf("ops told %d times, want 3 (once more after the interval)", n)
	}

	for _, ev := range e.rep.degraded.recorded() {
		if ev.Code != "" || ev.Link != "" {
			t.Error("the degraded report received a code")
		}
	}
	if n := e.degradedMetric(t, "upay", "3DS_OTP", "trace"); n != 3 {
		t.Errorf("otpbot_pushes_degraded_total{field=trace} = %v, want 3 (repeats not counted)", n)
	}
	if n := e.degradedMetric(t, "upay", "3DS_OTP", "detail.cardNumber"); n != 1 {
		t.Errorf("otpbot_pushes_degraded_total{field=detail.cardNumber} = %v, want 1", n)
	}
	logs := e.logs.String()
	if strings.Count(logs, "degraded=trace") != 4 || !strings.Contains(logs, "degraded=detail.cardNumber") {
		t.Errorf("every push line of a degraded code names its fields:\n%s", logs)
	}
	// Every one of those codes was delivered.
	for _, ev := range e.ing.ingested() {
		if ev.Kind != otpbot.KindCode || ev.Code == "" {
			t.Errorf("stored %s %q (%s), want a code", ev.Kind, ev.Code, ev.Reason)
		}
	}
}

// plainReporter is a Reporter without Degraded, as one written before it
// existed.
type plainReporter struct{ eventLog }

func (p *plainReporter) Report(_ context.Context, ev otpbot.Event, _ otpbot.IngestResult) {
	p.record(ev)
}

// TestDegradedWithAPlainReporter: a Reporter that does not implement
// DegradedReporter still gets its reports, and degraded codes are still
// delivered and counted.
func TestDegradedWithAPlainReporter(t *testing.T) {
	rep := &plainReporter{}
	e := newEnvWith(t, Config{UPay: UPayConfig{Enabled: true, Token: testToken}},
		func(o *Options) { o.Reporter = rep })
	for _, f := range []string{"3ds_otp_missing_trace.json", "3ds_otp_missing_code.json"} {
		if got := e.post(t, withToken(DefaultUPayPath, testToken), mustRead("upay", f), nil); !isUPayAck(got) {
			t.Fatalf("%s refused: %d %q", f, got.status, got.body)
		}
	}
	if n := e.degradedMetric(t, "upay", "3DS_OTP", "trace"); n != 1 {
		t.Errorf("otpbot_pushes_degraded_total{field=trace} = %v, want 1", n)
	}
	if got := rep.recorded(); len(got) != 1 || got[0].Kind != otpbot.KindRejected {
		t.Errorf("reports %+v, want the rejected push only", got)
	}
}

func TestThrottle(t *testing.T) {
	var th throttle
	if !th.allow("a", now, time.Minute) || th.allow("a", now.Add(59*time.Second), time.Minute) {
		t.Fatal("a key went through twice within its interval")
	}
	if !th.allow("b", now, time.Minute) || !th.allow("a", now.Add(time.Minute), time.Minute) {
		t.Fatal("another key, or the next interval, was held back")
	}
	// Past throttleKeys, the keys whose interval is over are forgotten:
	// the map stays bounded, the keys still within theirs are kept.
	later := now.Add(time.Hour)
	th.allow("recent", later, time.Minute)
	for i := range 2 * throttleKeys {
		th.allow(fmt.Sprint("k", i), later.Add(time.Duration(i)*time.Minute), time.Minute)
	}
	if n := len(th.last); n > throttleKeys+1 {
		t.Errorf("the throttle holds %d keys, want at most %d", n, throttleKeys+1)
	}
	if th.allow(fmt.Sprint("k", 2*throttleKeys-1), later.Add(time.Duration(2*throttleKeys-1)*time.Minute), time.Minute) {
		t.Error("the newest key was forgotten within its interval")
	}
}

// TestDegradedPushesRenderWithoutTheField: a code or approval request
// delivered without some field, through a real HTTP push, renders with its
// code and a countdown, and with no trace of what was missing or
// malformed: no half line, no malformed text.
func TestDegradedPushesRenderWithoutTheField(t *testing.T) {
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		provider, file string
		want           []string
		avoid          []string
	}{
		{"upay", "3ds_otp_missing_trace.json", []string{"<code>004711</code>", "💳 •••• 1234", "expires in 5:00"}, nil},
		{"upay", "3ds_otp_empty_card_number.json", []string{"<code>004711</code>", "expires in 5:00"}, []string{"1234"}},
		{"upay", "3ds_confirm_degraded.json", []string{"<code>B8L3</code>", "expires in 5:00"},
			[]string{"Card", "Merchant", "Amount", "12,50", "refund", "Euro", "n/a"}},
		{"upay", "ne_verify_missing_type.json", []string{"Verification code", "<code>7777</code>", "expires in 5:00"}, nil},
		{"hypercard", "opt_code_no_create_time.json", []string{"<code>777111</code>", "expires in 5:00"}, nil},
		{"hypercard", "auth_3ds_malformed.json", []string{"Purchase waiting for approval", "Country: Germany", "expires in 5:00"},
			[]string{"Merchant", "Amount", "fee", "1.00", "n/a", "pending", "five", "Status"}},
	}
	for _, tt := range tests {
		t.Run(tt.provider+"/"+tt.file, func(t *testing.T) {
			e := newEnv(t, Config{
				UPay:      UPayConfig{Enabled: true, Token: testToken},
				HyperCard: HyperCardConfig{Enabled: true, Token: testToken},
			})
			path, ack := DefaultUPayPath, isUPayAck
			if tt.provider == "hypercard" {
				path, ack = DefaultHyperCardPath, isHyperCardAck
			}
			if got := e.post(t, withToken(path, testToken), mustRead(tt.provider, tt.file), nil); !ack(got) {
				t.Fatalf("push refused: %d %q", got.status, got.body)
			}
			evs := e.ing.ingested()
			if len(evs) != 1 || !evs[0].Kind.Pushed() {
				t.Fatalf("store got %+v, want one delivered event", evs)
			}
			out, err := tmpl.RenderMessage(otpbot.Message{Group: evs[0].Group, Event: evs[0], State: otpbot.StateLive}, now)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("the message lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tt.avoid {
				if strings.Contains(out, a) {
					t.Errorf("the message shows %q:\n%s", a, out)
				}
			}
		})
	}
}
