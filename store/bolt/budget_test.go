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
// 12 KiB today: a shared commit of ~30 pushes rewrites ~90 pages, the
// dedupe, message and task keys being random. Time-ordered keys would
// bring it toward 8 KiB.)
func TestIngestWriteBudget(t *testing.T) {
	const pushes, conc, cards = 2000, 32, 500
	const pushBudget = 16 << 10
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
