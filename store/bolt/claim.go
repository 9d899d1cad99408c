package bolt

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
)

// Claim leases up to max tasks ready at now, priority first, then the
// earliest ready time. The ready index makes this a seek per priority. It
// reads the file and keeps the leases in memory (see claimLeases). It
// writes, in one commit shared with the pushes, only the messages of the
// jobs that need it: a send marked as started (see ClaimMarksSends), and
// a live message past its expiry, whose code is dropped.
func (s *Store) Claim(ctx context.Context, now time.Time, lease time.Duration, max int) ([]otpbot.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: claim: %w", err)
	}
	jobs, writes, err := s.claim(now, lease, max)
	if err != nil {
		return nil, wrap("claim", err)
	}
	if len(writes) == 0 {
		return jobs, nil
	}
	err = s.commits.Update(func(tx *bbolt.Tx) error {
		for _, i := range writes {
			if err := claimWrite(tx, &jobs[i], now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// As if nothing was claimed: the tasks stay claimable.
		s.leases.drop(jobs)
		return nil, wrap("claim", err)
	}
	return jobs, nil
}

// ClaimMarksSends reports that Claim marks each send it leases as started
// (otpbot.SendMarker): the deliverer writes no mark of its own.
func (s *Store) ClaimMarksSends() bool { return true }

// marksSend reports whether claiming t marks its message m as sent
// started: a send of a message Telegram has no id of yet, which the
// deliverer is about to call (a failed message is never sent).
func marksSend(t otpbot.Task, m otpbot.Message) bool {
	return t.Kind == otpbot.TaskSend && m.TelegramID == 0 && m.State != otpbot.StateFailed
}

// claimWrite stores what claiming job changes in its message, whatever
// is stored now (it may have changed since the claim's read): the code
// dropped past its expiry, the send marked as started. The job gets the
// message as stored, but with the SendStarted it had before the claim, so
// that a resend still sees the mark of an attempt before it.
func claimWrite(tx *bbolt.Tx, job *otpbot.Job, now time.Time) error {
	m, ok, err := getMessage(tx, job.Task.MessageID)
	if err != nil {
		return err
	}
	if !ok {
		job.Message = nil
		return nil
	}
	changed := redactExpired(&m, now)
	before := m.SendStarted
	if marksSend(job.Task, m) {
		// The mark is the new version's time (otpbot.SendMarker).
		v := now
		if !v.After(m.UpdatedAt) {
			v = m.UpdatedAt.Add(time.Nanosecond)
		}
		m.SendStarted, m.UpdatedAt, changed = v, v, true
	}
	if changed {
		if err := putMessage(tx, m); err != nil {
			return err
		}
	}
	m.SendStarted = before
	job.Message = &m
	return nil
}

// claim takes the leases of Claim and reads the jobs; writes lists the
// jobs whose message the claim changes (claimWrite).
func (s *Store) claim(now time.Time, lease time.Duration, max int) (jobs []otpbot.Job, writes []int, err error) {
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	var recs []taskRecord
	err = s.db.View(func(tx *bbolt.Tx) error {
		limit := timeKey(now)
		c := tx.Bucket(bReady).Cursor()
		k, _ := c.First()
		for k != nil && len(recs) < max {
			if uint64FromBytes(k[4:12]) > limit {
				// Nothing more of this priority is ready: skip to the next.
				next := nextPrefix(k[:4])
				if next == nil {
					break
				}
				k, _ = c.Seek(next)
				continue
			}
			r, ok, err := readyTask(tx, k)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("task index names a missing task")
			}
			if _, held := s.leases.held(r.Task.ID, r.Gen, now); !held {
				recs = append(recs, r)
			}
			k, _ = c.Next()
		}
		for _, r := range recs {
			job := otpbot.Job{Task: r.Task}
			if r.Task.MessageID != "" {
				m, ok, err := getMessage(tx, r.Task.MessageID)
				if err != nil {
					return err
				}
				if ok {
					if redactExpired(&m, now) || marksSend(r.Task, m) {
						writes = append(writes, len(jobs))
					}
					job.Message = &m
				}
			}
			jobs = append(jobs, job)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if s.leases.m == nil {
		s.leases.m = map[string]claimLease{}
	}
	for i, r := range recs {
		jobs[i].Lease, jobs[i].LeaseUntil = rand.Text(), now.Add(lease)
		s.leases.m[r.Task.ID] = claimLease{token: jobs[i].Lease, until: jobs[i].LeaseUntil, gen: r.Gen}
	}
	return jobs, writes, nil
}
