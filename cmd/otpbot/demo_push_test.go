package main

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot/webhooks"
)

// TestDemoSamplesAreFresh: every sample of the panel exists, and two
// pushes of it are two pushes: new identity fields and code, times of
// now, the chosen card where the sample has one; every event of both
// documents has one.
func TestDemoSamplesAreFresh(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	events := map[string]bool{}
	for _, s := range demoSamples() {
		t.Run(s.id(), func(t *testing.T) {
			body, err := fs.ReadFile(webhooks.SampleBodies(), s.provider+"/"+s.file)
			if err != nil {
				t.Fatal(err)
			}
			fresh := freshUPay
			if s.provider == "hypercard" {
				fresh = freshHyperCard
			}
			a, err := fresh(body, "C7", now, 1)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := fresh(body, "C7", now, 2)
			// A HyperCard event with no id of its own (CONSUME is only a
			// card id) is told from the last by its signed nonce.
			if string(a) == string(b) && s.provider != "hypercard" {
				t.Errorf("two pushes of %s are the same body:\n%s", s.id(), a)
			}
			var m map[string]any
			if err := json.Unmarshal(a, &m); err != nil {
				t.Fatal(err)
			}
			flat := string(a)
			if strings.Contains(string(body), `"cardId"`) || strings.Contains(string(body), `"card_id"`) {
				if !strings.Contains(flat, `"C7"`) {
					t.Errorf("the card is not C7: %s", a)
				}
			}
			for _, old := range []string{"1755248905430", "1706650873", "1710412477"} {
				if strings.Contains(flat, old) {
					t.Errorf("a time of the sample (%s) is left: %s", old, a)
				}
			}
			name, _ := m["event"].(string)
			if s.provider == "hypercard" {
				name, _ = m["notify_type"].(string)
			}
			if name != strings.Fields(s.label)[0] {
				t.Errorf("the sample's event is %q; labelled %q", name, s.label)
			}
			events[s.provider+" "+name] = true
		})
	}
	// Every event of both documents has a button.
	for _, e := range []string{
		"upay " + webhooks.UPay3DSOTPEvent, "upay " + webhooks.UPay3DSConfirmEvent, "upay " + webhooks.UPayVerify,
		"upay " + webhooks.UPayAuthorization, "upay " + webhooks.UPayCardConsume, "upay " + webhooks.UPayCardRefund,
		"upay " + webhooks.UPayCardWithdrawCash, "upay " + webhooks.UPayCardRedeem, "upay " + webhooks.UPayCardRecharge,
		"upay " + webhooks.UPayRechargeApplied, "upay " + webhooks.UPayCardApplied, "upay " + webhooks.UPayKYCEvent,
		"upay " + webhooks.UPayCardStatusChanged, "upay " + webhooks.UPayMaterialFlow, "upay " + webhooks.UPayCardApproved,
		"upay " + webhooks.UPayCardEventName,
		"hypercard " + webhooks.HyperCardOpenCardType, "hypercard " + webhooks.HyperCardRechargeType,
		"hypercard " + webhooks.HyperCardOperationType, "hypercard " + webhooks.HyperCardConsumeType,
		"hypercard " + webhooks.HyperCardBuyCoinType, "hypercard " + webhooks.HyperCardCancelCardType,
		"hypercard " + webhooks.HyperCardAuth3DSType, "hypercard " + webhooks.HyperCardOptCodeType,
		"hypercard " + webhooks.HyperCardConfigChangeType,
	} {
		if !events[e] {
			t.Errorf("the panel has no sample of %s", e)
		}
	}
}
