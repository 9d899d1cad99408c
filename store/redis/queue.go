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

// taskArgs returns the script arguments of tasks (see putTasks).
func taskArgs(tasks []otpbot.Task) ([]taskRec, error) {
	args := make([]taskRec, 0, len(tasks))
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
		args = append(args, taskRec{ID: t.ID, Prio: int(t.Priority), Score: usCeil(t.Due), At: fmtTime(t.Due),
			Cscore: us(t.Created), JSON: string(j), MsgID: t.MessageID})
	}
	return args, nil
}

// Claim leases up to max tasks due at now, most urgent priority first,
// then earliest due. On a sharded prefix it looks at every shard's heads
// first and leases the best of them (see claimSharded).
func (s *Store) Claim(ctx context.Context, now time.Time, lease time.Duration, max int) ([]otpbot.Job, error) {
	if max <= 0 {
		return nil, nil
	}
	n, err := s.shards(ctx)
	if err != nil {
		return nil, err
	}
	if n > 1 {
		return s.claimSharded(ctx, n, now, lease, max)
	}
	until := now.Add(lease)
	args := claimArgs{B: s.k.base, Nprio: len(priorities), Now: us(now), UntilScore: usCeil(until), UntilAt: fmtTime(until),
		Max: max, Tok: token()}
	v, err := claimScript.Run(ctx, s.client, []string{s.k.queue(otpbot.PriorityCode)}, args.argv()...).Slice()
	if err != nil {
		return nil, wrap("claim", err)
	}
	return s.decodeJobs(ctx, n, v, now, until)
}

// decodeJobs turns the rows of a claim script into jobs.
func (s *Store) decodeJobs(ctx context.Context, n int, v []any, now, until time.Time) ([]otpbot.Job, error) {
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
			s.redactExpired(ctx, n, &m, now)
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
func (s *Store) redactExpired(ctx context.Context, n int, m *otpbot.Message, now time.Time) {
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
	k := s.msgKeys(n, m.ID)
	args := redactExpiredArgs{B: k.base, PrevUpdated: fmtTime(m.UpdatedAt), EvJSON: string(ev), Updated: fmtTime(red.UpdatedAt)}
	r, err := redactExpiredScript.Run(ctx, s.client, []string{k.message(m.ID)}, args.argv()...).Int()
	if err != nil {
		s.log.Warn("expired code not dropped", "message", otpbot.Ref(m.ID), "err", err)
		return
	}
	if r == 1 {
		*m = red
	}
}

// NextDue returns when the earliest task becomes claimable (of every
// shard's earliest, on a sharded prefix).
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	n, err := s.shards(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	calls := make([]scriptCall, n)
	for i := range n {
		k := s.shard(i)
		args := nextDueArgs{B: k.base, Nprio: len(priorities)}
		calls[i] = scriptCall{[]string{k.queue(otpbot.PriorityCode)}, args.argv()}
	}
	cmds, err := s.evalAll(ctx, "next due", nextDueScript, calls)
	if err != nil {
		return time.Time{}, false, err
	}
	var best time.Time
	found := false
	for _, c := range cmds {
		v, err := c.Result()
		if isRedisNil(err) {
			continue
		}
		at, err := parseTime(str(v))
		if err != nil {
			return time.Time{}, false, fmt.Errorf("redis next due: %w", err)
		}
		if !found || at.Before(best) {
			best, found = at, true
		}
	}
	return best, found, nil
}

// Complete removes the job's task, stores msg (redacted when final) and
// enqueues next, all or nothing; ErrLeaseLost when the lease changed. (On
// a sharded prefix, what belongs to another shard than the task is
// written apart: see shard.go.)
func (s *Store) Complete(ctx context.Context, job otpbot.Job, msg *otpbot.Message, next ...otpbot.Task) error {
	n, err := s.shards(ctx)
	if err != nil {
		return err
	}
	ti := shardOfTask(job.Task, n)
	k := s.shard(ti)
	var msgApart *otpbot.Message // a message of another shard, written after
	if msg != nil && s.msgKeys(n, msg.ID).base != k.base {
		msgApart, msg = msg, nil
	}
	next, apart := splitApart(n, ti, next)
	args := completeArgs{B: k.base, TaskID: job.Task.ID, Lease: job.Lease, HasMsg: "0", Instance: s.instance}
	if msg != nil {
		if args.Msg, err = s.messageArgs(*msg); err != nil {
			return err
		}
		args.HasMsg = "1"
	}
	if args.Tasks, err = taskArgs(next); err != nil {
		return err
	}
	r, err := completeScript.Run(ctx, s.client, []string{k.task(job.Task.ID)}, args.argv()...).Int()
	if err != nil {
		s.signalIf(len(next) > 0) // the script may have run
		return wrap("complete", err)
	}
	if err := scriptResult("complete", job.Task.ID, r); err != nil {
		return err
	}
	if len(next) > 0 {
		s.signal()
	}
	if msgApart != nil {
		if err := s.putMessage(ctx, n, *msgApart); err != nil {
			return err
		}
	}
	return s.enqueueApart(ctx, n, apart)
}

// CompleteMessage removes the job's task, replaces msg provided the
// stored message's UpdatedAt is still prev, and enqueues next, in one
// script: finishing a job costs one round trip, not UpdateMessage's and
// Complete's two. (A message of another shard than the task, which the
// bot never passes, is UpdateMessage followed by Complete.)
func (s *Store) CompleteMessage(ctx context.Context, job otpbot.Job, prev time.Time, msg otpbot.Message, next ...otpbot.Task) error {
	n, err := s.shards(ctx)
	if err != nil {
		return err
	}
	ti := shardOfTask(job.Task, n)
	k := s.shard(ti)
	if s.msgKeys(n, msg.ID).base != k.base {
		if err := s.UpdateMessage(ctx, prev, msg); err != nil {
			return err
		}
		return s.Complete(ctx, job, nil, next...)
	}
	next, apart := splitApart(n, ti, next)
	margs, err := s.messageArgs(msg)
	if err != nil {
		return err
	}
	targs, err := taskArgs(next)
	if err != nil {
		return err
	}
	args := completeMessageArgs{B: k.base, TaskID: job.Task.ID, Lease: job.Lease, PrevUpdated: fmtTime(prev),
		Msg: margs, Instance: s.instance, Tasks: targs}
	r, err := completeMessageScript.Run(ctx, s.client, []string{k.task(job.Task.ID), k.message(msg.ID)}, args.argv()...).Int()
	if err != nil {
		s.signalIf(len(next) > 0) // the script may have run
		return wrap("complete message", err)
	}
	if err := scriptResult("complete message", job.Task.ID, r); err != nil {
		return err
	}
	if len(next) > 0 {
		s.signal()
	}
	return s.enqueueApart(ctx, n, apart)
}

// Retry releases the job to run again at at, counting the attempt.
func (s *Store) Retry(ctx context.Context, job otpbot.Job, at time.Time, reason string) error {
	n, err := s.shards(ctx)
	if err != nil {
		return err
	}
	k := s.shard(shardOfTask(job.Task, n))
	t := job.Task
	t.Attempts++
	t.LastError = reason
	t.Due = at
	j, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode task %s: %w", t.ID, err)
	}
	args := retryArgs{B: k.base, TaskID: t.ID, Lease: job.Lease, TaskJSON: string(j), DueScore: usCeil(at),
		DueAt: fmtTime(at), Instance: s.instance}
	r, err := retryScript.Run(ctx, s.client, []string{k.task(t.ID)}, args.argv()...).Int()
	if err != nil {
		s.signal() // the script may have run
		return wrap("retry", err)
	}
	if err := scriptResult("retry", t.ID, r); err != nil {
		return err
	}
	s.signal()
	return nil
}

// Enqueue adds tasks, replacing pending (or leased) tasks with the same
// ID: in one script per shard, the scripts in one pipeline.
func (s *Store) Enqueue(ctx context.Context, tasks ...otpbot.Task) error {
	if len(tasks) == 0 {
		return nil
	}
	n, err := s.shards(ctx)
	if err != nil {
		return err
	}
	return s.enqueue(ctx, n, tasks)
}

// enqueue is Enqueue once the number of shards is known.
func (s *Store) enqueue(ctx context.Context, n int, tasks []otpbot.Task) error {
	byShard := map[int][]otpbot.Task{}
	var order []int
	for _, t := range tasks {
		i := shardOfTask(t, n)
		if _, ok := byShard[i]; !ok {
			order = append(order, i)
		}
		byShard[i] = append(byShard[i], t)
	}
	calls := make([]scriptCall, 0, len(order))
	for _, i := range order {
		targs, err := taskArgs(byShard[i])
		if err != nil {
			return err
		}
		k := s.shard(i)
		args := enqueueArgs{B: k.base, Instance: s.instance, Tasks: targs}
		calls = append(calls, scriptCall{[]string{k.queue(otpbot.PriorityCode)}, args.argv()})
	}
	_, err := s.evalAll(ctx, "enqueue", enqueueScript, calls)
	s.signal() // also on an error: a script may have run
	return err
}

// splitApart splits tasks into those of shard and those of other shards:
// a caller's script writes the first, and the others are enqueued once it
// succeeded (never when it lost a lease or a version).
func splitApart(n, shard int, tasks []otpbot.Task) (here, apart []otpbot.Task) {
	if n <= 1 {
		return tasks, nil
	}
	for _, t := range tasks {
		if shardOfTask(t, n) == shard {
			here = append(here, t)
		} else {
			apart = append(apart, t)
		}
	}
	return here, apart
}

// enqueueApart enqueues the tasks splitApart set apart, after their
// caller's script succeeded.
func (s *Store) enqueueApart(ctx context.Context, n int, apart []otpbot.Task) error {
	if len(apart) == 0 {
		return nil
	}
	return s.enqueue(ctx, n, apart)
}

// Pending counts the tasks of each non-empty priority, leased ones
// included, and the oldest Created among them (over every shard).
func (s *Store) Pending(ctx context.Context) (map[otpbot.Priority]otpbot.QueueStat, error) {
	n, err := s.shards(ctx)
	if err != nil {
		return nil, err
	}
	calls := make([]scriptCall, n)
	for i := range n {
		k := s.shard(i)
		args := pendingArgs{B: k.base, Nprio: len(priorities)}
		calls[i] = scriptCall{[]string{k.queue(otpbot.PriorityCode)}, args.argv()}
	}
	cmds, err := s.evalAll(ctx, "pending", pendingScript, calls)
	if err != nil {
		return nil, err
	}
	out := map[otpbot.Priority]otpbot.QueueStat{}
	for _, c := range cmds {
		v, _ := c.Slice()
		for _, row := range v {
			r, _ := row.([]any)
			if len(r) != 3 {
				return nil, fmt.Errorf("redis pending: unexpected reply %v", row)
			}
			p, _ := r[0].(int64)
			cnt, _ := r[1].(int64)
			st := out[otpbot.Priority(p)]
			st.Count += int(cnt)
			if !isNil(r[2]) {
				var t otpbot.Task
				if err := json.Unmarshal([]byte(str(r[2])), &t); err != nil {
					return nil, fmt.Errorf("decode task: %w", err)
				}
				if st.Oldest.IsZero() || t.Created.Before(st.Oldest) {
					st.Oldest = t.Created
				}
			}
			out[otpbot.Priority(p)] = st
		}
	}
	return out, nil
}
