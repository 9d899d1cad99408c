package deliver

import (
	"container/heap"
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/internal/wait"
)

// A countdown refresh writes nothing durable. What must survive a crash is
// the message — its id, its expiry, its state — and the edit at expiry,
// which is a durable task in the outbox from the send on. The refreshes in
// between follow from the expiry and the countdown interval, so they live
// in memory: a schedule of the live messages this process knows, each with
// the time of its next step and the hash of what its chat shows. At start
// the schedule is rebuilt from the store's live messages. On a shared
// Redis every process schedules every live message (it rescans the store
// now and then for those another process sent) and each step is claimed,
// so that one process edits it.

// RefreshClaimer claims one countdown step for this process: true for the
// first caller of key within ttl (otpbot.Coordinator's Once). Processes
// sharing a store need one; alone, a process refreshes without asking.
type RefreshClaimer interface {
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// rescanEvery is how often, on a shared store, the schedule is completed
// from the store's live messages (those another process sent).
const rescanEvery = 15 * time.Second

// countdown is the schedule of refreshes.
type countdown struct {
	mu    sync.Mutex
	steps stepHeap
	at    map[string]time.Time // message id → its next step (the live entry)
	shown map[string]string    // message id → hash of what the chat shows
	kick  chan struct{}
}

func newCountdown() *countdown {
	return &countdown{at: map[string]time.Time{}, shown: map[string]string{}, kick: make(chan struct{}, 1)}
}

type step struct {
	id string
	at time.Time
}

type stepHeap []step

func (h stepHeap) Len() int           { return len(h) }
func (h stepHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h stepHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *stepHeap) Push(x any)        { *h = append(*h, x.(step)) }
func (h *stepHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// schedule sets message id's next step to at (zero: no more steps) and
// remembers hash as what its chat shows ("" keeps what was known).
func (c *countdown) schedule(id string, at time.Time, hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hash != "" {
		c.shown[id] = hash
	}
	if at.IsZero() {
		delete(c.at, id)
		return
	}
	c.at[id] = at
	heap.Push(&c.steps, step{id: id, at: at})
	if c.steps[0].id == id {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// drop forgets message id: its state is final.
func (c *countdown) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.at, id)
	delete(c.shown, id)
}

// knows reports whether id is scheduled.
func (c *countdown) knows(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.at[id]
	return ok
}

// due takes the steps due at now, and returns when the next one is (zero
// when none is scheduled).
func (c *countdown) due(now time.Time) (ids []string, next time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.steps) > 0 {
		s := c.steps[0]
		if cur, ok := c.at[s.id]; !ok || !cur.Equal(s.at) {
			heap.Pop(&c.steps) // replaced or dropped since
			continue
		}
		if s.at.After(now) {
			return ids, s.at
		}
		heap.Pop(&c.steps)
		delete(c.at, s.id)
		ids = append(ids, s.id)
	}
	return ids, time.Time{}
}

// lastShown is the hash of what message id's chat shows, as far as this
// process knows.
func (c *countdown) lastShown(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shown[id]
}

// nextStep is the time of msg's next countdown step after now, or zero
// when the next step is the expiry (a durable task) or there is none.
// Steps are aligned on the expiry, so the time left reads 4:30, 4:00...
// whenever the refresh runs.
func (d *Deliverer) nextStep(msg otpbot.Message, now time.Time) time.Time {
	exp := msg.Event.ExpiresAt
	if msg.State != otpbot.StateLive || exp.IsZero() || msg.TelegramID == 0 {
		return time.Time{}
	}
	left := exp.Sub(now)
	k := (left - 1) / d.interval // whole steps strictly before the expiry
	at := exp.Add(-k * d.interval)
	if at.Sub(now) < d.interval/2 && k > 0 {
		// Too close to now to show anything new: the step after.
		k--
		at = exp.Add(-k * d.interval)
	}
	if k <= 0 {
		return time.Time{}
	}
	return at
}

// expiryTask is the durable edit at msg's expiry, enqueued with every
// durable write of a live message (it replaces the pending one: the same
// slot, the same due time).
func expiryTask(msg otpbot.Message) []otpbot.Task {
	exp := msg.Event.ExpiresAt
	if msg.State != otpbot.StateLive || exp.IsZero() {
		return nil
	}
	return []otpbot.Task{{
		ID: otpbot.TaskID(msg.ID, otpbot.TaskExpire), Kind: otpbot.TaskExpire, Priority: otpbot.PriorityUpdate,
		MessageID: msg.ID, Target: msg.Target, Due: exp, Created: exp,
	}}
}

// countdownLoop runs the due refreshes until ctx ends, at most a quarter of
// the calls in flight at once. It starts from the store's live messages
// and, on a shared store, completes the schedule every rescanEvery.
func (d *Deliverer) countdownLoop(ctx context.Context, callBase context.Context) {
	// The codes due at start go first: the first claim is made before
	// the countdowns resume.
	select {
	case <-d.firstClaim:
	case <-ctx.Done():
		return
	}
	d.resume(ctx)
	sem := make(chan struct{}, max(1, d.workers/4))
	var wg sync.WaitGroup
	defer wg.Wait()
	rescan := time.Now().Add(rescanEvery)
	for {
		ids, next := d.countdown.due(d.now())
		if len(ids) > 0 {
			d.yieldToCodes(ctx)
		}
		for _, id := range ids {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				d.refresh(callBase, id)
			}()
		}
		wait := time.Minute
		if !next.IsZero() {
			wait = max(next.Sub(d.now()), 10*time.Millisecond)
		}
		if d.claims != nil {
			if time.Now().After(rescan) {
				d.resume(ctx)
				rescan = time.Now().Add(rescanEvery)
			}
			wait = min(wait, time.Until(rescan))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-d.countdown.kick:
		case <-d.tickPoke:
		case <-t.C:
		}
		t.Stop()
	}
}

// resume schedules the store's live messages this process does not know
// yet: all of them at start (the first step at once, so that a countdown
// that stood still while no process ran shows the right time again), then
// those another process sent.
func (d *Deliverer) resume(ctx context.Context) {
	msgs, err := d.store.LiveMessages(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("countdowns not resumed: live messages unreadable", "err", err)
		}
		return
	}
	now := d.now()
	for _, m := range msgs {
		if m.TelegramID == 0 || m.Event.ExpiresAt.IsZero() || d.countdown.knows(m.ID) {
			continue
		}
		d.track(m)
		d.countdown.schedule(m.ID, now, m.Rendered)
	}
}

// refresh shows message id's time left, if this process may (its step is
// claimed on a shared store) and the budget has a token to spare: a
// refresh never waits. It writes nothing to the store; a failure that
// needs the store (the chat is gone, the message refused) becomes a
// durable update, which handles it as any job.
func (d *Deliverer) refresh(callBase context.Context, id string) {
	d.busy.Add(1)
	defer d.busy.Add(-1)
	unlock, _ := d.locks.lock(id)
	defer unlock()
	ctx, cancel := context.WithTimeout(callBase, d.refreshTimeout)
	defer cancel()
	msg, ok, err := d.store.Message(ctx, id)
	now := d.now()
	switch {
	case err != nil:
		d.log.Warn("countdown: message unreadable; next step", "message", id, "err", err)
		d.countdown.schedule(id, now.Add(d.interval), "")
		return
	case !ok || msg.State != otpbot.StateLive || msg.TelegramID == 0 || msg.Event.Expired(now):
		// Final, gone, or at its expiry: the durable tasks take it on.
		d.countdown.drop(id)
		return
	}
	next := d.nextStep(msg, now)
	defer func() { d.countdown.schedule(id, next, "") }()
	if d.claims != nil {
		// The step is named by the whole intervals left, the same in
		// every process however their clocks and timers differ.
		left := (msg.Event.ExpiresAt.Sub(now) + d.interval/2) / d.interval
		won, err := d.claims.Once(ctx, "tick:"+id+":"+strconv.FormatInt(int64(left), 10), d.interval)
		if err != nil || !won {
			return // another process shows this step
		}
	}
	loc := d.locale(ctx, msg)
	text, err := loc.RenderMessage(msg, now)
	if err != nil {
		d.log.Error("countdown: render failed", "message", id, "err", err)
		return
	}
	out := telegram.OutMessage{Target: msg.Target, Text: text, Buttons: d.buttons(loc, msg), Protect: true}
	hash := d.renderHash(out)
	if shown := d.countdown.lastShown(id); hash == shown || (shown == "" && hash == msg.Rendered) {
		return
	}
	if d.limiter.Take(ctx, msg.Target, telegram.Spare).For > 0 {
		d.deliveries.WithLabelValues(string(otpbot.TaskRefresh), "skipped").Inc()
		return // no token to spare: the next step then
	}
	err = d.client.Edit(ctx, msg.TelegramID, out)
	switch telegram.ClassOf(err) {
	case 0, telegram.ClassNotModified:
		d.countdown.schedule(id, time.Time{}, hash)
		d.deliveries.WithLabelValues(string(otpbot.TaskRefresh), "edited").Inc()
	case telegram.ClassRateLimited:
		d.limiter.Pause(ctx, msg.Target, telegram.RetryAfterOf(err))
	case telegram.ClassRetryable:
		d.deliveries.WithLabelValues(string(otpbot.TaskRefresh), "retried").Inc()
		d.log.Debug("countdown refresh failed; next step", "message", id, "err", err)
	default:
		// The chat is gone, the group moved, or Telegram refuses the
		// message: the durable update path handles it (marks the link
		// broken, tells ops, moves the links).
		d.log.Warn("countdown refresh refused; handing the message to an update", "message", id, "err", err)
		next = time.Time{}
		task := otpbot.Task{ID: otpbot.TaskID(id, otpbot.TaskUpdate), Kind: otpbot.TaskUpdate, Priority: otpbot.PriorityUpdate,
			MessageID: id, Target: msg.Target, Due: now, Created: now}
		if err := d.store.Enqueue(ctx, task); err != nil {
			d.log.Error("countdown: update not queued", "message", id, "err", err)
		}
	}
}

// yieldToCodes waits, briefly, while codes or updates are being sent, so
// that a due refresh does not go out ahead of a code that is already on
// its way. It waits a quarter of a second at most: under a steady stream
// of codes the countdowns still move.
func (d *Deliverer) yieldToCodes(ctx context.Context) {
	for i := 0; i < 50 && d.urgent.Load() > 0; i++ {
		if !wait.Sleep(ctx, 5*time.Millisecond) {
			return
		}
	}
}
