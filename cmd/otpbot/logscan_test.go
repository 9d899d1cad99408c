package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/webhooks"
)

// secretFields are the push fields whose values must never reach a log:
// codes and links, and full card numbers.
var (
	codeFields = map[string]bool{"3dsCode": true, "validateCode": true, "code": true}
	cardFields = map[string]bool{"cardNumber": true, "card_no": true}
)

// plant replaces every code and card number in a decoded push with a value
// unique to this push (codes: letters that cannot appear by chance; card
// numbers: 16 digits), routes it to card, and returns what it planted.
func plant(v any, n int, card string, planted *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if _, ok := val.(string); ok {
				switch {
				case codeFields[k]:
					s := fmt.Sprintf("QZ%03dCODEXJ", n)
					x[k] = s
					*planted = append(*planted, s)
				case cardFields[k]:
					s := fmt.Sprintf("4929%012d", 700000000+n)
					x[k] = s
					*planted = append(*planted, s)
				case k == "cardId" || k == "card_id":
					x[k] = card
				}
			}
			plant(val, n, card, planted)
		}
	case []any:
		for _, e := range x {
			plant(e, n, card, planted)
		}
	}
}

// TestLogsNeverShowSecrets pushes every event of both providers' test data
// (every event type, valid and malformed) with planted codes and card
// numbers, lets them be delivered to a supergroup, and scans the
// debug-level JSON logs for any code, card number, token or secret. What
// an operator greps for stays whole (the group's chat id, task ids), and
// durations are in milliseconds.
func TestLogsNeverShowSecrets(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, fake, "")
	in := startServe(t, cfg, map[string]string{
		"OTPBOT_PROVIDERS_UPAY_SECRET_KEY": "upay-hmac-secret-value",
		"OTPBOT_LOG_FORMAT":                "json",
		// One group receives every code: let it take them quickly.
		"OTPBOT_TELEGRAM_RATE_PER_CHAT_PER_SECOND": "100",
		"OTPBOT_TELEGRAM_RATE_GROUP_PER_MINUTE":    "6000",
	})
	const chat = int64(-1001234565701)
	linkCard(t, fake, chat, "C1")

	var planted []string
	var wantSent []string // codes of valid code pushes, which must reach the chat
	n := 0
	for _, provider := range []string{"upay", "hypercard"} {
		files, err := filepath.Glob(filepath.Join("../../webhooks/testdata", provider, "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no test data for %s: %v", provider, err)
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			body := raw
			var doc any
			if json.Unmarshal(raw, &doc) == nil {
				var mine []string
				plant(doc, n, "C1", &mine)
				if _, isObj := doc.(map[string]any); isObj {
					// A unique order number keeps dedupe from hiding pushes;
					// the push time is the signature's, as UPay sends it (a
					// code is dated by it).
					if provider == "upay" {
						doc.(map[string]any)["orderNo"] = fmt.Sprintf("LOGSCAN-%d", n)
						doc.(map[string]any)["timestamp"] = time.Now().UnixMilli()
					}
					body, _ = json.Marshal(doc)
				}
				planted = append(planted, mine...)
				parse := webhooks.Parser.ParseUPay
				if provider == "hypercard" {
					parse = webhooks.Parser.ParseHyperCard
				}
				parser := webhooks.Parser{IDSecret: []byte("0123456789abcdef0123456789abcdef")}
				if ev, err := parse(parser, body, time.Now()); err == nil && ev.Kind.Pushed() && ev.Code != "" && !ev.Expired(time.Now()) && ev.CardID == "C1" {
					wantSent = append(wantSent, ev.Code)
				}
			}
			n++
			url := in.url + "/webhooks/upay?token=" + upayToken
			headers := map[string]string{}
			if provider == "upay" {
				var ev struct {
					Event string `json:"event"`
				}
				_ = json.Unmarshal(body, &ev)
				ts := fmt.Sprint(time.Now().UnixMilli())
				headers["X-UPA-TIMESTAMP"] = ts
				headers["X-UPA-SIGN"] = webhooks.SignUPay([]byte("upay-hmac-secret-value"), ev.Event, ts, body)
			} else {
				url = in.url + "/hc_sync/common"
				headers["Authorization"] = "Bearer " + hcToken
			}
			if code, _ := post(t, url, string(body), headers); code >= 500 {
				t.Errorf("%s answered %d", f, code)
			}
		}
	}
	// Also requests that fail authentication, with the secrets in them.
	post(t, in.url+"/webhooks/upay?token=wrong-"+upayToken, `{"event":"3DS_OTP"}`, map[string]string{"X-UPA-SIGN": "Zm9yZ2Vk"})
	post(t, in.url+"/hc_sync/common", `{"notify_type":"OPT_CODE"}`, map[string]string{"Authorization": "Bearer " + hcToken + "x"})

	if len(wantSent) < 4 {
		t.Fatalf("only %d deliverable code pushes in the test data", len(wantSent))
	}
	waitUntil(t, "every code delivered", func() bool {
		for _, c := range wantSent {
			if sentWith(fake, chat, c) == 0 {
				return false
			}
		}
		return true
	})
	if code, _ := get(t, in.url+"/metrics"); code != http.StatusOK {
		t.Errorf("/metrics = %d", code)
	}
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	logs := in.logs.String()
	if !strings.Contains(logs, `"msg":"push"`) {
		t.Fatalf("no push log lines; the scan would prove nothing:\n%s", logs)
	}
	for _, want := range []string{`"target":"-1001234565701"`, `"task":"upay:LOGSCAN-`, `"duration_ms":`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %s", want)
		}
	}
	if strings.Contains(logs, `"duration":`) {
		t.Errorf("a JSON duration is not in milliseconds")
	}
	secrets := append([]string{testToken, upayToken, hcToken, "upay-hmac-secret-value", "Zm9yZ2Vk"}, planted...)
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, s) {
					t.Errorf("a log line shows %q: %s", s, line)
				}
			}
		}
	}
}
