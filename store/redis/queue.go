package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/otpbot/otpbot"
)

// A task is a hash "t:ID": "j" its JSON, "p" its priority, "m" its message
// id, "at" when it becomes claimable (RFC 3339: due, or lease end) and,
// while leased, "l" the lease token. "q:P" orders the tasks of priority P by
// when they become claimable (µs); "qc:P" by Created, for Pending.

// taskArgs returns the 7 script arguments per task that putTask takes.
func taskArgs(tasks []otpbot.Task) ([]any, error) {
	args := make([]any, 0, 7*len(tasks))
	for _, t := range tasks {
		if t.ID == "" {
			return nil, fmt.Errorf("enqueue: task without id (kind %s)", t.Kind)
		}
		if t.Priority < otpbot.PriorityCode || t.Priority > otpbot.PriorityOther {
			return nil, fmt.Errorf("enqueue %s: priority %d out of range", t.ID, t.Priority)
		}
		j, err := json.Marshal(t)
		if err != nil {
			return nil, fmt.Errorf("encode task %s: %w", t.ID, err)
		}
		args = append(args, t.ID, int(t.Priority), usCeil(t.Due), fmtTime(t.Due), us(t.Created), string(j), t.MessageID)
	}
	return args, nil
}

// Claim leases up to max tasks due at now, most urgent priority first,
// then earliest due.
func (s *Store) Claim(ctx context.Context, now time.Time, lease time.Duration, max int) ([]otpbot.Job, error) {
	if max <= 0 {
		return nil, nil
	}
	until := now.Add(lease)
	v, err := claimScript.Run(ctx, s.client, []string{s.k.queue(otpbot.PriorityCode)},
		s.k.base, us(now), usCeil(until), fmtTime(until), max, token()).Slice()
	if err != nil {
		return nil, wrap("claim", err)
	}
	jobs := make([]otpbot.Job, 0, len(v))
	for _, row := range v {
		r, _ := row.([]any)
		if len(r) != 6 {
			return nil, fmt.Errorf("redis claim: unexpected reply %v", row)
		}
		job := otpbot.Job{Lease: str(r[0]), LeaseUntil: until}
		if err := json.Unmarshal([]byte(str(r[1])), &job.Task); err != nil {
			return nil, fmt.Errorf("decode task: %w", err)
		}
		m, ok, err := decodeMessage(r[2], r[3], r[4], r[5])
		if err != nil {
			return nil, err
		}
		if ok {
			s.redactExpired(ctx, &m, now)
			job.Message = &m
		}
		jobs = append(jobs, job)
	}
	return jobs, nil
}

// redactExpired drops the code and link of a claimed live message whose
// expiry passed at now. While Telegram is unreachable the expiry edit
// waits, but the code must not stay in Redis until it happens: the claim
// of any of the message's tasks (its expiry tick, a send retried with
// backoff) is where the store sees it expired. The message stays live, so
// the claimed work still edits the Telegram message into its expired
// form, and gets a new version (UpdatedAt), so that a writer holding the
// copy with the code loses to ErrConflict. A failure leaves the code for
// the next claim: the job itself goes on.
func (s *Store) redactExpired(ctx context.Context, m *otpbot.Message, now time.Time) {
	if m.State != otpbot.StateLive || !m.Event.Expired(now) || (m.Event.Code == "" && m.Event.Link == "") {
		return
	}
	red := *m
	red.Event = m.Event.Redacted()
	red.UpdatedAt = now
	if !now.After(m.UpdatedAt) {
		red.UpdatedAt = m.UpdatedAt.Add(time.Nanosecond)
	}
	ev, err := json.Marshal(red.Event)
	if err != nil {
		s.log.Warn("expired code not dropped", "message", otpbot.Ref(m.ID), "err", err)
		return
	}
	r, err := redactExpiredScript.Run(ctx, s.client, []string{s.k.message(m.ID)},
		s.k.base, fmtTime(m.UpdatedAt), string(ev), fmtTime(red.UpdatedAt)).Int()
	if err != nil {
		s.log.Warn("expired code not dropped", "message", otpbot.Ref(m.ID), "err", err)
		return
	}
	if r == 1 {
		*m = red
	}
}

// NextDue returns when the earliest task becomes claimable.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	v, err := nextDueScript.Run(ctx, s.client, []string{s.k.queue(otpbot.PriorityCode)}, s.k.base).Result()
	if err != nil {
		if isRedisNil(err) {
			return time.Time{}, false, nil
		}
		return time.Time{}, false, wrap("next due", err)
	}
	at, err := parseTime(str(v))
	if err != nil {
		return time.Time{}, false, fmt.Errorf("redis next due: %w", err)
	}
	return at, true, nil
}

// Complete removes the job's task, stores msg (redacted when final) and
// enqueues next, all or nothing; ErrLeaseLost when the lease changed.
func (s *Store) Complete(ctx context.Context, job otpbot.Job, msg *otpbot.Message, next ...otpbot.Task) error {
	args := []any{s.k.base, job.Task.ID, job.Lease}
	if msg != nil {
		margs, err := s.messageArgs(*msg)
		if err != nil {
			return err
		}
		args = append(args, "1")
		args = append(args, margs...)
	} else {
		args = append(args, "0")
		for range messageArgCount {
			args = append(args, "")
		}
	}
	targs, err := taskArgs(next)
	if err != nil {
		return err
	}
	args = append(args, len(next))
	args = append(args, targs...)
	args = append(args, s.instance)
	r, err := completeScript.Run(ctx, s.client, []string{s.k.task(job.Task.ID)}, args...).Int()
	if err != nil {
		s.signalIf(len(next) > 0) // the script may have run
		return wrap("complete", err)
	}
	if r == 0 {
		return fmt.Errorf("complete %s: %w", job.Task.ID, otpbot.ErrLeaseLost)
	}
	if len(next) > 0 {
		s.signal()
	}
	return nil
}

// CompleteMessage removes the job's task, replaces msg provided the
// stored message's UpdatedAt is still prev, and enqueues next, in one
// script: finishing a job costs one round trip, not UpdateMessage's and
// Complete's two.
func (s *Store) CompleteMessage(ctx context.Context, job otpbot.Job, prev time.Time, msg otpbot.Message, next ...otpbot.Task) error {
	margs, err := s.messageArgs(msg)
	if err != nil {
		return err
	}
	targs, err := taskArgs(next)
	if err != nil {
		return err
	}
	args := make([]any, 0, 4+len(margs)+2+len(targs))
	args = append(args, s.k.base, job.Task.ID, job.Lease, fmtTime(prev))
	args = append(args, margs...)
	args = append(args, len(next))
	args = append(args, targs...)
	args = append(args, s.instance)
	r, err := completeMessageScript.Run(ctx, s.client, []string{s.k.task(job.Task.ID), s.k.message(msg.ID)}, args...).Int()
	if err != nil {
		s.signalIf(len(next) > 0) // the script may have run
		return wrap("complete message", err)
	}
	switch r {
	case 0:
		return fmt.Errorf("complete message %s: %w", job.Task.ID, otpbot.ErrLeaseLost)
	case -2:
		return fmt.Errorf("complete message %s: %w", msg.ID, otpbot.ErrNotFound)
	case -1:
		return fmt.Errorf("complete message %s: %w", msg.ID, otpbot.ErrConflict)
	}
	if len(next) > 0 {
		s.signal()
	}
	return nil
}

// Retry releases the job to run again at at, counting the attempt.
func (s *Store) Retry(ctx context.Context, job otpbot.Job, at time.Time, reason string) error {
	t := job.Task
	t.Attempts++
	t.LastError = reason
	t.Due = at
	j, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode task %s: %w", t.ID, err)
	}
	r, err := retryScript.Run(ctx, s.client, []string{s.k.task(t.ID)},
		s.k.base, t.ID, job.Lease, string(j), usCeil(at), fmtTime(at), s.instance).Int()
	if err != nil {
		s.signal() // the script may have run
		return wrap("retry", err)
	}
	if r == 0 {
		return fmt.Errorf("retry %s: %w", t.ID, otpbot.ErrLeaseLost)
	}
	s.signal()
	return nil
}

// Enqueue adds tasks, replacing pending (or leased) tasks with the same ID.
func (s *Store) Enqueue(ctx context.Context, tasks ...otpbot.Task) error {
	if len(tasks) == 0 {
		return nil
	}
	targs, err := taskArgs(tasks)
	if err != nil {
		return err
	}
	args := append([]any{s.k.base, len(tasks)}, targs...)
	args = append(args, s.instance)
	if err := enqueueScript.Run(ctx, s.client, []string{s.k.queue(otpbot.PriorityCode)}, args...).Err(); err != nil {
		s.signal() // the script may have run
		return wrap("enqueue", err)
	}
	s.signal()
	return nil
}

// Pending counts the tasks of each non-empty priority, leased ones
// included, and the oldest Created among them.
func (s *Store) Pending(ctx context.Context) (map[otpbot.Priority]otpbot.QueueStat, error) {
	v, err := pendingScript.Run(ctx, s.client, []string{s.k.queue(otpbot.PriorityCode)}, s.k.base).Slice()
	if err != nil {
		return nil, wrap("pending", err)
	}
	out := make(map[otpbot.Priority]otpbot.QueueStat, len(v))
	for _, row := range v {
		r, _ := row.([]any)
		if len(r) != 3 {
			return nil, fmt.Errorf("redis pending: unexpected reply %v", row)
		}
		p, _ := r[0].(int64)
		n, _ := r[1].(int64)
		st := otpbot.QueueStat{Count: int(n)}
		if !isNil(r[2]) {
			var t otpbot.Task
			if err := json.Unmarshal([]byte(str(r[2])), &t); err != nil {
				return nil, fmt.Errorf("decode task: %w", err)
			}
			st.Oldest = t.Created
		}
		out[otpbot.Priority(p)] = st
	}
	return out, nil
}
