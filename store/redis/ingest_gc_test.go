package redis

import (
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot/store/storetest"
)

// TestIngestKeepsExpiries checks the expiries Ingest gives the keys it
// writes: a push reads the time left of the dedupe set and of its history
// lists, and extends them (and the history index) once less than half of
// their lifetime is left, so that a mark outlives the window and an entry
// the retention.
func TestIngestKeepsExpiries(t *testing.T) {
	clock := storetest.NewClock(epoch)
	s, c, _ := newTestStore(t, testOptions(clock))
	ctx := t.Context()
	hist := s.k.history(testCard.String())
	ddgc, hgc := gcTTL(s.opts.DedupeWindow), gcTTL(s.opts.HistoryRetention)
	if _, err := s.Ingest(ctx, codeEvent("gc-1", clock.Now())); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		key string
		gc  time.Duration
	}{{s.k.dedupe(), ddgc}, {hist, hgc}} {
		if ttl := c.PTTL(ctx, k.key).Val(); ttl < k.gc-time.Minute || ttl > k.gc {
			t.Errorf("after the first push %s expires in %v, want %v", k.key, ttl, k.gc)
		}
	}
	// More than half left: the next push leaves the expiries alone.
	c.PExpire(ctx, s.k.dedupe(), ddgc/2+time.Hour)
	c.PExpire(ctx, hist, hgc/2+time.Hour)
	if _, err := s.Ingest(ctx, codeEvent("gc-2", clock.Now())); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		key string
		gc  time.Duration
	}{{s.k.dedupe(), ddgc}, {hist, hgc}} {
		if ttl := c.PTTL(ctx, k.key).Val(); ttl > k.gc/2+time.Hour {
			t.Errorf("%s extended to %v with more than half of %v left", k.key, ttl, k.gc)
		}
	}
	// Less than half left: the next push gives them their whole lifetime,
	// and the history index the same.
	c.PExpire(ctx, s.k.dedupe(), ddgc/2-time.Hour)
	c.PExpire(ctx, hist, hgc/2-time.Hour)
	// The index entry says when the list expires: moved back with it.
	serverNow := c.Time(ctx).Val()
	c.ZAdd(ctx, s.k.historyIndex(), goredis.Z{Score: float64(serverNow.Add(hgc/2 - time.Hour).UnixMilli()), Member: testCard.String()})
	want := float64(serverNow.Add(hgc - time.Minute).UnixMilli())
	if _, err := s.Ingest(ctx, codeEvent("gc-3", clock.Now())); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		key string
		gc  time.Duration
	}{{s.k.dedupe(), ddgc}, {hist, hgc}} {
		if ttl := c.PTTL(ctx, k.key).Val(); ttl < k.gc-time.Minute {
			t.Errorf("%s expires in %v after a push that found less than half of %v left", k.key, ttl, k.gc)
		}
	}
	if after := c.ZScore(ctx, s.k.historyIndex(), testCard.String()).Val(); after < want {
		t.Errorf("history index score %v, want it moved with the list's expiry, to at least %v", after, want)
	}
	// The duplicate still counts as such with the set extended.
	if res, err := s.Ingest(ctx, codeEvent("gc-1", clock.Now())); err != nil || !res.Duplicate {
		t.Fatalf("repeat of gc-1 = %+v, %v; want a duplicate", res, err)
	}
}

// TestIngestPrunes checks that what expired from the dedupe set, the
// message indexes and the history lists is dropped within pruneEvery
// pushes, and that reads skip it before.
func TestIngestPrunes(t *testing.T) {
	clock := storetest.NewClock(epoch)
	opts := testOptions(clock)
	s, c, _ := newTestStore(t, opts)
	ctx := t.Context()
	if _, err := s.Ingest(ctx, codeEvent("old", clock.Now())); err != nil {
		t.Fatal(err)
	}
	clock.Advance(opts.HistoryRetention + time.Hour)
	hist := s.k.history(testCard.String())
	for i := range pruneEvery {
		if _, err := s.Ingest(ctx, codeEvent(fmt.Sprintf("new-%d", i), clock.Now())); err != nil {
			t.Fatal(err)
		}
		h, err := s.History(ctx, testCard, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range h {
			if e.Event.ID == "old" {
				t.Fatalf("push %d: History shows an entry past the retention", i)
			}
		}
	}
	if n := c.ZCount(ctx, s.k.dedupe(), "-inf", us(epoch)).Val(); n != 0 {
		t.Errorf("%d dedupe marks past the window left after %d pushes", n, pruneEvery)
	}
	if n := c.LLen(ctx, hist).Val(); n != pruneEvery {
		t.Errorf("history holds %d entries after %d pushes past the retention of the first, want %d", n, pruneEvery, pruneEvery)
	}
	if res, err := s.Ingest(ctx, codeEvent("old", clock.Now())); err != nil || res.Duplicate {
		t.Errorf("push of an id seen past the window = %+v, %v; want a new push", res, err)
	}
}
