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

// TestOpenMigratesOutbox: a file with the id-keyed dedupe marks, messages
// and tasks of earlier versions (indexes naming ids) opens with the mark
// still counting, the message found by id and by chat, its send claimable
// with it, a notice claimable, and the counts right.
func TestOpenMigratesOutbox(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := storetest.NewClock(t0)
	path := filepath.Join(t.TempDir(), "otpbot.db")
	target := otpbot.Target{ChatID: -100123, ThreadID: 7}
	ev := otpbot.Event{ID: "upay:ab12", Group: "upay:ab12", Provider: otpbot.ProviderUPay, Name: "3DS_OTP",
		Kind: otpbot.KindCode, CardID: "C1", Code: "123456", ReceivedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
	msg := otpbot.Message{ID: otpbot.MessageKey(ev.Group, target), Group: ev.Group, Target: target, Event: ev,
		State: otpbot.StateLive, UpdatedAt: t0}
	send := otpbot.Task{ID: otpbot.TaskID(msg.ID, otpbot.TaskSend), Kind: otpbot.TaskSend, Priority: otpbot.PriorityCode,
		MessageID: msg.ID, Target: target, Due: t0, Created: t0}
	notice := otpbot.Task{ID: "report-1", Kind: otpbot.TaskNotice, Priority: otpbot.PriorityOther,
		Target: otpbot.Target{ChatID: 5}, Due: t0, Created: t0, Text: "report"}

	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		put := func(bucket, k, v []byte) error {
			b, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			return b.Put(k, v)
		}
		if err := put(bDedupeV1, []byte(ev.ID), appendTime(nil, t0)); err != nil {
			return err
		}
		if err := put(bDedupeByTime, append(appendTime(nil, t0), ev.ID...), nil); err != nil {
			return err
		}
		v, _ := json.Marshal(msg)
		if err := put(bMessagesV1, []byte(msg.ID), v); err != nil {
			return err
		}
		if err := put(bMessagesByChat, append(chatKey(target.ChatID), msg.ID...), nil); err != nil {
			return err
		}
		for i, task := range []otpbot.Task{send, notice} {
			v, _ := json.Marshal(taskRecord{Task: task, Gen: uint64(i + 1)})
			if err := put(bTasks, []byte(task.ID), v); err != nil {
				return err
			}
			if err := put(bReady, append(appendTime(prioKey(task.Priority), task.Due), task.ID...), nil); err != nil {
				return err
			}
			if err := put(bCreated, append(appendTime(prioKey(task.Priority), task.Created), task.ID...), nil); err != nil {
				return err
			}
			if err := put(bTaskCount, prioKey(task.Priority), appendUint64(nil, 1)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(path, storetest.DefaultOptions(clock.Now), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if res, err := s.Ingest(ctx, ev); err != nil || !res.Duplicate {
		t.Fatalf("a push marked before the migration: %+v, %v; want a duplicate", res, err)
	}
	if got, ok, err := s.Message(ctx, msg.ID); err != nil || !ok || got.Event.Code != "123456" || got.Target != target {
		t.Fatalf("Message after the migration: %+v, %v, %v", got, ok, err)
	}
	if msgs, err := s.MessagesForChat(ctx, target.ChatID); err != nil || len(msgs) != 1 || msgs[0].ID != msg.ID {
		t.Fatalf("MessagesForChat after the migration: %v, %v", msgs, err)
	}
	pending, err := s.Pending(ctx)
	if err != nil || pending[otpbot.PriorityCode].Count != 1 || pending[otpbot.PriorityOther].Count != 1 ||
		!pending[otpbot.PriorityCode].Oldest.Equal(t0) {
		t.Fatalf("Pending after the migration: %+v, %v", pending, err)
	}
	jobs, err := s.Claim(ctx, t0, time.Minute, 10)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("Claim after the migration: %+v, %v", jobs, err)
	}
	if jobs[0].Task.ID != send.ID || jobs[0].Message == nil || jobs[0].Message.ID != msg.ID || jobs[1].Task.ID != notice.ID {
		t.Fatalf("claimed %+v", jobs)
	}
	sent := *jobs[0].Message
	sent.TelegramID, sent.SentAt, sent.UpdatedAt = 42, t0, t0.Add(time.Second)
	if err := s.Complete(ctx, jobs[0], &sent); err != nil {
		t.Fatalf("Complete of a migrated send: %v", err)
	}
	if err := s.Complete(ctx, jobs[1], nil); err != nil {
		t.Fatalf("Complete of a migrated notice: %v", err)
	}
	if got, _, _ := s.Message(ctx, msg.ID); got.TelegramID != 42 {
		t.Fatalf("message after Complete: %+v", got)
	}
	if pending, _ := s.Pending(ctx); len(pending) != 0 {
		t.Fatalf("Pending after both completed: %+v", pending)
	}
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bDedupeV1) != nil || tx.Bucket(bMessagesV1) != nil {
			t.Errorf("the old buckets are still there")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// A file of this layout that an earlier version opened again (it adds its
// empty buckets beside the current ones) keeps every queued send, its
// message and its dedupe mark when this version opens it once more.
func TestOpenAfterAnEarlierVersionKeepsTheQueue(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := storetest.NewClock(t0)
	path := filepath.Join(t.TempDir(), "otpbot.db")
	target := otpbot.Target{ChatID: 77}
	key := otpbot.Key{Type: otpbot.KeyCard, ID: "C1"}
	ev := otpbot.Event{ID: "upay:cd34", Group: "upay:cd34", Provider: otpbot.ProviderUPay, Name: "3DS_OTP",
		Kind: otpbot.KindCode, CardID: "C1", Code: "123456", ReceivedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
	s, err := Open(path, storetest.DefaultOptions(clock.Now), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Link(ctx, otpbot.Link{Key: key, Target: target, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Ingest(ctx, ev); err != nil || len(res.Targets) != 1 {
		t.Fatalf("Ingest: %+v, %v", res, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bDedupeV1, bMessagesV1} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, storetest.DefaultOptions(clock.Now), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if res, err := s.Ingest(ctx, ev); err != nil || !res.Duplicate {
		t.Fatalf("the push again: %+v, %v; want a duplicate", res, err)
	}
	if msgs, err := s.MessagesForChat(ctx, target.ChatID); err != nil || len(msgs) != 1 {
		t.Fatalf("MessagesForChat: %v, %v; want the code's message", msgs, err)
	}
	if pending, err := s.Pending(ctx); err != nil || pending[otpbot.PriorityCode].Count != 1 {
		t.Fatalf("Pending: %+v, %v; want the code's send", pending, err)
	}
	jobs, err := s.Claim(ctx, t0, time.Minute, 10)
	if err != nil || len(jobs) != 1 || jobs[0].Task.Kind != otpbot.TaskSend || jobs[0].Message == nil {
		t.Fatalf("Claim: %+v, %v; want the code's send", jobs, err)
	}
}
