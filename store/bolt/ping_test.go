package bolt

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/storetest"
)

// fileFD finds the descriptor this process holds on path.
func fileFD(t *testing.T, path string) int {
	t.Helper()
	want, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("list descriptors: %v", err)
	}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || target != want {
			continue
		}
		fd, err := strconv.Atoi(e.Name())
		if err == nil {
			return fd
		}
	}
	t.Fatalf("no descriptor on %s", path)
	return -1
}

// diskFull makes every write to the store file fail as on a full disk
// (writes go to /dev/full, ENOSPC) while the file stays mapped and
// readable, until the returned func puts the file back.
func diskFull(t *testing.T, path string) (restore func()) {
	t.Helper()
	fd := fileFD(t, path)
	saved, err := syscall.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	full, err := os.OpenFile("/dev/full", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open /dev/full: %v", err)
	}
	defer full.Close()
	if err := syscall.Dup2(int(full.Fd()), fd); err != nil {
		t.Fatal(err)
	}
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		if err := syscall.Dup2(saved, fd); err != nil {
			t.Fatal(err)
		}
		syscall.Close(saved)
	}
	t.Cleanup(restore)
	return restore
}

// TestPingProvesWritability: on a full (or read-only) disk the file still
// reads, so a read-only Ping would keep /readyz at 200 while every push
// fails with 503. Ping writes, at most once per pingEvery, and fails then;
// it answers again once the disk takes writes.
func TestPingProvesWritability(t *testing.T) {
	clock := storetest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s, path := openTemp(t, storetest.DefaultOptions(clock.Now))
	s.pingEvery = 0 // every Ping writes, so the test needs no waiting
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	restore := diskFull(t, path)
	if _, err := s.Ingest(ctx, infoEvent("during", clock.Now())); !errors.Is(err, otpbot.ErrUnavailable) {
		t.Fatalf("Ingest on a full disk: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, otpbot.ErrUnavailable) {
		t.Fatalf("Ping on a full disk: %v, want ErrUnavailable", err)
	}
	restore()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping once the disk takes writes again: %v", err)
	}
	if res, err := s.Ingest(ctx, infoEvent("after", clock.Now())); err != nil || res.Duplicate {
		t.Fatalf("Ingest after the disk recovered: %+v, %v", res, err)
	}
}

// TestPingCachesWrites: Ping writes at most once per pingEvery; in between
// it answers what the last write said.
func TestPingCachesWrites(t *testing.T) {
	s, path := openTemp(t, storetest.DefaultOptions(time.Now))
	s.pingEvery = time.Hour
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	st0 := s.db.Stats()
	before := st0.TxStats.GetWrite()
	restore := diskFull(t, path)
	for range 5 {
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("cached Ping: %v", err)
		}
	}
	restore()
	st1 := s.db.Stats()
	if after := st1.TxStats.GetWrite(); after != before {
		t.Fatalf("cached Pings wrote %d times", after-before)
	}
}

// infoEvent is a history-only push with id.
func infoEvent(id string, at time.Time) otpbot.Event {
	return otpbot.Event{ID: id, Group: id, Provider: otpbot.ProviderUPay, Name: "CC_CONSUME",
		Kind: otpbot.KindInfo, CardID: "C1", ReceivedAt: at}
}

// TestOpenWarnsAboutOpenPermissions: the file holds live codes and links;
// a file others may read is worth a warning at start.
func TestOpenWarnsAboutOpenPermissions(t *testing.T) {
	tests := []struct {
		name string
		mode os.FileMode // 0: a new file
		warn bool
	}{
		{"new file", 0, false},
		{"owner only", 0o600, false},
		{"group readable", 0o640, true},
		{"world readable", 0o644, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "otpbot.db")
			if tc.mode != 0 {
				s, err := Open(path, storetest.DefaultOptions(time.Now), nil)
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				if err := os.Chmod(path, tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			var logs bytes.Buffer
			s, err := Open(path, storetest.DefaultOptions(time.Now), slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "readable by")
			if warned != tc.warn {
				t.Fatalf("warning %v, want %v; logs:\n%s", warned, tc.warn, logs.String())
			}
			if tc.warn && !strings.Contains(logs.String(), path) {
				t.Fatalf("the warning does not name the file:\n%s", logs.String())
			}
		})
	}
}
