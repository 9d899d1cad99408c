package telegram

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/otpbot/otpbot/internal/promreg"
	"github.com/otpbot/otpbot/internal/wait"
	"github.com/prometheus/client_golang/prometheus"
)

// UpdateSource is the part of the Telegram client the poll loop uses.
// GetTopicUpdates rather than GetUpdates: it keeps each update's forum topic.
type UpdateSource interface {
	GetTopicUpdates(ctx context.Context, offset, timeoutSeconds int) ([]Update, error)
}

// onceChecker remembers which updates were handled (otpbot.Coordinator).
type onceChecker interface {
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Leaser is the part of otpbot.Coordinator the poll loop uses: the update
// dedupe and the lease that lets only one process poll.
type Leaser interface {
	onceChecker
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, owner string) error
}

const (
	// PollerLease is the name of the lease held by the process that polls.
	PollerLease = "poller"
	// DefaultLeaseTTL is how long a poller's lease lasts without renewal:
	// a standby takes over about this long (plus at most a third, its
	// retry interval) after the holder died.
	DefaultLeaseTTL = 10 * time.Second
	// updateDedupeTTL is how long a handled update id is remembered.
	// Telegram keeps undelivered updates for 24 hours.
	updateDedupeTTL = 24 * time.Hour
	// defaultPollTimeout is the long-poll wait, in seconds.
	defaultPollTimeout = 25
	// maxWebhookBody bounds an update posted to the webhook.
	maxWebhookBody = 1 << 20
	// handleTimeout bounds the handling of one update (replies included).
	handleTimeout = 30 * time.Second
)

// updateKey is the Coordinator.Once key of an update id.
func updateKey(id int) string { return "update:" + strconv.Itoa(id) }

// updateMetrics counts updates by source and outcome.
func updateMetrics(reg prometheus.Registerer) *prometheus.CounterVec {
	return promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "otpbot_bot_updates_total",
		Help: "Telegram updates received, by source (polling, webhook) and outcome (handled, duplicate, failed, rejected).",
	}, []string{"source", "outcome"}))
}

// handleOnce handles upd unless its id was handled before (by this process
// or, with a shared store, another one). It reports an error only when the
// dedupe check itself failed: the update was then not handled and must be
// offered again.
func handleOnce(ctx context.Context, coord onceChecker, h UpdateHandler, log *slog.Logger, counter *prometheus.CounterVec, source string, upd Update) error {
	first, err := coord.Once(ctx, updateKey(upd.UpdateID), updateDedupeTTL)
	if err != nil {
		return fmt.Errorf("update %d: dedupe: %w", upd.UpdateID, err)
	}
	if !first {
		counter.WithLabelValues(source, "duplicate").Inc()
		return nil
	}
	// The update is now marked handled, so finish it even if the caller
	// goes away (a webhook request cut off, a shutdown), within a bound.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handleTimeout)
	defer cancel()
	if err := safeHandle(WithThread(hctx, upd.ThreadID), h, upd); err != nil {
		counter.WithLabelValues(source, "failed").Inc()
		log.Warn("update not fully handled", "update_id", upd.UpdateID, "err", err)
		return nil
	}
	counter.WithLabelValues(source, "handled").Inc()
	return nil
}

// safeHandle calls the handler, turning a panic into an error: one bad
// update must not take the process (and every code delivery) down, and as
// it is already marked handled it will not come back to do it again.
func safeHandle(ctx context.Context, h UpdateHandler, upd Update) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("update handler panicked: %v", p)
		}
	}()
	return h.HandleUpdate(ctx, upd.Update)
}

// PollerOptions configure a Poller.
type PollerOptions struct {
	// Client fetches updates (*Client).
	Client  UpdateSource
	Handler UpdateHandler
	// Coord is the store's coordinator: the lease and the update dedupe.
	Coord Leaser
	// Owner names this process in the lease (host and pid, say); it must
	// differ between processes sharing a store.
	Owner  string
	Logger *slog.Logger
	// LeaseTTL is the lease's lifetime; it is renewed every third of it.
	// 0 means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// PollTimeout is the long-poll wait in seconds; 0 means 25.
	PollTimeout int
	// Registerer receives otpbot_bot_updates_total; nil registers nothing.
	Registerer prometheus.Registerer
}

// Poller long-polls Telegram for updates. Of several processes sharing a
// store only the holder of the "poller" lease polls (Telegram answers 409 to
// concurrent getUpdates); the others stand by and take over within a lease
// lifetime when the holder dies, or at once when it stops cleanly.
type Poller struct {
	src     UpdateSource
	handler UpdateHandler
	coord   Leaser
	owner   string
	log     *slog.Logger
	ttl     time.Duration
	timeout int
	updates *prometheus.CounterVec
}

// NewPoller checks opts and builds a Poller.
func NewPoller(opts PollerOptions) (*Poller, error) {
	switch {
	case opts.Client == nil:
		return nil, errors.New("poller: client is required")
	case opts.Handler == nil:
		return nil, errors.New("poller: handler is required")
	case opts.Coord == nil:
		return nil, errors.New("poller: coordinator is required")
	case opts.Owner == "":
		return nil, errors.New("poller: owner is required")
	}
	p := &Poller{
		src: opts.Client, handler: opts.Handler, coord: opts.Coord, owner: opts.Owner,
		log: opts.Logger, ttl: opts.LeaseTTL, timeout: opts.PollTimeout,
		updates: updateMetrics(opts.Registerer),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.ttl <= 0 {
		p.ttl = DefaultLeaseTTL
	}
	if p.timeout <= 0 {
		p.timeout = defaultPollTimeout
	}
	return p, nil
}

// Run polls until ctx ends, then gives the lease up so a standby takes over
// at once. It returns nil on cancellation.
func (p *Poller) Run(ctx context.Context) error {
	renew := p.ttl / 3
	for {
		held, err := p.coord.AcquireLease(ctx, PollerLease, p.owner, p.ttl)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			p.log.Warn("poller lease unavailable", "err", err)
		}
		if held {
			p.log.Info("polling for updates", "owner", p.owner)
			p.lead(ctx, renew)
			// Give the lease up whether we stop or lost it: a standby
			// must not wait for it to run out.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := p.coord.ReleaseLease(rctx, PollerLease, p.owner); err != nil {
				p.log.Warn("poller lease not released", "err", err)
			}
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			p.log.Info("polling stopped: lease lost", "owner", p.owner)
		}
		// Standby: try again soon, so a dead holder is replaced within
		// about a lease lifetime.
		if !wait.Sleep(ctx, wait.Jitter(renew)) {
			return nil
		}
	}
}

// lead polls while the lease is held: a companion goroutine renews it and
// ends the polling (cancelling a long poll in flight) when it is lost.
func (p *Poller) lead(ctx context.Context, renew time.Duration) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		lastHeld := time.Now()
		t := time.NewTicker(renew)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			held, err := p.coord.AcquireLease(ctx, PollerLease, p.owner, p.ttl)
			switch {
			case err != nil && ctx.Err() != nil:
				return
			case err != nil:
				// The store is unreachable: keep polling until the lease
				// would have run out, then stop, since another process
				// may have taken it.
				p.log.Warn("poller lease not renewed", "err", err)
				if time.Since(lastHeld) >= p.ttl-renew {
					return
				}
			case !held:
				return
			default:
				lastHeld = time.Now()
			}
		}
	}()
	p.poll(ctx)
	cancel()
	<-done
}

// poll runs getUpdates from offset until ctx ends. Each update is handled
// once: its id is checked against the store first, which also covers the
// updates a previous lease holder handled but had not yet confirmed to
// Telegram (confirmation happens with the next getUpdates offset).
func (p *Poller) poll(ctx context.Context) {
	offset := 0
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		ups, err := p.src.GetTopicUpdates(ctx, offset, p.timeout)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			for _, u := range ups {
				if err = handleOnce(ctx, p.coord, p.handler, p.log, p.updates, "polling", u); err != nil {
					break // offer it again: do not move the offset past it
				}
				offset = u.UpdateID + 1
			}
		}
		if err == nil {
			backoff = 0
			continue
		}
		backoff = nextBackoff(backoff, err)
		p.log.Warn("getUpdates failed", "err", err, "retry_in", backoff)
		if !wait.Sleep(ctx, backoff) {
			return
		}
	}
}

// nextBackoff returns the wait after a failure: Telegram's retry_after when
// it gave one (a 429), else doubling from half a second to half a minute,
// jittered.
func nextBackoff(prev time.Duration, err error) time.Duration {
	if ra := RetryAfterOf(err); ra > 0 {
		return ra
	}
	const first, max = 500 * time.Millisecond, 30 * time.Second
	if prev <= 0 {
		return wait.Jitter(first)
	}
	return wait.Jitter(min(prev*2, max))
}

// WebhookHandler serves the Telegram updates Telegram POSTs to the webhook
// URL (telegram.updates: webhook). A request whose
// X-Telegram-Bot-Api-Secret-Token is not secret gets 401 and changes
// nothing; an empty secret rejects every request, since the URL alone
// must not be enough to talk to the bot. Each update_id is handled once,
// across every process sharing coord's store; a repeat is answered 200 so
// Telegram stops resending it. When the dedupe check fails (store down)
// the answer is 503 and Telegram retries later.
//
// Neither the request path nor the secret is ever logged.
func WebhookHandler(secret string, handler UpdateHandler, coord onceChecker, logger *slog.Logger) http.Handler {
	return newWebhook(secret, handler, coord, logger, nil)
}

// NewWebhookHandler is WebhookHandler with its update counter registered on
// reg (otpbot_bot_updates_total{source="webhook"}).
func NewWebhookHandler(secret string, handler UpdateHandler, coord onceChecker, logger *slog.Logger, reg prometheus.Registerer) http.Handler {
	return newWebhook(secret, handler, coord, logger, reg)
}

func newWebhook(secret string, handler UpdateHandler, coord onceChecker, logger *slog.Logger, reg prometheus.Registerer) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &webhook{configured: secret != "", handler: handler, coord: coord, log: logger, updates: updateMetrics(reg)}
	w.secret = sha256.Sum256([]byte(secret))
	return w
}

type webhook struct {
	// secret is the SHA-256 of the secret token: the header's digest is
	// compared with it, so the comparison takes the same time whatever
	// the lengths (subtle.ConstantTimeCompare returns early on a length
	// mismatch and would leak the secret's length).
	secret     [sha256.Size]byte
	configured bool
	handler    UpdateHandler
	coord      onceChecker
	log        *slog.Logger
	updates    *prometheus.CounterVec
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got := sha256.Sum256([]byte(r.Header.Get("X-Telegram-Bot-Api-Secret-Token")))
	if !h.configured || subtle.ConstantTimeCompare(got[:], h.secret[:]) != 1 {
		h.updates.WithLabelValues("webhook", "rejected").Inc()
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "update too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	upd, err := ParseUpdate(body)
	if err != nil || upd.UpdateID <= 0 {
		h.updates.WithLabelValues("webhook", "rejected").Inc()
		http.Error(w, "malformed update", http.StatusBadRequest)
		return
	}
	if err := handleOnce(r.Context(), h.coord, h.handler, h.log, h.updates, "webhook", upd); err != nil {
		h.log.Warn("webhook update deferred", "update_id", upd.UpdateID, "err", err)
		http.Error(w, "try again later", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// threadKey carries the forum topic of an update through the context:
// tgbotapi.Update (Bot API 5.5) has no field for it.
type threadKey struct{}

// WithThread returns ctx carrying the forum topic (message_thread_id) of the
// update about to be handled; the poll loop and the webhook set it from
// Update.ThreadID.
func WithThread(ctx context.Context, threadID int) context.Context {
	return context.WithValue(ctx, threadKey{}, threadID)
}

// ThreadFrom is the forum topic WithThread put in ctx (0 for none).
func ThreadFrom(ctx context.Context) int {
	id, _ := ctx.Value(threadKey{}).(int)
	return id
}
