package bolt

import (
	"fmt"

	bbolt "go.etcd.io/bbolt"
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
		if err := oldDedupe.ForEach(func(k, v []byte) error {
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
	}
	// The indexes name messages and tasks by id: rebuilt.
	for _, name := range [][]byte{bMessagesByChat, bReady, bCreated, bTaskCount} {
		if err := recreate(tx, name); err != nil {
			return err
		}
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
