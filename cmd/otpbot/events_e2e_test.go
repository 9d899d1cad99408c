package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/webhooks"
)

// signedHC posts a HyperCard push signed as HyperCard would at sentAt (its
// own clock) with nonce, and expects the acknowledgement.
func (in *instance) signedHC(key *rsa.PrivateKey, sentAt time.Time, nonce, body string) {
	in.t.Helper()
	h := map[string]string{
		webhooks.HyperCardHeaderTimestamp: strconv.FormatInt(sentAt.Unix(), 10),
		webhooks.HyperCardHeaderNonce:     nonce,
		webhooks.HyperCardHeaderAPIKey:    "ak_e2e",
		webhooks.HyperCardHeaderVersion:   "1.0",
	}
	sig, err := webhooks.SignHyperCard(key, h, []byte(body))
	if err != nil {
		in.t.Fatal(err)
	}
	h[webhooks.HyperCardHeaderSignature] = sig
	h["Authorization"] = "Bearer " + hcToken
	code, resp := post(in.t, in.url+"/hc_sync/common", body, h)
	if code != http.StatusOK || !strings.Contains(resp, `"code":1`) {
		in.t.Fatalf("HyperCard push answered %d %q", code, resp)
	}
}

// commandReply sends a command and waits for the reply that contains want.
func commandReply(t *testing.T, fake *bottest.Server, chat, user int64, command, want string) string {
	t.Helper()
	id := fake.SendCommand(chat, user, command)
	var got string
	waitUntil(t, command, func() bool {
		for _, m := range fake.Messages(chat) {
			if m.ReplyTo == id && strings.Contains(m.Plain(), want) {
				got = m.Plain()
				return true
			}
		}
		return false
	})
	return got
}

// TestEndToEndEventsAsTheDocumentsGiveThem drives serve with HyperCard's
// signature checked: a code from a clock ten minutes behind is delivered;
// two CONSUME a second apart are two events in history, a retry is not; an
// AUTH_3DS decided by a later push shows the decision and leaves /codes;
// a failed OPEN_CARD, which names no card, is in /history events.
func TestEndToEndEventsAsTheDocumentsGiveThem(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := writeFile(t, dir, "hypercard.pub", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	in := startServe(t, testConfig(t, dir, fake, ""), map[string]string{"OTPBOT_PROVIDERS_HYPERCARD_PUBLIC_KEY_FILE": pubFile})
	const chat = int64(5901)
	linkCard(t, fake, chat, hcCard)

	// HyperCard's clock is ten minutes behind: its code is fresh.
	theirs := time.Now().Add(-10 * time.Minute)
	in.signedHC(key, theirs, "nonce00001", fmt.Sprintf(`{"notify_type":"OPT_CODE","card_id":%q,"code":"777333","create_time":%d}`,
		hcCard, theirs.Add(-2*time.Second).Unix()))
	waitUntil(t, "the code", func() bool { return len(messagesWith(fake, chat, "777333")) == 1 })
	if m := messagesWith(fake, chat, "777333")[0]; !strings.Contains(m.Plain(), "expires in 4:") {
		t.Errorf("the code lost its lifetime to the clock: %q", m.Plain())
	}

	// Two transactions of the card a second apart, and a retry of the first.
	consume := fmt.Sprintf(`{"notify_type":"CONSUME","card_id":%q}`, hcCard)
	in.signedHC(key, theirs, "nonce00002", consume)
	in.signedHC(key, theirs.Add(time.Second), "nonce00003", consume)
	in.signedHC(key, theirs, "nonce00002", consume)
	hist := commandReply(t, fake, chat, adminID, "/history", "History of")
	if n := strings.Count(hist, "New transaction · card …1234"); n != 2 {
		t.Errorf("history lists %d transactions, want 2:\n%s", n, hist)
	}

	// An approval request, then the push that declines it.
	auth := func(result int, nonce string) {
		in.signedHC(key, theirs, nonce, fmt.Sprintf(`{"notify_type":"AUTH_3DS","auth_id":7001,"card_id":%q,`+
			`"card_no":"103411******1234","txn_currency":"EUR","txn_amount":"12.5","card_acceptor_merchant_name":"Shop 7001",`+
			`"card_acceptor_location_country":"DE","auth_result":%d,"expired_time":%d,"created_Time":%d,"updated_Time":%d}`,
			hcCard, result, theirs.Add(10*time.Minute).Unix(), theirs.Unix(), theirs.Unix()+int64(result)))
	}
	auth(1, "nonce00004")
	waitUntil(t, "the request", func() bool { return len(messagesWith(fake, chat, "Purchase waiting for approval")) == 1 })
	request := messagesWith(fake, chat, "Shop 7001")[0]
	if !strings.Contains(request.Plain(), "12.50 EUR") || strings.Contains(request.Plain(), "result") {
		t.Errorf("the request: %q", request.Plain())
	}
	commandReply(t, fake, chat, adminID, "/codes", "awaiting an answer")
	auth(3, "nonce00005")
	waitUntil(t, "the decision", func() bool {
		m, _ := fake.Message(chat, request.ID)
		return strings.Contains(m.Plain(), "Purchase declined")
	})
	if m, _ := fake.Message(chat, request.ID); strings.Contains(m.Plain(), "waiting") {
		t.Errorf("a declined request still waits: %q", m.Plain())
	}
	// The code is still valid; the answered request is no longer listed.
	if codes := commandReply(t, fake, chat, adminID, "/codes", "777333"); strings.Contains(codes, "Shop 7001") {
		t.Errorf("/codes still lists the declined request:\n%s", codes)
	}

	// A failed card application names no card: admins see it.
	in.signedHC(key, theirs, "nonce00006", `{"notify_type":"OPEN_CARD","card_type_id":"40000002","email":"example@gmail.com",`+
		`"mobile":"18301523750","mobile_code":"86","result":2,"remark":"KYC data incomplete"}`)
	events := commandReply(t, fake, chat, adminID, "/history events", "Card application")
	for _, want := range []string{"HyperCard · Card application · card type 40000002 · failed · remark: KYC data incomplete",
		"HyperCard · Purchase approval · •••• 1234 · 12.50 EUR · Shop 7001 · declined"} {
		if !strings.Contains(events, want) {
			t.Errorf("/history events lacks %q:\n%s", want, events)
		}
	}
	if strings.Contains(events, "example@gmail.com") || strings.Contains(events, "777333") {
		t.Errorf("/history events shows contact data or a code:\n%s", events)
	}
}
