package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/storetest"
)

// openTemp opens a store on a fresh file in a temp dir and closes it at the
// end of the test.
func openTemp(t testing.TB, opts otpbot.StoreOptions) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "otpbot.db")
	s, err := Open(path, opts, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts otpbot.StoreOptions) otpbot.Store {
		s, _ := openTemp(t, opts)
		return s
	})
}

// fixture fills a store with one of everything Backup and reopening must keep.
func fixture(t *testing.T, s *Store, now time.Time) otpbot.Event {
	t.Helper()
	ctx := t.Context()
	key := otpbot.Key{Type: otpbot.KeyCard, ID: "C1"}
	for _, target := range []otpbot.Target{{ChatID: 10}, {ChatID: -20, ThreadID: 3}} {
		if err := s.Link(ctx, otpbot.Link{Key: key, Target: target, CreatedAt: now, CreatedBy: 1}); err != nil {
			t.Fatalf("Link: %v", err)
		}
	}
	ev := otpbot.Event{ID: "e1", Group: "e1", Provider: otpbot.ProviderUPay, Name: "3DS_OTP",
		Kind: otpbot.KindCode, CardID: "C1", CardLast4: "1234", Code: "123456",
		ReceivedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
	if res, err := s.Ingest(ctx, ev); err != nil || res.Outcome != otpbot.OutcomeQueued {
		t.Fatalf("Ingest: %+v, %v", res, err)
	}
	return ev
}

// sameContents fails unless got shows the links, history, messages and
// tasks of the fixture.
func sameContents(t *testing.T, got *Store, ev otpbot.Event) {
	t.Helper()
	ctx := t.Context()
	key, _ := ev.RouteKey()
	links, err := got.LinksForKey(ctx, key)
	if err != nil || len(links) != 2 {
		t.Fatalf("LinksForKey: %d links, %v", len(links), err)
	}
	h, err := got.History(ctx, key, 10)
	if err != nil || len(h) != 1 || h[0].Event.ID != ev.ID || h[0].Event.Code != "" {
		t.Fatalf("History: %+v, %v", h, err)
	}
	m, ok, err := got.Message(ctx, otpbot.MessageKey(ev.Group, otpbot.Target{ChatID: 10}))
	if err != nil || !ok || m.Event.Code != ev.Code {
		t.Fatalf("Message: %+v %v %v", m, ok, err)
	}
	pending, err := got.Pending(ctx)
	if err != nil || pending[otpbot.PriorityCode].Count != 2 {
		t.Fatalf("Pending: %+v, %v", pending, err)
	}
	if _, err := got.Once(ctx, "x", time.Minute); err != nil {
		t.Fatalf("the store is not writable: %v", err)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	clock := storetest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	opts := storetest.DefaultOptions(clock.Now)
	path := filepath.Join(t.TempDir(), "otpbot.db")
	s, err := Open(path, opts, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ev := fixture(t, s, clock.Now())
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Fatalf("Ping after Close succeeded")
	}
	again, err := Open(path, opts, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer again.Close()
	sameContents(t, again, ev)
	res, err := again.Ingest(t.Context(), ev)
	if err != nil || !res.Duplicate {
		t.Fatalf("a push from before the restart is new again: %+v, %v", res, err)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	s, path := openTemp(t, storetest.DefaultOptions(time.Now))
	start := time.Now()
	other, err := Open(path, storetest.DefaultOptions(time.Now), nil)
	if err == nil {
		other.Close()
		t.Fatalf("a second Open of a file in use succeeded")
	}
	want := "store: " + path + " is in use by another otpbot process"
	if err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the second Open took %v", d)
	}
	// The first store is unaffected, and the file is free once it closes.
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	third, err := Open(path, storetest.DefaultOptions(time.Now), nil)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	third.Close()
}

func TestOpenBadFile(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) string
	}{
		{"not a bolt file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "junk.db")
			if err := os.WriteFile(p, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"missing directory", func(t *testing.T) string {
			return filepath.Join(t.TempDir(), "nope", "otpbot.db")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.setup(t)
			s, err := Open(path, storetest.DefaultOptions(time.Now), nil)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded")
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
}

func TestBackupWhileInUse(t *testing.T) {
	clock := storetest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s, _ := openTemp(t, storetest.DefaultOptions(clock.Now))
	ev := fixture(t, s, clock.Now())

	// Writers keep going during the backup; it must neither block them for
	// good nor capture a torn state.
	ctx, cancel := context.WithCancel(t.Context())
	var (
		wg     sync.WaitGroup
		writes atomic.Int64
	)
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			info := otpbot.Event{ID: fmt.Sprintf("w%d", i), Group: "g", Kind: otpbot.KindInfo,
				CardID: "W", ReceivedAt: clock.Now()}
			if _, err := s.Ingest(ctx, info); err != nil && ctx.Err() == nil {
				t.Errorf("Ingest during backup: %v", err)
				return
			}
			writes.Add(1)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for writes.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var buf bytes.Buffer
	n, err := s.Backup(t.Context(), &buf)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup reported %d bytes, wrote %d", n, buf.Len())
	}

	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// The copy is a consistent bbolt file...
	raw, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open copy: %v", err)
	}
	if err := raw.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("copy fails the consistency check: %v", err)
	}
	raw.Close()
	// ...and a store with the same contents.
	restored, err := Open(path, storetest.DefaultOptions(clock.Now), nil)
	if err != nil {
		t.Fatalf("open copy as a store: %v", err)
	}
	defer restored.Close()
	sameContents(t, restored, ev)
	h, err := restored.History(t.Context(), otpbot.Key{Type: otpbot.KeyCard, ID: "W"}, 1_000_000)
	if err != nil || len(h) == 0 {
		t.Fatalf("the copy lost the writes before the backup: %d entries, %v", len(h), err)
	}
}

func TestPrune(t *testing.T) {
	clock := storetest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	opts := storetest.DefaultOptions(clock.Now)
	opts.DedupeWindow, opts.HistoryRetention = time.Hour, 2*time.Hour
	s, _ := openTemp(t, opts)
	ctx := t.Context()
	t0 := clock.Now()
	ev := fixture(t, s, t0)
	if err := s.CreateInvite(ctx, otpbot.Invite{Hash: "h", Key: otpbot.Key{Type: otpbot.KeyCard, ID: "C1"},
		ExpiresAt: t0.Add(30 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Once(ctx, "update:1", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	// One message goes final (its sends done); the other keeps a pending task.
	jobs, err := s.Claim(ctx, t0, time.Minute, 10)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("Claim: %d, %v", len(jobs), err)
	}
	final := *jobs[0].Message
	final.State, final.UpdatedAt = otpbot.StateExpired, t0
	if err := s.Complete(ctx, jobs[0], &final); err != nil {
		t.Fatal(err)
	}
	kept := *jobs[1].Message
	kept.State = otpbot.StateExpired
	if err := s.Complete(ctx, jobs[1], &kept, otpbot.Task{ID: otpbot.TaskID(kept.ID, otpbot.TaskRefresh),
		Kind: otpbot.TaskRefresh, MessageID: kept.ID, Due: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		at   time.Duration
		want PruneStats
	}{
		{"too early for anything", 5 * time.Minute, PruneStats{}},
		{"once key and invite expired", 31 * time.Minute, PruneStats{OnceKeys: 1, Invites: 1}},
		{"dedupe mark and final message", 61 * time.Minute, PruneStats{DedupeMarks: 1, Messages: 1}},
		// The entry is under its card and the events key.
		{"history", 121 * time.Minute, PruneStats{History: 2}},
		{"nothing left", 200 * time.Minute, PruneStats{}},
	}
	for _, tc := range tests {
		got, err := s.Prune(ctx, t0.Add(tc.at))
		if err != nil {
			t.Fatalf("%s: Prune: %v", tc.name, err)
		}
		if got != tc.want {
			t.Fatalf("%s: pruned %+v, want %+v", tc.name, got, tc.want)
		}
	}
	clock.Advance(200 * time.Minute)
	if _, ok, _ := s.Message(ctx, final.ID); ok {
		t.Fatalf("the final message survived pruning")
	}
	if _, ok, _ := s.Message(ctx, kept.ID); !ok {
		t.Fatalf("a message with pending work was pruned")
	}
	res, err := s.Ingest(ctx, ev)
	if err != nil || res.Duplicate {
		t.Fatalf("pruned dedupe mark still counts: %+v, %v", res, err)
	}
}

func TestShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T, opts otpbot.StoreOptions) (otpbot.Store, func() otpbot.Store) {
		first, path := openTemp(t, opts)
		return first, func() otpbot.Store {
			// One process per file: the first must let go of it.
			if err := first.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s, err := Open(path, opts, nil)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	})
}

// TestInstallationSecretDamaged: a stored key of the wrong size is an error
// that is not ErrUnavailable (serve must not wait for it forever), and it
// is never silently replaced: a new key would let repeats of earlier
// pushes through.
func TestInstallationSecretDamaged(t *testing.T) {
	opts := storetest.DefaultOptions(time.Now)
	s, path := openTemp(t, opts)
	if _, err := s.InstallationSecret(t.Context()); err != nil {
		t.Fatalf("InstallationSecret: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bMeta).Put(secretName, []byte("short")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, err := s.InstallationSecret(t.Context())
	if err == nil || errors.Is(err, otpbot.ErrUnavailable) {
		t.Fatalf("InstallationSecret = %x, %v; want a damaged-key error that is not ErrUnavailable", k, err)
	}
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(secretName); string(v) != "short" {
			t.Errorf("the damaged key was replaced by %x", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPruneRedactsExpiredLive: while Telegram is unreachable a code message
// stays live past its expiry, its send retried with backoff. The pruner
// drops its code from the file once it expired, keeps the message live and
// its pending work as it was (the send, or the expiry tick, still edits the
// Telegram message into its expired form), and leaves an unexpired code
// alone.
func TestPruneRedactsExpiredLive(t *testing.T) {
	clock := storetest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s, _ := openTemp(t, storetest.DefaultOptions(clock.Now))
	ctx := t.Context()
	t0 := clock.Now()
	ev := fixture(t, s, t0) // a code to two chats, expiring at t0+5m
	jobs, err := s.Claim(ctx, t0, time.Minute, 10)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("Claim: %d, %v", len(jobs), err)
	}
	// Telegram is down: the sends are retried after the expiry; one
	// message was sent and has its expiry tick pending instead.
	retryAt := t0.Add(time.Hour)
	if err := s.Retry(ctx, jobs[0], retryAt, "telegram: 502"); err != nil {
		t.Fatal(err)
	}
	sent := *jobs[1].Message
	sent.TelegramID, sent.Rendered, sent.UpdatedAt = 7, "h-live", t0.Add(time.Second)
	tick := otpbot.Task{ID: otpbot.TaskID(sent.ID, otpbot.TaskExpire), Kind: otpbot.TaskExpire,
		Priority: otpbot.PriorityUpdate, MessageID: sent.ID, Target: sent.Target, Due: retryAt, Created: ev.ExpiresAt}
	if err := s.Complete(ctx, jobs[1], &sent, tick); err != nil {
		t.Fatal(err)
	}
	ids := []string{jobs[0].Message.ID, sent.ID}

	tests := []struct {
		name     string
		at       time.Time
		redacted int
		code     string
	}{
		{"before the expiry", ev.ExpiresAt.Add(-time.Second), 0, ev.Code},
		{"at the expiry", ev.ExpiresAt, 2, ""},
		{"again", ev.ExpiresAt.Add(time.Minute), 0, ""},
	}
	for _, tc := range tests {
		st, err := s.Prune(ctx, tc.at)
		if err != nil {
			t.Fatalf("%s: Prune: %v", tc.name, err)
		}
		if st.Redacted != tc.redacted {
			t.Fatalf("%s: redacted %d, want %d", tc.name, st.Redacted, tc.redacted)
		}
		for _, id := range ids {
			m, ok, err := s.Message(ctx, id)
			if err != nil || !ok {
				t.Fatalf("%s: Message(%s): %v, %v", tc.name, id, ok, err)
			}
			if m.Event.Code != tc.code || (tc.code == "" && m.Event.Link != "") || m.State != otpbot.StateLive {
				t.Fatalf("%s: message %s: state %s, code %q; want live, code %q", tc.name, id, m.State, m.Event.Code, tc.code)
			}
		}
	}
	// The pending work is untouched: the retried send and the expiry tick.
	at, ok, err := s.NextDue(ctx)
	if err != nil || !ok || !at.Equal(retryAt) {
		t.Fatalf("NextDue = %v, %v, %v; want %v", at, ok, err, retryAt)
	}
	jobs, err = s.Claim(ctx, retryAt, time.Minute, 10)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("Claim at the retry: %d, %v", len(jobs), err)
	}
	kinds := map[otpbot.TaskKind]bool{}
	for _, j := range jobs {
		kinds[j.Task.Kind] = true
		if j.Message == nil || j.Message.State != otpbot.StateLive || j.Message.Event.Code != "" {
			t.Fatalf("job %s: message %+v", j.Task.ID, j.Message)
		}
	}
	if !kinds[otpbot.TaskSend] || !kinds[otpbot.TaskExpire] {
		t.Fatalf("claimed kinds %v, want the send and the expire", kinds)
	}
}
