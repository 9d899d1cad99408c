package storetest

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

// BenchParallelism is the number of goroutines per CPU BenchmarkIngest runs:
// a provider delivers pushes over many connections at once, and group commit
// only pays off when several pushes wait for the same commit.
const BenchParallelism = 32

// BenchmarkIngest measures durable ingest of distinct code events for one
// linked card from many goroutines at once (BenchParallelism per CPU), and
// reports acks/s. s must be a fresh store on the real clock; each backend's
// own BenchmarkIngest opens it and calls this.
func BenchmarkIngest(b *testing.B, s otpbot.Store) {
	ctx := b.Context()
	key := otpbot.Key{Type: otpbot.KeyCard, ID: "BENCH1"}
	if err := s.Link(ctx, otpbot.Link{Key: key, Target: chatA, CreatedAt: time.Now()}); err != nil {
		b.Fatalf("Link: %v", err)
	}
	var seq atomic.Int64
	prefix := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	b.SetParallelism(BenchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ev := codeEvent(prefix+strconv.FormatInt(seq.Add(1), 10), key.ID, time.Now())
			res, err := s.Ingest(ctx, ev)
			if err != nil {
				b.Errorf("Ingest: %v", err)
				return
			}
			if res.Duplicate || res.Outcome != otpbot.OutcomeQueued {
				b.Errorf("Ingest: %+v", res)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "acks/s")
}
