package otpbot

import "testing"

func TestNormalizeAmount(t *testing.T) {
	tests := []struct {
		amount, currency, want string
		ok                     bool
	}{
		{"12.5", "USD", "12.50", true},
		{"12.50", "usd", "12.50", true},
		{"12", "EUR", "12.00", true},
		{"1.2E+1", "USD", "12.00", true},
		{"1.2e1", "USD", "12.00", true},
		{"125e-3", "BHD", "0.125", true},
		{"0.125", "BHD", "0.125", true},
		{"0.1", "BHD", "0.100", true},
		{"100", "JPY", "100", true},
		{"100.00", "JPY", "100", true},
		{"1E2", "JPY", "100", true},
		{"12.345", "USD", "12.345", true}, // a decimal beyond the minor unit is never rounded away
		{"12.3450", "USD", "12.345", true},
		{"-3", "EUR", "-3.00", true},
		{"+3.1", "EUR", "3.10", true},
		{".5", "EUR", "0.50", true},
		{"7.", "EUR", "7.00", true},
		{"-0.00", "EUR", "0.00", true},
		{"0.0001", "CLF", "0.0001", true},
		{"00012.5", "USD", "12.50", true},
		// Without a currency ISO 4217 knows: as written, the exponent expanded.
		{"100.00", "", "100.00", true},
		{"12.5", "USDT", "12.5", true},
		{"1.5E+2", "", "150", true},
		{"1.50E-1", "978", "0.150", true},
		// Not decimals.
		{"", "USD", "", false},
		{"1,50", "USD", "", false},
		{"12 USD", "USD", "", false},
		{"1e", "USD", "", false},
		{"1e999", "USD", "", false},
		{"0x10", "USD", "", false},
		{".", "USD", "", false},
		{"-", "USD", "", false},
		{"NaN", "USD", "", false},
	}
	for _, tt := range tests {
		got, ok := NormalizeAmount(tt.amount, tt.currency)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NormalizeAmount(%q, %q) = %q, %v; want %q, %v", tt.amount, tt.currency, got, ok, tt.want, tt.ok)
		}
		if ok {
			// Normalizing is idempotent: history written by an older
			// version is shown the same way.
			if again, _ := NormalizeAmount(got, tt.currency); again != got {
				t.Errorf("NormalizeAmount(%q, %q) again = %q", got, tt.currency, again)
			}
		}
	}
}

func TestCurrencyExponent(t *testing.T) {
	for code, want := range map[string]int{"USD": 2, "eur": 2, "JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "CLF": 4, " GBP ": 2} {
		if got, ok := CurrencyExponent(code); !ok || got != want {
			t.Errorf("CurrencyExponent(%q) = %d, %v; want %d", code, got, ok, want)
		}
	}
	for _, code := range []string{"USDT", "BTC", "978", "", "US", "XYZ", "D D", "DKKA"} {
		if _, ok := CurrencyExponent(code); ok {
			t.Errorf("CurrencyExponent(%q): want unknown", code)
		}
	}
}
