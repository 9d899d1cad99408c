package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/store/redis/redistest"
)

// uniquePrefix gives a test its own key space on the shared Redis.
func uniquePrefix(t testing.TB, name string) string {
	t.Helper()
	p := fmt.Sprintf("otpbot-test-%s-%x:", name, time.Now().UnixNano())
	t.Cleanup(func() { cleanupRedisPrefix(t, p) })
	return p
}

// TestReadyzFollowsRedis runs serve on a private redis-server, stops the
// server (pushes 503, /readyz 503, the process keeps running) and starts it
// again (200 again within seconds).
func TestReadyzFollowsRedis(t *testing.T) {
	srv := redistest.StartServer(t)
	fake := bottest.New(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, fake, "")
	in := startServe(t, cfg, map[string]string{
		"OTPBOT_STORE_DRIVER":     "redis",
		"OTPBOT_STORE_REDIS_ADDR": srv.Addr(),
	})
	if code, _ := get(t, in.url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d with Redis up", code)
	}
	in.pushUPay(upayOTP("ORD-R1", "C1", "101010"))

	srv.Stop()
	waitUntil(t, "/readyz 503", func() bool { code, _ := get(t, in.url+"/readyz"); return code == http.StatusServiceUnavailable })
	code, body := post(t, in.url+"/webhooks/upay?token="+upayToken, upayOTP("ORD-R2", "C1", "202020"), nil)
	if code != http.StatusServiceUnavailable || body == "SUCCESS" {
		t.Errorf("push with Redis down answered %d %q, want 503 without SUCCESS", code, body)
	}
	code, body = post(t, in.url+"/hc_sync/common?token="+hcToken, hcOTP("C1", "303030"), nil)
	if code != http.StatusServiceUnavailable || strings.Contains(body, `"code":1`) {
		t.Errorf("HyperCard push with Redis down answered %d %q", code, body)
	}
	if code, _ := get(t, in.url+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d while Redis is down; the process must keep running", code)
	}

	srv.Start()
	waitUntil(t, "/readyz 200 again", func() bool { code, _ := get(t, in.url+"/readyz"); return code == http.StatusOK })
	in.pushUPay(upayOTP("ORD-R2", "C1", "202020"))
	select {
	case err := <-in.done:
		t.Fatalf("serve exited while Redis was away: %v", err)
	default:
	}
}

// TestTwoProcessesShareRedis runs two otpbot processes on one Redis prefix:
// 100 codes pushed alternately to each reach their chats exactly once;
// then, with more codes accepted during a Telegram outage, one process is
// killed (SIGKILL) and the other delivers them and finishes every
// countdown and expiry edit.
func TestTwoProcessesShareRedis(t *testing.T) {
	fake := bottest.New(t, bottest.WithWaitTimeout(waitDeadline))
	dir := t.TempDir()
	prefix := uniquePrefix(t, "two")
	cfg := testConfig(t, dir, fake, `
codes:
  ttl: 8s
  countdown_interval: 1s
delivery:
  lease: 2s
`)
	env := map[string]string{
		"OTPBOT_STORE_DRIVER":                      "redis",
		"OTPBOT_STORE_REDIS_PREFIX":                prefix,
		"OTPBOT_TELEGRAM_RATE_GLOBAL_PER_SECOND":   "1000",
		"OTPBOT_TELEGRAM_RATE_PER_CHAT_PER_SECOND": "100",
		"OTPBOT_LOG_LEVEL":                         "info",
	}
	a := startProc(t, env, "serve", "-config", cfg)
	b := startProc(t, env, "serve", "-config", cfg)
	procs := []*proc{a, b}

	const chats = 10
	for i := range chats {
		linkCard(t, fake, chatOf(i), fmt.Sprintf("CARD-%02d", i))
	}

	push := func(p *proc, n int) {
		t.Helper()
		in := &instance{t: t, url: p.url}
		in.pushUPay(upayOTP(fmt.Sprintf("ORD-%04d", n), fmt.Sprintf("CARD-%02d", n%chats), codeOf(n)))
	}
	var wg sync.WaitGroup
	for n := range 100 {
		wg.Add(1)
		go func() { defer wg.Done(); push(procs[n%2], n) }()
	}
	wg.Wait()
	waitUntil(t, "100 codes delivered", func() bool {
		for n := range 100 {
			if sentWith(fake, chatOf(n%chats), codeOf(n)) < 1 {
				return false
			}
		}
		return true
	})

	// More codes while Telegram is down, then A dies hard.
	fake.SetDown(502)
	for n := 100; n < 120; n++ {
		push(procs[n%2], n)
	}
	_ = a.cmd.Process.Kill()
	a.wait(t, 10*time.Second)
	fake.SetUp()
	waitUntil(t, "B delivers the codes accepted before A died", func() bool {
		for n := 100; n < 120; n++ {
			if sentWith(fake, chatOf(n%chats), codeOf(n)) < 1 {
				return false
			}
		}
		return true
	})
	// Every countdown runs to its end: each code message is edited to its
	// expired form, without the code.
	waitUntil(t, "every code message expired", func() bool {
		for n := range 120 {
			for _, m := range fake.Messages(chatOf(n % chats)) {
				if strings.Contains(m.Text, codeOf(n)) {
					return false
				}
			}
		}
		return true
	})
	for n := range 120 {
		if got := sentWith(fake, chatOf(n%chats), codeOf(n)); got != 1 {
			t.Errorf("code %d was sent %d times, want exactly once", n, got)
		}
	}
	expired := 0
	for i := range chats {
		for _, m := range fake.Messages(chatOf(i)) {
			if strings.Contains(m.Plain(), "expired") {
				expired++
			}
		}
	}
	if expired != 120 {
		t.Errorf("%d messages show the code expired, want 120", expired)
	}
	if code, _ := get(t, b.url+"/readyz"); code != http.StatusOK {
		t.Errorf("survivor /readyz = %d", code)
	}
}

func chatOf(i int) int64 { return int64(10100 + i) }

// codeOf is the code of push n: six digits no other push's code contains.
func codeOf(n int) string { return fmt.Sprintf("7%05d", n*7+3) }

// TestRedisDurabilityIsReported: check prints how Redis keeps what otpbot
// acknowledged and warns (still exit 0) when a Redis crash could lose
// acknowledged pushes; serve logs the same warning at start.
func TestRedisDurabilityIsReported(t *testing.T) {
	tests := []struct {
		name string
		args []string // redis-server options
		warn bool
	}{
		{"no append-only file", nil, true},
		{"appendfsync always", []string{"--appendonly", "yes", "--appendfsync", "always"}, false},
	}
	fake := bottest.New(t, bottest.WithToken(testToken))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.StartServer(t, tt.args...)
			dir := t.TempDir()
			cfg := testConfig(t, dir, fake, "")
			env := map[string]string{
				"OTPBOT_STORE_DRIVER":     "redis",
				"OTPBOT_STORE_REDIS_ADDR": srv.Addr(),
			}
			out, _, err := runCmd(t, env, "", "check", "-config", cfg)
			if err != nil {
				t.Fatalf("check failed: %v\n%s", err, out)
			}
			if !strings.Contains(out, "store durability: redis ") {
				t.Errorf("check does not report durability:\n%s", out)
			}
			if got := strings.Contains(out, "\nwarning: "); got != tt.warn {
				t.Errorf("check warned: %v, want %v:\n%s", got, tt.warn, out)
			}

			in := startServe(t, cfg, env)
			_ = in.stop()
			if got := strings.Contains(in.logs.String(), `msg="redis may lose acknowledged pushes"`); got != tt.warn {
				t.Errorf("serve warned: %v, want %v:\n%s", got, tt.warn, in.logs)
			}
		})
	}
}
