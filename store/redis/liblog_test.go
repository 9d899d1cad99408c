package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// lockedBuffer is a bytes.Buffer safe for go-redis's background goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLibraryLogger: with Redis away, go-redis's own complaint ("failed to
// dial") arrives as a JSON line of our logger, at debug level (the store
// already reports the outage), instead of a plain line on stderr; the
// Sentinel client's routine is info; any other go-redis line is a warning.
func TestLibraryLogger(t *testing.T) {
	var buf lockedBuffer
	SetLibraryLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	// The logger is process-wide: leave go-redis quiet for the other tests.
	t.Cleanup(func() { SetLibraryLogger(nil) })

	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: time.Second,
		DialerRetries: 1, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatalf("Ping of a closed port succeeded")
	}

	// go-redis's own lines come through the library logger too.
	lib := libraryLogger{log: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "go-redis")}
	lib.Printf(context.Background(), "sentinel: new master=%q addr=%q", "mymaster", "10.0.0.2:6379")
	lib.Printf(context.Background(), "sentinel: selected addr=%s masterAddr=%s", "10.0.0.11:26379", "10.0.0.2:6379")
	lib.Printf(context.Background(), "sentinel: GetMasterAddrByName addr=%s, master=%q failed: %s", "10.0.0.12:26379", "mymaster", context.Canceled)

	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		lines = append(lines, m)
	}
	want := []struct{ level, msg string }{
		{"DEBUG", "connection pool: failed to dial"},
		{"WARN", `sentinel: new master="mymaster"`},
		{"INFO", "sentinel: selected addr=10.0.0.11:26379"},
		{"DEBUG", "failed: context canceled"},
	}
	for _, w := range want {
		found := false
		for _, m := range lines {
			if m["level"] == w.level && m["component"] == "go-redis" && strings.Contains(m["msg"].(string), w.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s line %q from go-redis in:\n%s", w.level, w.msg, buf.String())
		}
	}
}
