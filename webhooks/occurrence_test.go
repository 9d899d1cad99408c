package webhooks

import (
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

// A retry re-sends the same request (the same signed nonce and
// timestamp); a new event does not. Two transactions of one card are two
// events, a retry of one is a repeat.

// clockEnv is an env whose clock the test moves.
func clockEnv(t *testing.T, cfg Config, at *time.Time) *env {
	t.Helper()
	return newEnvWith(t, cfg, func(o *Options) { o.Now = func() time.Time { return *at } })
}

func TestTwoConsumesASecondApart(t *testing.T) {
	key := rsaKey(t, 1024)
	at := now
	e := clockEnv(t, Config{HyperCard: HyperCardConfig{Enabled: true, PublicKey: &key.PublicKey}}, &at)
	body := mustRead("hypercard", "consume.json")
	first := signedHyperCard(t, key, at, "a1b2c3d4e5", body)
	at = at.Add(time.Second)
	second := signedHyperCard(t, key, at, "f6g7h8i9j0", body)
	for i, h := range []map[string]string{first, second, first} { // the last one is a retry of the first
		if got := e.post(t, DefaultHyperCardPath, body, h); !isHyperCardAck(got) {
			t.Fatalf("push %d: %d %q", i, got.status, got.body)
		}
	}
	evs := e.ing.ingested()
	if len(evs) != 3 || evs[0].ID == evs[1].ID || evs[2].ID != evs[0].ID {
		t.Fatalf("identities %q, %q, %q: want two events and a repeat of the first", evs[0].ID, evs[1].ID, evs[2].ID)
	}
	if n := e.pushes(t, "hypercard", "CONSUME", "recorded"); n != 2 {
		t.Errorf("recorded %v CONSUME, want both transactions", n)
	}
	if n := e.pushes(t, "hypercard", "CONSUME", "duplicate"); n != 1 {
		t.Errorf("duplicates %v, want the retry", n)
	}
}

func TestOccurrenceIdentity(t *testing.T) {
	bodies := map[string][]byte{
		"CONSUME":     mustRead("hypercard", "consume.json"),
		"CANCEL_CARD": mustRead("hypercard", "cancel_card.json"),
		"unknown":     mustRead("hypercard", "unknown_type.json"),
		"RECHARGE":    mustRead("hypercard", "recharge.json"),  // mc_trade_no is its id
		"OPERATION":   mustRead("hypercard", "operation.json"), // request_number is its id
		"BUY_COIN":    mustRead("hypercard", "buy_coin.json"),  // tx_id is its id
		"OPT_CODE":    mustRead("hypercard", "opt_code.json"),  // a code keeps today's identity
		"AUTH_3DS":    mustRead("hypercard", "auth_3ds.json"),
		"OPEN_CARD":   mustRead("hypercard", "open_card.json"), // with its mc_trade_no
		"OPEN_CARD without mc_trade_no": []byte(`{"notify_type":"OPEN_CARD","card_type_id":"40000002","email":"example@gmail.com",` +
			`"mobile":"18301523750","mobile_code":"86","result":2}`),
	}
	// Whether two content-identical pushes are two events.
	distinct := map[string]bool{"CONSUME": true, "CANCEL_CARD": true, "unknown": true, "OPEN_CARD without mc_trade_no": true}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			id := func(rq request) string {
				t.Helper()
				r, err := testParser.parseHyperCard(body, rq)
				if err != nil {
					t.Fatal(err)
				}
				return r.ev.ID
			}
			signed := func(at time.Time, nonce string) request {
				return request{received: at, signedAt: at, nonce: nonce, tolerance: time.Hour}
			}
			unsigned := func(at time.Time) request { return request{received: at, tolerance: time.Hour} }
			minute := now.Truncate(time.Minute)

			first := id(signed(now, "n1"))
			if retry := id(signed(now, "n1")); retry != first {
				t.Error("a retry (same nonce and timestamp) is not a repeat")
			}
			if got := first != id(signed(now.Add(time.Second), "n2")); got != distinct[name] {
				t.Errorf("two signed pushes a second apart are distinct = %v, want %v", got, distinct[name])
			}
			if id(unsigned(minute)) != id(unsigned(minute.Add(59*time.Second))) {
				t.Error("unsigned pushes within one minute are not collapsed")
			}
			if got := id(unsigned(minute)) != id(unsigned(minute.Add(time.Minute))); got != distinct[name] {
				t.Errorf("unsigned pushes a minute apart are distinct = %v, want %v", got, distinct[name])
			}
		})
	}
}

func TestFailedCardApplicationIsReported(t *testing.T) {
	e := newEnv(t, Config{HyperCard: HyperCardConfig{Enabled: true, Token: testToken}})
	ok := mustRead("hypercard", "open_card.json")
	failed := []byte(`{"notify_type":"OPEN_CARD","card_type_id":"40000002","email":"example@gmail.com","mobile":"18301523750",` +
		`"mobile_code":"86","result":"2","remark":"KYC data incomplete","mc_trade_no":"48d2741747a449361739209"}`)
	for _, b := range [][]byte{ok, failed} {
		if got := e.post(t, withToken(DefaultHyperCardPath, testToken), b, nil); !isHyperCardAck(got) {
			t.Fatalf("%d %q", got.status, got.body)
		}
	}
	reports := e.rep.reported()
	if len(reports) != 1 || reports[0].Name != HyperCardOpenCardType || reports[0].Status != "failed" || reports[0].Alert != "card application failed" ||
		reports[0].Remark != "KYC data incomplete" {
		t.Fatalf("ops heard %+v, want the failed application only", reports)
	}
	if reports[0].Kind != otpbot.KindInfo || len(reports[0].Keys()) != 0 {
		t.Errorf("report %+v", reports[0])
	}
}
