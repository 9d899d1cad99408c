package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/bot/deliver"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/logs"
	"github.com/otpbot/otpbot/store/bolt"
)

// TestDrainTimeout: the deliverer's calls are cut off early enough that
// the store writes after them (DrainGrace) still end within
// shutdown_timeout, at the default and at the shortest sensible values.
func TestDrainTimeout(t *testing.T) {
	tests := []struct {
		shutdown, want time.Duration
	}{
		{15 * time.Second, 12 * time.Second},
		{5 * time.Second, 2500 * time.Millisecond},
		{6 * time.Second, 3 * time.Second},
		{60 * time.Second, 57 * time.Second},
	}
	for _, tt := range tests {
		got := drainTimeout(tt.shutdown)
		if got != tt.want {
			t.Errorf("drainTimeout(%s) = %s, want %s", tt.shutdown, got, tt.want)
		}
		if got+deliver.DrainGrace >= tt.shutdown {
			t.Errorf("shutdown_timeout %s: drain %s + grace %s does not end before it", tt.shutdown, got, deliver.DrainGrace)
		}
	}
}

// TestStopDuringASlowTelegramCall: run's context ends (SIGTERM) while a
// Telegram send hangs, with the default 30s lease. run returns within
// shutdown_timeout, and only after the deliverer's last store write: the
// store file is free at once (closed), and its outbox holds the send,
// handed back unleased and with no attempt counted, for the next start.
func TestStopDuringASlowTelegramCall(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	in := startServe(t, testConfig(t, dir, fake, ""), nil) // shutdown_timeout: 5s
	const chat = int64(3161)
	linkCard(t, fake, chat, "C1")
	release := fake.Hold("sendMessage")
	defer release()
	in.pushUPay(upayOTP("ORD-SLOW", "C1", "848484"))
	waitUntil(t, "the slow send", func() bool { return fake.Waiting("sendMessage") == 1 })

	start := time.Now()
	if err := in.stop(); err != nil {
		t.Errorf("run returned %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %s; shutdown_timeout is 5s", d)
	}
	logs := in.logs.String()
	_, stopping, _ := strings.Cut(logs, "shutting down")
	if errs := grepLines(stopping, "level=ERROR"); errs != "" {
		t.Errorf("errors while stopping:\n%s", errs)
	}
	if !strings.Contains(stopping, "msg=stopped") {
		t.Errorf("no orderly stop:\n%s", stopping)
	}

	store, err := bolt.Open(filepath.Join(dir, "otpbot.db"), storeOptions(&Config{DedupeWindow: time.Hour, History: HistoryConfig{PerKey: 10, Retention: time.Hour}}), nil)
	if err != nil {
		t.Fatalf("the store is still held after run returned: %v", err)
	}
	defer store.Close()
	jobs, err := store.Claim(context.Background(), time.Now(), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	var sends []otpbot.Task
	for _, j := range jobs {
		if j.Task.Kind == otpbot.TaskSend {
			sends = append(sends, j.Task)
		}
	}
	if len(sends) != 1 || !strings.HasPrefix(sends[0].ID, "upay:ORD-SLOW@") || sends[0].Attempts != 0 {
		t.Fatalf("the outbox holds %+v claimable now; want the ORD-SLOW send, no attempt counted", sends)
	}
}

// TestRateIsSustainedExactly: telegram.rate.global_per_second is the rate
// the bot keeps, not a margin below it (30 means 30 a second, plus the
// burst after a quiet spell), and delivery.workers defaults to enough calls
// in flight for that rate. telegram.rate.instances is gone: processes on
// one Redis share one budget there, and a file that still sets it is told.
func TestRateIsSustainedExactly(t *testing.T) {
	dir := t.TempDir()
	for _, rate := range []int{30, 60} {
		path := writeFile(t, dir, "c.yaml", fmt.Sprintf("telegram: {token: '1:x', rate: {global_per_second: %d}}\n%s", rate, minimal))
		cfg, err := LoadConfig(path, envMap(nil))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(1_700_000_000, 0)
		opts := limiterOptions(&cfg, logs.Discard())
		opts.Now = func() time.Time { return now }
		lim := telegram.NewLimiter(opts)
		// Ten seconds of sends to ever new chats (no per-chat limit in
		// the way), asking every 10ms.
		sent := 0
		for i := 0; i < 1000; i++ {
			for lim.Take(context.Background(), otpbot.Target{ChatID: int64(100000*i + sent)}, telegram.Urgent).For == 0 {
				sent++
			}
			now = now.Add(10 * time.Millisecond)
		}
		burst := rate / 6
		if sent < 10*rate || sent > 10*rate+burst {
			t.Errorf("rate %d: sent %d in ten seconds, want %d plus at most the burst %d", rate, sent, 10*rate, burst)
		}
		if w := workers(&cfg); w < 2*rate {
			t.Errorf("rate %d: %d calls in flight cannot keep the rate at a 2 s round trip", rate, w)
		}
	}
	path := writeFile(t, dir, "c.yaml", "telegram: {token: '1:x', rate: {instances: 2}}\n"+minimal)
	_, err := LoadConfig(path, envMap(nil))
	if err == nil || !strings.Contains(err.Error(), "telegram.rate.instances") || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("a removed key: %v", err)
	}
}

// TestDelivererOptions: delivery.reserve, delivery.refresh_timeout and
// the drain deadline reach the deliverer; reserve 0 leaves the bot
// package's default.
func TestDelivererOptions(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		yaml    string
		reserve int
		refresh time.Duration
		drain   time.Duration
	}{
		{"", 0, 5 * time.Second, 12 * time.Second},
		{"delivery: {workers: 8, reserve: 3, refresh_timeout: 2s}\nshutdown_timeout: 30s\n", 3, 2 * time.Second, 27 * time.Second},
	}
	for _, tt := range tests {
		cfg, err := LoadConfig(writeFile(t, dir, "c.yaml", "telegram: {token: '1:x'}\n"+minimal+tt.yaml), envMap(nil))
		if err != nil {
			t.Fatal(err)
		}
		o := delivererOptions(&cfg)
		if o.Reserve != tt.reserve || o.RefreshTimeout != tt.refresh || o.DrainTimeout != tt.drain {
			t.Errorf("%q: reserve %d, refresh_timeout %s, drain %s; want %d, %s, %s", tt.yaml, o.Reserve, o.RefreshTimeout, o.DrainTimeout, tt.reserve, tt.refresh, tt.drain)
		}
	}
}

// TestServesPushesWhileTelegramIsAway: Telegram cannot be reached at
// start (getMe fails and is retried). Pushes are stored and acknowledged
// all the same, the Telegram update endpoint answers 503 (Telegram sends
// the update again later), and once getMe succeeds the bot starts: the
// webhook is set, updates are handled and codes delivered. A stop while
// getMe still fails is an orderly stop, not a failure.
func TestServesPushesWhileTelegramIsAway(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	const secretPath = "/tg/5a4b3c2d1e"
	const secret = "webhook-secret-away"
	fake.SetDown(502)
	env := map[string]string{
		"OTPBOT_HTTP_LISTEN":             addr,
		"OTPBOT_TELEGRAM_UPDATES":        "webhook",
		"OTPBOT_TELEGRAM_WEBHOOK_URL":    "http://" + addr + secretPath,
		"OTPBOT_TELEGRAM_WEBHOOK_SECRET": secret,
	}
	in := startServe(t, testConfig(t, dir, fake, ""), env)
	waitUntil(t, "a failed getMe", func() bool { return len(fake.Calls("getMe")) > 0 })

	in.pushUPay(upayOTP("ORD-AWAY-1", "C1", "717171"))
	update := fmt.Sprintf(`{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":7101,"type":"private"},"from":{"id":%d,"is_bot":false,"first_name":"A"},"text":"/start"}}`, adminID)
	if code, body := post(t, in.url+secretPath, update, map[string]string{"X-Telegram-Bot-Api-Secret-Token": secret}); code != http.StatusServiceUnavailable {
		t.Errorf("a Telegram update before getMe answered %d %q, want 503", code, body)
	}
	if err := in.stop(); err != nil {
		t.Fatalf("stopping while Telegram is away: %v", err)
	}
	if !strings.Contains(in.logs.String(), "msg=stopped") {
		t.Errorf("no orderly stop:\n%s", in.logs)
	}

	// Started again, still away; then Telegram comes back.
	in = startServe(t, testConfig(t, dir, fake, ""), env)
	in.pushUPay(upayOTP("ORD-AWAY-2", "C1", "727272"))
	fake.SetUp()
	waitUntil(t, "setWebhook", func() bool { u, _ := fake.WebhookURL(); return u == "http://"+addr+secretPath })
	const chat = int64(7101)
	linkCard(t, fake, chat, "C1")
	in.pushUPay(upayOTP("ORD-AWAY-3", "C1", "737373"))
	waitUntil(t, "the code after Telegram came back", func() bool { return sentWith(fake, chat, "737373") == 1 })
}
