package webhooks

import (
	"crypto/rsa"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

// A code's age is counted on the provider's own clock: its signed
// timestamp minus the code's creation time. A clock that is not ours never
// makes a fresh code "expired on arrival".

// signedHyperCard signs body as HyperCard would at sentAt (its clock),
// with nonce.
func signedHyperCard(t *testing.T, key *rsa.PrivateKey, sentAt time.Time, nonce string, body []byte) map[string]string {
	t.Helper()
	h := map[string]string{
		HyperCardHeaderTimestamp: strconv.FormatInt(sentAt.Unix(), 10),
		HyperCardHeaderNonce:     nonce,
		HyperCardHeaderAPIKey:    "ak_test_123",
		HyperCardHeaderVersion:   "1.0",
	}
	sig, err := SignHyperCard(key, h, body)
	if err != nil {
		t.Fatal(err)
	}
	h[HyperCardHeaderSignature] = sig
	return h
}

func optCode(code string, created time.Time) []byte {
	return fmt.Appendf(nil, `{"notify_type":"OPT_CODE","card_id":"1085185460000094505","code":%q,"create_time":%d}`,
		code, created.Unix())
}

func TestOptCodeFromAClockBehind(t *testing.T) {
	key := rsaKey(t, 1024)
	codes := CodeConfig{TTL: 5 * time.Minute}
	tests := []struct {
		name    string
		skew    time.Duration // HyperCard's clock minus ours
		age     time.Duration // the code's age at sending, by HyperCard's clock
		signed  bool
		wantOut string // outcome
		wantExp time.Duration
	}{
		{"signed, clock ten minutes behind, fresh code", -10 * time.Minute, 2 * time.Second, true, "queued", 5*time.Minute - 2*time.Second},
		{"signed, clock ten minutes ahead, fresh code", 10 * time.Minute, 0, true, "queued", 5 * time.Minute},
		{"signed, our clock, code sent late", 0, 6 * time.Minute, true, "expired", -time.Minute},
		{"signed, clock ten minutes behind, code sent late", -10 * time.Minute, 7 * time.Minute, true, "expired", -2 * time.Minute},
		{"unsigned, our clock, one minute old", 0, time.Minute, false, "queued", 4 * time.Minute},
		{"unsigned, create_time in the future: skew", 10 * time.Minute, 0, false, "queued", 5 * time.Minute},
		// Unsigned, a create_time ten minutes back cannot be told from a
		// late code: it is within the tolerance, so it is its age.
		{"unsigned, ten minutes old", -10 * time.Minute, 0, false, "expired", -5 * time.Minute},
		{"unsigned, older than the tolerance: skew", -26 * time.Hour, 0, false, "queued", 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Codes: codes, HyperCard: HyperCardConfig{Enabled: true, Token: testToken}}
			if tt.signed {
				cfg.HyperCard = HyperCardConfig{Enabled: true, PublicKey: &key.PublicKey}
			}
			e := newEnv(t, cfg)
			theirNow := now.Add(tt.skew)
			body := optCode("888666", theirNow.Add(-tt.age))
			path, header := withToken(DefaultHyperCardPath, testToken), map[string]string(nil)
			if tt.signed {
				path, header = DefaultHyperCardPath, signedHyperCard(t, key, theirNow, "n0nce00001", body)
			}
			if got := e.post(t, path, body, header); !isHyperCardAck(got) {
				t.Fatalf("not acknowledged: %d %q", got.status, got.body)
			}
			evs := e.ing.ingested()
			if len(evs) != 1 {
				t.Fatalf("store got %d events", len(evs))
			}
			ev := evs[0]
			if got := ev.ExpiresAt.Sub(now); got != tt.wantExp {
				t.Errorf("expires %v after receipt, want %v", got, tt.wantExp)
			}
			expired := ev.Expired(ev.ReceivedAt)
			if expired != (tt.wantOut == "expired") {
				t.Errorf("expired on arrival = %v, want outcome %s", expired, tt.wantOut)
			}
			reports := e.rep.reported()
			if expired {
				if ev.Reason == "" || !strings.Contains(ev.Reason, "provider's clock") {
					t.Errorf("an expired code says nothing of its age: %q", ev.Reason)
				}
				if len(reports) != 1 || reports[0].Code != "" {
					t.Errorf("ops heard %+v of a code that expired on arrival, want one report without the code", reports)
				}
			} else if len(reports) != 0 || ev.Reason != "" {
				t.Errorf("a delivered code was reported (%+v) or given a reason (%q)", reports, ev.Reason)
			}
		})
	}
}

func TestExpiredOnArrivalIsReported(t *testing.T) {
	key := rsaKey(t, 1024)
	e := newEnv(t, Config{Codes: CodeConfig{TTL: time.Minute}, HyperCard: HyperCardConfig{Enabled: true, PublicKey: &key.PublicKey}})
	body := optCode("123456", now.Add(-2*time.Minute))
	if got := e.post(t, DefaultHyperCardPath, body, signedHyperCard(t, key, now, "n0nce00002", body)); !isHyperCardAck(got) {
		t.Fatalf("not acknowledged: %d %q", got.status, got.body)
	}
	if n := e.pushes(t, "hypercard", "OPT_CODE", "expired"); n != 1 {
		t.Errorf("otpbot_pushes_total{outcome=expired} = %v", n)
	}
	reports := e.rep.reported()
	if len(reports) != 1 || reports[0].Code != "" || !strings.Contains(reports[0].Reason, "2m0s old") {
		t.Fatalf("ops heard %+v", reports)
	}
	if strings.Contains(e.logs.String(), "123456") {
		t.Error("the log shows the code")
	}
}

func TestUPayCodeAgeFromItsClock(t *testing.T) {
	secret := randomSecret(t)
	codes := CodeConfig{TTL: 5 * time.Minute}
	body := func(pushed time.Time) []byte {
		return fmt.Appendf(nil, `{"event":"3DS_OTP","trace":"T1","orderNo":"PN-%d","timestamp":%d,"detail":{"cardId":"C1",`+
			`"cardNumber":"5235560000001234","customerNo":"CU1","3dsCode":"004711","orderNo":"X"}}`, pushed.UnixMilli(), pushed.UnixMilli())
	}
	tests := []struct {
		name    string
		signed  bool
		skew    time.Duration // UPay's clock minus ours
		age     time.Duration // between the push's timestamp and its sending, by UPay's clock
		wantExp time.Duration
	}{
		// Signed 15 s after its timestamp by UPay's clock: 15 s old,
		// whatever our clock says.
		{"signed, clock four minutes behind, retried", true, -4 * time.Minute, 15 * time.Second, 5*time.Minute - 15*time.Second},
		{"unsigned, one minute old by our clock", false, 0, time.Minute, 4 * time.Minute},
		{"unsigned, timestamp in the future: skew", false, 2 * time.Minute, 0, 5 * time.Minute},
		{"unsigned, older than the tolerance: skew", false, -6 * time.Minute, 0, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Codes: codes, UPay: UPayConfig{Enabled: true, Token: testToken}}
			if tt.signed {
				cfg.UPay = UPayConfig{Enabled: true, SecretKey: secret, SignatureTolerance: 10 * time.Minute}
			}
			e := newEnv(t, cfg)
			theirNow := now.Add(tt.skew)
			b := body(theirNow.Add(-tt.age))
			path, header := withToken(DefaultUPayPath, testToken), map[string]string(nil)
			if tt.signed {
				path, header = DefaultUPayPath, upayHeaders(secret, "3DS_OTP", theirNow, b)
			}
			if got := e.post(t, path, b, header); !isUPayAck(got) {
				t.Fatalf("not acknowledged: %d %q", got.status, got.body)
			}
			evs := e.ing.ingested()
			if len(evs) != 1 {
				t.Fatalf("store got %d events", len(evs))
			}
			if got := evs[0].ExpiresAt.Sub(now); got != tt.wantExp {
				t.Errorf("expires %v after receipt, want %v", got, tt.wantExp)
			}
		})
	}
}

func TestApprovalExpiryFromItsClock(t *testing.T) {
	key := rsaKey(t, 1024)
	e := newEnv(t, Config{HyperCard: HyperCardConfig{Enabled: true, PublicKey: &key.PublicKey}})
	theirNow := now.Add(-10 * time.Minute) // HyperCard's clock is ten minutes behind
	body := fmt.Appendf(nil, `{"notify_type":"AUTH_3DS","auth_id":9,"card_id":"15723682800000053333","card_no":"103411******3333",`+
		`"txn_currency":"EUR","txn_amount":"1.00","card_acceptor_merchant_name":"Amazon","card_acceptor_location_country":"DE",`+
		`"auth_result":1,"expired_time":%d,"created_Time":%d,"updated_Time":%d}`,
		theirNow.Add(5*time.Minute).Unix(), theirNow.Unix(), theirNow.Unix())
	if got := e.post(t, DefaultHyperCardPath, body, signedHyperCard(t, key, theirNow, "n0nce00003", body)); !isHyperCardAck(got) {
		t.Fatalf("not acknowledged: %d %q", got.status, got.body)
	}
	ev := e.ing.ingested()[0]
	if got := ev.ExpiresAt.Sub(now); got != 5*time.Minute {
		t.Errorf("the request expires %v after receipt, want the 5m0s HyperCard gives it", got)
	}
	if ev.AuthState != otpbot.AuthUnknown || ev.AuthResult != 1 {
		t.Errorf("auth_result 1 read as %q (%d), want unknown", ev.AuthState, ev.AuthResult)
	}
}
