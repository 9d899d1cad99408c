package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

func TestMaskCardNumbers(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"card 4111111111111111 paid", "card •••• 1111 paid"},
		{"5555666677771234", "•••• 1234"},
		{"4111 1111 1111 1234", "•••• 1234"},
		{"4111-1111-1111-1234 in 2024", "•••• 1234 in 2024"},
		{"4111 1111 1111 1234 2024", "•••• 1234 2024"},
		{"12 digits 123456789012", "12 digits •••• 9012"},
		{"19 digits 1234567890123456789", "19 digits •••• 6789"},
		{"11 digits 12345678901 stay", "11 digits 12345678901 stay"},
		{"20 digits 12345678901234567890 stay", "20 digits 12345678901234567890 stay"},
		{"hypercard id 00003454323400000028888", "hypercard id 00003454323400000028888"},
		{"masked 103411******3333 stays", "masked 103411******3333 stays"},
		{"amount 100.00 at 2024-01-02 12:00:00", "amount 100.00 at 2024-01-02 12:00:00"},
		{"pan=4111111111111111,x", "pan=•••• 1111,x"},
		{"", ""},
		{"no digits", "no digits"},
	}
	for _, tt := range tests {
		if got := MaskCardNumbers(tt.in); got != tt.want {
			t.Errorf("MaskCardNumbers(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSecretKey(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"code", true}, {"Code", true}, {"3dsCode", true}, {"validateCode", true},
		{"status_code", true}, {"token", true}, {"bot_token", true}, {"webhooksecret", true},
		{"secret_key", true}, {"password", true}, {"X-UPA-SIGN", true}, {"signature", true},
		{"apiKey", true}, {"api-key", true}, {"key", true}, {"Authorization", true},
		{"event", false}, {"card", false}, {"chat", false}, {"provider", false},
		{"encoding", false}, {"design", false}, {"keyboard", false}, {"status", false},
		{"err", false}, {"addr", false},
	}
	for _, tt := range tests {
		if got := SecretKey(tt.key); got != tt.want {
			t.Errorf("SecretKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

type leaky struct {
	Event    string `json:"event"`
	Code     string `json:"code"`
	CardNo   string `json:"card_no"`
	Token    string `json:"token"`
	Merchant string `json:"merchant"`
}

func TestLoggerRedacts(t *testing.T) {
	const token = "123456:ABCdefGHIjklMNOpqr"
	const redisPass = "hunter2-redis"
	tests := []struct {
		name   string
		log    func(l *slog.Logger)
		leaks  []string // must not appear
		shows  []string // must appear
		format string
	}{
		{
			name: "secret attribute keys",
			log: func(l *slog.Logger) {
				l.Info("push", "code", "654321", "event", "3DS_OTP", "X-UPA-SIGN", "c2lnbmF0dXJl")
			},
			leaks: []string{"654321", "c2lnbmF0dXJl"},
			shows: []string{"3DS_OTP", Redacted},
		},
		{
			name: "configured secret in message and values",
			log: func(l *slog.Logger) {
				l.Error("GET https://api.telegram.org/bot"+token+"/getMe failed", "url", "/bot"+token+"/x", "redis", "auth "+redisPass)
			},
			leaks: []string{token, redisPass},
			shows: []string{"getMe failed", Redacted},
		},
		{
			name: "card number in message, value and error",
			log: func(l *slog.Logger) {
				l.Warn("card 4111111111111111", "detail", "pan 5555 6666 7777 1234", "err", errors.New("bad card 4000000000000002"))
			},
			leaks: []string{"4111111111111111", "5555 6666 7777 1234", "4000000000000002"},
			shows: []string{`"card •••• 1111"`, `"pan •••• 1234"`, "bad card •••• 0002"},
		},
		{
			name: "struct logged by mistake",
			log: func(l *slog.Logger) {
				l.Info("event", "ev", leaky{Event: "OPT_CODE", Code: "888666", CardNo: "1034111111113333", Token: "abc", Merchant: "Amazon"})
			},
			leaks: []string{"888666", "1034111111113333"},
			shows: []string{"OPT_CODE", "Amazon", "•••• 3333"},
		},
		{
			name:   "json format, groups and With",
			format: "json",
			log: func(l *slog.Logger) {
				l.With("token", "zzz-secret-zzz").WithGroup("req").Info("x", slog.Group("hdr", "signature", "sigvalue", "nonce", "n1"))
			},
			leaks: []string{"zzz-secret-zzz", "sigvalue"},
			shows: []string{`"nonce":"n1"`},
		},
		{
			name: "plain values under key names stay hidden",
			log: func(l *slog.Logger) {
				l.Info("linked", "key", "card:C1", "key_type", "card", "secret_key", "card:x", "api_key", "k-123", "owner_key", "customer:77")
			},
			leaks: []string{"card:C1", "k-123", "card:x", "customer:77"},
			shows: []string{"key=" + Redacted, "key_type=" + Redacted, "secret_key=" + Redacted, "api_key=" + Redacted},
		},
		{
			name: "the bot's link lines: card ids masked, customers as they are",
			log: func(l *slog.Logger) {
				l.Info("linked", "key_type", otpbot.KeyCard, "key", otpbot.MaskedID("CARD-0001-RD-A"), "target", otpbot.Target{ChatID: 5})
				l.Info("linked", "key_type", otpbot.KeyCustomer, "key", otpbot.MaskedID("CU-7"))
				l.Info("linked", "key_type", otpbot.KeyCard, "key", otpbot.MaskedID("4111111111111111"))
				l.Info("key as a value", "key", otpbot.Key{Type: otpbot.KeyCard, ID: "5555666677771234"}, "route_key", otpbot.Key{Type: otpbot.KeyCustomer, ID: "CU-77"})
				l.Info("ops report", "key", otpbot.Key{Type: otpbot.KeyCard, ID: "CARD-0002-XY-Z"}, "owner_key", otpbot.Key{Type: otpbot.KeyCustomer, ID: "CU-9"})
			},
			leaks: []string{"CARD-0001", "4111111111111111", "5555666677771234", "CARD-0002"},
			shows: []string{
				"key_type=card key=…RD-A target=5", "key_type=customer key=CU-7", "key_type=card key=…1111",
				"key=card:…1234 route_key=customer:CU-77", "key=card:…XY-Z owner_key=customer:CU-9",
			},
		},
		{
			name: "typed secrets and cards, whatever the attribute is called",
			log: func(l *slog.Logger) {
				l.Info("typed", "value", otpbot.Secret("s3cr3t-value"), "missing", otpbot.Secret(""),
					"pan", otpbot.CardNumber("4000123412341234"), "last4", otpbot.CardNumber("9876"),
					"card", otpbot.CardID("CARD-0003-QQ-W"), "short", otpbot.CardID("c-7"))
			},
			leaks: []string{"s3cr3t-value", "4000123412341234", "CARD-0003"},
			shows: []string{"value=" + Redacted, `missing=""`, `pan="•••• 1234"`, `last4="•••• 9876"`, `card="•••• QQ-W"`, `short="•••• c-7"`},
		},
		{
			name: "chat ids and task ids stay whole; a card number in free text does not",
			log: func(l *slog.Logger) {
				target := otpbot.Target{ChatID: -1001234564321, ThreadID: 42}
				l.Info("delivered", "task", otpbot.Ref("ops:1700000000000003075"), "message", otpbot.Ref("upay:ORD-1@-1001234564321"),
					"target", target, "to", otpbot.Target{ChatID: -1009876543210}, "chat", target.ChatID,
					"err", errors.New("sendMessage to -1001234564321 for card 4111111111111111: 400"))
			},
			leaks: []string{"4111111111111111", "•••• 4321", "•••• 3075"},
			shows: []string{
				"task=ops:1700000000000003075", "message=upay:ORD-1@-1001234564321", "target=-1001234564321/42",
				"to=-1009876543210", "chat=-1001234564321", `err="sendMessage to -1001234564321 for card •••• 1111: 400"`,
			},
		},
		{
			name:  "numbers stay readable",
			log:   func(l *slog.Logger) { l.Info("sent", "chat", int64(-1001234567890), "message_id", 42) },
			shows: []string{"-1001234567890", "42"},
		},
		{
			name:  "empty secret shows it was missing",
			log:   func(l *slog.Logger) { l.Info("auth", "token", "") },
			shows: []string{"token="},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(New(&buf, "debug", tt.format, token, redisPass, "", "ab"))
			out := buf.String()
			for _, s := range tt.leaks {
				if strings.Contains(out, s) {
					t.Errorf("log leaks %q: %s", s, out)
				}
			}
			for _, s := range tt.shows {
				if !strings.Contains(out, s) {
					t.Errorf("log lacks %q: %s", s, out)
				}
			}
			if tt.format == "json" {
				var m map[string]any
				if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
					t.Errorf("not JSON: %v: %s", err, out)
				}
			}
		})
	}
}

func TestLevels(t *testing.T) {
	tests := []struct {
		level     string
		debugSeen bool
		infoSeen  bool
	}{
		{"debug", true, true}, {"", false, true}, {"info", false, true}, {"warn", false, false}, {"error", false, false},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		l := New(&buf, tt.level, "text")
		l.Debug("dbg")
		l.Info("inf")
		if got := strings.Contains(buf.String(), "dbg"); got != tt.debugSeen {
			t.Errorf("level %q: debug seen = %v", tt.level, got)
		}
		if got := strings.Contains(buf.String(), "inf"); got != tt.infoSeen {
			t.Errorf("level %q: info seen = %v", tt.level, got)
		}
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Error("ParseLevel(loud) succeeded")
	}
	if ValidFormat("xml") || !ValidFormat("json") || !ValidFormat("TEXT") {
		t.Error("ValidFormat wrong")
	}
}

// TestDurations: JSON shows a duration as whole milliseconds under its key
// with "_ms" added (slog alone writes nanoseconds), inside groups and With
// too; text keeps Go's syntax.
func TestDurations(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, "info", "json").With("timeout", 15*time.Second).Info("push",
		"duration", 1500*time.Microsecond, "retry_in", 2*time.Second, slog.Group("call", "took", 250*time.Millisecond), "status", 200)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.String())
	}
	want := map[string]float64{"duration_ms": 1, "retry_in_ms": 2000, "timeout_ms": 15000, "status": 200}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v: %s", k, m[k], v, buf.String())
		}
	}
	if call, _ := m["call"].(map[string]any); call["took_ms"] != 250.0 {
		t.Errorf("call.took_ms = %v: %s", call["took_ms"], buf.String())
	}
	for _, k := range []string{"duration", "retry_in", "timeout"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s is still there: %s", k, buf.String())
		}
	}

	buf.Reset()
	New(&buf, "info", "text").Info("push", "duration", 1500*time.Microsecond)
	if !strings.Contains(buf.String(), "duration=1.5ms") {
		t.Errorf("text shows %s", buf.String())
	}
}
