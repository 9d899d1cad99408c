package bolt

import (
	"encoding/binary"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot/store/storetest"
)

// BenchmarkIngest is the embedded store's durable ingest rate under
// concurrent pushes (group commit). Compare its acks/s with
// BenchmarkBareCommit's commits/s from the same run.
func BenchmarkIngest(b *testing.B) {
	s, _ := openTemp(b, storetest.DefaultOptions(time.Now))
	storetest.BenchmarkIngest(b, s)
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
