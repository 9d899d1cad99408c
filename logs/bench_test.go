package logs

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

// BenchmarkPushLine is the line the webhook handler writes for every push,
// through the redaction handler into a JSON handler.
//
//	go test ./logs -run '^$' -bench PushLine -benchmem
func BenchmarkPushLine(b *testing.B) {
	l := New(io.Discard, "info", "json", "bot-token-123456:ABCDEF", "upay-secret-key")
	for b.Loop() {
		l.LogAttrs(b.Context(), slog.LevelInfo, "push",
			slog.String("provider", "upay"), slog.String("event", "3DS_OTP"), slog.Any("id", otpbot.Ref("upay:4f1c2a9e")),
			slog.Any("card", otpbot.CardNumber("1234")), slog.String("outcome", "queued"), slog.Int("status", 200),
			slog.Duration("duration", 3*time.Millisecond))
	}
}
