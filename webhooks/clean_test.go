package webhooks

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/templates"
)

// controlClasses are the characters a provider string must lose before it
// is rendered, logged or stored, one row per class: what the push carries
// in the middle of "Amazon" (as a JSON escape, so the body stays valid
// JSON), and what is left of it.
var controlClasses = []struct {
	name, escaped, want string
}{
	{"BEL", `\u0007`, "Amazon"},
	{"ESC", `\u001b[31m`, "Ama[31mzon"}, // the escape goes, the rest is text
	{"NUL", `\u0000`, "Amazon"},
	{"DEL", `\u007f`, "Amazon"},
	{"C1 CSI", `\u009b`, "Amazon"},
	{"newline", `\n`, "Ama zon"},
	{"carriage return and newline", `\r\n`, "Ama zon"},
	{"tab", `\t`, "Ama zon"},
	{"vertical tab and form feed", `\u000b\u000c`, "Ama zon"},
	{"C1 next line", `\u0085`, "Ama zon"},
	{"line separator", `\u2028`, "Ama zon"},
	{"paragraph separator", `\u2029`, "Ama zon"},
	{"right-to-left override", `\u202e`, "Amazon"},
	{"left-to-right override", `\u202d`, "Amazon"},
	{"embeddings and pop", `\u202a\u202b\u202c`, "Amazon"},
	{"isolates", `\u2066\u2067\u2068\u2069`, "Amazon"},
	{"marks", `\u200e\u200f`, "Amazon"},
	{"arabic letter mark", `\u061c`, "Amazon"},
}

// dirty reports whether s still holds a character cleanText removes.
func dirty(s string) bool {
	for _, r := range s {
		if unsafeRune(r) {
			return true
		}
	}
	return false
}

// dirtyLines is dirty for a text of several lines (a message, a log): its
// own line breaks are allowed.
func dirtyLines(s string) bool { return dirty(strings.ReplaceAll(s, "\n", "")) }

// assertCleanEvent fails when any string of ev holds a control or bidi
// character.
func assertCleanEvent(t *testing.T, ev otpbot.Event) {
	t.Helper()
	for name, v := range map[string]string{
		"ID": ev.ID, "Group": ev.Group, "Name": ev.Name, "CardID": ev.CardID, "CustomerNo": ev.CustomerNo,
		"CardLast4": ev.CardLast4, "Amount": ev.Amount, "Currency": ev.Currency, "Merchant": ev.Merchant,
		"Country": ev.Country, "Status": ev.Status, "Trace": ev.Trace, "Code": ev.Code,
		"Link": ev.Link, "AuthID": ev.AuthID, "Reason": ev.Reason,
	} {
		if dirty(v) {
			t.Errorf("event field %s = %q keeps a control or bidi character", name, v)
		}
	}
}

func TestCleanText(t *testing.T) {
	for _, c := range controlClasses {
		t.Run(c.name, func(t *testing.T) {
			var raw string
			if err := json.Unmarshal([]byte(`"Ama`+c.escaped+`zon"`), &raw); err != nil {
				t.Fatal(err)
			}
			if got := cleanText(raw); got != c.want {
				t.Errorf("cleanText(%q) = %q, want %q", raw, got, c.want)
			}
		})
	}
	// What stays: text in any script, emoji built with joiners, and
	// ordinary spaces, as they were.
	for _, keep := range []string{"Amazon EU", "Café Zürich", "متجر أمازون", "שלום", "👩‍💻 Shop", "ZWNJ\u200cstays", "a  b"} {
		if got := cleanText(keep); got != keep {
			t.Errorf("cleanText(%q) = %q, want it unchanged", keep, got)
		}
	}
	// Runs of line breaks give one space.
	if got := cleanText("a\r\n\r\n\tb"); got != "a b" {
		t.Errorf("cleanText of a run of breaks = %q, want %q", got, "a b")
	}
}

// TestControlCharactersNeverReachTheChat: a merchant name (and a code, a
// trace, an amount) carrying a control or bidi character arrives through
// a real HTTP push; the stored event, the log line and the message the
// cardholder sees hold the clean text.
func TestControlCharactersNeverReachTheChat(t *testing.T) {
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range controlClasses {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, Config{
				UPay:      UPayConfig{Enabled: true, Token: testToken},
				HyperCard: HyperCardConfig{Enabled: true, Token: testToken},
			})
			x := c.escaped
			upay := fmt.Sprintf(`{"event":"3DS_CONFIRM","trace":"TR%s1","orderNo":"PN%s1","timestamp":1755248905430,`+
				`"detail":{"cardId":"C1","cardNumber":"5235560000001234","customerNo":"CU1001","validateCode":"A7%sK2",`+
				`"merchants":"Ama%szon","transactionTime":1755248901000,"amount":"249.90","transactionCurrency":"EUR"}}`, x, x, x, x)
			hc := fmt.Sprintf(`{"notify_type":"AUTH_3DS","auth_id":"28%s3","card_id":"15723682800000053333",`+
				`"card_no":"103411******3333","txn_currency":"EUR","txn_amount":"1.00","card_acceptor_merchant_name":"Ama%szon",`+
				`"card_acceptor_location_country":"D%sE","auth_result":2,"expired_time":1755249900,`+
				`"created_Time":1755248900,"updated_Time":1755248900}`, x, x, x)
			for _, p := range []struct {
				path string
				body string
				ack  func(response) bool
			}{{DefaultUPayPath, upay, isUPayAck}, {DefaultHyperCardPath, hc, isHyperCardAck}} {
				if got := e.post(t, withToken(p.path, testToken), []byte(p.body), nil); !p.ack(got) {
					t.Fatalf("%s: push refused: %d %q", p.path, got.status, got.body)
				}
			}
			evs := e.ing.ingested()
			if len(evs) != 2 {
				t.Fatalf("store got %d events, want 2", len(evs))
			}
			for _, ev := range evs {
				assertCleanEvent(t, ev)
				if ev.Merchant != c.want {
					t.Errorf("%s merchant = %q, want %q", ev.Provider, ev.Merchant, c.want)
				}
				if !ev.Kind.Pushed() {
					t.Fatalf("%s %s is %s (%s), want it delivered", ev.Provider, ev.Name, ev.Kind, ev.Reason)
				}
				out, err := tmpl.RenderMessage(otpbot.Message{Group: ev.Group, Event: ev, State: otpbot.StateLive}, now)
				if err != nil {
					t.Fatal(err)
				}
				if dirtyLines(out) {
					t.Errorf("%s message keeps a control or bidi character:\n%q", ev.Provider, out)
				}
				if want := "Merchant: " + c.want + "\n"; !strings.Contains(out, want) {
					t.Errorf("%s message lacks the line %q:\n%s", ev.Provider, want, out)
				}
			}
			if logs := e.logs.String(); dirtyLines(logs) {
				t.Errorf("the push log keeps a control or bidi character:\n%q", logs)
			}
		})
	}
}

// TestUPaySignatureCoversTheEventAsSent: X-UPA-SIGN is checked against the
// event name as UPay sent (and signed) it; only what the parser reads is
// cleaned. A name with a control character in it verifies, and is then
// read clean.
func TestUPaySignatureCoversTheEventAsSent(t *testing.T) {
	secret := []byte("upay-secret-key-for-clean-tests")
	e := newEnv(t, Config{UPay: UPayConfig{Enabled: true, SecretKey: secret}})
	body := []byte(`{"event":"3DS_OTP\u0007","trace":"T1","orderNo":"PN-BEL","timestamp":1755248905430,` +
		`"detail":{"cardId":"C1","cardNumber":"5235560000001234","customerNo":"CU1001","3dsCode":"004711","orderNo":"X"}}`)
	ts := fmt.Sprint(now.UnixMilli())
	got := e.post(t, DefaultUPayPath, body, map[string]string{
		UPayHeaderTimestamp: ts,
		UPayHeaderSign:      SignUPay(secret, "3DS_OTP\a", ts, body),
	})
	if !isUPayAck(got) {
		t.Fatalf("a push signed over its event as sent was refused: %d %q", got.status, got.body)
	}
	if evs := e.ing.ingested(); len(evs) != 1 || evs[0].Name != "3DS_OTP" || evs[0].Kind != otpbot.KindCode {
		t.Fatalf("store got %+v, want one clean 3DS_OTP code", evs)
	}
}
