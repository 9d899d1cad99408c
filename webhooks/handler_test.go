package webhooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/otpbot/otpbot"
)

const testToken = "tok-3f9a8b7c"

// contractRow is one situation of the response table in docs/pushes.md.
type contractRow struct {
	name       string
	path       string // relative to the provider's path, "" = with a valid token
	body       []byte
	header     map[string]string
	maxBody    int64
	storeErr   error
	repeat     bool // sent twice: the second answer is checked
	wantStatus int
	wantAck    bool
	// what reached the store on the (last) request
	wantKind    otpbot.Kind // "" = nothing ingested
	wantEvent   string      // event label of otpbot_pushes_total
	wantOutcome string
	wantReport  bool
	// wantDegraded lists the fields ops is told the delivered push lacks.
	wantDegraded []string
}

// padded returns a valid push body of at least n bytes.
func padded(body []byte, n int) []byte {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		panic(err)
	}
	m["padding"] = strings.Repeat("x", n)
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func contractRows(provider, code, info, unknown, rejected, unrouted, notJSON, noEvent string, codeEvent, infoEvent, rejectedEvent string) []contractRow {
	read := func(name string) []byte { return mustRead(provider, name) }
	return []contractRow{
		{name: "accepted code", body: read(code), wantStatus: 200, wantAck: true,
			wantKind: otpbot.KindCode, wantEvent: codeEvent, wantOutcome: "queued"},
		{name: "accepted history event", body: read(info), wantStatus: 200, wantAck: true,
			wantKind: otpbot.KindInfo, wantEvent: infoEvent, wantOutcome: "recorded"},
		{name: "accepted code for an unlinked card is reported", body: []byte(unrouted), wantStatus: 200, wantAck: true,
			wantKind: otpbot.KindCode, wantEvent: codeEvent, wantOutcome: "unrouted", wantReport: true},
		{name: "repeat", body: read(code), repeat: true, wantStatus: 200, wantAck: true,
			wantKind: otpbot.KindCode, wantEvent: codeEvent, wantOutcome: "duplicate"},
		{name: "unknown event", body: read(unknown), wantStatus: 200, wantAck: true,
			wantKind: otpbot.KindUnknown, wantEvent: "unknown", wantOutcome: "recorded", wantReport: true},
		{name: "missing token", path: "-", body: read(code), wantStatus: 401,
			wantEvent: "unknown", wantOutcome: "unauthorized"},
		{name: "wrong token", path: "?token=tok-3f9a8b7d", body: read(code), wantStatus: 401,
			wantEvent: "unknown", wantOutcome: "unauthorized"},
		{name: "wrong bearer token", path: "-", header: map[string]string{"Authorization": "Bearer nope"}, body: read(code),
			wantStatus: 401, wantEvent: "unknown", wantOutcome: "unauthorized"},
		{name: "body too large", body: padded(read(code), 4096), maxBody: 2048, wantStatus: 413,
			wantEvent: "unknown", wantOutcome: "too_large"},
		{name: "not JSON", body: read(notJSON), wantStatus: 400, wantEvent: "unknown", wantOutcome: "malformed"},
		{name: "no event", body: read(noEvent), wantStatus: 400, wantEvent: "unknown", wantOutcome: "malformed"},
		{name: "known event missing a required field", body: read(rejected), wantStatus: 200, wantAck: true,
			wantKind: otpbot.KindRejected, wantEvent: rejectedEvent, wantOutcome: "rejected", wantReport: true},
		{name: "store unavailable", body: read(code), storeErr: fmt.Errorf("bolt: %w", otpbot.ErrUnavailable),
			wantStatus: 503, wantEvent: codeEvent, wantOutcome: "unavailable"},
		{name: "any store error", body: read(code), storeErr: errors.New("disk full"),
			wantStatus: 503, wantEvent: codeEvent, wantOutcome: "unavailable"},
	}
}

// mustRead reads a test body outside a test's scope (for tables).
func mustRead(provider, name string) []byte {
	b, err := readTestdata(provider, name)
	if err != nil {
		panic(err)
	}
	return b
}

func TestUPayContract(t *testing.T) {
	rows := contractRows("upay", "3ds_otp.json", "cc_consume.json", "unknown_event.json", "3ds_otp_missing_code.json",
		`{"event":"3DS_OTP","trace":"T","orderNo":"PN-U","timestamp":1755248905430,"detail":{"cardId":"UNLINKED","cardNumber":"5235560000001234","customerNo":"CU9","3dsCode":"111222","orderNo":"X"}}`,
		"malformed_not_json.json", "malformed_no_event.json", "3DS_OTP", "CC_CONSUME", "3DS_OTP")
	rows = append(rows,
		contractRow{name: "code without trace is delivered", body: mustRead("upay", "3ds_otp_missing_trace.json"),
			wantStatus: 200, wantAck: true, wantKind: otpbot.KindCode, wantEvent: "3DS_OTP", wantOutcome: "queued",
			wantDegraded: []string{"trace"}},
		contractRow{name: "code with an empty card number is delivered", body: mustRead("upay", "3ds_otp_empty_card_number.json"),
			wantStatus: 200, wantAck: true, wantKind: otpbot.KindCode, wantEvent: "3DS_OTP", wantOutcome: "queued",
			wantDegraded: []string{"detail.cardNumber"}},
		contractRow{name: "code without any routing key", body: mustRead("upay", "3ds_otp_no_routing_key.json"),
			wantStatus: 200, wantAck: true, wantKind: otpbot.KindRejected, wantEvent: "3DS_OTP", wantOutcome: "rejected",
			wantReport: true},
		contractRow{name: "a field too long to be real", wantStatus: 200, wantAck: true,
			body:     withField(t, "upay", "3ds_otp.json", "detail.cardId", strings.Repeat("C", 900<<10)),
			wantKind: otpbot.KindRejected, wantEvent: "3DS_OTP", wantOutcome: "rejected", wantReport: true},
		contractRow{name: "an unknown event name too long to be real", wantStatus: 200, wantAck: true,
			body:     withField(t, "upay", "unknown_event.json", "event", strings.Repeat("X", 129)),
			wantKind: otpbot.KindRejected, wantEvent: "unknown", wantOutcome: "rejected", wantReport: true},
	)
	runContract(t, rows, func(maxBody int64) Config {
		return Config{MaxBodyBytes: maxBody, UPay: UPayConfig{Enabled: true, Token: testToken}}
	}, DefaultUPayPath, otpbot.ProviderUPay, isUPayAck, func(t *testing.T, r response) {
		if r.body == "" || strings.Contains(r.body, "SUCCESS") {
			t.Errorf("UPay non-ack body %q must be a short text that is not SUCCESS", r.body)
		}
	})
}

func TestHyperCardContract(t *testing.T) {
	rows := contractRows("hypercard", "opt_code.json", "consume.json", "unknown_type.json", "opt_code_missing_code.json",
		`{"notify_type":"OPT_CODE","card_id":"UNLINKED","code":"111222","create_time":1710412477}`,
		"malformed_not_json.json", "malformed_no_notify_type.json", "OPT_CODE", "CONSUME", "OPT_CODE")
	// A body without its notify_type is no push: 400, as the contract
	// says, whether it names no event or is not a JSON object.
	for _, name := range []string{"malformed_notify_type_object.json", "malformed_string.json"} {
		rows = append(rows, contractRow{name: "no notify_type: " + name, body: mustRead("hypercard", name),
			wantStatus: 400, wantEvent: "unknown", wantOutcome: "malformed"})
	}
	rows = append(rows,
		contractRow{name: "empty body", body: mustRead("hypercard", "malformed_empty.json"), wantStatus: 400,
			wantEvent: "unknown", wantOutcome: "malformed"},
		contractRow{name: "code without create_time is delivered", body: mustRead("hypercard", "opt_code_no_create_time.json"),
			wantStatus: 200, wantAck: true, wantKind: otpbot.KindCode, wantEvent: "OPT_CODE", wantOutcome: "queued",
			wantDegraded: []string{"create_time"}},
		contractRow{name: "approval request with malformed fields is delivered", body: mustRead("hypercard", "auth_3ds_malformed.json"),
			wantStatus: 200, wantAck: true, wantKind: otpbot.KindApproval, wantEvent: "AUTH_3DS", wantOutcome: "queued",
			wantDegraded: []string{"card_no", "txn_currency", "txn_amount", "card_acceptor_merchant_name", "auth_result", "expired_time"}},
		contractRow{name: "approval request without auth_id", body: mustRead("hypercard", "auth_3ds_missing_auth_id.json"),
			wantStatus: 200, wantAck: true, wantKind: otpbot.KindRejected, wantEvent: "AUTH_3DS", wantOutcome: "rejected",
			wantReport: true},
		contractRow{name: "code without a routing key", body: mustRead("hypercard", "opt_code_null_card.json"),
			wantStatus: 200, wantAck: true, wantKind: otpbot.KindRejected, wantEvent: "OPT_CODE", wantOutcome: "rejected",
			wantReport: true},
		contractRow{name: "a field too long to be real", wantStatus: 200, wantAck: true,
			body:     withField(t, "hypercard", "opt_code.json", "card_id", strings.Repeat("C", 900<<10)),
			wantKind: otpbot.KindRejected, wantEvent: "OPT_CODE", wantOutcome: "rejected", wantReport: true},
	)
	runContract(t, rows, func(maxBody int64) Config {
		return Config{MaxBodyBytes: maxBody, HyperCard: HyperCardConfig{Enabled: true, Token: testToken}}
	}, DefaultHyperCardPath, otpbot.ProviderHyperCard, isHyperCardAck, func(t *testing.T, r response) {
		var got struct {
			Code *int    `json:"code"`
			Msg  *string `json:"msg"`
		}
		if err := json.Unmarshal([]byte(r.body), &got); err != nil || got.Code == nil || got.Msg == nil {
			t.Fatalf("HyperCard non-ack body %q must be JSON with code and msg (%v)", r.body, err)
		}
		if *got.Code == 1 || *got.Msg == "" {
			t.Errorf("HyperCard non-ack body %q: code must not be 1 and msg must say why", r.body)
		}
	})
}

func runContract(t *testing.T, rows []contractRow, config func(maxBody int64) Config, path string,
	provider otpbot.Provider, isAck func(response) bool, checkNonAck func(*testing.T, response)) {
	t.Helper()
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			e := newEnv(t, config(row.maxBody))
			e.ing.err = row.storeErr
			target := withToken(path, testToken)
			switch {
			case row.path == "-":
				target = path
			case row.path != "":
				target = path + row.path
			}
			got := e.post(t, target, row.body, row.header)
			if row.repeat {
				if !isAck(got) {
					t.Fatalf("first push not acknowledged: %d %q", got.status, got.body)
				}
				got = e.post(t, target, row.body, row.header)
			}
			if got.status != row.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", got.status, row.wantStatus, got.body)
			}
			if isAck(got) != row.wantAck {
				t.Errorf("acknowledged = %v, want %v (body %q)", isAck(got), row.wantAck, got.body)
			}
			if !row.wantAck {
				checkNonAck(t, got)
			}
			evs := e.ing.ingested()
			if row.wantKind == "" {
				if len(evs) != 0 {
					t.Errorf("store got %d events, want none", len(evs))
				}
			} else {
				if len(evs) == 0 {
					t.Fatal("store got nothing")
				}
				last := evs[len(evs)-1]
				if last.Kind != row.wantKind || last.Provider != provider {
					t.Errorf("store got %s/%s, want %s/%s", last.Provider, last.Kind, provider, row.wantKind)
				}
			}
			if n := e.pushes(t, string(provider), row.wantEvent, row.wantOutcome); n != 1 {
				t.Errorf("otpbot_pushes_total{event=%q,outcome=%q} = %v, want 1", row.wantEvent, row.wantOutcome, n)
			}
			if reported := len(e.rep.reported()) > 0; reported != row.wantReport {
				t.Errorf("reported to ops = %v, want %v", reported, row.wantReport)
			}
			var wantDegraded [][]string
			if row.wantDegraded != nil {
				wantDegraded = [][]string{row.wantDegraded}
			}
			if got := e.rep.degradedCalls(); !slices.EqualFunc(got, wantDegraded, slices.Equal) {
				t.Errorf("ops told of degraded fields %q, want %q", got, wantDegraded)
			}
			for _, r := range e.rep.reported() {
				if r.Code != "" || r.Link != "" {
					t.Error("the ops report received a code")
				}
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, Config{UPay: UPayConfig{Enabled: true, Token: testToken, Path: "/hooks/u"}})
	body := mustRead("upay", "3ds_otp.json")
	if got := e.post(t, withToken("/hooks/u", testToken), body, nil); !isUPayAck(got) {
		t.Errorf("configured path: %d %q", got.status, got.body)
	}
	if got := e.do(t, http.MethodGet, withToken("/hooks/u", testToken), nil, nil); got.status != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d, want 405", got.status)
	}
	// HyperCard is disabled: its path is not served at all.
	if got := e.post(t, withToken(DefaultHyperCardPath, testToken), mustRead("hypercard", "opt_code.json"), nil); got.status != http.StatusNotFound {
		t.Errorf("disabled provider = %d, want 404", got.status)
	}
	if n := len(e.ing.ingested()); n != 1 {
		t.Errorf("store got %d events, want 1", n)
	}
}

func TestLogLineKeepsSecretsOut(t *testing.T) {
	e := newEnv(t, Config{UPay: UPayConfig{Enabled: true, Token: testToken}})
	body := mustRead("upay", "3ds_otp.json")
	if got := e.post(t, withToken(DefaultUPayPath, testToken), body, nil); !isUPayAck(got) {
		t.Fatalf("push refused: %d %q", got.status, got.body)
	}
	e.post(t, withToken(DefaultUPayPath, "wrong-token-value"), body, nil)
	logs := e.logs.String()
	for _, secret := range []string{"004711", testToken, "wrong-token-value", "5235560000001234"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log shows %q:\n%s", secret, logs)
		}
	}
	for _, want := range []string{"event=3DS_OTP", "id=upay:PN7", `card="•••• 1234"`, "outcome=queued", "outcome=unauthorized", "duration="} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if lines := strings.Count(strings.TrimSpace(logs), "\n") + 1; lines != 2 {
		t.Errorf("%d log lines for 2 pushes:\n%s", lines, logs)
	}
	if n := e.ingestObservations(t, "upay"); n != 1 {
		t.Errorf("otpbot_ingest_seconds samples = %d, want 1", n)
	}
}

func TestNewValidates(t *testing.T) {
	ing := &fakeIngester{}
	tests := []struct {
		name string
		cfg  Config
		want string // "" = valid
	}{
		{"nothing enabled", Config{}, ""},
		{"upay without auth", Config{UPay: UPayConfig{Enabled: true}},
			"providers.upay: no authentication configured (token, secret_key)"},
		{"hypercard without auth", Config{HyperCard: HyperCardConfig{Enabled: true, AllowIPs: nil}},
			"providers.hypercard: no authentication configured (token, public_key_file)"},
		{"upay secret key is enough", Config{UPay: UPayConfig{Enabled: true, SecretKey: []byte("k")}}, ""},
		{"encryption required without key", Config{UPay: UPayConfig{Enabled: true, Token: "t", RequireEncryption: true}},
			"providers.upay.require_encryption: needs private_key_file"},
		{"same path twice", Config{
			UPay:      UPayConfig{Enabled: true, Token: "t", Path: "/x"},
			HyperCard: HyperCardConfig{Enabled: true, Token: "t", Path: "/x"},
		}, `providers.hypercard.path: "/x" is also providers.upay.path`},
		{"relative path", Config{UPay: UPayConfig{Enabled: true, Token: "t", Path: "x"}},
			`providers.upay.path: "x" must start with /`},
		{"disabled provider needs nothing", Config{HyperCard: HyperCardConfig{Path: "bad"}}, ""},
		// The rows above get testIDSecret; these set their own (non-nil) key.
		{"hypercard without id secret", Config{IDSecret: []byte{}, HyperCard: HyperCardConfig{Enabled: true, Token: "t"}},
			"webhooks: IDSecret (the store's installation secret) must be at least 16 bytes, got 0"},
		{"upay with a short id secret", Config{IDSecret: []byte("0123456789abcde"), UPay: UPayConfig{Enabled: true, Token: "t"}},
			"webhooks: IDSecret (the store's installation secret) must be at least 16 bytes, got 15"},
		{"nothing enabled needs no id secret", Config{IDSecret: []byte{}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.IDSecret == nil {
				cfg.IDSecret = testIDSecret
			}
			_, err := New(cfg, ing, Options{})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := New(Config{}, nil, Options{}); err == nil {
		t.Error("New without an ingester succeeded")
	}
}

func TestMalformedBodyIsNotEchoed(t *testing.T) {
	// The non-ack body is the same short text whatever was sent, so nothing
	// of a refused request is reflected back.
	e := newEnv(t, Config{HyperCard: HyperCardConfig{Enabled: true, Token: testToken}})
	got := e.post(t, withToken(DefaultHyperCardPath, testToken), []byte(`{"notify_type":"<script>"`), nil)
	if got.status != 400 || bytes.Contains([]byte(got.body), []byte("script")) {
		t.Errorf("got %d %q", got.status, got.body)
	}
}
