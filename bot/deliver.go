package bot

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/templates"
)

// DeliveryStore is what the Deliverer needs of the store: the outbox, the
// messages behind it, marking a target broken, and moving the links of a
// group that became a supergroup.
type DeliveryStore interface {
	otpbot.Queue
	otpbot.MessageStore
	MarkBroken(ctx context.Context, t otpbot.Target, reason string) error
	LinksForChat(ctx context.Context, chatID int64) ([]otpbot.Link, error)
	Link(ctx context.Context, l otpbot.Link) error
	Unlink(ctx context.Context, key otpbot.Key, target otpbot.Target) (bool, error)
}

// Renderer renders a code or approval message as it looks at now
// (templates.Set implements it). For a live message past its expiry it
// must render the expired form. Render renders a named template
// ("codes_gone", for a /codes reply too old to delete).
type Renderer interface {
	RenderMessage(msg otpbot.Message, now time.Time) (string, error)
	Render(name string, data any) (string, error)
}

// Sender is the part of the Client the Deliverer uses.
type Sender interface {
	Send(ctx context.Context, m OutMessage) (int, error)
	Edit(ctx context.Context, messageID int, m OutMessage) error
	// Delete deletes a message; one that is gone already counts as deleted.
	Delete(ctx context.Context, target otpbot.Target, messageID int) error
}

// DelivererOptions configure a Deliverer.
type DelivererOptions struct {
	Store    DeliveryStore
	Client   Sender
	Renderer Renderer
	// Limiter is the bot's one rate budget (shared with the commands);
	// nil means a default in-process Limiter.
	Limiter Budget
	Logger  *slog.Logger
	// Now is the clock (time.Now when nil); the store's Claim and due
	// times use it.
	Now        func() time.Time
	Registerer prometheus.Registerer
	// CountdownInterval is how often a live code's time left is refreshed
	// (codes.countdown_interval); default 30s.
	CountdownInterval time.Duration
	// Workers bounds concurrent Telegram calls; default 8.
	Workers int
	// Reserve is how many workers countdown refreshes and ops notices
	// (work below PriorityUpdate) must leave free for codes and updates,
	// so that countdown work never delays a code; default a quarter of
	// Workers, at least 2, always fewer than Workers (none with a single
	// worker). An update also leaves the last free worker to a code.
	Reserve int
	// RefreshTimeout bounds a countdown refresh's Telegram call; default
	// 5s. A late refresh is worthless, and a stuck one must not hold a
	// worker for long.
	RefreshTimeout time.Duration
	// Lease is how long a claimed job is ours; default 30s. A Telegram
	// call is cut off well before it ends, so a job is never worked on
	// after another process may have taken it over.
	Lease time.Duration
	// Ops is told about broken links and prolonged failures; nil logs only.
	Ops *Ops
	// Buttons builds the inline keyboard of a live, unexpired message; nil
	// means DefaultButtons. Approvals.Buttons adds Approve and Decline
	// under HyperCard approval requests. A message in a final state is
	// always shown without buttons, so they go away everywhere once a
	// request is answered or expires.
	Buttons func(msg otpbot.Message) [][]Button
	// MaxBackoff caps the wait between retries of a failing call; default
	// 30s (a code is worthless a minute late).
	MaxBackoff time.Duration
	// MaxInlineWait is how long a worker sending a code waits for the rate
	// limiter before it hands the job back to the outbox; default 2s. An
	// update waits an eighth of it; countdown refreshes and ops notices
	// never wait in a worker (they go back to the outbox at once).
	MaxInlineWait time.Duration
	// FailureReportAfter is the number of failed attempts of one task after
	// which ops hears about it; default 5.
	FailureReportAfter int
	// MetricsInterval is how often queue depth is sampled; default 5s.
	MetricsInterval time.Duration
	// DrainTimeout is how long, once Run's context ends, the Telegram
	// calls in flight may go on. Then they are cut off and their jobs
	// handed back to the outbox (due at once, no attempt counted); Run
	// returns when those store writes are done, at most DrainGrace
	// later. 0 lets every call run to its own timeout (up to three
	// quarters of the lease). serve sets it to shutdown_timeout minus a
	// margin that covers DrainGrace.
	DrainTimeout time.Duration
}

// DrainGrace bounds the store writes that follow the calls cut off at
// DelivererOptions.DrainTimeout: Run returns at most DrainTimeout +
// DrainGrace after its context ends.
const DrainGrace = 2 * time.Second

// DefaultButtons is the keyboard of a live code: copy the code with one tap
// (copy_text), open the confirmation link if the push has one (a URL
// button only for an http(s) link, which is all Telegram accepts; any
// other link is copied like a code), and hide the code ("Used it"). Approval requests get none here: without
// providers.hypercard.api nothing could answer a tap, and with it
// Approvals.Buttons adds Approve and Decline.
func DefaultButtons(msg otpbot.Message) [][]Button {
	ev := msg.Event
	if ev.Kind != otpbot.KindCode {
		return nil
	}
	var rows [][]Button
	var first []Button
	if ev.Code != "" {
		first = append(first, Button{Text: "📋 Copy code", CopyText: ev.Code})
	}
	switch {
	case ev.Link == "":
	case templates.WebLink(ev.Link):
		first = append(first, Button{Text: "🔗 Open link", URL: ev.Link})
	case len(ev.Link) <= maxCopyText:
		first = append(first, Button{Text: "📋 Copy link", CopyText: ev.Link})
	}
	if len(first) > 0 {
		rows = append(rows, first)
	}
	rows = append(rows, []Button{{Text: "✅ Used it — hide", Data: CallbackHide}})
	return rows
}

// maxCopyText is the longest text a copy_text button takes.
const maxCopyText = 256

// Deliverer drains the outbox into Telegram: it claims due tasks, most
// urgent first, sends or edits their messages under the rate limits, keeps
// countdowns running and redacts codes at expiry, and retries or gives up
// by error class.
type Deliverer struct {
	store    DeliveryStore
	client   Sender
	render   Renderer
	limiter  Budget
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration
	workers  int
	reserve  int
	drain    time.Duration
	lease    time.Duration
	// refreshTimeout bounds a refresh's Telegram call.
	refreshTimeout time.Duration
	ops            *Ops
	buttons        func(otpbot.Message) [][]Button
	maxBack        time.Duration
	maxWait        time.Duration
	failRep        int
	metEvery       time.Duration

	// renderKey keys renderHash; random per Deliverer (see renderHash).
	renderKey []byte

	poke chan struct{}
	// ownWrites counts the workers' store calls: a wake-up that follows
	// one may be that call's own (see Run).
	ownWrites atomic.Uint64
	locks     keyedMutex
	// busy counts claims under way and jobs being worked on, so a test
	// can tell when the Deliverer is idle.
	busy atomic.Int32

	// recover brings work on a backoff forward when Telegram is back;
	// storeCtx (set by Run before any worker starts) is the context of
	// the store writes that does it.
	recover  recovery
	storeCtx context.Context

	liveMu sync.Mutex
	live   map[string]time.Time // message id → expiry, messages with a countdown

	latency    *prometheus.HistogramVec
	depth      *prometheus.GaugeVec
	oldest     *prometheus.GaugeVec
	liveGauge  prometheus.Gauge
	broken     prometheus.Counter
	deliveries *prometheus.CounterVec
}

// NewDeliverer checks opts and creates a Deliverer.
func NewDeliverer(opts DelivererOptions) (*Deliverer, error) {
	if opts.Store == nil || opts.Client == nil || opts.Renderer == nil {
		return nil, errors.New("deliverer: store, client and renderer are required")
	}
	d := &Deliverer{
		store:          opts.Store,
		storeCtx:       context.Background(),
		render:         opts.Renderer,
		limiter:        opts.Limiter,
		log:            opts.Logger,
		now:            opts.Now,
		interval:       opts.CountdownInterval,
		workers:        opts.Workers,
		reserve:        opts.Reserve,
		drain:          opts.DrainTimeout,
		lease:          opts.Lease,
		refreshTimeout: opts.RefreshTimeout,
		ops:            opts.Ops,
		buttons:        opts.Buttons,
		maxBack:        opts.MaxBackoff,
		maxWait:        opts.MaxInlineWait,
		failRep:        opts.FailureReportAfter,
		metEvery:       opts.MetricsInterval,
		poke:           make(chan struct{}, 1),
		live:           map[string]time.Time{},
	}
	d.client = watched{Sender: opts.Client, d: d}
	d.renderKey = make([]byte, 32)
	if _, err := rand.Read(d.renderKey); err != nil {
		return nil, fmt.Errorf("deliverer: render key: %w", err)
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.limiter == nil {
		d.limiter = NewLimiter(LimiterOptions{Now: d.now, Logger: d.log})
	}
	if d.interval <= 0 {
		d.interval = 30 * time.Second
	}
	if d.workers <= 0 {
		d.workers = 8
	}
	if d.reserve <= 0 {
		d.reserve = max(2, d.workers/4)
	}
	d.reserve = min(d.reserve, d.workers-1)
	if d.refreshTimeout <= 0 {
		d.refreshTimeout = 5 * time.Second
	}
	if d.lease <= 0 {
		d.lease = 30 * time.Second
	}
	if d.buttons == nil {
		d.buttons = DefaultButtons
	}
	if d.maxBack <= 0 {
		d.maxBack = 30 * time.Second
	}
	if d.maxWait <= 0 {
		d.maxWait = 2 * time.Second
	}
	if d.failRep <= 0 {
		d.failRep = 5
	}
	if d.metEvery <= 0 {
		d.metEvery = 5 * time.Second
	}
	reg := opts.Registerer
	d.latency = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "otpbot_delivery_seconds",
		Help:    "Time from a task's creation (a push's receipt, for a send) to Telegram's acceptance, by task kind.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300},
	}, []string{"kind"}))
	d.depth = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "otpbot_queue_depth",
		Help: "Pending outbox tasks by priority (0 codes, 1 updates, 2 refreshes, 3 other).",
	}, []string{"priority"}))
	d.oldest = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "otpbot_queue_oldest_seconds",
		Help: "Age of the oldest pending outbox task by priority.",
	}, []string{"priority"}))
	d.liveGauge = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "otpbot_live_countdowns",
		Help: "Code and approval messages with a running countdown, as seen by this process.",
	}))
	d.broken = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "otpbot_broken_links_total",
		Help: "Targets Telegram refused for good (chat not found, bot blocked or kicked).",
	}))
	d.deliveries = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "otpbot_deliveries_total",
		Help: "Finished outbox tasks by kind and result (sent, edited, deleted, skipped, retried, deferred, postponed, duplicate, migrated, gone, failed).",
	}, []string{"kind", "result"}))
	return d, nil
}

// Poke wakes the loop as if the store had signalled new work; tests that
// move an injected clock call it, since timers run on real time.
func (d *Deliverer) Poke() {
	select {
	case d.poke <- struct{}{}:
	default:
	}
}

// keyedMutex is a mutex per key, forgotten when nobody holds or waits.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu sync.Mutex
	n  int
}

// lock locks key and reports whether it had to wait for another holder.
func (k *keyedMutex) lock(key string) (unlock func(), waited bool) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.n++
	waited = e.n > 1
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.n--; e.n == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}, waited
}

// sleepCtx sleeps d or until ctx ends; false when ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// work runs one job. ctx is Run's context: it ends the wait for the rate
// limiter at once. The Telegram call runs on callBase and the store
// writes on storeBase, which outlive ctx so that shutdown lets them
// finish, until Run's drain deadline cuts them off. The call is bounded by
// callBudget: a refresh's short timeout, and never past three quarters of
// the lease.
func (d *Deliverer) work(ctx, callBase, storeBase context.Context, job otpbot.Job) {
	callCtx, cancel := context.WithTimeout(callBase, d.callBudget(job, d.now()))
	defer cancel()
	storeCtx, cancelStore := context.WithTimeout(storeBase, d.storeBudget(job, d.now()))
	defer cancelStore()
	if id := job.Task.MessageID; id != "" {
		// One job per message at a time in this process, so a refresh and
		// a hide never race each other's edits.
		unlock, waited := d.locks.lock(id)
		defer unlock()
		if waited && job.Message != nil {
			// The message changed while we waited: work on what is stored.
			fresh, ok, err := d.store.Message(storeCtx, id)
			switch {
			case err != nil:
				d.log.Warn("reload message failed", "message", otpbot.Ref(id), "err", err)
			case !ok:
				job.Message = nil
			default:
				job.Message = &fresh
			}
		}
	}
	d.recover.forget(job.Task.ID)
	w := &jobRun{d: d, job: job, ctx: callCtx, sctx: storeCtx, runCtx: ctx}
	if ctx.Err() != nil {
		// Shutdown began while this job waited for its message's lock:
		// start no new Telegram call, leave it to the next process.
		w.deferTo(d.now(), "shutdown")
		return
	}
	switch job.Task.Kind {
	case otpbot.TaskNotice:
		w.notice()
	case otpbot.TaskDelete:
		w.deleteMessage()
	case otpbot.TaskSend, otpbot.TaskUpdate, otpbot.TaskRefresh, otpbot.TaskExpire:
		w.message()
	default:
		d.log.Error("outbox task of unknown kind dropped", "task", otpbot.Ref(job.Task.ID), "kind", job.Task.Kind)
		w.complete(nil, "failed")
	}
}

// jobRun is one job being worked on.
type jobRun struct {
	d   *Deliverer
	job otpbot.Job
	ctx context.Context // for Telegram: survives shutdown, cut at callBudget
	// sctx is for the store writes, above all those that record what
	// Telegram accepted: a context of their own, not the call's (which a
	// slow call may have all but used up), lasting until shortly before
	// the lease ends.
	sctx   context.Context
	runCtx context.Context // the Run context: ends waits at shutdown
	// sentID is the Telegram message id this job's send created, 0 when
	// it sent nothing.
	sentID int
	// refused is set once ops were told Telegram refused this message.
	refused bool
}

// storeBudget is how long the store writes of job may go on if it starts
// at now: until shortly before its lease ends, and at least a few seconds
// (recording a send that Telegram accepted is worth a write after the
// lease: it is guarded by the message's version, not by the lease).
func (d *Deliverer) storeBudget(job otpbot.Job, now time.Time) time.Duration {
	return max(job.LeaseUntil.Sub(now)-d.lease/20, 3*time.Second)
}

// storeDo runs a store operation, retrying with a short backoff while the
// store is unavailable (a Redis failover, a dropped connection) until the
// store context ends. A write lost after Telegram accepted a send would
// make the job run again and send the code a second time.
func (w *jobRun) storeDo(op func(ctx context.Context) error) error {
	backoff := 25 * time.Millisecond
	for {
		// Before the write: the wake-up it may send must find it counted.
		w.d.ownWrites.Add(1)
		err := op(w.sctx)
		if err == nil || !errors.Is(err, otpbot.ErrUnavailable) {
			return err
		}
		if !sleepCtx(w.sctx, jitter(backoff)) {
			return err
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

func (w *jobRun) logAttrs(extra ...any) []any {
	t := w.job.Task
	attrs := []any{"task", otpbot.Ref(t.ID), "kind", t.Kind, "priority", int(t.Priority), "target", t.Target, "attempts", t.Attempts}
	if m := w.job.Message; m != nil {
		attrs = append(attrs, "message", otpbot.Ref(m.ID), "event", m.Event.Name, "provider", string(m.Event.Provider))
		if m.Event.CardLast4 != "" {
			attrs = append(attrs, "card", otpbot.CardNumber(m.Event.CardLast4))
		}
	}
	return append(attrs, extra...)
}

// complete finishes the job, logging a lost lease (another worker owns the
// task now; its outcome wins).
func (w *jobRun) complete(msg *otpbot.Message, result string, next ...otpbot.Task) bool {
	err := w.storeDo(func(ctx context.Context) error { return w.d.store.Complete(ctx, w.job, msg, next...) })
	w.d.deliveries.WithLabelValues(string(w.job.Task.Kind), result).Inc()
	if err != nil {
		w.d.log.Warn("outbox complete failed", w.logAttrs("err", err)...)
		return false
	}
	return true
}

// finish stores msg as the job left it and completes the job with next,
// in one store transaction (CompleteMessage: one commit, one round trip,
// where a message write and a completion were two). The write is guarded
// by the version the job was claimed with, so a change made meanwhile (a
// hide, a new AUTH_3DS result) is never overwritten: on a conflict the
// Telegram facts (message id, what it shows) are merged into the newer
// version and an update task re-renders it.
//
// When the job's lease is lost (another worker took the task over while a
// call hung), what Telegram accepted is still recorded, with
// UpdateMessage alone (guarded by the version, not by the lease), and the
// completion is left to the lease's new holder.
func (w *jobRun) finish(msg *otpbot.Message, result string, next ...otpbot.Task) bool {
	if msg == nil {
		return w.complete(nil, result, next...)
	}
	d := w.d
	prev := w.job.Message.UpdatedAt
	cur := *msg
	if !cur.UpdatedAt.After(prev) {
		// Versions must differ even when the clock did not move.
		cur.UpdatedAt = prev.Add(time.Nanosecond)
	}
	var extra []otpbot.Task
	leased := true // false once CompleteMessage found the lease lost
	for attempt := 0; ; attempt++ {
		var err error
		if leased {
			// extra before next, as when they were two writes: a later
			// task in the same slot replaces an earlier one.
			tasks := append(slices.Clip(extra), next...)
			err = w.storeDo(func(ctx context.Context) error { return d.store.CompleteMessage(ctx, w.job, prev, cur, tasks...) })
			if err == nil {
				d.deliveries.WithLabelValues(string(w.job.Task.Kind), result).Inc()
				return true
			}
			if errors.Is(err, otpbot.ErrLeaseLost) {
				leased = false
			}
		}
		if !leased {
			err = w.storeDo(func(ctx context.Context) error { return d.store.UpdateMessage(ctx, prev, cur, extra...) })
			if err == nil {
				break
			}
		}
		if errors.Is(err, otpbot.ErrNotFound) {
			// Forgotten meanwhile (its code is gone): nothing to keep.
			return w.complete(nil, result)
		}
		if !errors.Is(err, otpbot.ErrConflict) || attempt >= 4 {
			d.log.Error("store message update failed", w.logAttrs("err", err)...)
			w.retry(d.now().Add(w.backoff()), "store: "+err.Error())
			return false
		}
		var fresh otpbot.Message
		var ok bool
		gerr := w.storeDo(func(ctx context.Context) (err error) {
			fresh, ok, err = d.store.Message(ctx, msg.ID)
			return err
		})
		if gerr != nil || !ok {
			return w.complete(nil, result)
		}
		if w.sentID != 0 && fresh.TelegramID != 0 && fresh.TelegramID != w.sentID {
			// Another worker sent this message too (one of us took the
			// job over after the other's lease ran out while its call
			// hung) and recorded its send first: ours is an extra copy
			// whose countdown nobody runs. Remove it.
			w.dropDuplicate(*msg)
			return w.complete(nil, "duplicate")
		}
		prev = fresh.UpdatedAt
		if fresh.TelegramID == 0 {
			fresh.TelegramID, fresh.SentAt, fresh.SendStarted = msg.TelegramID, msg.SentAt, msg.SendStarted
		}
		fresh.Rendered = msg.Rendered
		fresh.UpdatedAt = d.now()
		if !fresh.UpdatedAt.After(prev) {
			fresh.UpdatedAt = prev.Add(time.Nanosecond)
		}
		cur = fresh
		// What Telegram shows was rendered from the older version: let an
		// update bring it in line (it calls nothing if it already is).
		extra = []otpbot.Task{{
			ID: otpbot.TaskID(fresh.ID, otpbot.TaskUpdate), Kind: otpbot.TaskUpdate, Priority: otpbot.PriorityUpdate,
			MessageID: fresh.ID, Target: fresh.Target, Due: d.now(), Created: d.now(),
		}}
		if fresh.State != otpbot.StateLive {
			next = nil
			d.forget(fresh.ID)
		}
	}
	return w.complete(nil, result, next...)
}

// dropDuplicate deletes the extra copy msg of a message another worker
// sent and recorded first; if Telegram will not delete it, it is edited
// to the expired form so that no live code stays on screen unmanaged.
func (w *jobRun) dropDuplicate(msg otpbot.Message) {
	d := w.d
	ctx, cancel := context.WithTimeout(w.sctx, 10*time.Second)
	defer cancel()
	err := d.client.Delete(ctx, msg.Target, w.sentID)
	if err == nil {
		d.log.Warn("duplicate message deleted: another worker had sent it", w.logAttrs("telegram_id", w.sentID)...)
		return
	}
	msg.State = otpbot.StateExpired
	text, rerr := d.render.RenderMessage(msg, d.now())
	if rerr == nil {
		rerr = d.client.Edit(ctx, w.sentID, OutMessage{Target: msg.Target, Text: text})
	}
	if rerr != nil {
		d.log.Error("duplicate message could be neither deleted nor redacted", w.logAttrs("telegram_id", w.sentID, "err", errors.Join(err, rerr))...)
		return
	}
	d.log.Warn("duplicate message redacted (delete failed): another worker had sent it", w.logAttrs("telegram_id", w.sentID, "err", err)...)
}

// retry hands the job back to run at `at` after a failed attempt: the
// store counts it in Task.Attempts, which the backoff and the ops report
// go by. Only a failed Telegram call (or store write) is an attempt; see
// deferTo for work that merely has to wait.
func (w *jobRun) retry(at time.Time, reason string) bool {
	w.d.deliveries.WithLabelValues(string(w.job.Task.Kind), "retried").Inc()
	if err := w.storeDo(func(ctx context.Context) error { return w.d.store.Retry(ctx, w.job, at, reason) }); err != nil {
		w.d.log.Warn("outbox retry failed", w.logAttrs("err", err)...)
		return false
	}
	return true
}

// deferredPrefix starts the LastError of a task that was put off without
// a failed call (rate limits, flood control, shutdown).
const deferredPrefix = "deferred: "

// deferTo hands the job back to run at `at` without counting an attempt:
// the rate limiter, Telegram's flood control or a shutdown put it off, and
// nothing failed. Queue.Retry always counts an attempt, so the unchanged
// task is enqueued again through Complete instead (same ID, same Created;
// Complete removes the task before it enqueues the new one). Attempts
// then counts real failures only, which keeps the backoff and the
// "keeps failing" ops report honest.
func (w *jobRun) deferTo(at time.Time, reason string) {
	w.d.deliveries.WithLabelValues(string(w.job.Task.Kind), "deferred").Inc()
	t := w.job.Task
	t.Due = at
	t.LastError = deferredPrefix + reason
	if err := w.storeDo(func(ctx context.Context) error { return w.d.store.Complete(ctx, w.job, nil, t) }); err != nil {
		w.d.log.Warn("outbox deferral failed", w.logAttrs("err", err)...)
	}
}

// backoff is the wait before attempt n+1 of a failing call: exponential
// from one second, capped, with jitter. Task.Attempts counts failed calls
// only (deferrals do not touch it).
func (w *jobRun) backoff() time.Duration {
	n := min(w.job.Task.Attempts, 16)
	limit := w.d.maxBack
	if !low(w.job.Task.Priority) {
		limit = min(limit, urgentMaxBackoff)
	}
	return jitter(min(time.Second<<n, limit))
}

// slot waits for the rate limiter. It returns false (after handing the job
// back to the outbox) when the wait is a 429 pause or longer than the
// inline maximum of the job's priority, or when shutdown began. Only a
// code waits in its worker for long (MaxInlineWait); an update briefly;
// work below PriorityUpdate not at all, so it never holds a worker that a
// code could use.
func (w *jobRun) slot(p otpbot.Priority) bool {
	t := w.job.Task
	maxWait := w.d.maxWait
	switch {
	case low(p):
		maxWait = 0
	case p == otpbot.PriorityUpdate:
		maxWait /= 8
	}
	var waited time.Duration
	for {
		wait := w.d.limiter.Take(w.sctx, t.Target, p)
		if wait == 0 {
			return true
		}
		if until := w.d.limiter.PausedUntil(w.sctx, t.Target); !until.IsZero() {
			w.deferTo(until, "paused by telegram flood control")
			return false
		}
		if waited+wait > maxWait {
			w.deferTo(w.d.now().Add(wait), "rate limited")
			return false
		}
		if !sleepCtx(w.runCtx, wait) {
			// Shutting down: release the job at once rather than leaving
			// it leased until the lease runs out.
			w.deferTo(w.d.now(), "shutdown")
			return false
		}
		waited += wait
	}
}

// failed handles a Telegram error for the job. msg is the message as it
// would have been stored (nil for a notice).
func (w *jobRun) failed(err error, msg *otpbot.Message) {
	d := w.d
	t := w.job.Task
	if errors.Is(err, context.Canceled) && w.runCtx.Err() != nil {
		// Cut off at the drain deadline of a shutdown: nothing failed,
		// and the next process (or start) takes the job at once. Whether
		// Telegram acted on the call is unknown.
		d.log.Warn("telegram call cut off by shutdown; left in the outbox", w.logAttrs()...)
		w.deferTo(d.now(), "shutdown")
		return
	}
	switch ClassOf(err) {
	case ClassMigrated:
		w.migrated(err, msg)
	case ClassRateLimited:
		// Flood control says "not now", not "this failed": wait as told
		// without counting an attempt.
		pause := d.limiter.Pause(w.sctx, t.Target, RetryAfterOf(err))
		d.log.Warn("telegram rate limited", w.logAttrs("retry_after", pause)...)
		w.deferTo(d.now().Add(pause), err.Error())
	case ClassGone:
		reason := apiDescription(err)
		d.log.Warn("telegram refused the target for good", w.logAttrs("err", err)...)
		if msg == nil {
			// An ops notice whose chat is gone: nothing to mark.
			w.complete(nil, "gone")
			return
		}
		d.broken.Inc()
		if merr := w.storeDo(func(ctx context.Context) error { return d.store.MarkBroken(ctx, t.Target, reason) }); merr != nil {
			d.log.Error("mark link broken failed", w.logAttrs("err", merr)...)
		}
		d.ops.Broken(t.Target, reason)
		msg.State = otpbot.StateFailed
		msg.UpdatedAt = d.now()
		d.forget(msg.ID)
		w.finish(msg, "gone")
	case ClassBadRequest:
		d.log.Error("telegram rejected the request", w.logAttrs("err", err)...)
		if msg != nil {
			// A notice to the ops chat is not reported there again, nor
			// a message whose plain-text retry ops heard of already.
			if !w.refused {
				d.ops.Refused(t.Target, apiDescription(err))
			}
			if t.Kind == otpbot.TaskExpire || msg.State == otpbot.StateExpired {
				msg.State = otpbot.StateExpired
			} else {
				msg.State = otpbot.StateFailed
			}
			msg.UpdatedAt = d.now()
			d.forget(msg.ID)
		}
		w.finish(msg, "failed")
	default: // retryable
		wait := w.backoff()
		d.log.Warn("telegram call failed, retrying", w.logAttrs("err", err, "retry_in", wait)...)
		if t.Attempts+1 == d.failRep {
			d.ops.Failing(t.Target, t.Attempts+1, err)
		}
		at := d.now().Add(wait)
		if w.retry(at, err.Error()) {
			d.recover.failed(t, at, err.Error())
		}
	}
}

// apiDescription is Telegram's description of a failed call, or the
// error's text.
func apiDescription(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Description
	}
	return err.Error()
}

// deleteMessage carries out a TaskDelete: the message (a /codes reply)
// must not outlive the codes it shows. Telegram will not delete a message
// older than 48 hours in most chats; that one is edited to a text without
// the codes instead (codes_gone). A message that is gone already counts as
// deleted.
func (w *jobRun) deleteMessage() {
	d := w.d
	t := w.job.Task
	if t.TelegramID == 0 {
		w.complete(nil, "skipped")
		return
	}
	if !w.slot(t.Priority) {
		return
	}
	result := "deleted"
	err := d.client.Delete(w.ctx, t.Target, t.TelegramID)
	if CannotDelete(err) {
		result = "edited"
		var text string
		if text, err = d.render.Render("codes_gone", nil); err == nil {
			err = d.client.Edit(w.ctx, t.TelegramID, OutMessage{Target: t.Target, Text: text})
		}
	}
	if err != nil && ClassOf(err) != ClassNotModified {
		w.failed(err, nil)
		return
	}
	d.latency.WithLabelValues(string(t.Kind)).Observe(d.now().Sub(t.Created).Seconds())
	d.log.Info("message with codes removed", w.logAttrs("result", result)...)
	w.complete(nil, result)
}

// migrated follows a group that Telegram upgraded to a supergroup: the
// links of the group move to the supergroup (Telegram gives the new id
// once, in the refusal), and a send or notice is retried there at once.
// A message already in the group cannot be followed (its copy in the
// supergroup has another id): it is given up, as when a chat is gone, but
// nothing is marked broken.
func (w *jobRun) migrated(err error, msg *otpbot.Message) {
	d := w.d
	t := w.job.Task
	var ae *APIError
	errors.As(err, &ae)
	to := otpbot.Target{ChatID: ae.MigrateTo, ThreadID: t.Target.ThreadID}
	if merr := w.moveLinks(t.Target.ChatID, ae.MigrateTo); merr != nil {
		d.log.Error("moving the links of an upgraded group failed", w.logAttrs("to", to, "err", merr)...)
		w.retry(d.now().Add(w.backoff()), "move links: "+merr.Error())
		return
	}
	d.log.Warn("group upgraded to a supergroup: links moved", w.logAttrs("to", to)...)
	next := t
	next.Target, next.Due = to, d.now()
	switch {
	case msg == nil:
		// An ops notice: telegram.ops_chat names the old group.
		d.log.Warn("the ops chat was upgraded to a supergroup: set telegram.ops_chat to its new id", "ops_chat", to.ChatID)
		w.complete(nil, "migrated", next)
	case msg.TelegramID == 0:
		msg.Target, msg.UpdatedAt = to, d.now()
		w.finish(msg, "migrated", next)
	default:
		msg.State, msg.UpdatedAt = otpbot.StateFailed, d.now()
		d.forget(msg.ID)
		w.finish(msg, "gone")
	}
}

// moveLinks moves every link of chat from to chat to (same key, topic and
// creator), unbroken.
func (w *jobRun) moveLinks(from, to int64) error {
	d := w.d
	var links []otpbot.Link
	if err := w.storeDo(func(ctx context.Context) (err error) {
		links, err = d.store.LinksForChat(ctx, from)
		return err
	}); err != nil {
		return err
	}
	for _, l := range links {
		moved := l
		moved.Target.ChatID, moved.Broken, moved.BrokenReason = to, false, ""
		if err := w.storeDo(func(ctx context.Context) error { return d.store.Link(ctx, moved) }); err != nil {
			return err
		}
		if err := w.storeDo(func(ctx context.Context) error {
			_, err := d.store.Unlink(ctx, l.Key, l.Target)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// notice sends Task.Text as a new message: an ops notice, or a reply to a
// code message (Task.ReplyTo, see Threads; the Client sends it without
// the reply when that message is gone).
func (w *jobRun) notice() {
	t := w.job.Task
	if !w.slot(t.Priority) {
		return
	}
	_, err := w.d.client.Send(w.ctx, OutMessage{Target: t.Target, Text: t.Text, ReplyTo: t.ReplyTo})
	if err != nil {
		w.failed(err, nil)
		return
	}
	w.d.latency.WithLabelValues(string(t.Kind)).Observe(w.d.now().Sub(t.Created).Seconds())
	// A notice with a reply-to answers a cardholder's code message (a
	// thread reply); the others are ops reports.
	msg := "ops notice delivered"
	if t.ReplyTo != 0 {
		msg = "thread reply delivered"
	}
	w.d.log.Info(msg, w.logAttrs()...)
	w.complete(nil, "sent")
}

// message sends or edits a code or approval message.
func (w *jobRun) message() {
	d := w.d
	t := w.job.Task
	if w.job.Message == nil {
		d.log.Info("outbox task without its message dropped", w.logAttrs()...)
		w.complete(nil, "skipped")
		return
	}
	msg := *w.job.Message
	now := d.now()
	if msg.State == otpbot.StateFailed {
		w.complete(nil, "skipped")
		return
	}
	if msg.State == otpbot.StateLive && (t.Kind == otpbot.TaskExpire || msg.Event.Expired(now)) {
		// Expired while it waited, or its expiry tick: show the expired
		// form. A code that expired before it was ever sent is still sent,
		// in that form, so the cardholder learns why no code came; it is
		// never sent as live.
		msg.State = otpbot.StateExpired
	}
	if msg.TelegramID == 0 && t.Kind != otpbot.TaskSend {
		// Not sent yet: the send, pending or in flight (in another worker
		// or process), renders the latest version, and when its store
		// write finds a newer version than it rendered it queues an update
		// then. Sending here could put a second message in the chat.
		w.complete(nil, "skipped")
		return
	}
	if msg.State != otpbot.StateLive && t.Kind == otpbot.TaskRefresh && msg.Rendered != "" && msg.State == w.job.Message.State {
		// A tick left over for a message that is final already.
		w.complete(nil, "skipped")
		return
	}

	text, err := d.render.RenderMessage(msg, now)
	if err != nil {
		d.log.Error("render failed", w.logAttrs("err", err)...)
		if msg.State == otpbot.StateLive {
			msg.State = otpbot.StateFailed
		}
		msg.UpdatedAt = now
		d.forget(msg.ID)
		w.finish(&msg, "failed")
		return
	}
	out := OutMessage{Target: msg.Target, Text: text}
	if msg.State == otpbot.StateLive {
		out.Buttons = d.buttons(msg)
		out.Protect = true
	}
	hash := d.renderHash(out)
	next := d.nextTick(msg, now)

	if msg.TelegramID != 0 && hash == msg.Rendered {
		// The cardholder already sees exactly this: no call.
		d.track(msg)
		if msg.State != w.job.Message.State {
			msg.UpdatedAt = now
			w.finish(&msg, "skipped", next...)
		} else {
			w.complete(nil, "skipped", next...)
		}
		return
	}
	prio := t.Priority
	if t.Kind == otpbot.TaskRefresh && msg.State != otpbot.StateLive {
		// A refresh that finds its code expired is the expiry edit: it
		// gets an update's share of the limits, never skipped.
		prio = otpbot.PriorityUpdate
	}
	if t.Kind == otpbot.TaskRefresh && msg.TelegramID != 0 && msg.State == otpbot.StateLive {
		if wait := d.limiter.Take(w.sctx, t.Target, t.Priority); wait > 0 {
			// No budget to spare for a refresh: skip this one and go to
			// the next tick, unless the next tick is the expiry edit, in
			// which case this last refresh is only delayed.
			if len(next) == 1 && next[0].Kind == otpbot.TaskRefresh {
				d.track(msg)
				w.complete(nil, "skipped", next...)
				return
			}
			w.deferTo(now.Add(wait), "refresh deferred by rate limit")
			return
		}
	} else if !w.slot(prio) {
		return
	}

	inDoubt := msg.TelegramID == 0 && !msg.SendStarted.IsZero()
	if msg.TelegramID == 0 && !w.markSendStarted(&msg) {
		return
	}
	start := d.now()
	result := "edited"
	call := func(out OutMessage) error {
		if msg.TelegramID != 0 {
			return d.client.Edit(w.ctx, msg.TelegramID, out)
		}
		id, err := d.client.Send(w.ctx, out)
		if err == nil {
			msg.TelegramID, msg.SentAt, msg.SendStarted = id, d.now(), time.Time{}
			w.sentID = id
		}
		return err
	}
	if msg.TelegramID == 0 {
		result = "sent"
	}
	err = call(out)
	if ClassOf(err) == ClassBadRequest {
		// Telegram refuses the message itself (HTML it cannot parse, a
		// button it rejects): say so to ops, and try once more as plain
		// text without buttons, so that the code still arrives (or, for
		// the expiry edit, still goes).
		d.log.Error("telegram rejected the message; trying plain text", w.logAttrs("err", err)...)
		d.ops.Refused(t.Target, apiDescription(err))
		w.refused = true
		out = OutMessage{Target: out.Target, Text: templates.PlainText(out.Text), Protect: out.Protect, Plain: true}
		hash = d.renderHash(out)
		err = call(out)
	}
	if err != nil && ClassOf(err) != ClassNotModified {
		w.failed(err, &msg)
		return
	}
	done := d.now()
	msg.Rendered, msg.UpdatedAt = hash, done
	// A send's latency counts from the push's acknowledgement, through
	// every retry and deferral since; other work from its task's creation.
	since := t.Created
	if t.Kind == otpbot.TaskSend && !msg.Event.ReceivedAt.IsZero() {
		since = msg.Event.ReceivedAt
	}
	d.latency.WithLabelValues(string(t.Kind)).Observe(done.Sub(since).Seconds())
	if msg.State == otpbot.StateLive {
		d.track(msg)
	} else {
		d.forget(msg.ID)
	}
	if w.finish(&msg, result, next...) {
		d.log.Info("delivered", w.logAttrs("state", string(msg.State), "telegram_id", msg.TelegramID,
			"result", result, "call_ms", done.Sub(start).Milliseconds(), "latency_ms", done.Sub(since).Milliseconds())...)
		if inDoubt && result == "sent" {
			w.removeOrphans(msg)
		}
	}
}

// nextTick is the countdown task after showing msg at now: a refresh at the
// next step of the countdown (steps are aligned on the expiry, so the time
// left reads 4:30, 4:00... whenever the refresh runs), or the expiry edit.
// Nothing for a message in a final state or without expiry.
func (d *Deliverer) nextTick(msg otpbot.Message, now time.Time) []otpbot.Task {
	exp := msg.Event.ExpiresAt
	if msg.State != otpbot.StateLive || exp.IsZero() {
		return nil
	}
	base := otpbot.Task{MessageID: msg.ID, Target: msg.Target}
	left := exp.Sub(now)
	k := (left - 1) / d.interval // whole steps strictly before the expiry
	at := exp.Add(-k * d.interval)
	if at.Sub(now) < d.interval/2 && k > 0 {
		// Too close to now to show anything new: the step after.
		k--
		at = exp.Add(-k * d.interval)
	}
	if k <= 0 {
		base.Kind, base.Priority, base.Due = otpbot.TaskExpire, otpbot.PriorityUpdate, exp
	} else {
		base.Kind, base.Priority, base.Due = otpbot.TaskRefresh, otpbot.PriorityRefresh, at
	}
	base.ID = otpbot.TaskID(msg.ID, base.Kind)
	base.Created = base.Due
	return []otpbot.Task{base}
}

// renderHash identifies what the cardholder sees: text, keyboard and
// protection. It is stored with the message (Message.Rendered), also
// after the code itself has left the store (a live message past its
// expiry, until the expiry edit), and the text it hashes shows the code:
// a plain hash would give the code away to anyone who renders the stored
// message with each of the million 6-digit codes. So it is keyed, with
// the Deliverer's own random key, never stored. After a restart, or when
// another process on the same Redis refreshes a message this one
// rendered, the hashes differ and the first edit that would change
// nothing is made once more (Telegram answers "not modified", which
// counts as done): only that skip is lost, never an edit.
func (d *Deliverer) renderHash(m OutMessage) string {
	h := hmac.New(sha256.New, d.renderKey)
	h.Write([]byte(m.Text))
	for _, row := range m.Buttons {
		h.Write([]byte{0})
		for _, b := range row {
			fmt.Fprintf(h, "\x01%s\x02%s\x02%s\x02%s", b.Text, b.Data, b.URL, b.CopyText)
		}
	}
	if m.Protect {
		h.Write([]byte{1})
	}
	if m.Plain {
		h.Write([]byte{2})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// track and forget keep the live-countdown gauge.
func (d *Deliverer) track(msg otpbot.Message) {
	if msg.State != otpbot.StateLive || msg.Event.ExpiresAt.IsZero() {
		return
	}
	d.liveMu.Lock()
	d.live[msg.ID] = msg.Event.ExpiresAt
	d.liveGauge.Set(float64(len(d.live)))
	d.liveMu.Unlock()
}

func (d *Deliverer) forget(id string) {
	d.liveMu.Lock()
	delete(d.live, id)
	d.liveGauge.Set(float64(len(d.live)))
	d.liveMu.Unlock()
}

// sampleLoop samples the outbox for the queue metrics until ctx ends.
func (d *Deliverer) sampleLoop(ctx context.Context) {
	tick := time.NewTicker(d.metEvery)
	defer tick.Stop()
	for {
		d.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sample updates queue depth, oldest age and live countdowns.
func (d *Deliverer) sample(ctx context.Context) {
	now := d.now()
	d.liveMu.Lock()
	for id, exp := range d.live {
		// Finished by another process, or lost: past expiry it is not live.
		if now.After(exp.Add(time.Minute)) {
			delete(d.live, id)
		}
	}
	d.liveGauge.Set(float64(len(d.live)))
	d.liveMu.Unlock()

	stats, err := d.store.Pending(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("outbox pending failed", "err", err)
		}
		return
	}
	for p := otpbot.PriorityCode; p <= otpbot.PriorityOther; p++ {
		st := stats[p]
		label := priorityLabel(p)
		d.depth.WithLabelValues(label).Set(float64(st.Count))
		age := 0.0
		if st.Count > 0 && !st.Oldest.IsZero() {
			age = max(now.Sub(st.Oldest).Seconds(), 0)
		}
		d.oldest.WithLabelValues(label).Set(age)
	}
}

func priorityLabel(p otpbot.Priority) string {
	switch p {
	case otpbot.PriorityCode:
		return "code"
	case otpbot.PriorityUpdate:
		return "update"
	case otpbot.PriorityRefresh:
		return "refresh"
	}
	return "other"
}
