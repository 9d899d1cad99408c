package webhooks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// canonicalJSON is a body's canonical form, computed here independently
// of bodyID: decoded with numbers as written, re-marshalled (sorted keys).
func canonicalJSON(t *testing.T, body []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// unkeyedHashes are the plain hashes an attacker who knows the body's
// shape (all but the code) could compute for a guessed code: of the
// canonical body and of the body as sent.
func unkeyedHashes(t *testing.T, body []byte) []string {
	t.Helper()
	return []string{sha256Hex(canonicalJSON(t, body)), sha256Hex(string(body))}
}

// assertNotUnkeyed fails when id holds any unkeyed hash of body, whole or
// truncated to the id's length.
func assertNotUnkeyed(t *testing.T, id string, body []byte) {
	t.Helper()
	for _, h := range unkeyedHashes(t, body) {
		if strings.Contains(id, h) || strings.Contains(id, h[:bodyIDHexLen]) || strings.Contains(id, h[len(h)-bodyIDHexLen:]) {
			t.Errorf("id %q holds the unkeyed sha256 %s of the body", id, h)
		}
	}
}

// TestIDsAreKeyed: an id derived from a body (every HyperCard push, a UPay
// push without orderNo) cannot be recomputed without the installation key,
// so the id of an OPT_CODE push, which is logged and stored, does not let
// anyone try the million 6-digit codes against it. The same body under one
// key still has one id, so repeats are still recognised.
func TestIDsAreKeyed(t *testing.T) {
	keyA := []byte("installation-key-A-0123456789abc")
	keyB := []byte("installation-key-B-0123456789abc")
	optCode := mustRead("hypercard", "opt_code.json")
	noOrder := mustRead("upay", "unknown_event_no_order.json")
	tests := []struct {
		name   string
		body   []byte
		prefix string
		parse  func(Parser, []byte) (string, error)
	}{
		{"hypercard OPT_CODE", optCode, "hypercard:", func(p Parser, b []byte) (string, error) {
			ev, err := p.ParseHyperCard(b, received)
			return ev.ID, err
		}},
		{"upay without orderNo", noOrder, "upay:hmac:", func(p Parser, b []byte) (string, error) {
			ev, err := p.ParseUPay(b, received)
			return ev.ID, err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := func(key []byte, body []byte) string {
				t.Helper()
				got, err := tt.parse(Parser{IDKey: key, Codes: testCodes}, body)
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				return got
			}
			a := id(keyA, tt.body)
			if !strings.HasPrefix(a, tt.prefix) || len(a) != len(tt.prefix)+bodyIDHexLen {
				t.Fatalf("ID = %q, want %s<%d hex digits>", a, tt.prefix, bodyIDHexLen)
			}
			if _, err := hex.DecodeString(strings.TrimPrefix(a, tt.prefix)); err != nil {
				t.Fatalf("ID = %q: not hex", a)
			}
			assertNotUnkeyed(t, a, tt.body)
			if want := tt.prefix + keyedHex(keyA, canonicalJSON(t, tt.body)); a != want {
				t.Errorf("ID = %q, want the HMAC-SHA256 of the canonical body %q", a, want)
			}
			if b := id(keyB, tt.body); b == a {
				t.Errorf("two installation keys gave the same ID %q", a)
			}
			// Dedupe still works: the same push again, or re-indented, is
			// the same ID under the same key.
			if again := id(keyA, bytes.Clone(tt.body)); again != a {
				t.Errorf("the same body twice: %q then %q", a, again)
			}
			var indented bytes.Buffer
			if err := json.Indent(&indented, tt.body, "", "    "); err != nil {
				t.Fatal(err)
			}
			if again := id(keyA, indented.Bytes()); again != a {
				t.Errorf("re-indented body: %q then %q", a, again)
			}
		})
	}

	// An attacker with the id and the rest of the body, trying every code
	// with the unkeyed hash (the old scheme), finds nothing.
	ev, err := Parser{IDKey: keyA, Codes: testCodes}.ParseHyperCard(optCode, received)
	if err != nil {
		t.Fatal(err)
	}
	hexID := strings.TrimPrefix(ev.ID, "hypercard:")
	for _, code := range []string{"888666", "888665", "000000"} {
		canon := `{"card_id":"1085185460000094505","code":"` + code + `","create_time":1710412477,"notify_type":"OPT_CODE"}`
		sum := sha256.Sum256([]byte(canon))
		if h := hex.EncodeToString(sum[:]); strings.HasPrefix(h, hexID) {
			t.Fatalf("the unkeyed hash of the body with code %s matches the id %q", code, ev.ID)
		}
	}
}

// TestParserNeedsKey: a Parser without a usable key refuses to parse (so a
// wiring mistake cannot fall back to guessable ids), and says so with an
// error that is not ErrMalformed (the handler answers 503: retried, not
// dropped).
func TestParserNeedsKey(t *testing.T) {
	body := mustRead("hypercard", "opt_code.json")
	for _, key := range [][]byte{nil, {}, []byte("0123456789abcde")} {
		p := Parser{IDKey: key, Codes: testCodes}
		if ev, err := p.ParseHyperCard(body, received); err == nil || errors.Is(err, ErrMalformed) {
			t.Errorf("ParseHyperCard with a %d-byte key: %+v, %v; want a non-ErrMalformed error", len(key), ev, err)
		}
		if ev, err := p.ParseUPay(mustRead("upay", "3ds_otp.json"), received); err == nil || errors.Is(err, ErrMalformed) {
			t.Errorf("ParseUPay with a %d-byte key: %+v, %v; want a non-ErrMalformed error", len(key), ev, err)
		}
	}
}

// TestPushLogHasNoUnkeyedHash: the push log line carries the keyed id and
// nothing an attacker could match against hashes of guessed bodies; a
// repeat of the push is still a duplicate.
func TestPushLogHasNoUnkeyedHash(t *testing.T) {
	body := mustRead("hypercard", "opt_code.json")
	e := newEnv(t, Config{HyperCard: HyperCardConfig{Enabled: true, Token: testToken}})
	for range 2 {
		if got := e.post(t, withToken(DefaultHyperCardPath, testToken), body, nil); !isHyperCardAck(got) {
			t.Fatalf("push: %d %q", got.status, got.body)
		}
	}
	evs := e.ing.ingested()
	if len(evs) != 2 || evs[0].ID != evs[1].ID {
		t.Fatalf("a repeated push got another identity: %+v", evs)
	}
	if n := e.pushes(t, "hypercard", "OPT_CODE", "duplicate"); n != 1 {
		t.Errorf("duplicates counted %v, want 1", n)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, evs[0].ID) {
		t.Fatalf("the push log does not name the id %q:\n%s", evs[0].ID, logs)
	}
	for _, h := range unkeyedHashes(t, body) {
		if strings.Contains(logs, h[:16]) {
			t.Errorf("the push log holds the unkeyed sha256 %s of the body:\n%s", h, logs)
		}
	}
	if strings.Contains(logs, "888666") {
		t.Errorf("the push log holds the code:\n%s", logs)
	}
}
