package webhooks

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestScalar(t *testing.T) {
	tests := []struct {
		in      string
		want    Scalar
		wantInt int64
		intOK   bool
	}{
		{`"1"`, "1", 1, true},
		{`1`, "1", 1, true},
		{`12.50`, "12.50", 0, false},
		{`"12.50"`, "12.50", 0, false},
		{`1e3`, "1e3", 1000, true},
		{`1085185460000094505`, "1085185460000094505", 1085185460000094505, true},
		{`null`, "", 0, false},
		{`{"a":1}`, "", 0, false},
		{`[1]`, "", 0, false},
		{`true`, "true", 0, false},
		{`"\u0041BC"`, "ABC", 0, false},
		{"\"a\xffb\"", "a\ufffdb", 0, false}, // invalid UTF-8 is repaired, as encoding/json does
	}
	for _, tt := range tests {
		var s Scalar
		if err := json.Unmarshal([]byte(tt.in), &s); err != nil {
			t.Errorf("Unmarshal(%s): %v", tt.in, err)
			continue
		}
		if s != tt.want {
			t.Errorf("Unmarshal(%s) = %q, want %q", tt.in, s, tt.want)
		}
		if n, ok := s.Int(); ok != tt.intOK || n != tt.wantInt {
			t.Errorf("Scalar(%s).Int() = %d, %v; want %d, %v", tt.in, n, ok, tt.wantInt, tt.intOK)
		}
	}
}

func TestScalarRejectsBrokenLiteral(t *testing.T) {
	var s Scalar
	if err := s.UnmarshalJSON([]byte(`"`)); err == nil {
		t.Error("a lone quote was accepted")
	}
}

func TestSecretsDoNotPrint(t *testing.T) {
	var d UPay3DSOTP
	if err := json.Unmarshal([]byte(`{"cardNumber":"5235560000001234","3dsCode":"004711"}`), &d); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmtV(d), fmtV(&d)} {
		if strings.Contains(s, "5235560000001234") || strings.Contains(s, "004711") {
			t.Errorf("printing a push struct shows a secret: %s", s)
		}
		if !strings.Contains(s, "1234") {
			t.Errorf("printing a push struct lost the last four digits: %s", s)
		}
	}
}

func fmtV(v any) string { return fmt.Sprintf("%v %+v", v, v) }
