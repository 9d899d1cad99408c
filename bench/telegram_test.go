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

	"github.com/otpbot/otpbot/bot/bottest"
)

func TestBacklogWindows(t *testing.T) {
	// One sample every 100ms for 10s: 2 codes behind until 5s, then 12.
	var growing []backlogSample
	for i := range 100 {
		n := int64(2)
		if i >= 50 {
			n = 12
		}
		growing = append(growing, backlogSample{at: time.Duration(i) * 100 * time.Millisecond, n: n})
	}
	tests := []struct {
		name       string
		samples    []backlogSample
		d          time.Duration
		start, end float64
	}{
		{"none", nil, 10 * time.Second, 0, 0},
		{"growing: 1-3s vs the last 2s", growing, 10 * time.Second, 2, 12},
		{"short load: first and last thirds", growing[:30], 3 * time.Second, 2, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start, end := backlogWindows(tc.samples, tc.d)
			if start != tc.start || end != tc.end {
				t.Fatalf("backlogWindows = %g, %g, want %g, %g", start, end, tc.start, tc.end)
			}
		})
	}
}

// The tracker ends a push's latencies when its code is sent (one when
// the request reached the fake, one when the fake acted on it), a
// command's when its chat gets a message, and counts the calls that
// count against Telegram's limits.
func TestTrackerMatchesCodesRepliesAndCounts(t *testing.T) {
	tr := newTracker()
	tr.keep()
	t0 := time.Now()
	tr.expect("10000001", t0)
	tr.expectReply(-5, t0)
	obs := func(method string, chat int64, text string, status int, after time.Duration) bottest.Observation {
		return bottest.Observation{Method: method, ChatID: chat, Text: text, Status: status,
			Received: t0.Add(after), Acted: t0.Add(after + 40*time.Millisecond)}
	}
	for _, o := range []bottest.Observation{
		obs("sendMessage", 1, "<code>10000001</code>", 429, 5*time.Millisecond),
		obs("sendMessage", 1, "<code>10000001</code>", 200, 10*time.Millisecond),
		obs("sendMessage", 1, "<code>10000001</code>", 200, 20*time.Millisecond), // a duplicate
		obs("sendMessage", -5, "Linked card G1", 200, 30*time.Millisecond),
		obs("answerCallbackQuery", 0, "", 200, time.Millisecond),
		obs("getMe", 0, "", 502, time.Millisecond),
	} {
		tr.observe(o)
	}
	if tr.matched.Load() != 1 || tr.replied.Load() != 1 || tr.backlog() != 0 {
		t.Fatalf("matched %d, replied %d, backlog %d", tr.matched.Load(), tr.replied.Load(), tr.backlog())
	}
	if e, a, r := tr.e2e.summary(), tr.appear.summary(), tr.replies.summary(); e.Max != 10 || a.Max != 50 || r.Max != 70 {
		t.Fatalf("e2e %v, appear %v, reply %v ms", e.Max, a.Max, r.Max)
	}
	if tr.counted.Load() != 5 || tr.counted429.Load() != 1 || tr.down.Load() != 1 {
		t.Fatalf("counted %d, 429 %d, down %d", tr.counted.Load(), tr.counted429.Load(), tr.down.Load())
	}
	if sent := tr.sentMessages(); len(sent) != 3 || sent[1].Code != "10000001" || sent[2].Code != "" {
		t.Fatalf("sent %+v", sent)
	}
}

// The recovery's outcome: live codes' first appearance after the fake is
// back, their duplicates, and what each expiring code's chat got.
func TestRecoveryOutcome(t *testing.T) {
	up := time.Now()
	p := recoveryCodes{live: map[string]bool{"1": true, "2": true, "3": true},
		expiring: map[int64]string{10: "9", 11: "8", 12: "7"}}
	sent := []sentMessage{
		{Chat: 1, Code: "1", Acted: up.Add(300 * time.Millisecond)},
		{Chat: 2, Code: "2", Acted: up.Add(1500 * time.Millisecond)},
		{Chat: 1, Code: "1", Acted: up.Add(2 * time.Second)}, // twice
		{Chat: 10, Code: "", Acted: up.Add(time.Second)},     // expired form
		{Chat: 11, Code: "8", Acted: up.Add(time.Second)},    // sent live
		{Chat: 99, Code: "", Acted: up},                      // someone else
	}
	var res RecoveryResult
	p.outcome(&res, sent, up)
	if res.LiveSent != 2 || res.Duplicates != 1 || res.SinceUp.Max != 1500 || res.SinceUp.Count != 2 {
		t.Fatalf("live: %+v", res)
	}
	if res.ExpiredLive != 1 || res.ExpiredForm != 1 || res.ExpiredNone != 1 {
		t.Fatalf("expired: live %d, form %d, none %d", res.ExpiredLive, res.ExpiredForm, res.ExpiredNone)
	}
}

// The configuration names the admins, the ttl per event, and the per-chat
// burst only when there is one (an otpbot that predates the key refuses
// it).
func TestConfigYAMLTelegramKeys(t *testing.T) {
	c := instanceConfig{Store: storeSpec{Driver: "embedded", Path: "x.db"}, GlobalPerSec: 30, PerChatPerSec: 1,
		TTL: time.Minute, Countdown: 2 * time.Second, LogLevel: "info"}
	if y := configYAML(c, "127.0.0.1:1"); strings.Contains(y, "per_chat_burst") || strings.Contains(y, "admins") ||
		strings.Contains(y, "ttl_by_event") {
		t.Fatalf("optional keys written:\n%s", y)
	}
	c.PerChatBurst, c.Admins, c.TTLByEvent = 3, []int64{4242, 7}, map[string]time.Duration{"3DS_CONFIRM": 10 * time.Second}
	y := configYAML(c, "127.0.0.1:1")
	for _, want := range []string{"    per_chat_burst: 3\n", "  admins: [4242, 7]\n", "  ttl_by_event:\n    \"3DS_CONFIRM\": 10s\n"} {
		if !strings.Contains(y, want) {
			t.Errorf("lacks %q:\n%s", want, y)
		}
	}
}

// The standalone fake with a round trip reports when it acted on a call:
// half way, after the request reached it and before the answer left.
func TestStandaloneObservesWhenItActed(t *testing.T) {
	fake, err := startFake(bottest.WithRoundTrip(200*time.Millisecond, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	got := make(chan bottest.Observation, 4)
	fake.Observe(func(o bottest.Observation) { got <- o })
	api, err := tgbotapi.NewBotAPIWithClient(benchToken, fake.Endpoint(), &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("getMe: %v", err)
	}
	<-got // getMe
	start := time.Now()
	if _, err := api.Send(tgbotapi.NewMessage(1, "hi")); err != nil {
		t.Fatal(err)
	}
	done := time.Now()
	o := <-got
	if o.Method != "sendMessage" || o.Status != 200 || o.ChatID != 1 || o.Text != "hi" {
		t.Fatalf("observation %+v", o)
	}
	if o.Received.Before(start) || o.Acted.Sub(o.Received) < 100*time.Millisecond || done.Sub(o.Acted) < 100*time.Millisecond {
		t.Fatalf("received %s, acted %s after, answered %s after that",
			o.Received.Sub(start), o.Acted.Sub(o.Received), done.Sub(o.Acted))
	}
}

// The four scenarios against Telegram's behaviour, small, on the embedded
// store: each reports its figures and its targets. Whether a target is
// met is the bot's business, not this test's.
func TestRunTelegramScenarios(t *testing.T) {
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "out.json")
	var stdout, stderr bytes.Buffer
	args := []string{"-q", "-dir", dir, "-json", jsonPath, "-store", "embedded",
		"-scenario", "rtt,busy-chats,commands,recovery", "-n", "40", "-c", "2", "-duration", "1s", "-drain", "10s",
		"-rtt", "40ms", "-rtt-jitter", "10ms", "-rtt-rate", "10", "-rtt-chats", "20", "-rtt-duration", "2s",
		"-busy-chats", "3", "-busy-tick", "500ms", "-commands", "5", "-commands-rate", "2",
		"-outage", "3s", "-outage-codes", "3", "-outage-expiring", "1"}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("json: %v", err)
	}
	sr := r.Stores["embedded"]
	switch {
	case sr == nil || len(sr.Errors) > 0:
		t.Fatalf("embedded: %+v\n%s", sr, stdout.String())
	case sr.RTT == nil || sr.RTT.Load.Acked == 0 || sr.RTT.Calls.Counted == 0:
		t.Errorf("rtt: %+v", sr.RTT)
	case sr.Busy == nil || sr.Busy.Load.Acked == 0:
		t.Errorf("busy-chats: %+v", sr.Busy)
	case sr.Commands == nil || sr.Commands.Replied != 5:
		t.Errorf("commands: %+v", sr.Commands)
	case sr.Recovery == nil || sr.Recovery.LiveAcked != 3 || sr.Recovery.Refused == 0 ||
		sr.Recovery.ExpiredLive+sr.Recovery.ExpiredForm+sr.Recovery.ExpiredNone != 1:
		t.Errorf("recovery: %+v", sr.Recovery)
	case r.Baseline.TelegramRTT.P50 < 30:
		t.Errorf("round trip baseline %+v, want about 40ms", r.Baseline.TelegramRTT)
	}
	for _, want := range []string{"TELEGRAM ROUND TRIP", "BUSY CHATS", "COMMANDS", "RECOVERY",
		"rtt: backlog growth", "busy-chats: 429s", "commands: slowest reply", "recovery: each live code once"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, stdout.String())
		}
	}
}

// The Telegram scenarios are quoted against the run's round trip, and
// their targets say which were missed.
func TestPrintReportTelegram(t *testing.T) {
	r := &Report{
		Meta: Meta{PerChatBurst: true, Options: options{Stores: []string{"embedded", "redis"}, RTT: 80 * time.Millisecond,
			RTTJitter: 20 * time.Millisecond, RTTRate: 28, RTTDuration: 15 * time.Second, RTTChats: 420, BusyChats: 20,
			BusyTick: 2 * time.Second, Duration: 10 * time.Second, Commands: 120, CommandsRate: 5, Outage: 30 * time.Second,
			OutageCodes: 30, OutageExpiring: 5}},
		Baseline: Baseline{TelegramRTT: Latency{P50: 80}},
		Stores: map[string]*StoreResult{
			"embedded": {
				RTT: &RTTResult{Rate: 28, Load: loadResult{Sent: 420, Acked: 420}, Delivered: 420,
					Appear: Latency{Count: 420, P50: 120, P99: 200}, BacklogStart: 2, BacklogEnd: 2.5,
					Calls: callCounts{Counted: 500, Answered429: 2, Share429: 0.004, MaxPerSecond: 30}},
				Busy: &BusyResult{Chats: 20, Load: loadResult{Sent: 200, Acked: 200}, Delivered: 200,
					Appear: Latency{Count: 200, P50: 90, P99: 400}, Calls: callCounts{Counted: 300, Answered429: 3}},
				Commands: &CommandsResult{Commands: 120, Replied: 120, Replies: Latency{Count: 120, P50: 2000, Max: 5500}},
				Recovery: &RecoveryResult{LiveAcked: 30, LiveSent: 30, SinceUp: Latency{Count: 30, P50: 400, Max: 2500},
					Expiring: 5, ExpiredForm: 5},
			},
			"redis": {RTT: &RTTResult{Rate: 28, Load: loadResult{Sent: 420, Acked: 420}, Delivered: 380,
				Appear: Latency{Count: 380, P50: 900, P99: 3000}, BacklogStart: 2, BacklogEnd: 40, Growth: 38.0 / 420,
				Calls: callCounts{Counted: 500, Answered429: 50, Share429: 0.1}}},
		},
	}
	r.Targets = checkTargets(r)
	var out bytes.Buffer
	printReport(&out, r)
	// Columns are padded to the widest cell: compare words.
	got := strings.Join(strings.Fields(out.String()), " ")
	for _, want := range []string{
		"120 ms / 200 ms (×1.5 RTT / RTT + 120 ms)",
		"2.0 → 2.5 (0.0 %)",
		"embedded  rtt 28/s: p99 push→appears          ≤ RTT + 150 ms  RTT + 120 ms  met",
		"redis     rtt 28/s: p99 push→appears          ≤ RTT + 150 ms  RTT + 2920 ms  MISSED",
		"redis     rtt: backlog growth                 0 %             9.0 %",
		"embedded  busy-chats 20: p99 push→appears     ≤ RTT + 150 ms  RTT + 320 ms  MISSED",
		"embedded  busy-chats: 429s                    0               3             MISSED",
		"embedded  commands: slowest reply             ≤ 6 s           5500 ms       met",
		"embedded  recovery: last live code after up   ≤ 2 s           2500 ms       MISSED",
		"0 / 5 / 0 of 5",
	} {
		if !strings.Contains(got, strings.Join(strings.Fields(want), " ")) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
