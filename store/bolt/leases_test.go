package bolt

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/storetest"
)

// The claim leases live in memory (claimLeases): what the conformance
// suite cannot see is that claiming writes nothing, that a restart forgets
// the leases, that files with leases written by older versions still
// work, and that a takeover never hands out a task whose holder finished.

var leaseEpoch = time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)

func noticeTask(id string, due time.Time) otpbot.Task {
	return otpbot.Task{ID: id, Kind: otpbot.TaskNotice, Priority: otpbot.PriorityOther,
		Target: otpbot.Target{ChatID: 1001}, Due: due, Created: due, Text: "report " + id}
}

// lastTx is the id of the file's last committed transaction.
func lastTx(t *testing.T, s *Store) int {
	t.Helper()
	var id int
	if err := s.db.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestClaimWritesNothing: claiming a task (and asking when the next is
// due) commits nothing, so no fsync: a delivered code costs its ingest
// and its completion, not a commit per claim.
func TestClaimWritesNothing(t *testing.T) {
	s, _ := openTemp(t, storetest.DefaultOptions(storetest.NewClock(leaseEpoch).Now))
	ctx := t.Context()
	if err := s.Enqueue(ctx, noticeTask("t1", leaseEpoch), noticeTask("t2", leaseEpoch.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	before := lastTx(t, s)
	jobs, err := s.Claim(ctx, leaseEpoch, 30*time.Second, 5)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim: %v, %v", jobs, err)
	}
	if at, ok, err := s.NextDue(ctx); err != nil || !ok || !at.Equal(leaseEpoch.Add(30*time.Second)) {
		t.Fatalf("NextDue = %v, %v, %v; want the lease's end", at, ok, err)
	}
	if after := lastTx(t, s); after != before {
		t.Fatalf("Claim and NextDue committed %d transactions, want none", after-before)
	}
	if err := s.Complete(ctx, jobs[0], nil); err != nil {
		t.Fatalf("Complete: %v", err)
	}
}

// TestRestartForgetsLeases: the process that held a lease is gone after a
// restart, so its tasks are claimable at once, and its jobs are no longer
// the current ones.
func TestRestartForgetsLeases(t *testing.T) {
	opts := storetest.DefaultOptions(storetest.NewClock(leaseEpoch).Now)
	path := filepath.Join(t.TempDir(), "otpbot.db")
	s, err := Open(path, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.Enqueue(ctx, noticeTask("t1", leaseEpoch)); err != nil {
		t.Fatal(err)
	}
	old, err := s.Claim(ctx, leaseEpoch, time.Hour, 5)
	if err != nil || len(old) != 1 {
		t.Fatalf("Claim: %v, %v", old, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if at, ok, err := s.NextDue(ctx); err != nil || !ok || !at.Equal(leaseEpoch) {
		t.Fatalf("NextDue after restart = %v, %v, %v; want the task's due time", at, ok, err)
	}
	jobs, err := s.Claim(ctx, leaseEpoch, time.Hour, 5)
	if err != nil || len(jobs) != 1 || jobs[0].Task.ID != "t1" {
		t.Fatalf("Claim after restart: %v, %v; want t1 at once", jobs, err)
	}
	if err := s.Complete(ctx, old[0], nil); !errors.Is(err, otpbot.ErrLeaseLost) {
		t.Fatalf("Complete of the job from before the restart: %v, want ErrLeaseLost", err)
	}
	if err := s.Complete(ctx, jobs[0], nil); err != nil {
		t.Fatalf("Complete: %v", err)
	}
}

// TestLeaseWrittenByOlderVersion: a file written when leases were stored
// in it holds a leased task indexed at its lease's end. It is claimable
// from then on, as it was, and its job can be retried and completed.
func TestLeaseWrittenByOlderVersion(t *testing.T) {
	s, _ := openTemp(t, storetest.DefaultOptions(storetest.NewClock(leaseEpoch).Now))
	ctx := t.Context()
	until := leaseEpoch.Add(30 * time.Second)
	// What the old Claim wrote: the record with its lease, indexed at
	// the lease's end, and no generation.
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		task := noticeTask("old", leaseEpoch)
		if err := putTask(tx, task); err != nil {
			return err
		}
		r, l, _, err := findTask(tx, task)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bReady).Delete(r.readyKey(l)); err != nil {
			return err
		}
		r.Gen, r.Lease, r.LeaseUntil = 0, "old-token", until
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bTasks).Put([]byte("old"), v); err != nil {
			return err
		}
		return tx.Bucket(bReady).Put(r.readyKey(l), nil)
	}); err != nil {
		t.Fatal(err)
	}
	if at, ok, err := s.NextDue(ctx); err != nil || !ok || !at.Equal(until) {
		t.Fatalf("NextDue = %v, %v, %v; want the old lease's end", at, ok, err)
	}
	if jobs, err := s.Claim(ctx, until.Add(-time.Second), time.Minute, 5); err != nil || len(jobs) != 0 {
		t.Fatalf("Claim inside the old lease: %v, %v", jobs, err)
	}
	jobs, err := s.Claim(ctx, until, time.Minute, 5)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim at the old lease's end: %v, %v", jobs, err)
	}
	retryAt := until.Add(time.Minute)
	if err := s.Retry(ctx, jobs[0], retryAt, "flood wait"); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if at, ok, err := s.NextDue(ctx); err != nil || !ok || !at.Equal(retryAt) {
		t.Fatalf("NextDue after Retry = %v, %v, %v; want %v", at, ok, err, retryAt)
	}
	jobs, err = s.Claim(ctx, retryAt, time.Minute, 5)
	if err != nil || len(jobs) != 1 || jobs[0].Task.Attempts != 1 {
		t.Fatalf("Claim after Retry: %+v, %v", jobs, err)
	}
	if err := s.Complete(ctx, jobs[0], nil); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if _, ok, err := s.NextDue(ctx); err != nil || ok {
		t.Fatalf("NextDue after Complete: %v, %v; want an empty outbox", ok, err)
	}
}

// TestLeaseHeldWhileHolderWrites: a lease that ran out while its holder's
// Complete is committing is not taken over meanwhile (the check and the
// write were one transaction when the lease was in the file); if the
// write fails, the holder still has the lease for its next try.
func TestLeaseHeldWhileHolderWrites(t *testing.T) {
	s, _ := openTemp(t, storetest.DefaultOptions(storetest.NewClock(leaseEpoch).Now))
	ctx := t.Context()
	if err := s.Enqueue(ctx, noticeTask("t1", leaseEpoch)); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.Claim(ctx, leaseEpoch, time.Second, 1)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim: %v, %v", jobs, err)
	}
	late := leaseEpoch.Add(time.Minute)
	for _, finished := range []bool{false, true} {
		if _, err := s.leases.begin(jobs[0]); err != nil {
			t.Fatalf("begin: %v", err)
		}
		if got, err := s.Claim(ctx, late, time.Second, 1); err != nil || len(got) != 0 {
			t.Fatalf("Claim while the holder writes: %v, %v; want nothing", got, err)
		}
		if _, err := s.leases.begin(jobs[0]); !errors.Is(err, otpbot.ErrLeaseLost) {
			t.Fatalf("a second write of the same job at once: %v, want ErrLeaseLost", err)
		}
		s.leases.end(jobs[0], finished)
	}
	// The write finished the lease: the task is free (here it was not
	// deleted, so it is claimable again).
	if got, err := s.Claim(ctx, late, time.Second, 1); err != nil || len(got) != 1 {
		t.Fatalf("Claim after the lease ended: %v, %v", got, err)
	}
}

// TestClaimCompleteConcurrently: workers claim and complete at once.
// With leases that run out at once every claim may take every task over,
// yet a task whose Complete returned is never claimed again and each task
// is completed once; with leases that hold, each task is claimed exactly
// once, even by a claim that read the outbox while another worker's
// Complete of that task was committing. The outbox ends empty, and no
// lease is left in memory.
func TestClaimCompleteConcurrently(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lease    time.Duration
		takeover bool
	}{{"leases run out at once", 0, true}, {"leases hold", time.Hour, false}} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTemp(t, storetest.DefaultOptions(storetest.NewClock(leaseEpoch).Now))
			ctx := t.Context()
			const n = 120
			var tasks []otpbot.Task
			for i := range n {
				tasks = append(tasks, noticeTask(fmt.Sprintf("t%03d", i), leaseEpoch.Add(-time.Duration(i)*time.Millisecond)))
			}
			if err := s.Enqueue(ctx, tasks...); err != nil {
				t.Fatal(err)
			}
			var (
				seq     atomic.Int64 // completions so far
				mu      sync.Mutex
				done    = map[string]int64{} // task → seq of its completion
				claimed = map[string]int{}
				wg      sync.WaitGroup
			)
			for range 4 {
				wg.Go(func() {
					for range 10 * n { // bounded: a store that never empties fails below
						start := seq.Load()
						jobs, err := s.Claim(ctx, leaseEpoch, tc.lease, 3)
						if err != nil {
							t.Errorf("Claim: %v", err)
							return
						}
						if len(jobs) == 0 {
							return
						}
						for _, j := range jobs {
							mu.Lock()
							at, finished := done[j.Task.ID]
							claimed[j.Task.ID]++
							mu.Unlock()
							if finished && at <= start {
								t.Errorf("task %s claimed after its Complete returned", j.Task.ID)
								return
							}
							err := s.Complete(ctx, j, nil)
							if tc.takeover && errors.Is(err, otpbot.ErrLeaseLost) {
								continue // taken over meanwhile
							}
							if err != nil {
								t.Errorf("Complete: %v", err)
								return
							}
							mu.Lock()
							if _, twice := done[j.Task.ID]; twice {
								t.Errorf("task %s completed twice", j.Task.ID)
							}
							done[j.Task.ID] = seq.Add(1)
							mu.Unlock()
						}
					}
				})
			}
			wg.Wait()
			if len(done) != n {
				t.Fatalf("%d tasks completed, want %d", len(done), n)
			}
			if !tc.takeover {
				for id, c := range claimed {
					if c != 1 {
						t.Errorf("task %s claimed %d times under a lease that holds", id, c)
					}
				}
			}
			if _, ok, err := s.NextDue(ctx); err != nil || ok {
				t.Fatalf("NextDue: %v, %v; want an empty outbox", ok, err)
			}
			s.leases.mu.Lock()
			defer s.leases.mu.Unlock()
			if len(s.leases.m) != 0 {
				t.Fatalf("%d leases left in memory after every task was completed", len(s.leases.m))
			}
		})
	}
}
