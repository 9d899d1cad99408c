package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

// received is the receipt time every parser test uses.
var received = time.Date(2025, 8, 15, 9, 0, 0, 0, time.UTC)

// testCodes has a per-event TTL written in lower case, so the table also
// shows that ttl_by_event matches case-insensitively.
var testCodes = CodeConfig{
	TTL:        5 * time.Minute,
	TTLByEvent: map[string]time.Duration{"3ds_otp": 10 * time.Minute, "OPT_CODE": 3 * time.Minute},
}

// testIDSecret is the installation secret the tests parse with.
var testIDSecret = []byte("webhooks-test-installation-key-0")

// testParser parses with testIDSecret and testCodes.
var testParser = Parser{IDSecret: testIDSecret, Codes: testCodes}

func ms(n int64) time.Time  { return time.UnixMilli(n).UTC() }
func sec(n int64) time.Time { return time.Unix(n, 0).UTC() }

// pushTime is the envelope timestamp of the UPay test bodies.
var pushTime = ms(1755248905430)

// upayEv fills what every UPay test event has in common.
func upayEv(orderNo, name string, kind otpbot.Kind, e otpbot.Event) otpbot.Event {
	e.ID, e.Group = "upay:"+orderNo, "upay:"+orderNo
	e.Provider, e.Name, e.Kind = otpbot.ProviderUPay, name, kind
	e.ReceivedAt = received
	return e
}

// card1 is the card most UPay test bodies are about.
func card1(e otpbot.Event) otpbot.Event {
	e.CardID, e.CustomerNo, e.CardLast4 = "C1", "CU1001", "1234"
	return e
}

func TestParseUPay(t *testing.T) {
	tests := map[string]parseCase{
		"cc_consume.json": {want: upayEv("PN202508150001", "CC_CONSUME", otpbot.KindInfo, card1(otpbot.Event{
			Amount: "12.50", Currency: "EUR", Merchant: "Amazon EU", Status: "successful", Type: "2", Direction: "2",
			OriginalAmount: "13.99", OriginalCurrency: "USD", Trace: "TR202508150001", OccurredAt: ms(1755248900000),
		}))},
		"cc_refund.json": {want: upayEv("PN2", "CC_REFUND", otpbot.KindInfo, card1(otpbot.Event{
			Amount: "12.50", Currency: "EUR", Merchant: "Amazon EU", Status: "credited", Type: "3", Direction: "1",
			Trace: "TR2", OccurredAt: ms(1755248900000),
		}))},
		"cc_withdraw_cash.json": {want: upayEv("PN3", "CC_WITHDRAW_CASH", otpbot.KindInfo, card1(otpbot.Event{
			// 100 in US dollars is shown in cents.
			Amount: "100.00", Currency: "USD", Status: "failed", Reason: "insufficient balance", Type: "4", Direction: "2",
			Trace: "TR3", OccurredAt: ms(1755248900000),
		}))},
		"cc_redeem.json": {want: upayEv("PN4", "CC_REDEEM", otpbot.KindInfo, card1(otpbot.Event{
			Amount: "50.00", Currency: "USDT", Status: "processing", Type: "5", Direction: "1", Trace: "TR4",
			OccurredAt: ms(1755248900000),
		}))},
		"cc_recharge.json": {want: upayEv("PN5", "CC_RECHARGE", otpbot.KindInfo, card1(otpbot.Event{
			Amount: "200.00", Currency: "USD", Status: "not credited", Type: "1", Direction: "1", Trace: "TR5",
			OccurredAt: ms(1755248900000),
		}))},
		// Outside the push document: shaped like a transaction, nothing required.
		"cc_authorization.json": {want: upayEv("PN6", "CC_AUTHORIZATION", otpbot.KindInfo, card1(otpbot.Event{
			Amount: "9.99", Currency: "USD", Merchant: "Netflix", Status: "successful", Trace: "TR6", OccurredAt: pushTime,
		}))},
		"3ds_otp.json": {want: upayEv("PN7", "3DS_OTP", otpbot.KindCode, card1(otpbot.Event{
			Code: "004711", Trace: "TR7",
			OccurredAt: pushTime, ExpiresAt: received.Add(10 * time.Minute),
		}))},
		"3ds_otp_strings_and_extra_fields.json": {want: upayEv("PN8", "3DS_OTP", otpbot.KindCode, otpbot.Event{
			CardID: "123456", CustomerNo: "42", CardLast4: "9876",
			Code: "123456", Trace: "TR8",
			OccurredAt: pushTime, ExpiresAt: received.Add(10 * time.Minute),
		})},
		"3ds_otp_missing_code.json": {want: upayEv("PN9", "3DS_OTP", otpbot.KindRejected, card1(otpbot.Event{
			Reason: "missing required field detail.3dsCode", Trace: "TR9", OccurredAt: pushTime,
		}))},
		// A code is delivered without what it only displays: the card
		// number, the trace.
		"3ds_otp_empty_card_number.json": {want: upayEv("PN10", "3DS_OTP", otpbot.KindCode, otpbot.Event{
			CardID: "C1", CustomerNo: "CU1001", Code: "004711",
			Trace: "TR10", OccurredAt: pushTime, ExpiresAt: received.Add(10 * time.Minute),
		}), degraded: []string{"detail.cardNumber"}},
		"3ds_otp_missing_trace.json": {want: upayEv("PN11", "3DS_OTP", otpbot.KindCode, card1(otpbot.Event{
			Code: "004711", OccurredAt: pushTime, ExpiresAt: received.Add(10 * time.Minute),
		})), degraded: []string{"trace"}},
		// Without its code, or without any routing key, there is nothing to
		// deliver, or no one to deliver it to.
		"3ds_otp_no_detail.json": {want: upayEv("PN12", "3DS_OTP", otpbot.KindRejected, otpbot.Event{
			Reason: "missing required field detail.3dsCode", Trace: "TR12", OccurredAt: pushTime,
		})},
		"3ds_otp_no_routing_key.json": {want: upayEv("PN30", "3DS_OTP", otpbot.KindRejected, otpbot.Event{
			CardLast4: "1234", Reason: "missing routing key (detail.cardId or detail.customerNo)",
			Trace: "TR30", OccurredAt: pushTime,
		})},
		// Only the customer number routes it; the card number, merchant,
		// amount, currency and times are malformed or missing: all shown
		// as absent, the code delivered.
		"3ds_confirm_degraded.json": {want: upayEv("PN29", "3DS_CONFIRM", otpbot.KindCode, otpbot.Event{
			CustomerNo: "CU1001", Code: "B8L3",
			ExpiresAt: received.Add(5 * time.Minute),
		}), degraded: []string{"trace", "timestamp", "detail.cardId", "detail.cardNumber", "detail.merchants",
			"detail.transactionTime", "detail.amount", "detail.transactionCurrency"}},
		"3ds_otp_detail_not_object.json": {want: upayEv("PN13", "3DS_OTP", otpbot.KindRejected, otpbot.Event{
			Reason: "detail is not an object", Trace: "TR13", OccurredAt: pushTime,
		})},
		"3ds_otp_code_is_object.json": {want: upayEv("PN14", "3DS_OTP", otpbot.KindRejected, card1(otpbot.Event{
			Reason: "missing required field detail.3dsCode", Trace: "TR14", OccurredAt: pushTime,
		}))},
		"3ds_confirm.json": {want: upayEv("PN15", "3DS_CONFIRM", otpbot.KindCode, card1(otpbot.Event{
			Code:     "A7K2",
			Merchant: "Booking.com", Amount: "249.90", Currency: "EUR", Trace: "TR15",
			OccurredAt: ms(1755248901000), ExpiresAt: received.Add(5 * time.Minute),
		}))},
		"cr_recharge.json": {want: upayEv("PN16", "CR_RECHARGE", otpbot.KindInfo, card1(otpbot.Event{
			Amount: "500", Status: "pending payment", Trace: "TR16", OccurredAt: ms(1755248800000),
		}))},
		"ca_apply.json": {want: upayEv("PN17", "CA_APPLY", otpbot.KindInfo, otpbot.Event{
			CardID: "C2", CustomerNo: "CU1001", Amount: "10.00", Status: "paid",
			Trace: "TR17", OccurredAt: ms(1755248700000),
		})},
		"ne_verify_code.json": {want: upayEv("PN18", "NE_VERIFY", otpbot.KindCode, card1(otpbot.Event{
			Code: "918273", Type: "3DS_VERIFICATION_CODE", Trace: "TR18",
			OccurredAt: pushTime, ExpiresAt: received.Add(5 * time.Minute),
		}))},
		"ne_verify_link.json": {want: upayEv("PN19", "NE_VERIFY", otpbot.KindCode, card1(otpbot.Event{
			Link: "https://3ds.example.com/confirm?t=abc",
			Type: "3DS_CONFIRM_LINK", Trace: "TR19",
			OccurredAt: pushTime, ExpiresAt: received.Add(5 * time.Minute),
		}))},
		"ne_verify_activation.json": {want: upayEv("PN20", "NE_VERIFY", otpbot.KindCode, card1(otpbot.Event{
			Code: "5521", Type: "CARD_ACTIVATION", Trace: "TR20",
			OccurredAt: pushTime, ExpiresAt: received.Add(5 * time.Minute),
		}))},
		"ne_verify_unknown_type.json": {want: upayEv("PN21", "NE_VERIFY", otpbot.KindCode, card1(otpbot.Event{
			Code: "7777", Type: "SOMETHING_NEW", Trace: "TR21",
			OccurredAt: pushTime, ExpiresAt: received.Add(5 * time.Minute),
		}))},
		// Without its type a code is still a code, labelled plainly.
		"ne_verify_missing_type.json": {want: upayEv("PN22", "NE_VERIFY", otpbot.KindCode, card1(otpbot.Event{
			Code: "7777", Trace: "TR22",
			OccurredAt: pushTime, ExpiresAt: received.Add(5 * time.Minute),
		})), degraded: []string{"detail.type"}},
		"ne_verify_link_no_order.json": {want: upayEv("PN31", "NE_VERIFY", otpbot.KindCode, card1(otpbot.Event{
			Link: "https://3ds.example.com/confirm?t=def",
			Type: "3DS_CONFIRM_LINK", Trace: "TR31",
			OccurredAt: pushTime, ExpiresAt: received.Add(5 * time.Minute),
		})), degraded: []string{"detail.orderNo"}},
		"ks_kyc.json": {want: upayEv("PN23", "KS_KYC", otpbot.KindInfo, otpbot.Event{
			CustomerNo: "CU1001", Status: "refused", Type: "2", Trace: "TR23", OccurredAt: pushTime,
		})},
		"csc_status_change.json": {want: upayEv("PN24", "CSC_STATUS_CHANGE", otpbot.KindInfo, card1(otpbot.Event{
			Status: "frozen", Trace: "TR24", OccurredAt: pushTime,
		}))},
		"mf_material_flow.json": {want: upayEv("PN25", "MF_MATERIAL_FLOW", otpbot.KindInfo, otpbot.Event{
			// dispatchTime as the document's "2006-01-02 15:04:05".
			CardID: "C3", Status: "dispatched", Tracking: "SF123456789", Carrier: "SF Express", Trace: "TR25",
			OccurredAt: time.Date(2025, 8, 15, 10, 0, 0, 0, time.UTC),
		})},
		"cs_approved.json": {want: upayEv("PN26", "CS_APPROVED", otpbot.KindInfo, card1(otpbot.Event{
			Status: "normal", Trace: "TR26", OccurredAt: pushTime,
		}))},
		"ce_event.json": {want: upayEv("PN27", "CE_EVENT", otpbot.KindInfo, card1(otpbot.Event{
			Status: "FROZEN", Trace: "TR27", OccurredAt: pushTime,
		}))},
		"unknown_event.json": {want: upayEv("PN28", "XX_NEW_THING", otpbot.KindUnknown, card1(otpbot.Event{
			Trace: "TR28", OccurredAt: pushTime,
		}))},
		// Without an orderNo the identity falls back to the keyed body hash.
		"unknown_event_no_order.json": {want: otpbot.Event{
			ID:       "upay:hmac:" + keyedHex(testIDSecret, `{"detail":{"customerNo":"CU2002"},"event":"XX_NEW_THING"}`),
			Group:    "upay:hmac:" + keyedHex(testIDSecret, `{"detail":{"customerNo":"CU2002"},"event":"XX_NEW_THING"}`),
			Provider: otpbot.ProviderUPay, Name: "XX_NEW_THING", Kind: otpbot.KindUnknown,
			CustomerNo: "CU2002", ReceivedAt: received,
		}},
		"malformed_not_json.json":    {wantErr: true},
		"malformed_array.json":       {wantErr: true},
		"malformed_no_event.json":    {wantErr: true},
		"malformed_blank_event.json": {wantErr: true},
		"malformed_truncated.json":   {wantErr: true},
	}
	runParserTable(t, "upay", testParser.parseUPay, tests)
}

// hcEv fills what every HyperCard test event has in common; the ID is the
// keyed hash of the body, checked separately.
func hcEv(name string, kind otpbot.Kind, e otpbot.Event) otpbot.Event {
	e.Provider, e.Name, e.Kind = otpbot.ProviderHyperCard, name, kind
	e.ReceivedAt = received
	return e
}

func TestParseHyperCard(t *testing.T) {
	auth := func(e otpbot.Event) otpbot.Event {
		e.CardID, e.CardLast4 = "15723682800000053333", "3333"
		e.Amount, e.Currency, e.Merchant = "1.00", "EUR", "Amazon"
		return e
	}
	tests := map[string]parseCase{
		"open_card.json": {want: hcEv("OPEN_CARD", otpbot.KindInfo, otpbot.Event{
			Status: "successful", Remark: "Remark", CardType: "40000002",
		})},
		"recharge.json": {want: hcEv("RECHARGE", otpbot.KindInfo, otpbot.Event{
			CardID: "00003454323400000028888", Status: "successful",
		})},
		"operation.json": {want: hcEv("OPERATION", otpbot.KindInfo, otpbot.Event{
			CardID: "00003454323400000028888", Status: "successful",
		})},
		"consume.json": {want: hcEv("CONSUME", otpbot.KindInfo, otpbot.Event{
			// The identity is the keyed hash of the string the signature
			// covers (sorted key=value pairs, values as the signature
			// renders them), then what tells this CONSUME from the next
			// one of the card: the minute it arrived (it is unsigned).
			ID: "hypercard:" + keyedHex(testIDSecret, `card_id=6654358889900018888&notify_type=CONSUME`+
				"&received_minute="+strconv.FormatInt(received.Unix()/60, 10)),
			CardID: "6654358889900018888",
		})},
		"buy_coin.json": {want: hcEv("BUY_COIN", otpbot.KindInfo, otpbot.Event{
			CardID: "6283244889900010107", Status: "failed", Reason: "insufficient balance",
		})},
		"cancel_card.json": {want: hcEv("CANCEL_CARD", otpbot.KindInfo, otpbot.Event{
			CardID: "20230413145817505390", Amount: "100.00", Status: "cancelled",
		})},
		"auth_3ds.json": {want: hcEv("AUTH_3DS", otpbot.KindApproval, auth(otpbot.Event{
			Group: "hypercard:AUTH_3DS:283", Country: "1", AuthID: "283", AuthResult: 2, AuthState: otpbot.AuthApproved,
			OccurredAt: sec(1699865734), ExpiresAt: sec(1706650873),
		}))},
		// A result the mapping does not list (1: neither 2 nor 3) is kept
		// as a number, and the request waits for an answer.
		"auth_3ds_pending.json": {want: hcEv("AUTH_3DS", otpbot.KindApproval, auth(otpbot.Event{
			Group: "hypercard:AUTH_3DS:286", Country: "DE", AuthID: "286", AuthResult: 1, AuthState: otpbot.AuthUnknown,
			OccurredAt: sec(1706650573), ExpiresAt: sec(1706650873),
		}))},
		"auth_3ds_result_changed.json": {want: hcEv("AUTH_3DS", otpbot.KindApproval, auth(otpbot.Event{
			Group: "hypercard:AUTH_3DS:283", Country: "DE", AuthID: "283", AuthResult: 3, AuthState: otpbot.AuthDeclined,
			OccurredAt: sec(1699865734), ExpiresAt: sec(1706650873),
		}))},
		// Without expired_time the request lives the codes' TTL from receipt.
		"auth_3ds_missing_expiry.json": {want: hcEv("AUTH_3DS", otpbot.KindApproval, auth(otpbot.Event{
			Group: "hypercard:AUTH_3DS:284", Country: "1", AuthID: "284", AuthResult: 2, AuthState: otpbot.AuthApproved,
			OccurredAt: sec(1699865734), ExpiresAt: received.Add(5 * time.Minute),
		})), degraded: []string{"expired_time"}},
		// Malformed card number, currency, amount, result and expiry are
		// shown as absent (the expiry defaulted); the request is delivered.
		"auth_3ds_malformed.json": {want: hcEv("AUTH_3DS", otpbot.KindApproval, otpbot.Event{
			Group: "hypercard:AUTH_3DS:285", CardID: "15723682800000053333", Country: "DE", AuthID: "285",
			AuthState:  otpbot.AuthPending,
			OccurredAt: sec(1699865734), ExpiresAt: received.Add(5 * time.Minute),
		}), degraded: []string{"card_no", "txn_currency", "txn_amount", "card_acceptor_merchant_name", "auth_result", "expired_time"}},
		"auth_3ds_missing_auth_id.json": {want: hcEv("AUTH_3DS", otpbot.KindRejected, auth(otpbot.Event{
			Country: "DE", AuthResult: 2, AuthState: otpbot.AuthApproved, OccurredAt: sec(1699865734),
			Reason: "missing required field auth_id",
		}))},
		// A create_time older than the signature tolerance (here an
		// hour) in an unsigned push is clock skew: the code lives its TTL
		// from receipt.
		"opt_code.json": {want: hcEv("OPT_CODE", otpbot.KindCode, otpbot.Event{
			CardID: "1085185460000094505", Code: "888666",
			OccurredAt: sec(1710412477), ExpiresAt: received.Add(3 * time.Minute),
		})},
		// A card id sent as a JSON number keeps every digit.
		"opt_code_strings_and_new_fields.json": {want: hcEv("OPT_CODE", otpbot.KindCode, otpbot.Event{
			CardID: "1085185460000094505", Code: "012345",
			OccurredAt: sec(1710412477), ExpiresAt: received.Add(3 * time.Minute),
		})},
		"opt_code_missing_code.json": {want: hcEv("OPT_CODE", otpbot.KindRejected, otpbot.Event{
			CardID: "1085185460000094505", OccurredAt: sec(1710412477), Reason: "missing required field code",
		})},
		"opt_code_null_card.json": {want: hcEv("OPT_CODE", otpbot.KindRejected, otpbot.Event{
			OccurredAt: sec(1710412477), Reason: "missing routing key (card_id)",
		})},
		// Without create_time the code lives the codes' TTL from receipt.
		"opt_code_no_create_time.json": {want: hcEv("OPT_CODE", otpbot.KindCode, otpbot.Event{
			CardID: "1085185460000094505", Code: "777111",
			ExpiresAt: received.Add(3 * time.Minute),
		}), degraded: []string{"create_time"}},
		"card_config_change.json": {want: hcEv("CARD_CONFIG_CHANGE", otpbot.KindInfo, otpbot.Event{
			CardType: "40000002", OccurredAt: sec(1710412477),
		})},
		"unknown_type.json": {want: hcEv("CARD_FROZEN", otpbot.KindUnknown, otpbot.Event{
			CardID: "1085185460000094505", CardLast4: "4505",
		})},
		"malformed_not_json.json": {wantErr: true},
		"malformed_empty.json":    {wantErr: true},
		// No push without its event name (docs/contract.md: 400).
		"malformed_no_notify_type.json":     {wantErr: true},
		"malformed_notify_type_object.json": {wantErr: true},
		"malformed_string.json":             {wantErr: true},
	}
	runParserTable(t, "hypercard", testParser.parseHyperCard, tests)
}

type parser func([]byte, request) (parsed, error)

// parseCase is what parsing one test body gives: an event and the fields
// it is delivered without (degraded), or an error.
type parseCase struct {
	want     otpbot.Event
	degraded []string
	wantErr  bool
}

var hashID = regexp.MustCompile(`^hypercard:[0-9a-f]{32}$`)

// runParserTable runs a parser over every file of testdata/<dir> and checks
// that the table and the folder hold the same files.
func runParserTable(t *testing.T, dir string, parse parser, tests map[string]parseCase) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	var table []string
	for name := range tests {
		table = append(table, name)
	}
	sort.Strings(table)
	if strings.Join(names, ",") != strings.Join(table, ",") {
		t.Fatalf("testdata/%s and the table differ:\nfiles: %v\ntable: %v", dir, names, table)
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", dir, name))
			if err != nil {
				t.Fatal(err)
			}
			r, err := parse(body, request{received: received, tolerance: time.Hour})
			got := r.ev
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			want := tt.want
			if want.Provider == otpbot.ProviderHyperCard {
				if !hashID.MatchString(got.ID) {
					t.Errorf("ID = %q, want hypercard:<32 hex digits>", got.ID)
				}
				if want.ID == "" {
					want.ID = got.ID
				}
				if want.Group == "" {
					want.Group = want.ID
				}
			}
			if got != want {
				t.Errorf("event differs\n got: %+v\nwant: %+v", got, want)
			}
			if !slices.Equal(r.degraded, tt.degraded) {
				t.Errorf("degraded fields = %q, want %q", r.degraded, tt.degraded)
			}
			if len(r.degraded) > 0 && !got.Kind.Pushed() {
				t.Errorf("a %s event lists degraded fields %q: only delivered ones may", got.Kind, r.degraded)
			}
			assertNoFullCard(t, body, got)
		})
	}
}

// fullCard finds card numbers of 12+ digits in a body.
var fullCard = regexp.MustCompile(`"(cardNumber|card_no)"\s*:\s*"([^"]+)"`)

// assertNoFullCard checks that no card number of the body survives in the
// event beyond its last four digits.
func assertNoFullCard(t *testing.T, body []byte, ev otpbot.Event) {
	t.Helper()
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range fullCard.FindAllSubmatch(body, -1) {
		if n := string(m[2]); len(n) > 4 && strings.Contains(string(out), n) {
			t.Errorf("event carries the full card number %q: %s", n, out)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// keyedHex is the id hash of a canonical body under key, computed here
// independently of bodyID: HMAC-SHA256, hex, the first 32 digits.
func keyedHex(key []byte, canon string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(canon))
	return hex.EncodeToString(mac.Sum(nil))[:32]
}

func TestHyperCardIdentity(t *testing.T) {
	base := `{"notify_type":"OPT_CODE","card_id":"1085185460000094505","code":"888666","create_time":1710412477}`
	same := "{\n  \"create_time\": 1710412477,\n  \"code\": \"888666\",\n  \"card_id\": \"1085185460000094505\",\n  \"notify_type\": \"OPT_CODE\"\n}"
	other := `{"notify_type":"OPT_CODE","card_id":"1085185460000094505","code":"888667","create_time":1710412477}`
	id := func(body string) string {
		t.Helper()
		ev, err := testParser.ParseHyperCard([]byte(body), received)
		if err != nil {
			t.Fatal(err)
		}
		return ev.ID
	}
	if id(base) != id(same) {
		t.Error("key order and whitespace changed the identity of a push")
	}
	if id(base) == id(other) {
		t.Error("a different code gave the same identity")
	}
	// AUTH_3DS: a changed result is a new event in the same group.
	read := func(name string) otpbot.Event {
		t.Helper()
		body, err := os.ReadFile(filepath.Join("testdata", "hypercard", name))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := testParser.ParseHyperCard(body, received)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	first, changed := read("auth_3ds.json"), read("auth_3ds_result_changed.json")
	if first.ID == changed.ID || first.Group != changed.Group {
		t.Errorf("AUTH_3DS update: IDs %q/%q (want different), groups %q/%q (want equal)",
			first.ID, changed.ID, first.Group, changed.Group)
	}
}

func TestCodeTTL(t *testing.T) {
	tests := []struct {
		name  string
		codes CodeConfig
		event string
		want  time.Duration
	}{
		{"default when unset", CodeConfig{}, "3DS_OTP", DefaultCodeTTL},
		{"global ttl", CodeConfig{TTL: time.Minute}, "3DS_OTP", time.Minute},
		{"per event, any case", CodeConfig{TTL: time.Minute, TTLByEvent: map[string]time.Duration{" 3ds_Otp": 7 * time.Minute}}, "3DS_OTP", 7 * time.Minute},
		{"other event falls back", CodeConfig{TTL: time.Minute, TTLByEvent: map[string]time.Duration{"3DS_OTP": 7 * time.Minute}}, "NE_VERIFY", time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.codes.ttl(tt.event); got != tt.want {
				t.Errorf("ttl(%q) = %v, want %v", tt.event, got, tt.want)
			}
		})
	}
}
