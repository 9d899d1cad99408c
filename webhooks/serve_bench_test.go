package webhooks

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkServeUPay is one signed UPay 3DS_OTP through the handler —
// authentication, body read, parse, ingest (a fake), acknowledgement,
// metrics and the log line (into a discarding handler) — without the
// network: otpbot's own cost of a push, less the store's.
//
//	go test ./webhooks -run '^$' -bench ServeUPay -benchmem
func BenchmarkServeUPay(b *testing.B) {
	secret := []byte("bench-upay-secret")
	h, err := New(Config{UPay: UPayConfig{Enabled: true, SecretKey: secret}, IDSecret: testIDSecret, Codes: testCodes},
		&fakeIngester{}, Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(),
			Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	r := mux.NewRouter()
	h.Register(r)
	body, err := readTestdata("upay", "3ds_otp.json")
	if err != nil {
		b.Fatal(err)
	}
	headers := upayHeaders(secret, "3DS_OTP", now, body)
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/upay", bytes.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
