package deliver

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/internal/wait"
)

// How the Deliverer shares its workers (see Run).
const (
	// peekEvery is how often, at most, a Deliverer whose free workers are
	// all kept for codes looks for a code or update that became due
	// without a wake-up (a retry's backoff ending, an expiry edit).
	peekEvery = 200 * time.Millisecond
	// minCall is the least time left for a claimed job's Telegram call
	// for it to be started at all (a quarter of the lease, when that is
	// less); a job that waited longer is left to run out its lease and be
	// claimed afresh.
	minCall = time.Second
)

// Run delivers until ctx ends. Then it claims nothing more, hands the
// jobs it holds but has not started back to the outbox, lets the Telegram
// calls in flight finish (until DrainTimeout, when set: then they are cut
// off and their jobs handed back too), and returns nil once every store
// write of its workers is done, so the caller may close the store. What
// was not started stays in the outbox.
//
// Countdown work never delays a code. The outbox hands out work most
// urgent first, but a claim cannot ask for one priority only, so the
// workers are shared by rule rather than by claim:
//
//   - work below PriorityUpdate (countdown refreshes, ops notices) starts
//     only while more than Reserve workers are free, so Reserve workers
//     are always there for a new code;
//   - an update (a new AUTH_3DS result, a hide, the expiry edit) leaves
//     the last free worker to a code;
//   - while only reserved workers are free, a code or update that is due
//     is found by claiming one task (a peek, when the store's counts say
//     one may be due): a peeked refresh waits in this process, leased,
//     for a worker it may take, and the peeked code starts at once.
//
// A refresh's Telegram call is cut off after RefreshTimeout (a late
// refresh is worthless), and work below PriorityUpdate never waits for
// the rate limiter inside a worker.
//
// Each look at the outbox is a store round trip (a script on a shared
// Redis), so the loop looks only when something may be there: it claims
// on a wake-up (the store's, or Poke), when its timer (set from NextDue)
// fires, and again while claims come back full; a worker that frees
// claims only if one of those is pending. Wake-ups that arrive together
// make one claim, and one that most likely follows a worker's own write
// is answered by NextDue alone when nothing is due.
func (d *Deliverer) Run(ctx context.Context) error {
	s := &scheduler{d: d, freed: make(chan otpbot.Priority, d.workers), running: map[otpbot.Priority]int{}}
	// Telegram calls and store writes outlive ctx; the drain deadline
	// ends them.
	var cut, stopStore context.CancelFunc
	s.callBase, cut = context.WithCancel(context.WithoutCancel(ctx))
	s.storeBase, stopStore = context.WithCancel(context.WithoutCancel(ctx))
	defer stopStore()
	defer cut()
	defer s.wg.Wait()
	d.storeCtx = s.storeBase

	metricsDone := make(chan struct{})
	defer func() { <-metricsDone }()
	go func() {
		defer close(metricsDone)
		d.sampleLoop(ctx)
	}()
	countdownDone := make(chan struct{})
	defer func() { <-countdownDone }()
	go func() {
		defer close(countdownDone)
		d.countdownLoop(ctx, s.callBase)
	}()
	probeDone := make(chan struct{})
	defer func() { <-probeDone }()
	go func() {
		defer close(probeDone)
		d.probeLoop(ctx, s.storeBase)
	}()

	l := &loop{d: d, s: s, wake: d.store.Wake(), errBackoff: minErrBackoff, want: true, stale: true}
	for {
		s.reap()
		if ctx.Err() != nil {
			s.release(ctx)
			s.drain(cut, stopStore)
			return nil
		}
		s.prune()
		s.startReady(ctx)
		if l.want && l.probe {
			l.answerOwnWake(ctx)
		}
		if l.want && l.claim(ctx) {
			continue
		}
		d.claimedOnce.Do(func() { close(d.firstClaim) })
		l.sleep(ctx)
	}
}

// The back-off of a failing claim or NextDue.
const (
	minErrBackoff = 100 * time.Millisecond
	maxErrBackoff = 5 * time.Second
)

// loop is Run's knowledge of the outbox between two looks at it.
type loop struct {
	d    *Deliverer
	s    *scheduler
	wake <-chan struct{}
	// want says a claim may find work this process has not claimed yet:
	// at the start, after a wake-up (the store's or Poke), when the timer
	// fires, and after a claim that came back full. A claim that came back
	// short leased everything due at its time, so a freed worker claims
	// nothing until one of those happens: on Redis a claim is a script on
	// the shared server, and one per delivered code doubled its load.
	want bool
	// nextAt/nextOK is the last NextDue answer. It goes stale when a claim
	// leased tasks (their lease ends count) or a wake-up said work may be
	// due sooner; until then every sleep reuses it rather than asking.
	nextAt        time.Time
	nextOK, stale bool
	// probe is set by a store wake-up that came while the loop was caught
	// up (want false) after a worker wrote to the outbox (ownWrites moved
	// past seenWrites): most likely that write's own wake-up, for a
	// countdown tick due later. NextDue answers it alone when nothing is
	// due; a claim would come back empty and need NextDue after it.
	probe      bool
	seenWrites uint64
	errBackoff time.Duration
}

// woken records a wake-up from the store: work may be due sooner than the
// last NextDue said, perhaps only this process's own write.
func (l *loop) woken() {
	l.probe = !l.want && l.d.ownWrites.Load() != l.seenWrites
	l.want, l.stale = true, true
}

// answerOwnWake answers a wake-up that most likely followed a worker's
// own write with NextDue alone: when nothing is due, no claim.
func (l *loop) answerOwnWake(ctx context.Context) {
	d := l.d
	l.probe = false
	l.seenWrites = d.ownWrites.Load()
	// What was signalled before this is committed: NextDue sees it.
	d.takeWakes(l.wake)
	at, ok, err := d.store.NextDue(ctx)
	if err != nil {
		return // claim, as for any wake-up
	}
	l.nextAt, l.nextOK, l.stale = at, ok, false
	if !ok || at.After(d.now()) {
		l.want = false // nothing due: no claim
	}
}

// claim leases as much work as may start now and starts it. It returns
// true when the loop should look again at once: the claim came back full,
// or failed (after its back-off).
func (l *loop) claim(ctx context.Context) bool {
	d, s := l.d, l.s
	k, peek := s.claimSize(ctx)
	if k == 0 {
		return false
	}
	// The wake-ups already pending are answered by this claim: their
	// tasks were written before they were signalled.
	d.takeWakes(l.wake)
	l.seenWrites = d.ownWrites.Load()
	d.busy.Add(1)
	jobs, err := d.store.Claim(ctx, d.now(), d.lease, k)
	d.busy.Add(int32(len(jobs)) - 1)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("outbox claim failed", "err", err, "retry_in", l.errBackoff)
			if wait.Sleep(ctx, l.errBackoff) {
				l.errBackoff = min(l.errBackoff*2, maxErrBackoff)
			}
		}
		return true // released on the next turn when ctx ended
	}
	l.errBackoff = minErrBackoff
	l.stale = true
	s.add(jobs)
	s.startReady(ctx)
	full := len(jobs) == k
	if full && (!peek || !jobs[0].Task.Priority.Low()) {
		return true // more may be due: claim again at once
	}
	// A short claim found all there was. A full peek that found countdown
	// work stops here (it waits for a worker it may take) but more may be
	// due when one is free.
	l.want = full
	return false
}

// sleep waits until the next task is due, the store signals new work, a
// worker is free, or ctx ends. There is no polling interval in a code's
// path: a new code wakes the loop through the store.
func (l *loop) sleep(ctx context.Context) {
	d, s := l.d, l.s
	var timer <-chan time.Time
	if free := s.free(); free > 0 {
		if l.stale && d.takeWakes(l.wake) {
			// NextDue's answer would be old before it is used.
			l.woken()
			return
		}
		if l.stale && !l.refreshNextDue(ctx) {
			return
		}
		if l.nextOK {
			// A task due already but not claimed raced with another
			// claimer (look again shortly rather than spin), or is
			// countdown work waiting for a worker it may take (look for
			// codes now and then: the wake-up covers new ones).
			floor := 10 * time.Millisecond
			if len(s.ready) > 0 || free <= d.reserve {
				floor = peekEvery
			}
			t := time.NewTimer(max(l.nextAt.Sub(d.now()), floor))
			defer t.Stop()
			timer = t.C
		}
	}
	select {
	case <-ctx.Done():
	case <-l.wake:
		l.woken()
	case <-d.poke:
		l.want, l.stale = true, true
	case <-timer:
		l.want, l.stale = true, true
	case p := <-s.freed:
		s.done(p)
	}
}

// refreshNextDue asks the store when the next task is due; false when ctx
// ended meanwhile. A failure is taken as "due after the back-off".
func (l *loop) refreshNextDue(ctx context.Context) bool {
	d := l.d
	at, ok, err := d.store.NextDue(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		d.log.Error("outbox next-due failed", "err", err, "retry_in", l.errBackoff)
		at, ok = d.now().Add(l.errBackoff), true
		l.errBackoff = min(l.errBackoff*2, maxErrBackoff)
	} else {
		l.stale = false
	}
	l.nextAt, l.nextOK = at, ok
	return true
}

// takeWakes consumes the wake-ups pending from the store and from Poke,
// and reports whether there were any: several signalled together call
// for one claim.
func (d *Deliverer) takeWakes(wake <-chan struct{}) bool {
	got := false
	select {
	case <-wake:
		got = true
	default:
	}
	select {
	case <-d.poke:
		got = true
	default:
	}
	return got
}

// scheduler is Run's state; only Run's goroutine touches it, except for
// freed, which workers send their job's priority to when they finish.
type scheduler struct {
	d  *Deliverer
	wg sync.WaitGroup
	// callBase and storeBase are the contexts of the workers' Telegram
	// calls and store writes (see work).
	callBase, storeBase context.Context
	freed               chan otpbot.Priority
	running             map[otpbot.Priority]int
	total               int
	// ready holds claimed jobs waiting for a worker they may take, most
	// urgent first, then in claim order.
	ready []otpbot.Job
}

func (s *scheduler) free() int { return s.d.workers - s.total }

// reap counts the workers that finished.
func (s *scheduler) reap() {
	for {
		select {
		case p := <-s.freed:
			s.done(p)
		default:
			return
		}
	}
}

func (s *scheduler) done(p otpbot.Priority) {
	s.running[p]--
	s.total--
}

// canStart reports whether a job of priority p may take a worker now.
func (s *scheduler) canStart(p otpbot.Priority) bool {
	free := s.free()
	switch {
	case p <= otpbot.PriorityCode:
		return free >= 1
	case p == otpbot.PriorityUpdate:
		return free > min(1, s.d.workers-1)
	}
	return free > s.d.reserve
}

// claimSize says how many tasks to claim now: as many as low work may
// start when nothing waits, else one (a peek) when a code or update may be
// due, else none.
func (s *scheduler) claimSize(ctx context.Context) (k int, peek bool) {
	free := s.free()
	if free <= 0 {
		return 0, false
	}
	if room := free - s.d.reserve; room > 0 && len(s.ready) == 0 {
		return room, false
	}
	if len(s.ready) > 0 && !s.ready[0].Task.Priority.Low() {
		return 0, false // an update waits for a worker already
	}
	if !s.urgentMaybeDue(ctx) {
		return 0, false
	}
	return 1, true
}

// urgentMaybeDue asks the outbox's counts whether a code or update may be
// due that this process is not working on already. It errs on the side
// of yes: a wrong yes costs a claim, a wrong no a late code.
func (s *scheduler) urgentMaybeDue(ctx context.Context) bool {
	stats, err := s.d.store.Pending(ctx)
	if err != nil {
		return true
	}
	if stats[otpbot.PriorityCode].Count > s.running[otpbot.PriorityCode] {
		return true
	}
	up := stats[otpbot.PriorityUpdate]
	// An expiry edit is created for its due time; Oldest in the future
	// means every update is scheduled for later.
	return up.Count > s.running[otpbot.PriorityUpdate] && !up.Oldest.After(s.d.now())
}

// add takes claimed jobs into ready. Beyond a worker's worth of waiting
// jobs, a peeked refresh is left to run out its lease (it is claimed
// afresh then: one countdown step is skipped under overload) unless its
// code would expire before that.
func (s *scheduler) add(jobs []otpbot.Job) {
	for _, job := range jobs {
		if job.Task.Priority.Low() && len(s.ready) >= s.d.workers && s.canDrop(job) {
			s.d.log.Debug("countdown work left to a later claim: every worker is taken", "task", otpbot.Ref(job.Task.ID))
			s.d.deliveries.WithLabelValues(string(job.Task.Kind), "postponed").Inc()
			s.d.busy.Add(-1)
			continue
		}
		i := len(s.ready)
		for i > 0 && s.ready[i-1].Task.Priority > job.Task.Priority {
			i--
		}
		s.ready = slices.Insert(s.ready, i, job)
	}
}

// canDrop reports whether leaving job to run out its lease cannot keep a
// code on screen past its expiry.
func (s *scheduler) canDrop(job otpbot.Job) bool {
	if job.Message == nil || job.Message.Event.ExpiresAt.IsZero() {
		return true
	}
	return job.Message.Event.ExpiresAt.After(job.LeaseUntil.Add(s.d.interval))
}

// prune forgets waiting jobs whose lease is nearly over: too late to start
// safely, they are claimed afresh when it ends.
func (s *scheduler) prune() {
	now := s.d.now()
	s.ready = slices.DeleteFunc(s.ready, func(job otpbot.Job) bool {
		if s.d.leaseLeft(job, now) >= s.d.minCall() {
			return false
		}
		s.d.busy.Add(-1)
		return true
	})
}

// startReady starts the waiting jobs that may take a worker, most urgent
// first; a job that may not start keeps every less urgent one waiting.
func (s *scheduler) startReady(ctx context.Context) {
	for ctx.Err() == nil && len(s.ready) > 0 && s.canStart(s.ready[0].Task.Priority) {
		job := s.ready[0]
		s.ready = s.ready[1:]
		p := job.Task.Priority
		s.running[p]++
		s.total++
		s.wg.Add(1)
		if !p.Low() {
			// Counted before the worker starts: a countdown refresh due
			// at this moment already yields to it.
			s.d.urgent.Add(1)
		}
		go func() {
			defer s.wg.Done()
			defer s.d.busy.Add(-1)
			if !p.Low() {
				defer s.d.urgent.Add(-1)
			}
			defer func() { s.freed <- p }()
			s.d.work(ctx, s.callBase, s.storeBase, job)
		}()
	}
}

// drain waits for the workers, cutting their Telegram calls off at the
// drain deadline and their store writes DrainGrace later.
func (s *scheduler) drain(cut, stopStore context.CancelFunc) {
	if s.d.drain > 0 {
		t1 := time.AfterFunc(s.d.drain, cut)
		defer t1.Stop()
		t2 := time.AfterFunc(s.d.drain+DrainGrace, stopStore)
		defer t2.Stop()
	}
	s.wg.Wait()
}

// release hands the waiting jobs back to the outbox at shutdown, so that
// the next process need not wait for their leases to run out.
func (s *scheduler) release(ctx context.Context) {
	if len(s.ready) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(s.storeBase, DrainGrace)
	defer cancel()
	for _, job := range s.ready {
		w := &jobRun{d: s.d, job: job, ctx: rctx, sctx: rctx, runCtx: ctx, claimMark: s.d.claimMarkOf(job)}
		w.deferTo(job.Task.Due, "shutdown")
		s.d.busy.Add(-1)
	}
	s.ready = nil
}

// minCall is the least time left on a lease for a job to start its call.
func (d *Deliverer) minCall() time.Duration { return min(minCall, d.lease/4) }

// leaseLeft is how long a call for job may take if it starts at now, as
// far as the lease goes: until a quarter of the lease before it ends, left
// for the store writes after the call.
func (d *Deliverer) leaseLeft(job otpbot.Job, now time.Time) time.Duration {
	return job.LeaseUntil.Sub(now) - d.lease/4
}

// callBudget bounds a Telegram call for job started at now: its kind's
// timeout (a refresh's is short), and never past leaseLeft (though at
// least minCall: a job is not started with less, see prune).
func (d *Deliverer) callBudget(job otpbot.Job, now time.Time) time.Duration {
	limit := d.lease * 3 / 4
	if job.Task.Kind == otpbot.TaskRefresh {
		limit = min(limit, d.refreshTimeout)
	}
	return min(limit, max(d.leaseLeft(job, now), d.minCall()))
}
