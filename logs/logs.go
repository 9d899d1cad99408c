// Package logs builds otpbot's structured logger: log/slog in text or JSON,
// behind a redaction layer that keeps secrets out of every line. The other
// packages log what must be masked as the root package's log types
// (otpbot.CardNumber, otpbot.Secret, otpbot.Key...), which mask themselves,
// and what must stay readable (chat ids, targets, task ids) as numbers or
// those types too; this layer shows those as they render and is the net
// under everything else, for the day a package forgets.
package logs

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// New returns a logger writing to w at level ("debug", "info", "warn",
// "error"; "" means info) in format ("text" or "json"; "" means text), whose
// every record passes through a redaction handler (Redactor) that masks the
// given secrets, attributes whose key suggests a secret, and card numbers.
// An unknown level or format falls back to the default: ParseLevel and
// ValidFormat let a caller refuse them first.
//
// A duration shows in Go's syntax in text ("duration=1.5s"); in JSON, where
// slog would write nanoseconds, it is whole milliseconds under its key
// with "_ms" added ("duration_ms":1500), like the bot's latency_ms.
func New(w io.Writer, level, format string, secrets ...string) *slog.Logger {
	lvl, err := ParseLevel(level)
	if err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var inner slog.Handler
	if strings.EqualFold(format, "json") {
		opts.ReplaceAttr = millis
		inner = slog.NewJSONHandler(w, opts)
	} else {
		inner = slog.NewTextHandler(w, opts)
	}
	return slog.New(NewRedactor(inner, secrets...))
}

// millis writes a duration as whole milliseconds under KEY_ms.
func millis(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindDuration {
		return a
	}
	return slog.Int64(a.Key+"_ms", a.Value.Duration().Milliseconds())
}

// ParseLevel parses a level name as the configuration spells it.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
}

// ValidFormat reports whether s names a log format New understands.
func ValidFormat(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "text", "json":
		return true
	}
	return false
}

// Discard returns a logger that writes nothing, for tests and commands
// whose logging nobody reads.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
