package bolt

import (
	"sync"
	"time"

	"github.com/otpbot/otpbot"
)

// claimLeases keeps the leases of claimed tasks in memory.
//
// A lease exists so that another worker takes a task over when its holder
// died. The file lock means one process owns the store, so a holder that
// died took the leases with it: a restart forgets them, which is right,
// since nobody holds those tasks any more. Writing each lease into the
// file cost every claim a commit (two fdatasyncs) for nothing a crash
// could use; Claim and NextDue are now reads.
//
// A lease names the task record it was taken on by the record's generation
// (taskRecord.Gen, new at every enqueue). A task enqueued again while
// leased is a new record: the old lease no longer covers it (it is
// claimable at its due time) and the old holder's Complete or Retry,
// which check the generation in their transaction, get ErrLeaseLost.
//
// Lock order: Claim and NextDue hold mu while they read the file; nobody
// takes mu inside a write transaction (Complete and Retry mark their lease
// busy before theirs and settle it after), so a writer never waits for mu
// while readers wait for the writer.
type claimLeases struct {
	mu sync.Mutex
	m  map[string]claimLease // task id → its lease
}

// claimLease is the lease of one claimed task.
type claimLease struct {
	token string
	until time.Time
	gen   uint64 // the generation of the task record it was taken on
	// busy is set while the holder's Complete or Retry commits: the task
	// is not claimable meanwhile, even past until, as when the lease was
	// checked and the task finished in one transaction.
	busy bool
}

// held reports whether a task with record generation gen is leased at now
// (called with mu held).
func (c *claimLeases) held(id string, gen uint64, now time.Time) (claimLease, bool) {
	l, ok := c.m[id]
	if !ok || l.gen != gen {
		return claimLease{}, false
	}
	return l, l.busy || l.until.After(now)
}

// begin marks job's lease busy for its holder's write and returns the
// record generation the write must find; ErrLeaseLost when job does not
// hold the task's lease (any more).
func (c *claimLeases) begin(job otpbot.Job) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.m[job.Task.ID]
	if !ok || job.Lease == "" || l.token != job.Lease || l.busy {
		return 0, otpbot.ErrLeaseLost
	}
	l.busy = true
	c.m[job.Task.ID] = l
	return l.gen, nil
}

// end settles job's lease after its holder's write: gone when the write
// finished the lease (it committed, or found the task gone or replaced),
// held again when it failed and may be retried.
func (c *claimLeases) end(job otpbot.Job, finished bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.m[job.Task.ID]
	if !ok || l.token != job.Lease {
		return
	}
	if finished {
		delete(c.m, job.Task.ID)
		return
	}
	l.busy = false
	c.m[job.Task.ID] = l
}

// drop removes the leases with the given tokens (a claim that failed
// after taking them).
func (c *claimLeases) drop(jobs []otpbot.Job) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, j := range jobs {
		if l, ok := c.m[j.Task.ID]; ok && l.token == j.Lease {
			delete(c.m, j.Task.ID)
		}
	}
}
