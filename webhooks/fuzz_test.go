package webhooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otpbot/otpbot"
)

// seedDir adds every test body of a provider to a fuzz corpus.
func seedDir(f *testing.F, provider string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", provider, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", provider, err)
	}
	for _, file := range files {
		f.Add(mustRead(provider, filepath.Base(file)))
	}
}

// checkParsed holds for whatever a parser returns.
func checkParsed(t *testing.T, provider otpbot.Provider, ev otpbot.Event, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("error is not ErrMalformed: %v", err)
		}
		return
	}
	if ev.Provider != provider || !strings.HasPrefix(ev.ID, string(provider)+":") || ev.Group == "" || ev.Name == "" {
		t.Fatalf("incomplete identity: %+v", ev)
	}
	switch ev.Kind {
	case otpbot.KindCode, otpbot.KindApproval, otpbot.KindInfo, otpbot.KindUnknown:
	case otpbot.KindRejected:
		if ev.Reason == "" || ev.Code != "" || ev.Link != "" {
			t.Fatalf("rejected event without a reason or with a code: %+v", ev)
		}
	default:
		t.Fatalf("kind %q", ev.Kind)
	}
	assertCleanEvent(t, ev)
	// Nothing too long to be real survives into the event (ids are the
	// bounded id plus a prefix; a link is the longest value).
	for name, v := range map[string]string{"ID": ev.ID, "Group": ev.Group, "Name": ev.Name, "CardID": ev.CardID,
		"CustomerNo": ev.CustomerNo, "Trace": ev.Trace, "AuthID": ev.AuthID, "Code": ev.Code} {
		if len(v) > MaxIDBytes+len("hypercard:AUTH_3DS:") {
			t.Fatalf("%s is %d bytes long", name, len(v))
		}
	}
	for name, v := range map[string]string{"Merchant": ev.Merchant, "Amount": ev.Amount, "Currency": ev.Currency,
		"Country": ev.Country, "Status": ev.Status, "Reason": ev.Reason, "Link": ev.Link} {
		if len(v) > MaxLinkBytes {
			t.Fatalf("%s is %d bytes long", name, len(v))
		}
	}
	if l := ev.CardLast4; l != "" && (len(l) != 4 || strings.Trim(l, "0123456789") != "") {
		t.Fatalf("CardLast4 %q is not four digits", l)
	}
	if ev.Kind == otpbot.KindCode && ev.ExpiresAt.IsZero() && provider == otpbot.ProviderUPay {
		t.Fatalf("UPay code without expiry: %+v", ev)
	}
}

func FuzzParseUPay(f *testing.F) {
	seedDir(f, "upay")
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := testParser.ParseUPay(body, received)
		checkParsed(t, otpbot.ProviderUPay, ev, err)
	})
}

func FuzzParseHyperCard(f *testing.F) {
	seedDir(f, "hypercard")
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := testParser.ParseHyperCard(body, received)
		checkParsed(t, otpbot.ProviderHyperCard, ev, err)
		if err != nil {
			return
		}
		// The identity does not depend on layout: re-indented, the same
		// body is the same push.
		var indented bytes.Buffer
		if json.Indent(&indented, body, "", "\t") != nil {
			return
		}
		again, err := testParser.ParseHyperCard(indented.Bytes(), received)
		if err != nil || again.ID != ev.ID {
			t.Fatalf("re-indented body: ID %q → %q (%v)", ev.ID, again.ID, err)
		}
	})
}

func FuzzHyperCardSignString(f *testing.F) {
	f.Add("1706650000", "a1b2c3d4e5", mustRead("hypercard", "auth_3ds.json"))
	f.Add("", "", []byte(`{"signature":"x","a":{"b":[1,null,"\u00e9"]},"n":1e999}`))
	f.Add("1", "n", []byte(`[]`))
	f.Add("1", "n", []byte(``))
	f.Fuzz(func(t *testing.T, timestamp, nonce string, body []byte) {
		headers := map[string]string{"timestamp": timestamp, "nonce": nonce, "signature": "never"}
		s, err := HyperCardSignString(headers, body)
		if err != nil {
			return
		}
		again, err := HyperCardSignString(headers, body)
		if err != nil || again != s {
			t.Fatalf("not deterministic: %q then %q (%v)", s, again, err)
		}
		if strings.Contains(s, "never") && !bytes.Contains(body, []byte("never")) {
			t.Fatalf("the signature header was signed: %q", s)
		}
	})
}

func BenchmarkParseUPay(b *testing.B) {
	body := mustRead("upay", "3ds_otp.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := testParser.ParseUPay(body, received); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseHyperCard(b *testing.B) {
	body := mustRead("hypercard", "auth_3ds.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := testParser.ParseHyperCard(body, received); err != nil {
			b.Fatal(err)
		}
	}
}
