package bolt

import (
	"fmt"
	"slices"
	"sync"

	bbolt "go.etcd.io/bbolt"
)

// maxGroup caps the calls one shared commit runs (bbolt's MaxBatchSize
// default): a commit of that many pushes is already far past the point
// where the fsync dominates.
const maxGroup = 1000

// groupCommit runs the write transactions of concurrent callers in shared
// commits, one fsync for all of them, and returns to each only after the
// commit that holds its writes reached the disk.
//
// bbolt's own DB.Batch does this on a timer: the first call waits
// MaxBatchDelay for company before anything is committed. Under load the
// wait is hidden by the commit in progress, but at a trickle (200 pushes/s
// is 5 ms apart, so nearly every push is alone) every push paid the whole
// delay (3.2 of the 4.4 ms push → Telegram at 200/s), and a shorter delay
// made batches collapse to one push each under load. Batch has no mode
// that commits at once when idle, hence this small batcher: when no commit
// is running, a call commits at once; calls that arrive while one runs
// queue up and share the next. So the batch size follows the load, with no
// timer at all.
//
// One caller at a time leads: it runs a commit for the queued calls, then
// hands the rest of the queue to the first call still in it (so that no
// caller's own result waits for commits of others after its own), or
// marks the batcher idle. As with Batch, fn may run more than once: a
// call whose fn fails (or panics) is taken out and run in a transaction of
// its own, so it gets its own error and the others commit without it.
type groupCommit struct {
	db *bbolt.DB

	mu      sync.Mutex
	running bool          // a leader is committing; only it clears this
	queue   []*commitCall // waiting for the next commit; empty when !running
}

// commitCall is one caller's transaction function and where its outcome
// goes.
type commitCall struct {
	fn  func(*bbolt.Tx) error
	out chan commitResult // capacity 1: never more than one value pending
}

// commitResult is what a caller waiting in the queue is told.
type commitResult struct {
	err  error
	lead bool // commit the queue now (this call is at its head)
	solo bool // fn failed in a shared commit: run it in a transaction of its own
}

// Update runs fn in a write transaction shared with other callers' and
// returns once it is committed (and fsynced), with fn's error or the
// commit's.
func (g *groupCommit) Update(fn func(*bbolt.Tx) error) error {
	c := &commitCall{fn: fn, out: make(chan commitResult, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if lead {
		g.lead()
	}
	r := <-c.out
	if r.lead {
		g.lead() // c is at the head of the queue: this commit holds it
		r = <-c.out
	}
	if r.solo {
		return g.db.Update(fn)
	}
	return r.err
}

// lead commits the calls queued now (up to maxGroup), then hands the
// leadership to the first call that queued meanwhile, or ends it.
func (g *groupCommit) lead() {
	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	batch := slices.Clone(g.queue[:n])
	g.queue = slices.Delete(g.queue, 0, n)
	g.mu.Unlock()

	g.commit(batch)

	g.mu.Lock()
	if len(g.queue) == 0 {
		g.running = false
		g.mu.Unlock()
		return
	}
	next := g.queue[0]
	g.mu.Unlock()
	next.out <- commitResult{lead: true}
}

// commit runs batch in one transaction and tells each call the outcome. A
// call whose fn fails is taken out and told to run alone; the others are
// run again without it, as bbolt's Batch does.
func (g *groupCommit) commit(batch []*commitCall) {
	for len(batch) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bbolt.Tx) error {
			dense(tx)
			for i, c := range batch {
				if err := safelyCall(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			batch[failed].out <- commitResult{solo: true}
			batch = slices.Delete(batch, failed, failed+1)
			continue
		}
		for _, c := range batch {
			c.out <- commitResult{err: err}
		}
		return
	}
}

// appendFill is how full a split leaves the leaves of the buckets that are
// written mostly at their end (bbolt's default is half): appended to at
// half fill, they take twice the pages, on disk and in every commit that
// appends to them.
const appendFill = 0.9

// dense sets appendFill on tx's handles of the buckets written mostly at
// their end. It is called first in a write transaction: the handles are
// the transaction's, so it holds for all of it.
func dense(tx *bbolt.Tx) {
	for _, name := range [][]byte{bMsgs, bDedupeByTime, bCreated, bHist} {
		if b := tx.Bucket(name); b != nil {
			b.FillPercent = appendFill
		}
	}
}

// safelyCall runs fn, turning a panic into an error: the panicking call is
// then run alone, in its caller's goroutine, where the panic belongs.
func safelyCall(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(tx)
}
