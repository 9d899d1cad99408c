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

// signedString is a HyperCard body's canonical form, computed here
// independently of hyperCardID: the string its signature covers, without
// headers.
func signedString(t *testing.T, body []byte) string {
	t.Helper()
	s, err := HyperCardSignString(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unkeyedHashes are the plain hashes an attacker who knows the body's
// shape (all but the code) could compute for a guessed code: of the
// canonical body, of its signed string and of the body as sent.
func unkeyedHashes(t *testing.T, body []byte) []string {
	t.Helper()
	return []string{sha256Hex(canonicalJSON(t, body)), sha256Hex(signedString(t, body)), sha256Hex(string(body))}
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
// push without orderNo) cannot be recomputed without the installation secret,
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
		canon  func(*testing.T, []byte) string
	}{
		{"hypercard OPT_CODE", optCode, "hypercard:", func(p Parser, b []byte) (string, error) {
			ev, err := p.ParseHyperCard(b, received)
			return ev.ID, err
		}, signedString},
		{"upay without orderNo", noOrder, "upay:hmac:", func(p Parser, b []byte) (string, error) {
			ev, err := p.ParseUPay(b, received)
			return ev.ID, err
		}, canonicalJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := func(key []byte, body []byte) string {
				t.Helper()
				got, err := tt.parse(Parser{IDSecret: key, Codes: testCodes}, body)
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
			if want := tt.prefix + keyedHex(keyA, tt.canon(t, tt.body)); a != want {
				t.Errorf("ID = %q, want the HMAC-SHA256 of the canonical body %q", a, want)
			}
			if b := id(keyB, tt.body); b == a {
				t.Errorf("two installation secrets gave the same ID %q", a)
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
	ev, err := Parser{IDSecret: keyA, Codes: testCodes}.ParseHyperCard(optCode, received)
	if err != nil {
		t.Fatal(err)
	}
	hexID := strings.TrimPrefix(ev.ID, "hypercard:")
	for _, code := range []string{"888666", "888665", "000000"} {
		for _, canon := range []string{
			`{"card_id":"1085185460000094505","code":"` + code + `","create_time":1710412477,"notify_type":"OPT_CODE"}`,
			"card_id=1085185460000094505&code=" + code + "&create_time=1710412477&notify_type=OPT_CODE",
		} {
			sum := sha256.Sum256([]byte(canon))
			if h := hex.EncodeToString(sum[:]); strings.HasPrefix(h, hexID) {
				t.Fatalf("the unkeyed hash of the body with code %s matches the id %q", code, ev.ID)
			}
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
		p := Parser{IDSecret: key, Codes: testCodes}
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

// edit returns body (a JSON object) changed by fn, re-marshalled.
func edit(t *testing.T, body []byte, fn func(m map[string]any)) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// detailOf returns the detail object of a UPay body being edited.
func detailOf(m map[string]any) map[string]any { return m["detail"].(map[string]any) }

// TestIdentityIgnoresUnknownFields: a push's identity is made of the fields
// the parser reads (unknown fields are ignored, docs/pushes.md, and HyperCard
// says new ones will appear), so a retry that gains a field is still a
// repeat, while a change to a field the parser reads is a new push. A push
// whose type is unknown has no known field: all of its body counts.
func TestIdentityIgnoresUnknownFields(t *testing.T) {
	hc := func(t *testing.T, b []byte) string {
		t.Helper()
		ev, err := testParser.ParseHyperCard(b, received)
		if err != nil {
			t.Fatalf("ParseHyperCard: %v", err)
		}
		return ev.ID
	}
	up := func(t *testing.T, b []byte) string {
		t.Helper()
		ev, err := testParser.ParseUPay(b, received)
		if err != nil {
			t.Fatalf("ParseUPay: %v", err)
		}
		return ev.ID
	}
	optCode := mustRead("hypercard", "opt_code.json")
	auth := mustRead("hypercard", "auth_3ds.json")
	unknownHC := mustRead("hypercard", "unknown_type.json")
	// A UPay 3DS_OTP without orderNo: its id falls back to the body.
	otpNoOrder := edit(t, mustRead("upay", "3ds_otp.json"), func(m map[string]any) { delete(m, "orderNo") })
	unknownUP := mustRead("upay", "unknown_event_no_order.json")

	tests := []struct {
		name  string
		parse func(*testing.T, []byte) string
		body  []byte
		edit  func(m map[string]any)
		same  bool
	}{
		{"OPT_CODE gains a field", hc, optCode, func(m map[string]any) { m["new_field"] = "x" }, true},
		{"OPT_CODE gains an object field", hc, optCode, func(m map[string]any) { m["meta"] = map[string]any{"a": []any{1, 2}} }, true},
		{"OPT_CODE with another code", hc, optCode, func(m map[string]any) { m["code"] = "888667" }, false},
		{"OPT_CODE with another create_time", hc, optCode, func(m map[string]any) { m["create_time"] = 1710412478 }, false},
		{"OPT_CODE with another card", hc, optCode, func(m map[string]any) { m["card_id"] = "1085185460000094506" }, false},
		// encoding/json reads a known field in any letter case: it is known.
		{"OPT_CODE with a known field in other letters", hc, optCode, func(m map[string]any) { m["CODE"] = "111111" }, false},
		{"AUTH_3DS gains a field", hc, auth, func(m map[string]any) { m["risk_score"] = 17 }, true},
		{"AUTH_3DS with a changed result", hc, auth, func(m map[string]any) { m["auth_result"] = 3 }, false},
		{"AUTH_3DS with a changed optional field", hc, auth, func(m map[string]any) { m["app_card_id"] = "crd_other" }, false},
		{"unknown notify type gains a field", hc, unknownHC, func(m map[string]any) { m["new_field"] = "x" }, false},
		{"UPay without orderNo gains an envelope field", up, otpNoOrder, func(m map[string]any) { m["version"] = "2" }, true},
		{"UPay without orderNo gains a detail field", up, otpNoOrder, func(m map[string]any) { detailOf(m)["bin"] = "523556" }, true},
		{"UPay without orderNo with another code", up, otpNoOrder, func(m map[string]any) { detailOf(m)["3dsCode"] = "004712" }, false},
		{"UPay without orderNo with another trace", up, otpNoOrder, func(m map[string]any) { m["trace"] = "TR8" }, false},
		{"UPay without orderNo with another timestamp", up, otpNoOrder, func(m map[string]any) { m["timestamp"] = 1755248905431 }, false},
		{"unknown UPay event without orderNo gains a field", up, unknownUP, func(m map[string]any) { detailOf(m)["x"] = 1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.parse(t, tt.body)
			after := tt.parse(t, edit(t, tt.body, tt.edit))
			if same := before == after; same != tt.same {
				t.Errorf("ids %q and %q: same = %v, want %v", before, after, same, tt.same)
			}
		})
	}
}

// TestHyperCardReplayTheSignatureCannotTell: a captured, signed HyperCard
// push re-sent with a change its signature does not see (a number re-typed
// as a string, an escape, a value moved across a "&key=" boundary, a
// member the signed header of the same name stands for) verifies, and so
// must be the same push: acknowledged as a repeat, never a second message.
func TestHyperCardReplayTheSignatureCannotTell(t *testing.T) {
	key := rsaKey(t, 1024)
	const optCode = `{"notify_type":"OPT_CODE","card_id":"1085185460000094505","code":"888666","create_time":1710412477}`
	const auth = `{"notify_type":"AUTH_3DS","auth_id":283,"card_id":"15723682800000053333","card_no":"103411******3333",` +
		`"txn_currency":"EUR","txn_amount":"1.50","card_acceptor_merchant_name":"Amazon","card_acceptor_location_country":"DE",` +
		`"auth_result":2,"expired_time":1755249900,"created_Time":1755248900,"updated_Time":1755248900,"app_card_id":""}`
	const unknown = `{"notify_type":"CARD_FROZEN","card_id":"1085185460000094505","card_no":"1034110000004505"}`
	tests := []struct {
		name, original, replay string
		event                  string // label of otpbot_pushes_total
	}{
		{"create_time re-typed as a string", optCode,
			`{"notify_type":"OPT_CODE","card_id":"1085185460000094505","code":"888666","create_time":"1710412477"}`, "OPT_CODE"},
		{"card id and code re-typed as numbers", optCode,
			`{"notify_type":"OPT_CODE","card_id":1085185460000094505,"code":888666,"create_time":1710412477}`, "OPT_CODE"},
		{"code written with escapes", optCode,
			`{"notify_type":"OPT_CODE","card_id":"1085185460000094505","code":"\u0038\u0038\u0038666","create_time":1710412477}`, "OPT_CODE"},
		{"a member name written with escapes", optCode,
			`{"notify_type":"OPT_CODE","card_id":"1085185460000094505","c\u006fde":"888666","create_time":1710412477}`, "OPT_CODE"},
		{"code moved into the card id", optCode,
			`{"notify_type":"OPT_CODE","card_id":"1085185460000094505&code=888666","create_time":1710412477}`, "OPT_CODE"},
		{"create_time moved into the code", optCode,
			`{"notify_type":"OPT_CODE","card_id":"1085185460000094505","code":"888666&create_time=1710412477"}`, "OPT_CODE"},
		{"amount and result re-typed", auth, strings.NewReplacer(`"txn_amount":"1.50"`, `"txn_amount":1.50`,
			`"auth_result":2`, `"auth_result":"2"`, `"auth_id":283`, `"auth_id":"283"`).Replace(auth), "AUTH_3DS"},
		{"empty optional field sent as null, then left out", auth,
			strings.Replace(auth, `"app_card_id":""`, `"app_card_id":null`, 1), "AUTH_3DS"},
		{"a member named like a signed header", optCode,
			strings.Replace(optCode, `{`, `{"nonce":"other","timestamp":1,"version":"9",`, 1), "OPT_CODE"},
		{"unknown type with a member named like a signed header", unknown,
			strings.Replace(unknown, `{`, `{"api-key":"x",`, 1), "unknown"},
		{"unknown type with a member re-typed", unknown,
			strings.Replace(unknown, `"card_id":"1085185460000094505"`, `"card_id":1085185460000094505`, 1), "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{HyperCard: HyperCardConfig{Enabled: true, PublicKey: &key.PublicKey}})
			h := hyperCardHeaders(t, key, now, []byte(tt.original))
			if got := e.post(t, DefaultHyperCardPath, []byte(tt.original), h); !isHyperCardAck(got) {
				t.Fatalf("original: %d %q", got.status, got.body)
			}
			// The replay carries the original's headers and signature.
			if got := e.post(t, DefaultHyperCardPath, []byte(tt.replay), h); !isHyperCardAck(got) {
				t.Fatalf("the replay does not verify (%d %q): the row does not show what it claims", got.status, got.body)
			}
			evs := e.ing.ingested()
			if len(evs) != 2 || evs[0].ID != evs[1].ID {
				t.Fatalf("the replay got another identity: %q then %q", evs[0].ID, evs[len(evs)-1].ID)
			}
			if n := e.pushes(t, "hypercard", tt.event, "duplicate"); n != 1 {
				t.Errorf("otpbot_pushes_total{event=%q,outcome=duplicate} = %v, want 1", tt.event, n)
			}
		})
	}
}

// TestHyperCardIdentityNumberFormats: a number is signed as it is written,
// so 1.50, 1.5 and 1.5e0 are three different pushes to the signature, and
// to the identity; the same literal as a JSON number or a JSON string is
// one. The identity and the signed string agree on every pair.
func TestHyperCardIdentityNumberFormats(t *testing.T) {
	values := []string{`1.50`, `"1.50"`, `1.5`, `"1.5"`, `1.5e0`, `"1.5e0"`, `15e-1`, `1.500`, `"1.5 "`}
	body := func(v string) []byte {
		return []byte(`{"notify_type":"AUTH_3DS","auth_id":"283","card_id":"C1","txn_amount":` + v + `,"txn_currency":"EUR"}`)
	}
	same := map[[2]string]bool{{`1.50`, `"1.50"`}: true, {`1.5`, `"1.5"`}: true, {`1.5e0`, `"1.5e0"`}: true}
	for i, a := range values {
		for _, b := range values[i+1:] {
			evA, err := testParser.ParseHyperCard(body(a), received)
			if err != nil {
				t.Fatal(err)
			}
			evB, err := testParser.ParseHyperCard(body(b), received)
			if err != nil {
				t.Fatal(err)
			}
			signedSame := signedString(t, body(a)) == signedString(t, body(b))
			if signedSame != same[[2]string{a, b}] {
				t.Errorf("txn_amount %s and %s: the signed strings are equal = %v; the table says %v", a, b, signedSame, !signedSame)
			}
			if idSame := evA.ID == evB.ID; idSame != signedSame {
				t.Errorf("txn_amount %s and %s: same identity = %v, but the signature says same = %v", a, b, idSame, signedSame)
			}
		}
	}
}
