package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/store/redis/redistest"
)

// TestClusterServes runs two otpbot processes on a Redis Cluster of three
// primaries: commands are answered (one process polls, through the lease
// in the home slot), 60 codes pushed to either process reach their chats
// exactly once through the shared rate budget, and both report ready.
func TestClusterServes(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	fake := bottest.New(t, bottest.WithWaitTimeout(waitDeadline))
	cfg := testConfig(t, t.TempDir(), fake, "")
	env := map[string]string{
		"OTPBOT_STORE_DRIVER":                      "redis",
		"OTPBOT_STORE_REDIS_CLUSTER_ADDRS":         strings.Join(cluster.Addrs(), ","),
		"OTPBOT_TELEGRAM_RATE_GLOBAL_PER_SECOND":   "1000",
		"OTPBOT_TELEGRAM_RATE_PER_CHAT_PER_SECOND": "100",
		"OTPBOT_LOG_LEVEL":                         "info",
	}
	procs := []*proc{startProc(t, env, "serve", "-config", cfg), startProc(t, env, "serve", "-config", cfg)}
	const chats, pushes = 10, 60
	for i := range chats {
		linkCard(t, fake, chatOf(i), fmt.Sprintf("CARD-%02d", i))
	}
	var wg sync.WaitGroup
	for n := range pushes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := upayOTP(fmt.Sprintf("ORD-C%04d", n), fmt.Sprintf("CARD-%02d", n%chats), codeOf(n))
			resp, err := http.Post(procs[n%2].url+"/webhooks/upay?token="+upayToken, "application/json", strings.NewReader(body))
			if err != nil {
				t.Errorf("push %d: %v", n, err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("push %d answered %d", n, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	waitUntil(t, "every code delivered", func() bool {
		for n := range pushes {
			if sentWith(fake, chatOf(n%chats), codeOf(n)) < 1 {
				return false
			}
		}
		return true
	})
	for n := range pushes {
		if got := sentWith(fake, chatOf(n%chats), codeOf(n)); got != 1 {
			t.Errorf("code %d sent %d times, want once", n, got)
		}
	}
	for i, p := range procs {
		if code, _ := get(t, p.url+"/readyz"); code != http.StatusOK {
			t.Errorf("otpbot %d /readyz = %d", i, code)
		}
	}
}
