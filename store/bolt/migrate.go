package bolt

import (
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
)

// migrateOutbox moves the dedupe marks, messages and tasks of the layout
// of earlier versions (dedupe and messages keyed by id, every task in
// tasks by id, the indexes naming task ids) into the layout of layout.go,
// in the transaction that opens the file. Task records keep their
// generation and an old version's lease.
func migrateOutbox(tx *bbolt.Tx) error {
	oldDedupe, oldMessages := tx.Bucket(bDedupeV1), tx.Bucket(bMessagesV1)
	if oldDedupe == nil && oldMessages == nil {
		return nil
	}
	if oldDedupe != nil {
		if err := migrateDedupe(tx, oldDedupe); err != nil {
			return err
		}
	}
	// The indexes name messages and tasks by id: rebuilt, for what is in
	// this layout already too (a file this version wrote, then an earlier
	// one opened again, which added its own buckets beside it).
	for _, name := range [][]byte{bMessagesByChat, bReady, bCreated, bTaskCount} {
		if err := recreate(tx, name); err != nil {
			return err
		}
	}
	if err := reindex(tx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if oldMessages != nil {
		if err := oldMessages.ForEach(func(_, v []byte) error {
			m, err := decodeMessage(v)
			if err != nil {
				return err
			}
			return putMessage(tx, m)
		}); err != nil {
			return fmt.Errorf("migrate messages: %w", err)
		}
		if err := tx.DeleteBucket(bMessagesV1); err != nil {
			return fmt.Errorf("migrate messages: %w", err)
		}
	}
	var recs []taskRecord
	if err := tx.Bucket(bTasks).ForEach(func(_, v []byte) error {
		r, err := decodeTask(v)
		if err != nil {
			return err
		}
		recs = append(recs, r)
		return nil
	}); err != nil {
		return fmt.Errorf("migrate tasks: %w", err)
	}
	// Generations come from msgs' sequence now: it starts past every
	// generation the old tasks bucket gave, so a re-enqueued task never
	// takes the number of a lease still held on an old one.
	if msgs, seq := tx.Bucket(bMsgs), tx.Bucket(bTasks).Sequence(); msgs.Sequence() < seq {
		if err := msgs.SetSequence(seq); err != nil {
			return fmt.Errorf("migrate tasks: %w", err)
		}
	}
	if err := recreate(tx, bTasks); err != nil {
		return err
	}
	for _, r := range recs {
		l, err := newTaskLoc(tx, r.Task)
		if err != nil {
			return fmt.Errorf("migrate tasks: %w", err)
		}
		if err := writeTask(tx, l, r); err != nil {
			return fmt.Errorf("migrate tasks: %w", err)
		}
		if err := tx.Bucket(bCreated).Put(r.createdKey(l), nil); err != nil {
			return fmt.Errorf("migrate tasks: %w", err)
		}
		if err := addCount(tx, r.Task.Priority, 1); err != nil {
			return fmt.Errorf("migrate tasks: %w", err)
		}
	}
	return nil
}

// migrateDedupe moves the dedupe marks of old, the earlier layout's
// bucket, into ids, and drops old.
func migrateDedupe(tx *bbolt.Tx, old *bbolt.Bucket) error {
	if err := old.ForEach(func(k, v []byte) error {
		if len(v) != 8 {
			return nil
		}
		e := getID(tx, string(k))
		e.seen = uint64FromBytes(v)
		return putID(tx, string(k), e)
	}); err != nil {
		return fmt.Errorf("migrate dedupe marks: %w", err)
	}
	if err := tx.DeleteBucket(bDedupeV1); err != nil {
		return fmt.Errorf("migrate dedupe marks: %w", err)
	}
	return nil
}

// reindex writes the index entries of the messages and tasks in msgs.
func reindex(tx *bbolt.Tx) error {
	if err := forEachMessage(tx, func(k []byte, m otpbot.Message) error {
		return tx.Bucket(bMessagesByChat).Put(append(chatKey(m.Target.ChatID), k...), nil)
	}); err != nil {
		return fmt.Errorf("index messages: %w", err)
	}
	var locs []taskLoc
	var recs []taskRecord
	if err := tx.Bucket(bMsgs).ForEach(func(k, v []byte) error {
		if len(k) != taskKeyLen {
			return nil // a message
		}
		r, err := decodeTask(v)
		if err != nil {
			return err
		}
		locs, recs = append(locs, taskLoc{msgKey: clone(k)}), append(recs, r)
		return nil
	}); err != nil {
		return fmt.Errorf("index tasks: %w", err)
	}
	// Written after the walk: a bucket is not changed while it is walked.
	for i, r := range recs {
		if err := tx.Bucket(bReady).Put(r.readyKey(locs[i]), nil); err != nil {
			return fmt.Errorf("index tasks: %w", err)
		}
		if err := tx.Bucket(bCreated).Put(r.createdKey(locs[i]), nil); err != nil {
			return fmt.Errorf("index tasks: %w", err)
		}
		if err := addCount(tx, r.Task.Priority, 1); err != nil {
			return fmt.Errorf("index tasks: %w", err)
		}
	}
	return nil
}

// recreate empties bucket name.
func recreate(tx *bbolt.Tx, name []byte) error {
	if err := tx.DeleteBucket(name); err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}
	if _, err := tx.CreateBucket(name); err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}
	return nil
}
