package bolt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/storetest"
)

// writtenBytes is how many bytes this process has passed to write calls
// (wchar of /proc/self/io): what the store wrote, page by page, whether or
// not the kernel merged it on the way to the disk.
func writtenBytes(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatalf("the write budget is measured on Linux: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no wchar in /proc/self/io")
	return 0
}

// eventID is a push identity as the webhooks make it: a provider and the
// hex of a keyed hash, so ids sort in no particular order.
func eventID(i int) string {
	sum := sha256.Sum256([]byte(strconv.Itoa(i)))
	return "upay:" + hex.EncodeToString(sum[:16])
}

// TestIngestWriteBudget keeps what a push costs the disk in check: pushes
// arriving 32 at a time, as under load, each to one of 500 linked cards,
// must write at most pushBudget bytes each, all commits included. (About
// 7.9 KiB: 21 KiB before the layout of layout.go and history.go, 9.8 KiB
// before the binary records of codec.go. A shared commit of 32 pushes
// rewrites ~60 pages; what is left is mostly the leaves a push reaches by
// a hashed or scattered key, one per push each: the event id's entry in
// ids, the card's history entry, the message's entry in
// messages_by_chat. How many pushes share a commit depends on the
// scheduler, so the budget leaves a quarter of room: 7.8–8.2 KiB were
// measured, and a busier machine batches less.)
func TestIngestWriteBudget(t *testing.T) {
	const pushes, conc, cards = 2000, 32, 500
	const pushBudget = 10 << 10
	s, _ := openTemp(t, storetest.DefaultOptions(time.Now))
	ctx := context.Background()
	for i := range cards {
		key := otpbot.Key{Type: otpbot.KeyCard, ID: "C" + strconv.Itoa(i)}
		if err := s.Link(ctx, otpbot.Link{Key: key, Target: otpbot.Target{ChatID: int64(1000 + i)}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	before := writtenBytes(t)
	var wg sync.WaitGroup
	next := make(chan int)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				now := time.Now()
				id := eventID(i)
				ev := otpbot.Event{ID: id, Group: id, Provider: otpbot.ProviderUPay, Name: "3DS_OTP", Kind: otpbot.KindCode,
					CardID: "C" + strconv.Itoa(i%cards), Code: "123456", ReceivedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
				if _, err := s.Ingest(ctx, ev); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := range pushes {
		next <- i
	}
	close(next)
	wg.Wait()
	per := (writtenBytes(t) - before) / pushes
	t.Logf("%d bytes written per push (budget %d)", per, pushBudget)
	if per > pushBudget {
		t.Errorf("a push writes %d bytes, over its budget of %d", per, pushBudget)
	}
}

// TestDeliveredCodeWriteBudget keeps what a delivered code costs the disk
// in check, its whole life: the push, the claim (which marks the send as
// started), the sent message with its Telegram id and its expiry task, and
// at expiry the claim (which drops the code) and the expired message.
// Codes go 32 at a time through each step, as a modest load does, each to
// one of 500 linked cards. (About 14.5 KiB: 53 KiB before the layout of
// layout.go, 21 KiB before the binary records of codec.go and the claim's
// send mark. The expiry steps come minutes later, when the code's leaves
// in msgs, ready and created are no longer the ones being written: they
// are rewritten once more. 14.4–15.8 KiB were measured, 17.3 KiB once
// with GOMAXPROCS 4 on a busy machine: the budget leaves that room.)
func TestDeliveredCodeWriteBudget(t *testing.T) {
	const rounds, conc, cards = 40, 32, 500
	const codeBudget = 20 << 10
	s, _ := openTemp(t, storetest.DefaultOptions(time.Now))
	ctx := context.Background()
	for i := range cards {
		key := otpbot.Key{Type: otpbot.KeyCard, ID: "C" + strconv.Itoa(i)}
		if err := s.Link(ctx, otpbot.Link{Key: key, Target: otpbot.Target{ChatID: int64(1000 + i)}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	// each runs fn for every job, conc at a time.
	each := func(jobs []otpbot.Job, fn func(otpbot.Job) error) {
		var wg sync.WaitGroup
		for _, j := range jobs {
			wg.Go(func() {
				if err := fn(j); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	before := writtenBytes(t)
	var expiry time.Time
	for r := range rounds {
		var wg sync.WaitGroup
		for c := range conc {
			i := r*conc + c
			wg.Go(func() {
				now := time.Now()
				ev := otpbot.Event{ID: eventID(i), Group: eventID(i), Provider: otpbot.ProviderUPay, Name: "3DS_OTP",
					Kind: otpbot.KindCode, CardID: "C" + strconv.Itoa(i%cards), Code: "123456",
					ReceivedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
				if _, err := s.Ingest(ctx, ev); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		jobs, err := s.Claim(ctx, time.Now(), time.Minute, conc)
		if err != nil || len(jobs) != conc {
			t.Fatalf("Claim: %d jobs, %v", len(jobs), err)
		}
		each(jobs, func(j otpbot.Job) error {
			// The claim marked the send as started (ClaimMarksSends).
			m := *j.Message
			prev := m.UpdatedAt
			m.TelegramID, m.SentAt, m.SendStarted, m.Rendered = 100+int(m.Target.ChatID), time.Now(), time.Time{}, "r1"
			m.UpdatedAt = prev.Add(time.Millisecond)
			tick := otpbot.Task{ID: otpbot.TaskID(m.ID, otpbot.TaskExpire), Kind: otpbot.TaskExpire,
				Priority: otpbot.PriorityUpdate, MessageID: m.ID, Target: m.Target, Due: m.Event.ExpiresAt, Created: m.Event.ExpiresAt}
			expiry = m.Event.ExpiresAt
			return s.CompleteMessage(ctx, j, prev, m, tick)
		})
	}
	// The expiry edits, 32 at a time, in the order the codes expire.
	for range rounds {
		jobs, err := s.Claim(ctx, expiry.Add(time.Second), time.Minute, conc)
		if err != nil || len(jobs) != conc {
			t.Fatalf("Claim at expiry: %d jobs, %v", len(jobs), err)
		}
		each(jobs, func(j otpbot.Job) error {
			m := *j.Message
			m.State, m.Rendered, m.UpdatedAt = otpbot.StateExpired, "r2", j.Message.UpdatedAt.Add(time.Millisecond)
			return s.CompleteMessage(ctx, j, j.Message.UpdatedAt, m)
		})
	}
	per := (writtenBytes(t) - before) / (rounds * conc)
	t.Logf("%d bytes written per delivered code (budget %d)", per, codeBudget)
	if per > codeBudget {
		t.Errorf("a delivered code writes %d bytes, over its budget of %d", per, codeBudget)
	}
}
