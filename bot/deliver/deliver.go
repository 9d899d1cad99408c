package deliver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
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

// Renderer picks the templates a chat is written in: its language and
// time zone (templates.Chats; a templates.Set writes every chat in the
// configured defaults). A Locale renders a code or approval message as it
// looks at now, the expired form for a live message past its expiry.
type Renderer interface {
	Locale(ctx context.Context, chatID int64) *templates.Locale
}

// Sender is the part of the Client the Deliverer uses.
type Sender interface {
	Send(ctx context.Context, m telegram.OutMessage) (int, error)
	Edit(ctx context.Context, messageID int, m telegram.OutMessage) error
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
	Limiter telegram.Budget
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
	// ExtraButtons adds rows under the DefaultButtons of a live, unexpired
	// message, labelled in the chat's language (loc); nil adds none.
	// Approvals.Buttons adds Approve and Decline under HyperCard approval
	// requests. A message in a final state is always shown without
	// buttons, so they go away everywhere once a request is answered or
	// expires.
	ExtraButtons func(loc *templates.Locale, msg otpbot.Message) [][]telegram.Button
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
	// RefreshClaims claims each countdown step for one process when
	// several share the store (the Redis store's Once); nil when this
	// process delivers alone.
	RefreshClaims RefreshClaimer
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

// DefaultButtons is the keyboard of a live code, labelled in loc's
// language: copy the code with one tap (copy_text), open the
// confirmation link if the push has one (a URL button only for an
// http(s) link, which is all Telegram accepts; any other link is copied
// like a code), and hide the code ("Used it"). Approval requests get none
// here: without providers.hypercard.api nothing could answer a tap, and
// with it Approvals.Buttons adds Approve and Decline
// (DelivererOptions.ExtraButtons).
func DefaultButtons(loc *templates.Locale, msg otpbot.Message) [][]telegram.Button {
	ev := msg.Event
	if ev.Kind != otpbot.KindCode {
		return nil
	}
	var rows [][]telegram.Button
	var first []telegram.Button
	if ev.Code != "" {
		first = append(first, telegram.Button{Text: loc.Label("button_copy_code", nil), CopyText: ev.Code})
	}
	switch {
	case ev.Link == "":
	case templates.WebLink(ev.Link):
		first = append(first, telegram.Button{Text: loc.Label("button_open_link", nil), URL: ev.Link})
	case len(ev.Link) <= maxCopyText:
		first = append(first, telegram.Button{Text: loc.Label("button_copy_link", nil), CopyText: ev.Link})
	}
	if len(first) > 0 {
		rows = append(rows, first)
	}
	rows = append(rows, []telegram.Button{{Text: loc.Label("button_hide", nil), Data: telegram.CallbackHide}})
	return rows
}

// maxCopyText is the longest text a copy_text button takes.
const maxCopyText = 256

// Deliverer drains the outbox into Telegram: it claims due tasks, most
// urgent first, sends or edits their messages under the rate limits, keeps
// countdowns running and redacts codes at expiry, and retries or gives up
// by error class.
type Deliverer struct {
	store DeliveryStore
	// claimMarks is set when the store's Claim marks each send as started
	// (otpbot.SendMarker): no mark of its own is written before a send.
	claimMarks bool
	client     Sender
	render     Renderer
	limiter    telegram.Budget
	log        *slog.Logger
	now        func() time.Time
	interval   time.Duration
	workers    int
	reserve    int
	drain      time.Duration
	lease      time.Duration
	// refreshTimeout bounds a refresh's Telegram call.
	refreshTimeout time.Duration
	ops            *Ops
	extra          func(*templates.Locale, otpbot.Message) [][]telegram.Button
	maxBack        time.Duration
	maxWait        time.Duration
	turn           turn // workers refused by the bot's budget ask in turn
	failRep        int
	metEvery       time.Duration

	// renderKey keys renderHash; random per Deliverer (see renderHash).
	renderKey []byte

	poke chan struct{}
	// tickPoke wakes the countdown loop as poke wakes Run.
	tickPoke chan struct{}
	// countdown schedules the refreshes of live messages, in memory; it
	// starts once firstClaim is closed (see Run), and yields while urgent
	// (code and update jobs under way) is above zero.
	countdown   *countdown
	firstClaim  chan struct{}
	claimedOnce sync.Once
	urgent      atomic.Int32
	claims      RefreshClaimer
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

// claimMarksSends reports whether s marks each send as started in its
// Claim (otpbot.SendMarker).
func claimMarksSends(s DeliveryStore) bool {
	m, ok := s.(otpbot.SendMarker)
	return ok && m.ClaimMarksSends()
}

// NewDeliverer checks opts and creates a Deliverer.
func NewDeliverer(opts DelivererOptions) (*Deliverer, error) {
	if opts.Store == nil || opts.Client == nil || opts.Renderer == nil {
		return nil, errors.New("deliverer: store, client and renderer are required")
	}
	d := &Deliverer{
		store:          opts.Store,
		claimMarks:     claimMarksSends(opts.Store),
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
		extra:          opts.ExtraButtons,
		maxBack:        opts.MaxBackoff,
		maxWait:        opts.MaxInlineWait,
		turn:           newTurn(),
		failRep:        opts.FailureReportAfter,
		metEvery:       opts.MetricsInterval,
		poke:           make(chan struct{}, 1),
		tickPoke:       make(chan struct{}, 1),
		countdown:      newCountdown(),
		firstClaim:     make(chan struct{}),
		claims:         opts.RefreshClaims,
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
		d.limiter = telegram.NewLimiter(telegram.LimiterOptions{Now: d.now, Logger: d.log})
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
	d.registerMetrics(opts.Registerer)
	return d, nil
}

// Idle reports whether no claim or job is under way: a test that moved
// its clock waits for it before looking at what was sent.
func (d *Deliverer) Idle() bool { return d.busy.Load() == 0 }

// Poke wakes the loop as if the store had signalled new work; tests that
// move an injected clock call it, since timers run on real time.
func (d *Deliverer) Poke() {
	for _, c := range []chan struct{}{d.poke, d.tickPoke} {
		select {
		case c <- struct{}{}:
		default:
		}
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

// buttons is the keyboard of a live, unexpired message: the default rows
// and any extra ones, in loc's language.
func (d *Deliverer) buttons(loc *templates.Locale, msg otpbot.Message) [][]telegram.Button {
	rows := DefaultButtons(loc, msg)
	if d.extra != nil {
		rows = append(rows, d.extra(loc, msg)...)
	}
	return rows
}

// locale is the templates of msg's chat.
func (d *Deliverer) locale(ctx context.Context, msg otpbot.Message) *templates.Locale {
	return d.render.Locale(ctx, msg.Target.ChatID)
}
