package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/webhooks"
)

// TestMain lets the test binary serve as the bare handler too: the tool
// re-executes itself for it.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == bareFlag {
		if err := serveBare(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	tests := []struct {
		name          string
		in            []time.Duration
		p50, p99, max float64
	}{
		{"empty", nil, 0, 0, 0},
		{"one", ms(7), 7, 7, 7},
		{"nearest rank", ms(hundred...), 50, 99, 100},
		{"outlier only in the tail", ms(1, 1, 1, 1, 1, 1, 1, 1, 1, 500), 1, 500, 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := summarize(tc.in)
			if got.P50 != tc.p50 || got.P99 != tc.p99 || got.Max != tc.max || got.Count != len(tc.in) {
				t.Fatalf("summarize = %+v, want p50 %g p99 %g max %g", got, tc.p50, tc.p99, tc.max)
			}
		})
	}
}

func TestCodeIn(t *testing.T) {
	tests := []struct{ text, want string }{
		{"🔐 <b>3-D Secure code</b>\n<code>10000042</code>\nCard •••• 1234", "10000042"},
		{"⌛ <b>Code expired</b>\nCard •••• 1234", ""},
		{"<code>unterminated", ""},
	}
	for _, tc := range tests {
		if got := codeIn(tc.text); got != tc.want {
			t.Errorf("codeIn(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

// The pushes the tool sends are what UPay sends: the real parser reads
// them as a 3DS code for the card, with the code the tracker matches on.
func TestPushBodyIsA3DSCode(t *testing.T) {
	now := time.Now()
	body := pushBody("run1", 42, "I7", codeFor(42), now)
	parser := webhooks.Parser{IDSecret: []byte("bench-test-installation-key-0000"), Codes: webhooks.CodeConfig{TTL: time.Minute}}
	ev, err := parser.ParseUPay(body, now)
	if err != nil {
		t.Fatalf("ParseUPay: %v", err)
	}
	if ev.Kind != otpbot.KindCode || ev.Code != "10000042" || ev.CardID != "I7" || ev.CardLast4 != "1234" {
		t.Fatalf("event = %+v", ev)
	}
	other, _ := parser.ParseUPay(pushBody("run1", 43, "I7", codeFor(43), now), now)
	if other.ID == ev.ID {
		t.Fatalf("two pushes share the dedupe id %q", ev.ID)
	}
}

// Through the whole pipeline on a real bbolt file: a signed push is
// acknowledged, and its sendMessage reaches the fake and is matched to it.
func TestPipelineMatchesDeliveries(t *testing.T) {
	pl := newPipeline(t, "embedded", 3, 1000, time.Minute)
	tr := pl.fake.track()
	res := fixedRate(context.Background(), 50, 6, 5*time.Second, 8, pl.send(3, tr.expect))
	if res.Acked != 6 || res.Failed != 0 {
		t.Fatalf("load = %+v", res)
	}
	if !waitFor(10*time.Second, func() bool { return tr.matched.Load() == 6 }) {
		t.Fatalf("matched %d of 6 deliveries", tr.matched.Load())
	}
	if l := tr.e2e.summary(); l.Count != 6 || l.P50 <= 0 {
		t.Fatalf("e2e = %+v", l)
	}
	if n := len(pl.fake.Messages(7_000_001)); n != 2 {
		t.Fatalf("chat 7000001 got %d messages, want 2 (round robin over 3 chats)", n)
	}
}

// A push the server refuses is counted failed, not acknowledged.
func TestPusherRefusedIsFailure(t *testing.T) {
	pl := newPipeline(t, "embedded", 1, 30, time.Minute)
	pl.p.secret = []byte("wrong key")
	res := closedLoop(context.Background(), 2, 4, 5*time.Second, pl.send(1, nil))
	if res.Acked != 0 || res.Failed != 4 || !strings.Contains(res.FirstErr, "HTTP 401") {
		t.Fatalf("load = %+v", res)
	}
}

// The standalone fake reports each call to the observer, with the 429s
// of the limits set while it runs.
func TestStandaloneObservesAndLimits(t *testing.T) {
	fake, err := startFake()
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	tr := fake.track()
	api, err := tgbotapi.NewBotAPIWithClient(benchToken, fake.Endpoint(), &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("getMe: %v", err)
	}
	send := func(chat int64) error {
		m := tgbotapi.NewMessage(chat, "🔐 <b>code</b>\n<code>777</code>")
		m.ParseMode = "HTML"
		_, err := api.Send(m)
		return err
	}
	tr.expect("777", time.Now())
	if err := send(1); err != nil {
		t.Fatalf("send: %v", err)
	}
	fake.SetLimits(0, 1)
	if err := send(2); err != nil {
		t.Fatalf("first send to chat 2: %v", err)
	}
	if err := send(2); err == nil {
		t.Fatal("second send to chat 2 within a second was accepted")
	}
	if tr.matched.Load() != 1 || tr.sendsOK.Load() != 2 || tr.sends429.Load() != 1 || fake.Count429() != 1 {
		t.Fatalf("matched %d, sends ok %d, 429 %d (fake %d)", tr.matched.Load(), tr.sendsOK.Load(), tr.sends429.Load(), fake.Count429())
	}
	if _, err := bottest.Start(bottest.WithToken("x")); err != nil {
		t.Fatalf("a second fake: %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
		check   func(options) bool
	}{
		{nil, "", func(o options) bool {
			return len(o.Stores) == 2 && len(o.Scenarios) == 8 && o.Rate == 200 && o.Conns == 32 &&
				o.RTT == 80*time.Millisecond && o.RTTJitter == 20*time.Millisecond && o.RTTRate == 28 && o.RTTChats == 420 &&
				o.Commands == 120 && o.Outage == 30*time.Second && o.BusyChats == 20
		}},
		{[]string{"-scenario", "recovery,rtt,busy-chats,commands", "-rtt", "0", "-rtt-jitter", "0"}, "", func(o options) bool {
			return strings.Join(o.Scenarios, ",") == "recovery,rtt,busy-chats,commands" && o.RTT == 0
		}},
		{[]string{"-rtt", "10ms", "-rtt-jitter", "20ms"}, "jitter not above the round trip", nil},
		{[]string{"-rtt", "-1s"}, "must not be negative", nil},
		{[]string{"-outage", "1s"}, "-outage must be at least 3s", nil},
		{[]string{"-commands", "0"}, "-commands and -commands-rate must be positive", nil},
		{[]string{"-store", "redis", "-scenario", "e2e,ingest,e2e"}, "", func(o options) bool {
			return strings.Join(o.Stores, ",") == "redis" && strings.Join(o.Scenarios, ",") == "e2e,ingest"
		}},
		{[]string{"-store", "sqlite"}, "unknown driver", nil},
		{[]string{"-scenario", "soak"}, "unknown scenario", nil},
		{[]string{"-rate", "0"}, "must be positive", nil},
		{[]string{"-pprof", "p", "-bin", "b"}, "", func(o options) bool { return o.Pprof == "p" && o.Bin == "b" }},
	}
	for _, tc := range tests {
		o, err := parseFlags(tc.args, &bytes.Buffer{})
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.wantErr)
		case tc.wantErr == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.check != nil && !tc.check(o):
			t.Errorf("%v: options %+v", tc.args, o)
		}
	}
}

// The table quotes each figure against its ceiling and says which
// targets were missed.
func TestPrintReport(t *testing.T) {
	r := &Report{
		Meta: Meta{Options: options{Stores: []string{"embedded", "redis"}, Conns: 32, N: 100, Rate: 200, Duration: time.Second}},
		Baseline: Baseline{
			BareIngest: loadResult{PerSec: 10000, Ack: Latency{P50: 2, P99: 4, P999: 8}},
			BareRate:   loadResult{Ack: Latency{P50: 0.5, P99: 1}},
			BoltCommit: Latency{P50: 1}, RedisPing: Latency{P50: 0.1},
		},
		Stores: map[string]*StoreResult{
			"embedded": {Ingest: &IngestResult{Load: loadResult{PerSec: 6000, Acked: 600, Ack: Latency{P50: 4, P99: 8, P999: 16}}, OfBare: 0.6}},
			"redis": {
				Ingest: &IngestResult{Load: loadResult{PerSec: 3000, Acked: 300, Ack: Latency{P50: 6}}, OfBare: 0.3},
				E2E:    &E2EResult{Load: loadResult{Sent: 10, Acked: 10}, E2E: Latency{Count: 10, P50: 2, P99: 30}, Delivered: 10, FloorMS: 1.1},
			},
		},
	}
	r.Targets = checkTargets(r)
	var out bytes.Buffer
	printReport(&out, r)
	for _, want := range []string{
		"6,000 (60%)", "3,000 (30%)", "4.00 ms (×2.0)", "2.00 ms (×1.8)",
		"embedded  ingest            ≥ 5,000 durable acks/s  6,000/s  met",
		"redis     ingest            ≥ 40% of bare handler   30%      MISSED",
		"redis     e2e at 200/s p99  ≤ 25 ms                 30.0 ms  MISSED",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// The whole tool, small: it builds and runs the real binary on both
// stores, writes the JSON and (-pprof, through otpbot's http.pprof) a CPU
// profile of each measured phase, and leaves no Redis key behind.
func TestRunSmall(t *testing.T) {
	if _, err := os.Stat("../cmd/otpbot"); err != nil {
		t.Fatalf("run from the repository: %v", err)
	}
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "out.json")
	var stdout, stderr bytes.Buffer
	args := []string{"-q", "-dir", dir, "-json", jsonPath, "-scenario", "ingest,e2e,pressure",
		"-c", "4", "-n", "60", "-rate", "40", "-duration", "1s", "-chats", "5",
		"-pressure-live", "10", "-pressure-chats", "5", "-pressure-every", "200ms", "-pprof", filepath.Join(dir, "prof")}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var r Report
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("json: %v", err)
	}
	for _, store := range []string{"embedded", "redis"} {
		sr := r.Stores[store]
		if sr == nil || len(sr.Errors) > 0 {
			t.Fatalf("%s: %+v\n%s", store, sr, stdout.String())
		}
		if sr.Ingest.Load.Acked == 0 || sr.Ingest.Proc.RSSBytes == 0 {
			t.Errorf("%s ingest: %+v", store, sr.Ingest)
		}
		if sr.E2E.Delivered != sr.E2E.Load.Acked || sr.E2E.Delivered == 0 {
			t.Errorf("%s e2e: %+v", store, sr.E2E)
		}
		if sr.Pressure.NewDelivered == 0 || sr.Pressure.NewDelivered != sr.Pressure.NewSent {
			t.Errorf("%s pressure: %+v", store, sr.Pressure)
		}
	}
	for _, store := range []string{"embedded", "redis"} {
		for _, phase := range []string{"ingest", "e2e", "pressure"} {
			p := filepath.Join(dir, "prof", store+"-"+phase+".cpu.pprof")
			if st, err := os.Stat(p); err != nil || st.Size() == 0 {
				t.Errorf("no CPU profile of %s %s: %v", store, phase, err)
			}
		}
	}
	if !strings.Contains(stdout.String(), "END TO END") || r.Baseline.BareIngest.Acked == 0 {
		t.Errorf("report:\n%s", stdout.String())
	}
	if n, err := cleanRedis(context.Background(), "127.0.0.1:6379", "otpbench:"+r.Meta.Run+":"); err != nil || n != 0 {
		t.Errorf("%d Redis keys left under the run's prefix (err %v)", n, err)
	}
}
