package bolt

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/storetest"
)

// writeV1History writes history as versions before the flat hist bucket
// did: a bucket per key under "history", counts in "history_count".
func writeV1History(t *testing.T, path string, entries []otpbot.HistoryEntry) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error {
		root, err := tx.CreateBucket(bHistoryV1)
		if err != nil {
			return err
		}
		counts, err := tx.CreateBucket(bHistoryCountV1)
		if err != nil {
			return err
		}
		for _, h := range entries {
			seq, err := root.NextSequence()
			if err != nil {
				return err
			}
			v, err := json.Marshal(h)
			if err != nil {
				return err
			}
			k := appendUint64(appendUint64(nil, ^timeKey(h.Event.ReceivedAt)), seq)
			for _, key := range h.Event.HistoryKeys() {
				name := []byte(key.String())
				b, err := root.CreateBucketIfNotExists(name)
				if err != nil {
					return err
				}
				if err := b.Put(k, v); err != nil {
					return err
				}
				if err := putUint64(counts, name, getUint64(counts, name)+1); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestOpenMigratesHistory: a file with the per-key history buckets of
// earlier versions opens with every entry in place, newest first, each
// exported once, and the old buckets gone.
func TestOpenMigratesHistory(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := storetest.NewClock(t0.Add(time.Hour))
	path := filepath.Join(t.TempDir(), "otpbot.db")
	var entries []otpbot.HistoryEntry
	for i, card := range []string{"C1", "C2", "C1"} {
		ev := otpbot.Event{ID: "e" + string(rune('1'+i)), Group: "g", Provider: otpbot.ProviderUPay, Name: "3DS_OTP",
			Kind: otpbot.KindCode, CardID: card, ReceivedAt: t0.Add(time.Duration(i) * time.Minute)}
		entries = append(entries, otpbot.HistoryEntry{Event: ev, Outcome: otpbot.OutcomeQueued})
	}
	writeV1History(t, path, entries)

	s, err := Open(path, storetest.DefaultOptions(clock.Now), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids := func(key otpbot.Key) []string {
		t.Helper()
		hs, err := s.History(t.Context(), key, 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range hs {
			out = append(out, h.Event.ID)
		}
		return out
	}
	card1 := otpbot.Key{Type: otpbot.KeyCard, ID: "C1"}
	if got := ids(card1); len(got) != 2 || got[0] != "e3" || got[1] != "e1" {
		t.Fatalf("history of C1 = %v, want [e3 e1]", got)
	}
	if got := ids(otpbot.EventsKey); len(got) != 3 || got[0] != "e3" {
		t.Fatalf("history of events = %v, want [e3 e2 e1]", got)
	}
	n := 0
	if err := s.Export(t.Context(), func(r otpbot.Record) error {
		if r.History != nil {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("exported %d history entries, want 3", n)
	}
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bHistoryV1) != nil || tx.Bucket(bHistoryCountV1) != nil {
			t.Errorf("the old history buckets are still there")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A new entry after the migrated ones has a new sequence number.
	ev := otpbot.Event{ID: "e4", Group: "e4", Provider: otpbot.ProviderUPay, Name: "3DS_OTP",
		Kind: otpbot.KindCode, CardID: "C1", Code: "1", ReceivedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)}
	if _, err := s.Ingest(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	if got := ids(card1); len(got) != 3 || got[0] != "e4" {
		t.Fatalf("history of C1 after a push = %v", got)
	}
}
