package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/hyperpay/hptest"
	"github.com/otpbot/otpbot/store/bolt"
)

// hcCard is a HyperCard card id (HyperCard's ids are long digit strings);
// its last four are 1234 like the UPay card's number.
const hcCard = "15723682800000051234"

// TestEndToEndCodesReachTheLinkedChat is the walking skeleton: an admin
// links cards, one code of each provider arrives once in that chat, masked;
// a stranger cannot link; an unlinked card's push sends nothing and is in
// history; a push sent three times is one message.
func TestEndToEndCodesReachTheLinkedChat(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	in := startServe(t, testConfig(t, dir, fake, ""), nil)

	const chat = int64(5001)
	linkCard(t, fake, chat, "C1")
	linkCard(t, fake, chat, hcCard)

	// A stranger may not link, and learns nothing.
	const strangerChat = int64(5002)
	fake.SendCommand(strangerChat, strangerID, "/link card C1")
	waitUntil(t, "refusal", func() bool { return len(fake.Messages(strangerChat)) == 1 })
	if got := fake.Messages(strangerChat)[0].Plain(); strings.Contains(got, "Linked") || strings.Contains(got, "1234") {
		t.Errorf("stranger's /link answered %q", got)
	}

	in.pushUPay(upayOTP("ORD-1", "C1", "654321"))
	in.pushHyperCard(hcOTP(hcCard, "888666"))
	// The UPay code names its card by number; HyperCard's OPT_CODE only by
	// its id, which is never shown with the number's mask.
	for code, card := range map[string]string{"654321": "•••• 1234", "888666": "card …1234"} {
		waitUntil(t, "code "+code, func() bool { return len(messagesWith(fake, chat, code)) == 1 })
		m := messagesWith(fake, chat, code)[0]
		if !strings.Contains(m.Plain(), card) {
			t.Errorf("code message lacks %s: %q", card, m.Plain())
		}
		if !strings.Contains(m.Text, "<code>"+code+"</code>") {
			t.Errorf("code is not in <code> (one-tap copy): %q", m.Text)
		}
		for _, full := range []string{"5555666677771234", hcCard} {
			if strings.Contains(m.Text, full) {
				t.Errorf("message shows the full number %s: %q", full, m.Text)
			}
		}
	}

	// The same push three times: acknowledged each time, one message.
	dup := upayOTP("ORD-DUP", "C1", "111222")
	for range 3 {
		in.pushUPay(dup)
	}
	waitUntil(t, "duplicate's message", func() bool { return sentWith(fake, chat, "111222") >= 1 })

	// A push for a card nobody linked: nothing is sent, history has it.
	in.pushUPay(upayOTP("ORD-LOST", "C-UNLINKED", "999000"))
	// An admin asks for that card's history; the reply proves the push was
	// recorded (and, being later than the push, that the bot had its turn).
	fake.SendCommand(chat, adminID, "/history C-UNLINKED")
	waitUntil(t, "history reply", func() bool { return strings.Contains(historyReply(fake, chat), "not delivered") })
	if h := historyReply(fake, chat); strings.Contains(h, "999000") {
		t.Errorf("history shows a code: %q", h)
	}
	// By now every delivery queued before the history command is out.
	waitUntil(t, "quiet outbox", func() bool { return sentWith(fake, chat, "111222") == 1 })
	if n := sentWith(fake, chat, "111222"); n != 1 {
		t.Errorf("a push sent three times produced %d messages", n)
	}
	if n := sentWith(fake, chat, "999000"); n != 0 {
		t.Errorf("an unlinked card's code was sent %d times", n)
	}
	for _, c := range fake.Calls("sendMessage") {
		if strings.Contains(c.Params["text"], "999000") {
			t.Errorf("unlinked code sent to chat %s", c.Params["chat_id"])
		}
	}
	if n := sentWith(fake, chat, "654321") + sentWith(fake, chat, "888666"); n != 2 {
		t.Errorf("codes were sent %d times, want 2", n)
	}
	if err := in.stop(); err != nil {
		t.Fatalf("serve returned %v", err)
	}

	// The store file holds the unlinked push in its history.
	s, err := bolt.Open(dir+"/otpbot.db", otpbot.StoreOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hist, err := s.History(context.Background(), otpbot.Key{Type: otpbot.KeyCard, ID: "C-UNLINKED"}, 10)
	if err != nil || len(hist) != 1 || hist[0].Outcome != otpbot.OutcomeUnrouted || hist[0].Event.Code != "" {
		t.Errorf("history of the unlinked card = %+v, %v; want one unrouted entry without its code", hist, err)
	}
	if strings.Contains(in.logs.String(), testToken) || strings.Contains(in.logs.String(), "654321") {
		t.Errorf("logs leak the token or a code")
	}
}

// historyReply returns the text of the bot's /history answer in chat.
func historyReply(fake *bottest.Server, chat int64) string {
	for _, m := range fake.Messages(chat) {
		p := m.Plain()
		if strings.HasPrefix(p, "History of") {
			return p
		}
	}
	return ""
}

// TestEndToEndDeliveryAfterOutageAndRestart: a push accepted while
// Telegram answers 502 is delivered once Telegram recovers, also when the
// process is stopped during the outage and started again on the same file.
func TestEndToEndDeliveryAfterOutageAndRestart(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, fake, "")
	in := startServe(t, cfg, nil)
	const chat = int64(6001)
	linkCard(t, fake, chat, "C1")

	fake.SetDown(502)
	in.pushUPay(upayOTP("ORD-OUT-1", "C1", "424242"))
	// The deliverer tried and failed at least once.
	waitUntil(t, "a failed send", func() bool {
		for _, c := range fake.Calls("sendMessage") {
			if c.Code == 502 {
				return true
			}
		}
		return false
	})
	fake.SetUp()
	waitUntil(t, "delivery after recovery", func() bool { return sentWith(fake, chat, "424242") == 1 })

	// Down again, a push accepted, the process stopped before it could send.
	fake.SetDown(502)
	in.pushUPay(upayOTP("ORD-OUT-2", "C1", "535353"))
	if err := in.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if n := sentWith(fake, chat, "535353"); n != 0 {
		t.Fatalf("sent during the outage: %d", n)
	}
	fake.SetUp()
	startServe(t, cfg, nil)
	waitUntil(t, "delivery after restart", func() bool { return sentWith(fake, chat, "535353") == 1 })
	if n := sentWith(fake, chat, "424242"); n != 1 {
		t.Errorf("the first code was sent %d times after the restart", n)
	}
}

var _ = fmt.Sprint
var _ = time.Second

// readmeRunCommand finds the README's run command and returns its
// environment assignments and its arguments after `go run ./cmd/otpbot`.
func readmeRunCommand(t *testing.T) (map[string]string, []string) {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, "go run ./cmd/otpbot serve") {
			continue
		}
		env := map[string]string{}
		fields := strings.Fields(line)
		for i, f := range fields {
			if f == "go" {
				if fields[i+1] != "run" || fields[i+2] != "./cmd/otpbot" {
					t.Fatalf("unexpected run command %q", line)
				}
				return env, fields[i+3:]
			}
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				t.Fatalf("unexpected word %q in %q", f, line)
			}
			env[k] = v
		}
	}
	t.Fatal("README has no `go run ./cmd/otpbot serve` command")
	return nil, nil
}

// TestReadmeRunCommand starts the bot exactly as the README says, only
// pointed at the fake Bot API, a free port and a temporary store, with one
// admin: a pushed code reaches the linked chat.
func TestReadmeRunCommand(t *testing.T) {
	env, args := readmeRunCommand(t)
	if len(args) != 3 || args[0] != "serve" || args[1] != "-config" {
		t.Fatalf("README run command arguments %v", args)
	}
	fake := bottest.New(t)
	dir := t.TempDir()
	env["OTPBOT_TELEGRAM_API_ENDPOINT"] = fake.Endpoint()
	env["OTPBOT_HTTP_LISTEN"] = "127.0.0.1:0"
	env["OTPBOT_STORE_PATH"] = filepath.Join(dir, "otpbot.db")
	env["OTPBOT_TELEGRAM_ADMINS"] = fmt.Sprint(adminID)
	in := startServe(t, filepath.Join("../..", args[2]), env)

	const chat = int64(4001)
	linkCard(t, fake, chat, "C1")
	code, resp := post(t, in.url+"/webhooks/upay?token="+env["OTPBOT_PROVIDERS_UPAY_TOKEN"], upayOTP("ORD-README", "C1", "314159"), nil)
	if code != http.StatusOK || resp != "SUCCESS" {
		t.Fatalf("push answered %d %q", code, resp)
	}
	waitUntil(t, "code from the README setup", func() bool { return sentWith(fake, chat, "314159") == 1 })
	code, resp = post(t, in.url+"/hc_sync/common?token="+env["OTPBOT_PROVIDERS_HYPERCARD_TOKEN"], hcOTP("C1", "271828"), nil)
	if code != http.StatusOK || !strings.Contains(resp, `"code":1`) {
		t.Fatalf("HyperCard push answered %d %q", code, resp)
	}
	waitUntil(t, "HyperCard code from the README setup", func() bool { return sentWith(fake, chat, "271828") == 1 })
}

// TestReadmeTestCommandIsCI keeps the README's test command and .ci/run in
// step.
func TestReadmeTestCommandIsCI(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	const cmd = "make test"
	if !strings.Contains(string(readme), "```sh\n"+cmd+"\n```") {
		t.Errorf("README does not show %q as the test command", cmd)
	}
	if !strings.Contains(string(ci), "\n"+cmd+"\n") {
		t.Errorf(".ci/run does not run %q", cmd)
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil || !strings.Contains(string(mk), "test -count=1 ./...") {
		t.Errorf("make test is not go test ./... (%v)", err)
	}
}

// TestEnvOverridesKeysAbsentFromTheFile: a file with no providers section
// and no token; the environment supplies them (and moves a path), and the
// server honours them.
func TestEnvOverridesKeysAbsentFromTheFile(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "bare.yaml", fmt.Sprintf("http:\n  listen: \"127.0.0.1:0\"\nstore:\n  path: %q\n", filepath.Join(dir, "o.db")))
	env := map[string]string{
		"OTPBOT_TELEGRAM_TOKEN":            testToken,
		"OTPBOT_TELEGRAM_API_ENDPOINT":     fake.Endpoint(),
		"OTPBOT_TELEGRAM_ADMINS":           "41, 42",
		"OTPBOT_PROVIDERS_UPAY_TOKEN":      "env-upay-token",
		"OTPBOT_PROVIDERS_UPAY_PATH":       "/custom/upay",
		"OTPBOT_PROVIDERS_HYPERCARD_TOKEN": "env-hc-token",
		"OTPBOT_CODES_TTL_BY_EVENT":        "3ds_otp=7m",
	}
	in := startServe(t, path, env)
	const chat = int64(4101)
	linkCard(t, fake, chat, "C1")
	if code, _ := post(t, in.url+"/webhooks/upay?token=env-upay-token", upayOTP("ORD-ENV", "C1", "161803"), nil); code != http.StatusNotFound {
		t.Errorf("the default path still answers %d after OTPBOT_PROVIDERS_UPAY_PATH moved it", code)
	}
	code, resp := post(t, in.url+"/custom/upay?token=env-upay-token", upayOTP("ORD-ENV", "C1", "161803"), nil)
	if code != http.StatusOK || resp != "SUCCESS" {
		t.Fatalf("push answered %d %q", code, resp)
	}
	waitUntil(t, "code", func() bool { return sentWith(fake, chat, "161803") == 1 })
	if m := messagesWith(fake, chat, "161803"); len(m) != 1 || !strings.Contains(m[0].Plain(), "expires in 7:00") && !strings.Contains(m[0].Plain(), "expires in 6:5") {
		t.Errorf("codes.ttl_by_event from the environment not applied: %+v", m)
	}
	if code, _ := post(t, in.url+"/custom/upay?token=wrong", upayOTP("ORD-ENV2", "C1", "1"), nil); code != http.StatusUnauthorized {
		t.Errorf("wrong token answered %d", code)
	}
}

// TestHealthReadyMetrics checks the operational endpoints of a running
// server.
func TestHealthReadyMetrics(t *testing.T) {
	fake := bottest.New(t)
	in := startServe(t, testConfig(t, t.TempDir(), fake, ""), nil)
	in.pushUPay(upayOTP("ORD-MET", "C-NONE", "123123"))
	if code, body := get(t, in.url+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, _ := get(t, in.url+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d", code)
	}
	names := []string{
		`otpbot_build_info{goversion="go1.`, "go_goroutines", "process_cpu_seconds_total",
		"otpbot_pushes_total", "otpbot_telegram_calls_total",
	}
	// The HTTP side answers before the bot has made its first Telegram
	// call (getMe), and a counter with labels shows up at its first
	// count: wait for the scrape that has them all.
	var body string
	waitUntil(t, "every metric on /metrics", func() bool {
		var code int
		code, body = get(t, in.url+"/metrics")
		if code != 200 {
			t.Fatalf("/metrics = %d", code)
		}
		for _, name := range names {
			if !strings.Contains(body, name) {
				return false
			}
		}
		return true
	})
	if code, _ := get(t, in.url+"/nope"); code != 404 {
		t.Errorf("unknown path answered %d", code)
	}
}

// freeAddr returns a loopback address with a port free right now, for a
// configuration that must name its own URL before it listens.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestTelegramWebhookMode: with telegram.updates: webhook, serve calls
// setWebhook with the URL and secret, commands arrive on that path, and a
// request without the secret gets 401 and changes nothing. The secret path
// never reaches the logs.
func TestTelegramWebhookMode(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	const secretPath = "/tg/9f8e7d6c5b4a"
	const secret = "webhook-secret-0123"
	cfg := testConfig(t, dir, fake, "")
	in := startServe(t, cfg, map[string]string{
		"OTPBOT_HTTP_LISTEN":             addr,
		"OTPBOT_TELEGRAM_UPDATES":        "webhook",
		"OTPBOT_TELEGRAM_WEBHOOK_URL":    "http://" + addr + secretPath,
		"OTPBOT_TELEGRAM_WEBHOOK_SECRET": secret,
	})
	waitUntil(t, "setWebhook", func() bool { u, s := fake.WebhookURL(); return u == "http://"+addr+secretPath && s == secret })

	// A forged update without the secret: 401, and no link is made.
	forged := fmt.Sprintf(`{"update_id":999001,"message":{"message_id":1,"date":1,"chat":{"id":5601,"type":"private"},"from":{"id":%d,"is_bot":false,"first_name":"A"},"text":"/link card C1","entities":[{"type":"bot_command","offset":0,"length":5}]}}`, adminID)
	if code, _ := post(t, in.url+secretPath, forged, nil); code != http.StatusUnauthorized {
		t.Errorf("update without the secret answered %d", code)
	}
	if code, _ := post(t, in.url+secretPath, forged, map[string]string{"X-Telegram-Bot-Api-Secret-Token": "wrong"}); code != http.StatusUnauthorized {
		t.Errorf("update with a wrong secret answered %d", code)
	}

	// Real updates come through the webhook.
	const chat = int64(5601)
	linkCard(t, fake, chat, "C1")
	in.pushUPay(upayOTP("ORD-WH", "C1", "565656"))
	waitUntil(t, "code", func() bool { return sentWith(fake, chat, "565656") == 1 })
	if n := len(fake.Calls("getUpdates")); n != 0 {
		t.Errorf("webhook mode polled getUpdates %d times", n)
	}
	if strings.Contains(in.logs.String(), secretPath) || strings.Contains(in.logs.String(), secret) {
		t.Errorf("logs show the webhook path or secret")
	}
}

// TestApprovalAnsweredFromTelegram: with providers.hypercard.api set, an
// AUTH_3DS request arrives with Approve / Decline; approving (and
// confirming) sends one signed decision with the configured auth_result to
// HyperCard's API.
func TestApprovalAnsweredFromTelegram(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	merchantKey, merchantPub := rsaPair(t, dir, "merchant-api", 1024)
	pub, err := readPublicKey(merchantPub)
	if err != nil {
		t.Fatal(err)
	}
	hp := hptest.New(t, pub)
	hp.WantAPIKey("hc-api-key-value")
	in := startServe(t, testConfig(t, dir, fake, ""), map[string]string{
		"OTPBOT_PROVIDERS_HYPERCARD_API_BASE_URL":         hp.URL(),
		"OTPBOT_PROVIDERS_HYPERCARD_API_API_KEY":          "hc-api-key-value",
		"OTPBOT_PROVIDERS_HYPERCARD_API_PRIVATE_KEY_FILE": merchantKey,
		"OTPBOT_PROVIDERS_HYPERCARD_API_APPROVE_RESULT":   "3",
		"OTPBOT_PROVIDERS_HYPERCARD_API_DECLINE_RESULT":   "2",
	})
	const chat = int64(5801)
	linkCard(t, fake, chat, hcCard)
	in.pushHyperCard(fmt.Sprintf(`{"notify_type":"AUTH_3DS","auth_id":283,"card_id":%q,"card_no":"103411******1234",`+
		`"txn_currency":"EUR","txn_amount":"12.50","card_acceptor_merchant_name":"Amazon","card_acceptor_location_country":"DE",`+
		`"auth_result":1,"expired_time":%d,"created_Time":%d,"updated_Time":%d}`, hcCard, time.Now().Add(10*time.Minute).Unix(), time.Now().Unix(), time.Now().Unix()))

	var msg bottest.Message
	waitUntil(t, "approval request with buttons", func() bool {
		for _, m := range messagesWith(fake, chat, "Amazon") {
			if len(m.Buttons) > 0 {
				msg = m
				return true
			}
		}
		return false
	})
	if !strings.Contains(msg.Plain(), "•••• 1234") {
		t.Errorf("approval request lacks the masked card: %q", msg.Plain())
	}
	fake.PressButton(chat, adminID, msg.ID, "approve")
	var confirm string
	waitUntil(t, "confirmation button", func() bool {
		m, _ := fake.Message(chat, msg.ID)
		if len(m.Buttons) > 0 && strings.HasPrefix(m.Buttons[0][0].Data, "approve:confirm:") {
			confirm = m.Buttons[0][0].Data
		}
		return confirm != ""
	})
	// The confirmation is the admin's: another user's press of it, or a
	// forged decline, sends nothing.
	fake.PressButton(chat, strangerID, msg.ID, confirm)
	fake.PressButton(chat, adminID, msg.ID, "decline:confirm")
	fake.PressButton(chat, adminID, msg.ID, confirm)
	waitUntil(t, "decision sent to HyperCard", func() bool { r, ok := hp.AuthResult("283"); return ok && r == 3 })
	if n := len(hp.Decisions()); n != 1 {
		t.Errorf("%d decision calls, want 1", n)
	}
	waitUntil(t, "buttons gone", func() bool { m, _ := fake.Message(chat, msg.ID); return len(m.Buttons) == 0 })
	if strings.Contains(in.logs.String(), "hc-api-key-value") {
		t.Errorf("logs show the API key")
	}
}

// TestPprofIsLoopbackOnly: with http.pprof, Go's profiler answers a
// loopback client (a CPU profile longer than http.write_timeout included)
// and refuses a request through a proxy or from another address; without
// it, the path does not exist.
func TestPprofIsLoopbackOnly(t *testing.T) {
	fake := bottest.New(t)
	off := startServe(t, testConfig(t, t.TempDir(), fake, ""), nil)
	if code, _ := get(t, off.url+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("without http.pprof, /debug/pprof/ answered %d, want 404", code)
	}
	off.stop()

	in := startServe(t, testConfig(t, t.TempDir(), fake, ""), map[string]string{"OTPBOT_HTTP_PPROF": "true", "OTPBOT_HTTP_WRITE_TIMEOUT": "1s"})
	if code, body := get(t, in.url+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ = %d:\n%.300s", code, body)
	}
	if code, body := get(t, in.url+"/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile = %d:\n%.300s", code, body)
	}
	// Two seconds of CPU profile, with a one-second write_timeout.
	if code, body := get(t, in.url+"/debug/pprof/profile?seconds=2"); code != http.StatusOK || len(body) == 0 {
		t.Errorf("CPU profile = %d, %d bytes:\n%.300s", code, len(body), body)
	}
	code, _ := post(t, in.url+"/debug/pprof/heap", "", map[string]string{"X-Forwarded-For": "203.0.113.7"})
	if code != http.StatusForbidden {
		t.Errorf("a request through a proxy answered %d, want 403", code)
	}

	// Another machine's request, as the handler sees it.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/debug/pprof/heap", nil)
	req.RemoteAddr = "192.0.2.10:40000"
	handlePprof().ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("a request from 192.0.2.10 answered %d, want 403", rec.Code)
	}
}
