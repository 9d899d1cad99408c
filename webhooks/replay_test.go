package webhooks

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/templates"
)

// The replay: every example of the HyperCard document verbatim, and a UPay
// body for every event of its document with each enumerated value at least
// once, through the parser and the templates. The golden files
// (testdata/replay/*.golden, rewritten with go test ./webhooks -update)
// hold the message each push becomes and its /history line, so a change in
// what a cardholder or an operator reads shows in review.

var update = flag.Bool("update", false, "rewrite testdata/replay/*.golden with the current output")

// replayCase is one push of the replay.
type replayCase struct {
	name     string
	provider otpbot.Provider
	body     []byte
	at       time.Time // receipt
}

// replayHyperCard is the document's examples, verbatim, then one variant
// for every other enumerated value.
func replayHyperCard(t *testing.T) map[string][]replayCase {
	t.Helper()
	doc := func(name string) []byte { return mustRead("hypercard", name) }
	// with is the example with some members changed (nil: removed).
	with := func(name string, set map[string]any) []byte {
		return edit(t, doc(name), func(m map[string]any) {
			for k, v := range set {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
		})
	}
	at := func(unix int64) time.Time { return time.Unix(unix, 0).UTC() }
	example := at(1710412500) // the examples' time: 2024-03-14
	hc := func(name string, body []byte, received time.Time) replayCase {
		return replayCase{name: name, provider: otpbot.ProviderHyperCard, body: body, at: received}
	}
	return map[string][]replayCase{
		"OPEN_CARD": {
			hc("the document's example (result 1)", doc("open_card.json"), example),
			hc("result 2: a failed application", with("open_card.json", map[string]any{"result": 2, "remark": "KYC data incomplete"}), example),
		},
		"RECHARGE": {
			hc("the document's example (result \"1\")", doc("recharge.json"), example),
			hc("result 2", with("recharge.json", map[string]any{"result": 2, "remark": "card frozen"}), example),
		},
		"OPERATION": {
			hc("the document's example (operate_status \"1\")", doc("operation.json"), example),
			hc("operate_status 0", with("operation.json", map[string]any{"operate_status": "0"}), example),
			hc("operate_status 2", with("operation.json", map[string]any{"operate_status": "2"}), example),
			hc("operate_status 98", with("operation.json", map[string]any{"operate_status": "98"}), example),
			hc("operate_status 99", with("operation.json", map[string]any{"operate_status": "99"}), example),
		},
		"CONSUME": {hc("the document's example", doc("consume.json"), example)},
		"BUY_COIN": {
			hc("the document's example (status \"2\")", doc("buy_coin.json"), example),
			hc("status 0", with("buy_coin.json", map[string]any{"status": 0, "reason": nil}), example),
			hc("status 1", with("buy_coin.json", map[string]any{"status": 1, "reason": nil}), example),
		},
		"CANCEL_CARD": {hc("the document's example", doc("cancel_card.json"), example)},
		"AUTH_3DS": {
			// auth_result 2: approved by the default mapping.
			hc("the document's example (auth_result 2)", doc("auth_3ds.json"), at(1699865740)),
			hc("auth_result 3", with("auth_3ds.json", map[string]any{"auth_result": 3}), at(1699865740)),
			hc("auth_result 1: not in the mapping", with("auth_3ds.json", map[string]any{"auth_result": 1}), at(1699865740)),
		},
		"OPT_CODE":           {hc("the document's example", doc("opt_code.json"), at(1710412500))},
		"CARD_CONFIG_CHANGE": {hc("the document's example", doc("card_config_change.json"), example)},
	}
}

// replayUPay is a body for every event of the UPay document, each
// enumerated value at least once, and the two events UPay names elsewhere.
func replayUPay(t *testing.T) map[string][]replayCase {
	t.Helper()
	at := time.UnixMilli(1755248905430).UTC()
	card := map[string]any{"cardId": "C1", "cardNumber": "5235560000001234", "customerNo": "CU1001"}
	n := 0
	push := func(event string, detail map[string]any) []byte {
		n++
		d := map[string]any{}
		for k, v := range card {
			d[k] = v
		}
		for k, v := range detail {
			if v == nil {
				delete(d, k)
			} else {
				d[k] = v
			}
		}
		b, err := json.Marshal(map[string]any{"event": event, "trace": fmt.Sprintf("TR%d", n),
			"orderNo": fmt.Sprintf("PN%d", n), "timestamp": at.UnixMilli(), "detail": d})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	up := func(name string, body []byte) replayCase {
		return replayCase{name: name, provider: otpbot.ProviderUPay, body: body, at: at}
	}
	tx := func(event string, typ, status int, extra map[string]any) []byte {
		d := map[string]any{"orderNo": "TX", "type": typ, "status": status, "amount": 12.5, "direction": 2,
			"merchantName": "Amazon EU", "currency": "USD", "transactionAt": 1755248900000, "transactionId": "T-1"}
		for k, v := range extra {
			d[k] = v
		}
		return push(event, d)
	}
	out := map[string][]replayCase{
		"CC_CONSUME": {
			up("type 2, status 1, in another currency", tx("CC_CONSUME", 2, 1, map[string]any{"originalAmount": "11.9", "originalCurrency": "EUR"})),
			up("type 6: a management fee", tx("CC_CONSUME", 6, 1, map[string]any{"amount": "1.2E+1", "merchantName": nil})),
			up("status 6: payment failed", tx("CC_CONSUME", 2, 6, map[string]any{"reason": "Insufficient balance"})),
			up("status 7: canceled, in yen", tx("CC_CONSUME", 2, 7, map[string]any{"amount": "100.00", "currency": "JPY"})),
		},
		"CC_REFUND":        {up("type 3, status 4: credited", tx("CC_REFUND", 3, 4, map[string]any{"direction": 1}))},
		"CC_WITHDRAW_CASH": {up("type 4, status 2: failed", tx("CC_WITHDRAW_CASH", 4, 2, map[string]any{"reason": "ATM declined"}))},
		"CC_REDEEM":        {up("type 5, status 3: processing, in dinars", tx("CC_REDEEM", 5, 3, map[string]any{"amount": "0.125", "currency": "BHD"}))},
		"CC_RECHARGE":      {up("type 1, status 5: not credited", tx("CC_RECHARGE", 1, 5, map[string]any{"direction": 1}))},
		"CC_AUTHORIZATION": {up("shaped like a transaction", tx("CC_AUTHORIZATION", 2, 1, nil))},
		"3DS_OTP":          {up("a code", push("3DS_OTP", map[string]any{"3dsCode": "004711", "orderNo": "X1"}))},
		"3DS_CONFIRM": {up("a confirmation code", push("3DS_CONFIRM", map[string]any{"validateCode": "A7K2", "merchants": "Booking.com",
			"transactionTime": 1755248901000, "amount": 249.9, "transactionCurrency": "eur"}))},
		"CR_RECHARGE": {up("status 8: pending payment", push("CR_RECHARGE", map[string]any{"orderNo": "RA", "amount": "500", "status": 8,
			"subscribeAt": 1755248800000}))},
		"CA_APPLY": {
			up("status 1: paid (a card id only)", push("CA_APPLY", map[string]any{"cardNumber": nil, "orderNo": "AP", "amount": "10.00",
				"status": 1, "subscribeAt": 1755248700}))},
		"KS_KYC":            {},
		"CSC_STATUS_CHANGE": {},
		"MF_MATERIAL_FLOW": {
			up("dispatchTime as 2006-01-02 15:04:05", push("MF_MATERIAL_FLOW", map[string]any{"cardNumber": nil, "customerNo": nil,
				"dispatchTime": "2025-08-15 10:00:00", "logisticsOrderNo": "SF123456789", "logisticsCompanyName": "SF Express",
				"recipientAddress": "1 Example Road", "logisticsImage": "https://img.example.com/1.jpg"})),
			up("dispatchTime in milliseconds", push("MF_MATERIAL_FLOW", map[string]any{"cardNumber": nil, "customerNo": nil,
				"dispatchTime": "1755252000000", "logisticsOrderNo": "DHL-1", "logisticsCompanyName": "DHL",
				"recipientAddress": "1 Example Road", "logisticsImage": "https://img.example.com/2.jpg"})),
		},
		"CS_APPROVED": {up("cardStatus 1", push("CS_APPROVED", map[string]any{"orderNo": "AC", "cardStatus": 1}))},
		"CE_EVENT":    {up("outside the document", push("CE_EVENT", map[string]any{"status": "FROZEN"}))},
	}
	// CA_APPLY's second status.
	out["CA_APPLY"] = append(out["CA_APPLY"], up("status 2: pending payment", push("CA_APPLY", map[string]any{"cardNumber": nil,
		"orderNo": "AP2", "amount": "10", "status": 2, "subscribeAt": 1755248700000})))
	for _, typ := range []string{"3DS_CONFIRM_LINK", "3DS_VERIFICATION_CODE", "CARD_ACTIVATION", "LOCK_UNLOCK_CARD",
		"TX_WDR_PWD_MODIFY", "TX_WDR_PWD_SET", "CAT_CARD"} {
		code := "918273"
		if typ == "3DS_CONFIRM_LINK" {
			code = "https://3ds.example.com/confirm?t=abc"
		}
		out["NE_VERIFY"] = append(out["NE_VERIFY"], up("type "+typ, push("NE_VERIFY", map[string]any{"orderNo": "VN", "code": code, "type": typ})))
	}
	for _, doc := range []string{"1", "2", "3"} {
		for _, st := range []string{"1", "2"} {
			out["KS_KYC"] = append(out["KS_KYC"], up("documentType "+doc+", status "+st,
				push("KS_KYC", map[string]any{"cardId": nil, "cardNumber": nil, "documentType": doc, "status": st})))
		}
	}
	for _, st := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "13", "14", "15", "16"} {
		out["CSC_STATUS_CHANGE"] = append(out["CSC_STATUS_CHANGE"], up("status "+st,
			push("CSC_STATUS_CHANGE", map[string]any{"status": st, "orderNo": "SC"})))
	}
	return out
}

func TestReplayEveryEvent(t *testing.T) {
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	parser := Parser{IDSecret: testIDSecret, Codes: CodeConfig{TTL: 5 * time.Minute}}
	for provider, groups := range map[otpbot.Provider]map[string][]replayCase{
		otpbot.ProviderHyperCard: replayHyperCard(t), otpbot.ProviderUPay: replayUPay(t),
	} {
		for event, cases := range groups {
			t.Run(string(provider)+"/"+event, func(t *testing.T) {
				if len(cases) == 0 {
					t.Fatal("no push for this event")
				}
				var out strings.Builder
				for _, c := range cases {
					out.WriteString(replay(t, tmpl, parser, c, event))
				}
				replayGolden(t, string(provider)+"_"+strings.ToLower(event), out.String())
			})
		}
	}
}

// replay parses one push as received at c.at and renders what it becomes:
// the message a code or approval request is sent as, and its /history
// line. It fails on a full card number, or a code anywhere but in the
// live message.
func replay(t *testing.T, tmpl *templates.Set, parser Parser, c replayCase, event string) string {
	t.Helper()
	parse := parser.ParseUPay
	if c.provider == otpbot.ProviderHyperCard {
		parse = parser.ParseHyperCard
	}
	ev, err := parse(c.body, c.at)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	if ev.Name != event || ev.Kind == otpbot.KindRejected || ev.Kind == otpbot.KindUnknown {
		t.Fatalf("%s: parsed as %s %s (%s)", c.name, ev.Name, ev.Kind, ev.Reason)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n", c.name)
	outcome := otpbot.OutcomeRecorded
	if ev.Kind.Pushed() {
		outcome = otpbot.OutcomeQueued
		msg := otpbot.Message{Group: ev.Group, Event: ev, State: otpbot.NextState("", ev)}
		text, err := tmpl.RenderMessage(msg, c.at)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		fmt.Fprintf(&b, "message:\n%s\n", text)
	}
	page, err := tmpl.Render("history", templates.HistoryView{Key: otpbot.EventsKey, Part: 1, Parts: 1,
		Entries: []otpbot.HistoryEntry{{Event: ev.Redacted(), Outcome: outcome}}})
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	_, line, _ := strings.Cut(page, "\n")
	fmt.Fprintf(&b, "history: %s\n\n", line)

	all := b.String()
	for _, pan := range []string{"5235560000001234", "103411******3333"} {
		if strings.Contains(all, pan) {
			t.Errorf("%s: a full card number is shown:\n%s", c.name, all)
		}
	}
	if secret := ev.Code + ev.Link; secret != "" && strings.Contains(line, strings.SplitN(secret, "?", 2)[0]) {
		t.Errorf("%s: the history line shows the code:\n%s", c.name, line)
	}
	if strings.Contains(line, event) {
		t.Errorf("%s: the history line names the event as sent:\n%s", c.name, line)
	}
	return all
}

// replayGolden compares got with testdata/replay/name.golden (or writes it
// with -update).
func replayGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "replay", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./webhooks -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

// Every golden file belongs to an event of the replay, so none is left
// behind when an event goes.
func TestReplayGoldenFilesHaveTheirEvent(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "replay", "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for provider, groups := range map[string]map[string][]replayCase{"hypercard": replayHyperCard(t), "upay": replayUPay(t)} {
		for event := range groups {
			want[filepath.Join("testdata", "replay", provider+"_"+strings.ToLower(event)+".golden")] = true
		}
	}
	var stray []string
	for _, f := range files {
		if !want[f] {
			stray = append(stray, f)
		}
	}
	sort.Strings(stray)
	if len(stray) > 0 || (len(files) != len(want) && !*update) {
		t.Errorf("golden files without their event: %v (%d files, %d events)", stray, len(files), len(want))
	}
}
