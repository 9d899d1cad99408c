package bolt

import (
	"context"
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/storetest"
)

// BenchmarkIngest is the embedded store's durable ingest rate under
// concurrent pushes (group commit). Compare its acks/s with
// BenchmarkBareCommit's commits/s from the same run.
func BenchmarkIngest(b *testing.B) {
	s, _ := openTemp(b, storetest.DefaultOptions(time.Now))
	storetest.BenchmarkIngest(b, s)
}

// BenchmarkIngestAlone is one push at a time, as when pushes trickle in
// (200/s is one every 5 ms): ns/op is what each push waits for its
// acknowledgement. Compare with BenchmarkBareCommit's ns/op.
func BenchmarkIngestAlone(b *testing.B) {
	s, _ := openTemp(b, storetest.DefaultOptions(time.Now))
	ctx := b.Context()
	key := otpbot.Key{Type: otpbot.KeyCard, ID: "BENCH1"}
	if err := s.Link(ctx, otpbot.Link{Key: key, Target: otpbot.Target{ChatID: 1001}, CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	prefix := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := time.Now()
		ev := otpbot.Event{ID: prefix + strconv.Itoa(i), Group: prefix + strconv.Itoa(i), Provider: otpbot.ProviderUPay,
			Name: "3DS_OTP", Kind: otpbot.KindCode, CardID: key.ID, Code: "123456", ReceivedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
		res, err := s.Ingest(ctx, ev)
		if err != nil || res.Outcome != otpbot.OutcomeQueued {
			b.Fatalf("Ingest: %+v, %v", res, err)
		}
	}
}

// BenchmarkClaimComplete is the outbox's part of one delivery, one at a
// time: enqueue a task, claim it, ask when the next is due, complete it.
// Compare its ns/op with BenchmarkBareCommit's: the commits it takes.
func BenchmarkClaimComplete(b *testing.B) {
	s, _ := openTemp(b, storetest.DefaultOptions(time.Now))
	ctx := b.Context()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := time.Now()
		t := otpbot.Task{ID: strconv.Itoa(i), Kind: otpbot.TaskNotice, Priority: otpbot.PriorityOther,
			Target: otpbot.Target{ChatID: 1001}, Due: now, Created: now, Text: "report"}
		if err := s.Enqueue(ctx, t); err != nil {
			b.Fatal(err)
		}
		jobs, err := s.Claim(ctx, now, 30*time.Second, 1)
		if err != nil || len(jobs) != 1 {
			b.Fatalf("Claim: %v, %v", jobs, err)
		}
		if _, _, err := s.NextDue(ctx); err != nil {
			b.Fatal(err)
		}
		if err := s.Complete(ctx, jobs[0], nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareCommit is the baseline: one bbolt Update that writes one
// small key and fsyncs, back to back, on a file opened exactly like the
// store's. It is what one push per commit would cost at best.
func BenchmarkBareCommit(b *testing.B) {
	s, _ := openTemp(b, storetest.DefaultOptions(time.Now))
	bucket := []byte("bench")
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		if err := s.db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucket).Put(binary.BigEndian.AppendUint64(nil, uint64(i)), []byte("x"))
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
}

// BenchmarkClaimCompleteMessage is the outbox's part of one code's send,
// one at a time: ingest a code, claim its send, ask when the next is due,
// and record the send with its countdown tick, either as two commits
// (UpdateMessage then Complete, as the deliverer did) or as one
// (CompleteMessage).
func BenchmarkClaimCompleteMessage(b *testing.B) {
	for _, tc := range []struct {
		name   string
		finish func(ctx context.Context, s *Store, job otpbot.Job, msg otpbot.Message, tick otpbot.Task) error
	}{
		{"UpdateMessage+Complete", func(ctx context.Context, s *Store, job otpbot.Job, msg otpbot.Message, tick otpbot.Task) error {
			if err := s.UpdateMessage(ctx, job.Message.UpdatedAt, msg); err != nil {
				return err
			}
			return s.Complete(ctx, job, nil, tick)
		}},
		{"CompleteMessage", func(ctx context.Context, s *Store, job otpbot.Job, msg otpbot.Message, tick otpbot.Task) error {
			return s.CompleteMessage(ctx, job, job.Message.UpdatedAt, msg, tick)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s, _ := openTemp(b, storetest.DefaultOptions(time.Now))
			ctx := b.Context()
			key := otpbot.Key{Type: otpbot.KeyCard, ID: "BENCH1"}
			if err := s.Link(ctx, otpbot.Link{Key: key, Target: otpbot.Target{ChatID: 1001}, CreatedAt: time.Now()}); err != nil {
				b.Fatal(err)
			}
			prefix := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				now := time.Now()
				ev := otpbot.Event{ID: prefix + strconv.Itoa(i), Group: prefix + strconv.Itoa(i), Provider: otpbot.ProviderUPay,
					Name: "3DS_OTP", Kind: otpbot.KindCode, CardID: key.ID, Code: "123456", ReceivedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
				if _, err := s.Ingest(ctx, ev); err != nil {
					b.Fatal(err)
				}
				jobs, err := s.Claim(ctx, now, 30*time.Second, 1)
				if err != nil || len(jobs) != 1 || jobs[0].Message == nil {
					b.Fatalf("Claim: %v, %v", jobs, err)
				}
				if _, _, err := s.NextDue(ctx); err != nil {
					b.Fatal(err)
				}
				job := jobs[0]
				msg := *job.Message
				msg.TelegramID, msg.SentAt, msg.UpdatedAt = i+1, now, now.Add(time.Millisecond)
				tick := otpbot.Task{ID: otpbot.TaskID(msg.ID, otpbot.TaskRefresh), Kind: otpbot.TaskRefresh,
					Priority: otpbot.PriorityRefresh, MessageID: msg.ID, Target: msg.Target, Due: now.Add(time.Hour), Created: now}
				if err := tc.finish(ctx, s, job, msg, tick); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
