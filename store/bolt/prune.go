package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
)

// PruneStats says what one Prune deleted. Redacted counts live messages
// whose code was dropped (they are kept).
type PruneStats struct {
	DedupeMarks, OnceKeys, History, Invites, Messages, Redacted int
}

// Prune deletes what can no longer matter at now: dedupe marks outside the
// window, expired Once keys and invites, history past its retention, and
// final messages with no pending work that have not changed for the grace
// period (the dedupe window, at least an hour). It also drops the code and
// link of live messages past their expiry: while Telegram is unreachable
// the expiry edit waits, but the code must not stay in the file until it
// happens (the message stays live, so the pending work still makes that
// edit; a claim drops them too). The store runs it every ten minutes by
// itself; it is exported for tests and for an explicit run.
func (s *Store) Prune(ctx context.Context, now time.Time) (PruneStats, error) {
	var st PruneStats
	if err := ctx.Err(); err != nil {
		return st, fmt.Errorf("store: prune: %w", err)
	}
	deadHist, err := s.deadHistory(now)
	if err != nil {
		return st, wrap("prune", err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		st = PruneStats{}
		var err error
		if st.DedupeMarks, err = pruneDedupe(tx, now.Add(-s.opts.DedupeWindow)); err != nil {
			return err
		}
		if st.OnceKeys, err = pruneByTime(tx, bOnce, bOnceByTime, now); err != nil {
			return err
		}
		if st.Invites, err = pruneInvites(tx, now); err != nil {
			return err
		}
		if st.History, err = pruneHistory(tx, deadHist); err != nil {
			return err
		}
		st.Messages, st.Redacted, err = s.pruneMessages(tx, now)
		return err
	})
	if err != nil {
		return PruneStats{}, wrap("prune", err)
	}
	return st, nil
}

// expiredEntries returns the keys of the time index ib (time + key) whose
// time is not after limit, copied: the caller deletes them after the walk.
func expiredEntries(ib *bbolt.Bucket, limit time.Time) [][]byte {
	lk := timeKey(limit)
	var dead [][]byte
	c := ib.Cursor()
	for k, _ := c.First(); k != nil && uint64FromBytes(k[:8]) <= lk; k, _ = c.Next() {
		dead = append(dead, clone(k))
	}
	return dead
}

// pruneByTime deletes the entries of main whose time in the index byTime
// (time + key) is not after limit.
func pruneByTime(tx *bbolt.Tx, main, byTime []byte, limit time.Time) (int, error) {
	mb, ib := tx.Bucket(main), tx.Bucket(byTime)
	dead := expiredEntries(ib, limit)
	for _, k := range dead {
		// The main entry may have been renewed since: its index entry is
		// then another one, and this one is only stale.
		if v := mb.Get(k[8:]); v != nil && string(v) == string(k[:8]) {
			if err := mb.Delete(k[8:]); err != nil {
				return 0, fmt.Errorf("prune %s: %w", main, err)
			}
		}
		if err := ib.Delete(k); err != nil {
			return 0, fmt.Errorf("prune %s: %w", byTime, err)
		}
	}
	return len(dead), nil
}

// pruneDedupe deletes the dedupe marks not after limit; an ids entry that
// also holds its group's base keeps that.
func pruneDedupe(tx *bbolt.Tx, limit time.Time) (int, error) {
	ib := tx.Bucket(bDedupeByTime)
	dead := expiredEntries(ib, limit)
	for _, k := range dead {
		id := string(k[8:])
		// The mark may have been renewed since: its index entry is then
		// another one, and this one is only stale.
		if e := getID(tx, id); e.seen == uint64FromBytes(k[:8]) {
			e.seen = 0
			if err := putID(tx, id, e); err != nil {
				return 0, fmt.Errorf("prune dedupe: %w", err)
			}
		}
		if err := ib.Delete(k); err != nil {
			return 0, fmt.Errorf("prune dedupe index: %w", err)
		}
	}
	return len(dead), nil
}

// pruneInvites deletes expired invites.
func pruneInvites(tx *bbolt.Tx, now time.Time) (int, error) {
	b := tx.Bucket(bInvites)
	var dead [][]byte
	if err := b.ForEach(func(k, v []byte) error {
		var inv otpbot.Invite
		if err := json.Unmarshal(v, &inv); err != nil {
			return fmt.Errorf("decode invite: %w", err)
		}
		if !now.Before(inv.ExpiresAt) {
			dead = append(dead, clone(k))
		}
		return nil
	}); err != nil {
		return 0, err
	}
	for _, k := range dead {
		if err := b.Delete(k); err != nil {
			return 0, fmt.Errorf("prune invite: %w", err)
		}
	}
	return len(dead), nil
}

// pruneMessages deletes final messages that have no pending task and have
// not changed within the grace period, and drops the code of live messages
// past their expiry (redactExpired). It returns how many messages it
// deleted and how many it redacted.
func (s *Store) pruneMessages(tx *bbolt.Tx, now time.Time) (int, int, error) {
	grace := max(s.opts.DedupeWindow, minMessageGrace)
	limit := now.Add(-grace)
	type stored struct {
		k []byte
		m otpbot.Message
	}
	msgs, tasks := tx.Bucket(bMsgs), tx.Bucket(bTasks)
	var dead, expired []stored
	if err := forEachMessage(tx, func(k []byte, m otpbot.Message) error {
		if redactExpired(&m, now) {
			expired = append(expired, stored{clone(k), m}) // written after the walk
			return nil
		}
		if !m.State.Final() || !m.UpdatedAt.Before(limit) {
			return nil
		}
		if next, _ := msgs.Cursor().Seek(append(clone(k), 0)); next != nil && hasPrefix(next, k) {
			return nil // a task of its own is pending
		}
		for _, kind := range []otpbot.TaskKind{otpbot.TaskSend, otpbot.TaskUpdate, otpbot.TaskRefresh} {
			if tasks.Get([]byte(otpbot.TaskID(m.ID, kind))) != nil {
				return nil
			}
		}
		dead = append(dead, stored{clone(k), m})
		return nil
	}); err != nil {
		return 0, 0, err
	}
	for _, d := range dead {
		if err := deleteMessage(tx, d.k, d.m); err != nil {
			return 0, 0, err
		}
	}
	for _, e := range expired {
		if err := putMessage(tx, e.m); err != nil {
			return 0, 0, err
		}
	}
	return len(dead), len(expired), nil
}
