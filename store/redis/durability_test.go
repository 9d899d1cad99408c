package redis

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/redis/redistest"
	"github.com/otpbot/otpbot/store/storetest"
)

func TestHasWaitAOF(t *testing.T) {
	tests := []struct {
		version string
		want    bool
	}{
		{"7.2.0", true},
		{"7.2.4", true}, // also what Valkey 7.2 and 8 report
		{"7.4.1", true},
		{"8.0.2", true},
		{"10.0.0", true},
		{"7.0.15", false},
		{"7.1.242", false},
		{"6.2.14", false},
		{"", false},
		{"seven", false},
		{"7", false},
	}
	for _, tt := range tests {
		if got := hasWaitAOF(tt.version); got != tt.want {
			t.Errorf("hasWaitAOF(%q) = %v, want %v", tt.version, got, tt.want)
		}
	}
}

func TestDurabilityReportWarning(t *testing.T) {
	tests := []struct {
		name    string
		r       DurabilityReport
		durable bool
		warn    string
	}{
		{"AOF off", DurabilityReport{Version: "7.2.4", AppendFsync: "everysec"}, false, "appendonly off"},
		{"AOF everysec with WAITAOF", DurabilityReport{Version: "7.2.4", AppendOnly: true, AppendFsync: "everysec", WaitAOF: true}, true, ""},
		{"AOF always without WAITAOF", DurabilityReport{Version: "7.0.15", AppendOnly: true, AppendFsync: "always"}, true, ""},
		{"AOF everysec without WAITAOF", DurabilityReport{Version: "7.0.15", AppendOnly: true, AppendFsync: "everysec"}, false, "about a second"},
		{"AOF policy unknown without WAITAOF", DurabilityReport{Version: "7.0.15", AppendOnly: true}, false, "about a second"},
		{"AOF fsync no without WAITAOF", DurabilityReport{Version: "6.2.6", AppendOnly: true, AppendFsync: "no"}, false, "appendfsync no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Durable(); got != tt.durable {
				t.Errorf("Durable() = %v, want %v", got, tt.durable)
			}
			w := tt.r.Warning()
			if (w == "") != (tt.warn == "") || !strings.Contains(w, tt.warn) {
				t.Errorf("Warning() = %q, want one containing %q", w, tt.warn)
			}
			if s := tt.r.String(); !strings.Contains(s, tt.r.Version) {
				t.Errorf("String() = %q does not name the version", s)
			}
		})
	}
}

// serverVersion reads redis_version straight from the server.
func serverVersion(t *testing.T, c goredis.UniversalClient) string {
	t.Helper()
	info, err := c.Info(t.Context(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
			return v
		}
	}
	t.Fatalf("no redis_version in INFO")
	return ""
}

// TestDurability reads the persistence of real servers: the shared one
// (no AOF) and private ones started with an append-only file.
func TestDurability(t *testing.T) {
	tests := []struct {
		name      string
		args      []string // nil: the shared server
		aof       bool
		fsync     string
		wantWarn  string
		alwaysMet bool // appendfsync always: durable whatever the version
	}{
		{"shared server without AOF", nil, false, "", "appendonly off", false},
		{"AOF everysec", []string{"--appendonly", "yes", "--appendfsync", "everysec"}, true, "everysec", "", false},
		{"AOF always", []string{"--appendonly", "yes", "--appendfsync", "always"}, true, "always", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c *goredis.Client
			if tt.args == nil {
				c = newClient(t, sharedAddr)
			} else {
				c = newClient(t, redistest.StartServer(t, tt.args...).Addr())
			}
			s := openStore(t, c, testPrefix(), testOptions(storetest.NewClock(epoch)))
			r, err := s.Durability(t.Context())
			if err != nil {
				t.Fatalf("Durability: %v", err)
			}
			version := serverVersion(t, c)
			if r.Version != version || r.AppendOnly != tt.aof {
				t.Fatalf("report %+v; want version %s, appendonly %v", r, version, tt.aof)
			}
			if tt.fsync != "" && r.AppendFsync != tt.fsync {
				t.Errorf("AppendFsync = %q, want %q", r.AppendFsync, tt.fsync)
			}
			if want := tt.aof && hasWaitAOF(version); r.WaitAOF != want {
				t.Errorf("WaitAOF = %v on %s with appendonly %v, want %v", r.WaitAOF, version, tt.aof, want)
			}
			switch {
			case tt.wantWarn != "":
				if !strings.Contains(r.Warning(), tt.wantWarn) {
					t.Errorf("Warning() = %q, want one containing %q", r.Warning(), tt.wantWarn)
				}
			case tt.alwaysMet || r.WaitAOF:
				if w := r.Warning(); w != "" {
					t.Errorf("Warning() = %q for a durable server", w)
				}
			default:
				if w := r.Warning(); w == "" {
					t.Errorf("no warning for AOF everysec without WAITAOF (%s)", version)
				}
			}
		})
	}
}

// TestIngestWaitsForAOF: the first push looks at the server's persistence
// (so no acknowledgement skips the wait), a push on an AOF server with
// appendfsync always survives the server being killed right after the
// acknowledgement, and when Ingest is set to wait, it sends WAITAOF on the
// script's connection: a server without the command (Redis < 7.2) refuses
// it, and the push is still acknowledged, with a warning, and the store
// stops waiting.
func TestIngestWaitsForAOF(t *testing.T) {
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	c := newClient(t, srv.Addr())
	version := serverVersion(t, c)
	var logs lockedBuffer
	clock := storetest.NewClock(epoch)
	s, err := New(t.Context(), c, "otpbot:", testOptions(clock), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	now := clock.Now()
	mustDo(t, s.Link(ctx, otpbot.Link{Key: testCard, Target: testTarget, CreatedAt: now}))

	if res, err := s.Ingest(ctx, codeEvent("first", now)); err != nil || res.Outcome != otpbot.OutcomeQueued {
		t.Fatalf("Ingest = %+v, %v", res, err)
	}
	s.aof.mu.Lock()
	checked, wait := s.aof.checked, s.aof.wait
	s.aof.mu.Unlock()
	if checked.IsZero() || wait != hasWaitAOF(version) {
		t.Fatalf("after the first push: checked %v, wait %v; want a look at %s (wait %v)", checked, wait, version, hasWaitAOF(version))
	}

	// Killed right after the acknowledgement: the push is in the AOF.
	waitSubscribed(t, s)
	from := s.subscribes.Load()
	srv.Stop()
	srv.Start()
	waitFor(t, "Ping after restart", func() bool { return s.Ping(ctx) == nil })
	// The resubscription makes the next push look at the server again;
	// wait for it, so that it does not undo the forced wait below.
	waitFor(t, "resubscription", func() bool { return s.subscribes.Load() > from && s.subscribed.Load() })
	m, ok, err := s.Message(ctx, otpbot.MessageKey("first", testTarget))
	if err != nil || !ok || m.Event.Code != testCode {
		t.Fatalf("message after a crash: %+v, %v, %v", m, ok, err)
	}

	// Force the wait, as on a 7.2 server.
	s.setAOF(true)
	res, err := s.Ingest(ctx, codeEvent("second", now))
	if err != nil || res.Outcome != otpbot.OutcomeQueued {
		t.Fatalf("Ingest with WAITAOF = %+v, %v", res, err)
	}
	// A repeat waits too, and is still a repeat.
	if res, err := s.Ingest(ctx, codeEvent("second", now)); err != nil || !res.Duplicate {
		t.Fatalf("repeat with WAITAOF = %+v, %v", res, err)
	}
	s.aof.mu.Lock()
	wait = s.aof.wait
	s.aof.mu.Unlock()
	refused := strings.Contains(logs.String(), "refused WAITAOF")
	if hasWaitAOF(version) {
		if refused || !wait {
			t.Errorf("Redis %s knows WAITAOF, yet the store stopped waiting:\n%s", version, logs.String())
		}
	} else if !refused || wait {
		t.Errorf("Redis %s has no WAITAOF: want a warning and no more waiting; wait %v, logs:\n%s", version, wait, logs.String())
	}
	if _, ok, err := s.Message(ctx, otpbot.MessageKey("second", testTarget)); err != nil || !ok {
		t.Fatalf("message of the push acknowledged with WAITAOF: %v, %v", ok, err)
	}
}

// TestDurabilityUnavailable: with Redis away the report is an
// ErrUnavailable error, not a report that claims no AOF.
func TestDurabilityUnavailable(t *testing.T) {
	srv := redistest.StartServer(t)
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	s := openStore(t, c, "otpbot:", testOptions(storetest.NewClock(epoch)))
	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := s.Durability(ctx); !errors.Is(err, otpbot.ErrUnavailable) {
		t.Fatalf("Durability with Redis away: %v, want ErrUnavailable", err)
	}
}
