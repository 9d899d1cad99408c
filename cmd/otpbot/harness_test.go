package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot/bot/bottest"
)

// Test identities.
const (
	testToken    = "123456:TEST-bot-token-never-printed"
	adminID      = int64(42)
	strangerID   = int64(77)
	upayToken    = "upay-url-token-secret"
	hcToken      = "hypercard-url-token-secret"
	waitDeadline = 15 * time.Second
)

// syncBuffer is a goroutine-safe log sink that tests can search.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitUntil polls cond every 10ms until it holds, failing after the
// deadline with what.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitDeadline, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// instance is one `otpbot serve` run in-process through run().
type instance struct {
	t      testing.TB
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
	addr   string
	url    string
}

// listeningRE finds the address in the "listening" log line, text or JSON.
var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)|"msg":"listening","addr":"([^"]+)"`)

// listenAddr returns the address of the "listening" log line, or "".
func listenAddr(logs string) string {
	m := listeningRE.FindStringSubmatch(logs)
	if m == nil {
		return ""
	}
	return m[1] + m[2]
}

// startServe runs `otpbot serve -config path` with env and waits until it
// listens and answers /healthz.
func startServe(t testing.TB, path string, env map[string]string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{t: t, cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{}}
	go func() {
		in.done <- run(ctx, []string{"otpbot", "serve", "-config", path}, envMap(env), io.Discard, in.logs)
	}()
	deadline := time.Now().Add(waitDeadline)
	for in.addr == "" {
		if a := listenAddr(in.logs.String()); a != "" {
			in.addr = a
			break
		}
		select {
		case err := <-in.done:
			t.Fatalf("serve exited at start: %v\nlogs:\n%s", err, in.logs)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not listen within %s; logs:\n%s", waitDeadline, in.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	in.url = "http://" + in.addr
	waitUntil(t, "/healthz", func() bool {
		resp, err := http.Get(in.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	t.Cleanup(func() {
		in.stop()
		if t.Failed() {
			t.Logf("serve logs:\n%s", in.logs)
		}
	})
	return in
}

// stop cancels the instance (SIGTERM) and waits for run to return.
func (in *instance) stop() error {
	in.cancel()
	select {
	case err, ok := <-in.done:
		if ok {
			close(in.done)
		}
		return err
	case <-time.After(30 * time.Second):
		in.t.Errorf("serve did not stop within 30s; logs:\n%s", in.logs)
		return nil
	}
}

// post sends a push and returns status and body.
func post(t testing.TB, url string, body string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// upayOTP is a UPay 3DS_OTP push for cardID with card number ...1234.
func upayOTP(orderNo, cardID, code string) string {
	return fmt.Sprintf(`{"event":"3DS_OTP","trace":"TR-%[1]s","orderNo":%[1]q,"timestamp":%[4]d,`+
		`"detail":{"cardId":%[2]q,"cardNumber":"5555666677771234","customerNo":"CU-1","3dsCode":%[3]q,"orderNo":%[1]q}}`,
		orderNo, cardID, code, time.Now().UnixMilli())
}

// hcOTP is a HyperCard OPT_CODE push.
func hcOTP(cardID, code string) string {
	return fmt.Sprintf(`{"notify_type":"OPT_CODE","card_id":%q,"code":%q,"create_time":%d}`, cardID, code, time.Now().Unix())
}

// pushUPay posts a UPay push with the URL token and expects the ack.
func (in *instance) pushUPay(body string) {
	in.t.Helper()
	code, resp := post(in.t, in.url+"/webhooks/upay?token="+upayToken, body, nil)
	if code != http.StatusOK || resp != "SUCCESS" {
		in.t.Fatalf("UPay push answered %d %q", code, resp)
	}
}

// pushHyperCard posts a HyperCard push with a bearer token and expects the
// ack.
func (in *instance) pushHyperCard(body string) {
	in.t.Helper()
	code, resp := post(in.t, in.url+"/hc_sync/common", body, map[string]string{"Authorization": "Bearer " + hcToken})
	if code != http.StatusOK || !strings.Contains(resp, `"code":1`) {
		in.t.Fatalf("HyperCard push answered %d %q", code, resp)
	}
}

// messagesWith returns the chat's messages whose text contains s.
func messagesWith(fake *bottest.Server, chat int64, s string) []bottest.Message {
	var out []bottest.Message
	for _, m := range fake.Messages(chat) {
		if strings.Contains(m.Text, s) || strings.Contains(m.Plain(), s) {
			out = append(out, m)
		}
	}
	return out
}

// sentWith counts the sendMessage calls to chat whose text contains s:
// every message ever sent, whatever became of it since.
func sentWith(fake *bottest.Server, chat int64, s string) int {
	n := 0
	for _, c := range fake.Calls("sendMessage") {
		if c.Code == 0 && c.Params["chat_id"] == fmt.Sprint(chat) && strings.Contains(c.Params["text"], s) {
			n++
		}
	}
	return n
}

// testConfig writes a configuration for a test: the fake Bot API, an admin,
// a free port, the embedded store in dir, URL tokens for both providers.
// extra is appended YAML at the top level.
func testConfig(t testing.TB, dir string, fake *bottest.Server, extra string) string {
	t.Helper()
	return writeFile(t, dir, "otpbot.yaml", fmt.Sprintf(`
log:
  level: debug
telegram:
  token: %q
  api_endpoint: %q
  admins: [%d]
http:
  listen: "127.0.0.1:0"
store:
  path: %q
providers:
  upay:
    token: %q
  hypercard:
    token: %q
shutdown_timeout: 5s
%s`, testToken, fake.Endpoint(), adminID, dir+"/otpbot.db", upayToken, hcToken, extra))
}

// linkCard has the admin link a card to chat and waits for the reply.
func linkCard(t testing.TB, fake *bottest.Server, chat int64, cardID string) {
	t.Helper()
	before := len(messagesWith(fake, chat, "Linked"))
	fake.SendCommand(chat, adminID, "/link card "+cardID)
	waitUntil(t, "link reply", func() bool { return len(messagesWith(fake, chat, "Linked")) > before })
}

// cleanupRedisPrefix deletes the keys a test wrote under its own prefix on
// the shared Redis (never FLUSHDB: other tests use the same server).
func cleanupRedisPrefix(t testing.TB, prefix string) {
	t.Helper()
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	ctx := context.Background()
	iter := client.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) > 0 {
		client.Del(ctx, keys...)
	}
}
