package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
)

// taskRecord is a task as stored.
type taskRecord struct {
	Task otpbot.Task `json:"task"`
	// Gen is new at every enqueue of the task (the msgs bucket's
	// sequence): a claim lease, kept in memory (claimLeases), names the
	// record it covers by it.
	Gen uint64 `json:"gen,omitempty"`
	// Lease and LeaseUntil are a claim lease as versions before the
	// in-memory leases wrote it into the file. No longer written; a record
	// that still has one is indexed at LeaseUntil, and becomes claimable
	// then, as it did.
	Lease      string    `json:"lease,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

// readyAt is when the task can be claimed as far as the file knows: its
// due time (or an old version's lease end). An in-memory lease may hold
// it longer.
func (r taskRecord) readyAt() time.Time {
	if r.Lease != "" {
		return r.LeaseUntil
	}
	return r.Task.Due
}

func (r taskRecord) readyKey(l taskLoc) []byte {
	return append(appendTime(prioKey(r.Task.Priority), r.readyAt()), l.ref()...)
}

func (r taskRecord) createdKey(l taskLoc) []byte {
	return append(appendTime(prioKey(r.Task.Priority), r.Task.Created), l.ref()...)
}

// loadTask loads the task record at l; ok is false when there is none.
func loadTask(tx *bbolt.Tx, l taskLoc) (taskRecord, bool, error) {
	v := l.get(tx)
	if v == nil {
		return taskRecord{}, false, nil
	}
	r, err := decodeTask(v)
	if err != nil {
		return taskRecord{}, false, err
	}
	return r, true, nil
}

// findTask loads the stored task with t's ID, and where it is.
func findTask(tx *bbolt.Tx, t otpbot.Task) (taskRecord, taskLoc, bool, error) {
	for _, l := range taskLocs(tx, t) {
		r, ok, err := loadTask(tx, l)
		if err != nil || ok {
			return r, l, ok, err
		}
	}
	return taskRecord{}, taskLoc{}, false, nil
}

// writeTask stores r at l and its ready index entry. The caller has
// removed the old ready entry when r was already stored.
func writeTask(tx *bbolt.Tx, l taskLoc, r taskRecord) error {
	if err := l.put(tx, encodeTask(r)); err != nil {
		return fmt.Errorf("put task: %w", err)
	}
	if err := tx.Bucket(bReady).Put(r.readyKey(l), nil); err != nil {
		return fmt.Errorf("index task: %w", err)
	}
	return nil
}

// putTask enqueues t without a lease, replacing a task with the same ID.
func putTask(tx *bbolt.Tx, t otpbot.Task) error {
	if err := deleteTask(tx, t); err != nil {
		return err
	}
	l, err := newTaskLoc(tx, t)
	if err != nil {
		return err
	}
	// The generation comes from msgs' sequence: msgs is written with
	// nearly every task, so this dirties no page of its own.
	gen, err := tx.Bucket(bMsgs).NextSequence()
	if err != nil {
		return fmt.Errorf("task generation: %w", err)
	}
	r := taskRecord{Task: t, Gen: gen}
	if err := writeTask(tx, l, r); err != nil {
		return err
	}
	if err := tx.Bucket(bCreated).Put(r.createdKey(l), nil); err != nil {
		return fmt.Errorf("index task: %w", err)
	}
	return addCount(tx, t.Priority, 1)
}

// deleteTask removes the task with t's ID and its index entries, if it
// exists.
func deleteTask(tx *bbolt.Tx, t otpbot.Task) error {
	r, l, ok, err := findTask(tx, t)
	if err != nil || !ok {
		return err
	}
	return removeTask(tx, l, r)
}

// removeTask removes the task r stored at l and its index entries.
func removeTask(tx *bbolt.Tx, l taskLoc, r taskRecord) error {
	if err := tx.Bucket(bReady).Delete(r.readyKey(l)); err != nil {
		return fmt.Errorf("unindex task: %w", err)
	}
	if err := tx.Bucket(bCreated).Delete(r.createdKey(l)); err != nil {
		return fmt.Errorf("unindex task: %w", err)
	}
	if err := l.delete(tx); err != nil {
		return fmt.Errorf("delete task: %w", err)
	}
	return addCount(tx, r.Task.Priority, -1)
}

// forEachTask calls fn for every stored task, next to its message or
// loose.
func forEachTask(tx *bbolt.Tx, fn func(taskLoc, taskRecord) error) error {
	decode := func(l taskLoc, v []byte) error {
		r, err := decodeTask(v)
		if err != nil {
			return err
		}
		return fn(l, r)
	}
	if err := tx.Bucket(bMsgs).ForEach(func(k, v []byte) error {
		if len(k) != taskKeyLen {
			return nil // a message
		}
		return decode(taskLoc{msgKey: clone(k)}, v)
	}); err != nil {
		return err
	}
	return tx.Bucket(bTasks).ForEach(func(k, v []byte) error {
		return decode(taskLoc{id: string(k)}, v)
	})
}

// addCount changes the number of pending tasks of priority p.
func addCount(tx *bbolt.Tx, p otpbot.Priority, delta int) error {
	b, k := tx.Bucket(bTaskCount), prioKey(p)
	n := int64(getUint64(b, k)) + int64(delta)
	if n <= 0 {
		return b.Delete(k)
	}
	return putUint64(b, k, uint64(n))
}

// nextPrefix is the smallest key after every key that starts with prefix;
// nil when there is none.
func nextPrefix(prefix []byte) []byte {
	p := clone(prefix)
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] < 0xff {
			p[i]++
			return p[:i+1]
		}
	}
	return nil
}

// NextDue returns the earliest time a task becomes claimable: its ready
// time, or the end of its lease while it is leased.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, fmt.Errorf("store: next due: %w", err)
	}
	var (
		at    time.Time
		found bool
	)
	consider := func(t time.Time) {
		if !found || t.Before(at) {
			at, found = t, true
		}
	}
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bReady).Cursor()
		// Within a priority the index is in ready order: the first task
		// not leased is the earliest of the rest, and only the leased ones
		// before it (a few: those being worked on) need a look.
		for k, _ := c.First(); k != nil; {
			prio := clone(k[:4])
			for ; k != nil && hasPrefix(k, prio); k, _ = c.Next() {
				r, ok, err := readyTask(tx, k)
				if err != nil {
					return err
				}
				if l, held := s.leases.held(r.Task.ID, r.Gen, time.Time{}); ok && held {
					consider(l.until)
					continue
				}
				consider(keyTime(uint64FromBytes(k[4:12])))
				break
			}
			next := nextPrefix(prio)
			if next == nil {
				break
			}
			k, _ = c.Seek(next)
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, wrap("next due", err)
	}
	return at, found, nil
}

// Complete removes the job's task, stores msg and enqueues next, atomically,
// provided the job still holds the task's lease.
func (s *Store) Complete(ctx context.Context, job otpbot.Job, msg *otpbot.Message, next ...otpbot.Task) error {
	return s.finish(ctx, "complete", job, nil, msg, next)
}

// finish is Complete and CompleteMessage: in one transaction it checks the
// job's lease, then check (when not nil), removes the task, stores msg (when
// not nil) and enqueues next. An error of check writes nothing and leaves
// the lease with its holder, for what it does next (re-read and retry, or
// Complete).
func (s *Store) finish(ctx context.Context, op string, job otpbot.Job, check func(*bbolt.Tx) error, msg *otpbot.Message, next []otpbot.Task) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	gen, err := s.leases.begin(job)
	if err != nil {
		return wrap(op, err)
	}
	// Through the group commit: a finished job shares its fsync with the
	// pushes and the other jobs committing at the same time.
	err = s.commits.Update(func(tx *bbolt.Tx) error {
		r, l, err := leasedTask(tx, job.Task, gen)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		// Removed before next is enqueued: the next tick may reuse the ID.
		if err := removeTask(tx, l, r); err != nil {
			return err
		}
		if msg != nil {
			if err := putMessage(tx, *msg); err != nil {
				return err
			}
		}
		for _, t := range next {
			if err := putTask(tx, t); err != nil {
				return err
			}
		}
		return nil
	})
	s.leases.end(job, err == nil || errors.Is(err, otpbot.ErrLeaseLost))
	if err != nil {
		return wrap(op, err)
	}
	if len(next) > 0 {
		s.notify()
	}
	return nil
}

// leasedTask loads the task with t's ID, or ErrLeaseLost when it is gone
// or is no longer the record of generation gen (enqueued again since the
// claim).
func leasedTask(tx *bbolt.Tx, t otpbot.Task, gen uint64) (taskRecord, taskLoc, error) {
	r, l, ok, err := findTask(tx, t)
	if err != nil {
		return taskRecord{}, taskLoc{}, err
	}
	if !ok || r.Gen != gen {
		return taskRecord{}, taskLoc{}, otpbot.ErrLeaseLost
	}
	return r, l, nil
}

// readyTask loads the task a ready index key names.
func readyTask(tx *bbolt.Tx, k []byte) (taskRecord, bool, error) {
	l, ok := refLoc(k[12:])
	if !ok {
		return taskRecord{}, false, fmt.Errorf("task index entry of an unknown form")
	}
	return loadTask(tx, l)
}

// Retry puts the job's task back, due at at, with the attempt counted.
func (s *Store) Retry(ctx context.Context, job otpbot.Job, at time.Time, reason string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: retry: %w", err)
	}
	gen, err := s.leases.begin(job)
	if err != nil {
		return wrap("retry", err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		r, l, err := leasedTask(tx, job.Task, gen)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bReady).Delete(r.readyKey(l)); err != nil {
			return fmt.Errorf("unindex task: %w", err)
		}
		r.Task.Due = at
		r.Task.Attempts++
		r.Task.LastError = reason
		r.Lease, r.LeaseUntil = "", time.Time{}
		return writeTask(tx, l, r)
	})
	// Committed (the task is claimable again at at) or lost, the lease is
	// over; a write that failed keeps it for the holder's next try.
	s.leases.end(job, err == nil || errors.Is(err, otpbot.ErrLeaseLost))
	if err != nil {
		return wrap("retry", err)
	}
	s.notify()
	return nil
}

// Enqueue adds tasks, replacing pending (or leased) tasks with the same ID.
func (s *Store) Enqueue(ctx context.Context, tasks ...otpbot.Task) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: enqueue: %w", err)
	}
	if len(tasks) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, t := range tasks {
			if err := putTask(tx, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrap("enqueue", err)
	}
	s.notify()
	return nil
}

// Pending counts tasks per priority, leased ones included, with the oldest
// Created of each.
func (s *Store) Pending(ctx context.Context) (map[otpbot.Priority]otpbot.QueueStat, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: pending: %w", err)
	}
	out := map[otpbot.Priority]otpbot.QueueStat{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		created := tx.Bucket(bCreated).Cursor()
		return tx.Bucket(bTaskCount).ForEach(func(k, v []byte) error {
			st := otpbot.QueueStat{Count: int(uint64FromBytes(v))}
			if ck, _ := created.Seek(k); ck != nil && hasPrefix(ck, k) {
				st.Oldest = keyTime(uint64FromBytes(ck[4:12]))
			}
			out[keyPrio(k)] = st
			return nil
		})
	})
	if err != nil {
		return nil, wrap("pending", err)
	}
	return out, nil
}

// CompleteMessage removes the job's task, stores msg provided the stored
// version is still prev, and enqueues next, in one transaction: finishing
// a job costs one commit, not UpdateMessage's and Complete's two.
func (s *Store) CompleteMessage(ctx context.Context, job otpbot.Job, prev time.Time, msg otpbot.Message, next ...otpbot.Task) error {
	return s.finish(ctx, "complete message", job, func(tx *bbolt.Tx) error {
		stored, ok, err := getMessage(tx, msg.ID)
		if err != nil {
			return err
		}
		if !ok {
			return otpbot.ErrNotFound
		}
		if !stored.UpdatedAt.Equal(prev) {
			return otpbot.ErrConflict
		}
		return nil
	}, &msg, next)
}
