package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// SetLibraryLogger routes go-redis's own log lines to logger. Left alone,
// go-redis prints them to stderr in its own format ("redis: 2025/... pool.go:
// connection pool: failed to dial ..."), which breaks a JSON log stream
// exactly when Redis is away.
//
// go-redis keeps one logger for the whole process (redis.SetLogger), so this
// is library-global: it changes what every go-redis client in the process
// logs, not only this store's. It is meant to be called once, by main,
// before the first client is made; a nil logger discards the lines.
//
// Lines that only say a connection could not be made (dial failures) are
// logged at debug: every store call while Redis is away produces one, and
// the store already reports that as otpbot.ErrUnavailable (503, /readyz)
// and through the caller's own log line. The Sentinel client's routine
// (the sentinel it asks) is info. Everything else (a new primary seen
// through Sentinel, a recovered panic, a bad connection dropped) is a
// warning.
func SetLibraryLogger(logger *slog.Logger) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	goredis.SetLogger(libraryLogger{log: logger.With("component", "go-redis")})
}

// libraryLogger adapts a *slog.Logger to go-redis's logging interface.
type libraryLogger struct{ log *slog.Logger }

// quietLines are substrings of go-redis lines that only repeat that Redis
// cannot be reached, or say that of the sentinels asked at once the others
// were no longer needed (one answered first).
var quietLines = []string{"failed to dial", "failed to get a usable connection", "failed: context canceled"}

// infoLines are substrings of go-redis lines that report the routine of a
// Sentinel client: which sentinel it asks, the sentinels it found.
var infoLines = []string{"sentinel: selected", "sentinel: discovered"}

// Printf implements go-redis's internal.Logging.
func (l libraryLogger) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	msg := strings.TrimSpace(strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
	level := slog.LevelWarn
	switch {
	case containsAny(msg, quietLines):
		level = slog.LevelDebug
	case containsAny(msg, infoLines):
		level = slog.LevelInfo
	}
	l.log.Log(ctx, level, msg)
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
