package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/bolt"
)

// boundRow is one bounded field of one push: where it sits in a test body
// (a top-level member, or "detail.x" in a UPay detail) and its limit.
type boundRow struct {
	provider string // "upay" or "hypercard"
	file     string // the test body it is set in
	field    string
	max      int
	// fill is the character the value is made of: one a well-formed value
	// of the field may consist of, so that a value at the limit is
	// otherwise acceptable. Default "7".
	fill string
}

var boundRows = []boundRow{
	// UPay: the envelope of any event.
	{provider: "upay", file: "3ds_otp.json", field: "event", max: MaxIDBytes, fill: "X"},
	{provider: "upay", file: "3ds_otp.json", field: "trace", max: MaxIDBytes},
	{provider: "upay", file: "3ds_otp.json", field: "orderNo", max: MaxIDBytes},
	{provider: "upay", file: "3ds_otp.json", field: "timestamp", max: MaxIDBytes},
	{provider: "upay", file: "unknown_event.json", field: "trace", max: MaxIDBytes},
	// UPay code events.
	{provider: "upay", file: "3ds_otp.json", field: "detail.cardId", max: MaxIDBytes},
	{provider: "upay", file: "3ds_otp.json", field: "detail.customerNo", max: MaxIDBytes},
	{provider: "upay", file: "3ds_otp.json", field: "detail.cardNumber", max: MaxIDBytes},
	{provider: "upay", file: "3ds_otp.json", field: "detail.3dsCode", max: MaxIDBytes},
	{provider: "upay", file: "3ds_otp.json", field: "detail.orderNo", max: MaxIDBytes},
	{provider: "upay", file: "3ds_confirm.json", field: "detail.validateCode", max: MaxIDBytes},
	{provider: "upay", file: "3ds_confirm.json", field: "detail.merchants", max: MaxTextBytes, fill: "M"},
	{provider: "upay", file: "3ds_confirm.json", field: "detail.amount", max: MaxTextBytes},
	{provider: "upay", file: "3ds_confirm.json", field: "detail.transactionCurrency", max: MaxTextBytes, fill: "E"},
	{provider: "upay", file: "3ds_confirm.json", field: "detail.transactionTime", max: MaxIDBytes},
	{provider: "upay", file: "ne_verify_code.json", field: "detail.code", max: MaxIDBytes},
	{provider: "upay", file: "ne_verify_code.json", field: "detail.type", max: MaxIDBytes, fill: "T"},
	{provider: "upay", file: "ne_verify_link.json", field: "detail.code", max: MaxLinkBytes, fill: "l"},
	// UPay history events.
	{provider: "upay", file: "cc_withdraw_cash.json", field: "detail.cardId", max: MaxIDBytes},
	{provider: "upay", file: "cc_withdraw_cash.json", field: "detail.transactionId", max: MaxIDBytes},
	{provider: "upay", file: "cc_withdraw_cash.json", field: "detail.reason", max: MaxTextBytes, fill: "r"},
	{provider: "upay", file: "cc_consume.json", field: "detail.merchantName", max: MaxTextBytes, fill: "M"},
	{provider: "upay", file: "ks_kyc.json", field: "detail.customerNo", max: MaxIDBytes},
	{provider: "upay", file: "mf_material_flow.json", field: "detail.recipientAddress", max: MaxTextBytes, fill: "a"},
	{provider: "upay", file: "mf_material_flow.json", field: "detail.logisticsImage", max: MaxLinkBytes, fill: "i"},
	{provider: "upay", file: "unknown_event.json", field: "detail.cardId", max: MaxIDBytes},
	{provider: "upay", file: "ce_event.json", field: "detail.reason", max: MaxTextBytes, fill: "r"},
	// HyperCard.
	{provider: "hypercard", file: "opt_code.json", field: "notify_type", max: MaxIDBytes, fill: "X"},
	{provider: "hypercard", file: "opt_code.json", field: "card_id", max: MaxIDBytes},
	{provider: "hypercard", file: "opt_code.json", field: "code", max: MaxIDBytes},
	{provider: "hypercard", file: "opt_code.json", field: "create_time", max: MaxIDBytes},
	{provider: "hypercard", file: "auth_3ds.json", field: "auth_id", max: MaxIDBytes},
	{provider: "hypercard", file: "auth_3ds.json", field: "card_id", max: MaxIDBytes},
	{provider: "hypercard", file: "auth_3ds.json", field: "card_no", max: MaxIDBytes},
	{provider: "hypercard", file: "auth_3ds.json", field: "card_acceptor_merchant_name", max: MaxTextBytes, fill: "M"},
	{provider: "hypercard", file: "auth_3ds.json", field: "card_acceptor_location_country", max: MaxTextBytes, fill: "C"},
	{provider: "hypercard", file: "auth_3ds.json", field: "txn_amount", max: MaxTextBytes},
	{provider: "hypercard", file: "auth_3ds.json", field: "txn_currency", max: MaxTextBytes, fill: "E"},
	{provider: "hypercard", file: "auth_3ds.json", field: "app_card_id", max: MaxIDBytes},
	{provider: "hypercard", file: "recharge.json", field: "mc_trade_no", max: MaxIDBytes},
	{provider: "hypercard", file: "recharge.json", field: "remark", max: MaxTextBytes, fill: "r"},
	{provider: "hypercard", file: "buy_coin.json", field: "tx_id", max: MaxIDBytes},
	{provider: "hypercard", file: "buy_coin.json", field: "reason", max: MaxTextBytes, fill: "r"},
	{provider: "hypercard", file: "open_card.json", field: "email", max: MaxTextBytes, fill: "e"},
	{provider: "hypercard", file: "unknown_type.json", field: "card_id", max: MaxIDBytes},
}

// withField returns a test body with field set to value.
func withField(t *testing.T, provider, file, field, value string) []byte {
	t.Helper()
	return edit(t, mustRead(provider, file), func(m map[string]any) {
		if name, ok := strings.CutPrefix(field, "detail."); ok {
			detailOf(m)[name] = value
			return
		}
		m[field] = value
	})
}

func parseAs(t *testing.T, provider string, body []byte) otpbot.Event {
	t.Helper()
	parse := testParser.ParseUPay
	if provider == "hypercard" {
		parse = testParser.ParseHyperCard
	}
	ev, err := parse(body, received)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return ev
}

// TestFieldBounds: every id (128 bytes), text (256) and link (2048) of
// both providers is bounded. One byte over, the push is rejected — it can
// never succeed, so it is acknowledged rather than retried — and the
// rejected event keeps at most a short, marked prefix of the value (and
// nothing of a code or card number). At the limit, length rejects nothing.
func TestFieldBounds(t *testing.T) {
	for _, row := range boundRows {
		t.Run(row.provider+"/"+strings.TrimSuffix(row.file, ".json")+"/"+row.field, func(t *testing.T) {
			fill := row.fill
			if fill == "" {
				fill = "7"
			}
			long := strings.Repeat(fill, row.max+1)
			ev := parseAs(t, row.provider, withField(t, row.provider, row.file, row.field, long))
			want := fmt.Sprintf("%s too long (%d bytes, at most %d)", row.field, row.max+1, row.max)
			if ev.Kind != otpbot.KindRejected || ev.Reason != want {
				t.Errorf("one byte over: %s %q, want rejected %q", ev.Kind, ev.Reason, want)
			}
			if ev.Code != "" || ev.Link != "" {
				t.Error("a rejected event keeps a code or link")
			}
			stored, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(stored), strings.Repeat(fill, cutBytes+1)) || len(stored) > 1024 {
				t.Errorf("the rejected event carries the long value (%d bytes): %s", len(stored), stored)
			}

			atLimit := parseAs(t, row.provider, withField(t, row.provider, row.file, row.field, long[1:]))
			if strings.Contains(atLimit.Reason, "too long") {
				t.Errorf("at the limit: rejected %q", atLimit.Reason)
			}
		})
	}
}

// TestTooLongPushIsAcknowledged: a push with a 900 KB card id (under
// max_body_bytes) reaches a real embedded store as a rejected event under a
// short key: acknowledged (200, the platform's ack), recorded as rejected
// and visible to ops, its retry a repeat; never 503, which would have the
// platform retry a push that cannot succeed for ever.
func TestTooLongPushIsAcknowledged(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "otpbot.db"), otpbot.StoreOptions{
		DedupeWindow: 72 * time.Hour, HistoryPerKey: 10, HistoryRetention: time.Hour, InviteTTL: time.Hour,
		Now: func() time.Time { return now },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	rep := &fakeReporter{}
	h, err := New(Config{
		IDSecret:  testIDSecret,
		UPay:      UPayConfig{Enabled: true, Token: testToken},
		HyperCard: HyperCardConfig{Enabled: true, Token: testToken},
	}, store, Options{Now: func() time.Time { return now }, Reporter: rep, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	h.Register(r)
	e := &env{srv: httptest.NewServer(r)}
	t.Cleanup(e.srv.Close)

	tests := []struct {
		provider, path string
		field, fill    string
		body           func(huge string) []byte
		ack            func(response) bool
	}{
		{"upay", DefaultUPayPath, "detail.cardId", "C", func(huge string) []byte {
			return withField(t, "upay", "3ds_otp.json", "detail.cardId", huge)
		}, isUPayAck},
		{"hypercard", DefaultHyperCardPath, "card_id", "D", func(huge string) []byte {
			return withField(t, "hypercard", "opt_code.json", "card_id", huge)
		}, isHyperCardAck},
	}
	for _, tt := range tests {
		t.Run(tt.provider, func(t *testing.T) {
			body := tt.body(strings.Repeat(tt.fill, 900<<10))
			for i := range 2 {
				if got := e.post(t, withToken(tt.path, testToken), body, nil); !tt.ack(got) {
					t.Fatalf("push %d: %d %q, want the acknowledgement", i+1, got.status, got.body)
				}
			}
			key := otpbot.Key{Type: otpbot.KeyCard, ID: strings.Repeat(tt.fill, cutBytes) + "…"}
			entries, err := store.History(context.Background(), key, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Event.Kind != otpbot.KindRejected ||
				!strings.HasPrefix(entries[0].Event.Reason, tt.field+" too long") {
				t.Fatalf("history under the cut key: %+v, want the one rejected push", entries)
			}
		})
	}
	if got := len(rep.reported()); got != 2 {
		t.Errorf("ops heard of %d pushes, want the 2 rejected ones once each", got)
	}
}
