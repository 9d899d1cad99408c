package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
)

var _ otpbot.Store = (*Store)(nil)

// Defaults for zero StoreOptions fields; they match the configuration's.
const (
	defaultDedupeWindow     = 72 * time.Hour
	defaultHistoryPerKey    = 1000
	defaultHistoryRetention = 720 * time.Hour
	defaultInviteTTL        = 24 * time.Hour
)

// finishedMessageTTL is how long a message in a final state is kept after
// its last change: the dedupe window (at least an hour) plus an hour. Its
// code is already gone; it only serves late pushes of its group (a changed
// AUTH_3DS result edits it rather than sending a new message) and tasks
// still pending for it. Forgetting it afterwards keeps Redis small.
func (s *Store) finishedMessageTTL() time.Duration {
	return max(s.opts.DedupeWindow, time.Hour) + time.Hour
}

// Wake subscriber timing: how long a quiet subscription waits before it
// checks the connection with a PING, and the retry backoff when Redis is
// away (doubling from min to max, so nothing spins). The backoff starts
// over only after a subscription held for subscribeStable: one dropped
// right after it was made (a proxy or server killing pub/sub clients)
// counts as a failure. A lost subscription is a warning at most once per
// subscribeWarnEvery; the retries in between log at debug.
const (
	subscribeIdle       = 30 * time.Second
	subscribeBackoffMin = 100 * time.Millisecond
	subscribeBackoffMax = 5 * time.Second
	subscribeStable     = 10 * time.Second
	subscribeWarnEvery  = time.Minute
)

// Store is the Redis implementation of otpbot.Store. It is safe for
// concurrent use, and several Stores (in one or many processes) may share
// one prefix.
type Store struct {
	client goredis.UniversalClient
	k      keys
	opts   otpbot.StoreOptions
	ropts  options
	log    *slog.Logger

	wake chan struct{}
	// instance names this store in its wake publications: it signals its
	// own consumer directly, and its subscriber skips what it published.
	instance string
	// pushes counts this store's ingests: every pruneEvery-th prunes (see
	// ingestScript).
	pushes atomic.Uint64
	// wakesOwn and wakesOther count the publications the subscriber
	// received from this store (skipped) and from others (signalled), for
	// tests.
	wakesOwn, wakesOther atomic.Int64
	cancel               context.CancelFunc
	done                 chan struct{}
	loading              sync.WaitGroup // the scripts' preload
	once                 sync.Once

	// subscribes counts subscription attempts, so tests can see that the
	// subscriber backs off while Redis is away.
	subscribes atomic.Int64
	// subscribed is true while the subscription is established, since
	// upSince (real time, Unix ns).
	subscribed atomic.Bool
	upSince    atomic.Int64
	// stableAfter is how long a subscription must hold to reset the
	// backoff (subscribeStable; tests shorten it), and lastBackoff the
	// last wait chosen before a resubscription, which tests observe.
	stableAfter atomic.Int64
	lastBackoff atomic.Int64
	// warned is set when a lost subscription was logged as a warning, so
	// that its restoration is logged once too.
	warned atomic.Bool

	// bases are the bases of the shards the prefix may have (see
	// shardBase), shard 0 the home base.
	bases []string
	// nshards is the number of shards of the prefix once known (see
	// shards), chosen under layoutMu.
	nshards  atomic.Int32
	layoutMu sync.Mutex

	// aof is what Ingest knows of the server's append-only file (see
	// waitAOF).
	aof struct {
		mu       sync.Mutex
		checked  time.Time // real time of the last look; zero: look before the next push
		wait     bool      // Ingest waits with WAITAOF
		checking bool      // a push is looking right now
	}
}

// New returns a store on client with all keys under prefix ("otpbot:" when
// empty). It does not need Redis to be up: calls fail with
// otpbot.ErrUnavailable until it is. The client stays the caller's: Close
// stops the store's own goroutine but does not close the client. ropts
// are the Redis-specific settings (WithMinReplicasAck, WithTopology).
func New(ctx context.Context, client goredis.UniversalClient, prefix string, opts otpbot.StoreOptions, logger *slog.Logger, ropts ...Option) (*Store, error) {
	if client == nil {
		return nil, errors.New("redis store: nil client")
	}
	var ro options
	for _, o := range ropts {
		if err := o(&ro); err != nil {
			return nil, fmt.Errorf("redis store: %w", err)
		}
	}
	if ro.topology == "" {
		ro.topology = Standalone
		if _, ok := client.(*goredis.ClusterClient); ok {
			ro.topology = Cluster
		}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.DedupeWindow <= 0 {
		opts.DedupeWindow = defaultDedupeWindow
	}
	if opts.HistoryPerKey <= 0 {
		opts.HistoryPerKey = defaultHistoryPerKey
	}
	if opts.HistoryRetention <= 0 {
		opts.HistoryRetention = defaultHistoryRetention
	}
	if opts.InviteTTL <= 0 {
		opts.InviteTTL = defaultInviteTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	subCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Store{
		client:   client,
		k:        keys{base: Base(prefix)},
		opts:     opts,
		ropts:    ro,
		log:      logger.With("store", "redis"),
		wake:     make(chan struct{}, 1),
		instance: token(),
		cancel:   cancel,
		done:     make(chan struct{}),
	}
	for i := range max(clusterShards, ro.shards) {
		s.bases = append(s.bases, shardBase(s.k.base, i))
	}
	s.stableAfter.Store(int64(subscribeStable))
	// The scripts are loaded beside the subscription, not before it: a
	// Redis slow to answer at start must not delay the wake-ups of other
	// processes (a script not loaded yet is sent whole once, NOSCRIPT).
	s.loading.Add(1)
	go func() {
		defer s.loading.Done()
		s.loadScripts(subCtx)
	}()
	go s.subscribe(subCtx)
	return s, nil
}

// Base returns the key base for prefix: the prefix followed by a hash tag
// made of it ("otpbot:" → "otpbot:{otpbot}:"), or the prefix itself when
// it already holds a hash tag. Every key of the store starts with it.
func Base(prefix string) string {
	if prefix == "" {
		prefix = "otpbot:"
	}
	if i := strings.IndexByte(prefix, '{'); i >= 0 {
		if j := strings.IndexByte(prefix[i+1:], '}'); j > 0 {
			return prefix
		}
	}
	tag := strings.TrimRight(prefix, ":")
	if tag == "" || strings.ContainsAny(tag, "{}") {
		tag = "otpbot"
	}
	return prefix + "{" + tag + "}:"
}

// keys names the store's Redis keys.
type keys struct{ base string }

func (k keys) dedupe() string                 { return k.base + "dd" }
func (k keys) historySeq() string             { return k.base + "hseq" }
func (k keys) historyIndex() string           { return k.base + "hk" }
func (k keys) history(key string) string      { return k.base + "h:" + key }
func (k keys) links(key string) string        { return k.base + "lk:" + key }
func (k keys) chatLinks(chat int64) string    { return k.base + "lc:" + strconv.FormatInt(chat, 10) }
func (k keys) linkKeys() string               { return k.base + "lkeys" }
func (k keys) message(id string) string       { return k.base + "m:" + id }
func (k keys) chatMessages(c int64) string    { return k.base + "mc:" + strconv.FormatInt(c, 10) }
func (k keys) messages() string               { return k.base + "ms" }
func (k keys) task(id string) string          { return k.base + "t:" + id }
func (k keys) queue(p otpbot.Priority) string { return k.base + "q:" + strconv.Itoa(int(p)) }
func (k keys) invite(hash string) string      { return k.base + "iv:" + hash }
func (k keys) invites() string                { return k.base + "iv" }
func (k keys) once(key string) string         { return k.base + "once:" + key }
func (k keys) lease(name string) string       { return k.base + "lease:" + name }
func (k keys) wake() string                   { return k.base + "wake" }
func (k keys) installationSecret() string     { return k.base + "ikey" }

// priorities are the queue's priorities, most urgent first; the scripts
// that look at every queue loop over the same range, 0 to nprio-1, given
// len(priorities) as their argument nprio.
var priorities = []otpbot.Priority{otpbot.PriorityCode, otpbot.PriorityUpdate, otpbot.PriorityRefresh, otpbot.PriorityOther}

// now is the store's clock.
func (s *Store) now() time.Time { return s.opts.Now() }

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	return wrap("ping", s.client.Ping(ctx).Err())
}

// Close stops the wake subscriber. The client is the caller's to close.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.cancel()
		<-s.done
		s.loading.Wait()
	})
	return nil
}

// Wake delivers a value when tasks were enqueued by this store or by
// another one on the same prefix.
func (s *Store) Wake() <-chan struct{} { return s.wake }

// signal wakes the local consumer without blocking: one pending value is
// enough, the consumer re-reads the whole outbox. A method whose script
// publishes on the wake channel signals after it, and also when the
// script's reply was lost (it may have run): the subscriber skips this
// store's own publications.
func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// signalIf signals when cond holds.
func (s *Store) signalIf(cond bool) {
	if cond {
		s.signal()
	}
}

// subscribe listens on the wake channel until ctx ends. When the
// connection drops it resubscribes with backoff, and it wakes the consumer
// after every (re)subscription since a publication may have been missed
// while it was away.
func (s *Store) subscribe(ctx context.Context) {
	defer close(s.done)
	backoff := subscribeBackoffMin
	var lastWarn time.Time
	for ctx.Err() == nil {
		s.subscribes.Add(1)
		up, ok, err := s.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		if ok && up >= time.Duration(s.stableAfter.Load()) {
			// It held: this is a new outage, not the same one flapping.
			backoff = subscribeBackoffMin
		}
		if lastWarn.IsZero() || time.Since(lastWarn) >= subscribeWarnEvery {
			lastWarn = time.Now()
			s.warned.Store(true)
			s.log.Warn("wake subscription lost; resubscribing with backoff",
				"err", err, "was_up", up.Round(time.Millisecond).String(), "backoff", backoff.String())
		} else {
			s.log.Debug("wake subscription lost again", "err", err,
				"was_up", up.Round(time.Millisecond).String(), "backoff", backoff.String())
		}
		s.lastBackoff.Store(int64(backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, subscribeBackoffMax)
	}
}

// listen runs one subscription until it fails; ok reports whether it was
// established at all, up for how long, and err why it ended.
func (s *Store) listen(ctx context.Context) (up time.Duration, ok bool, err error) {
	ps := s.client.Subscribe(ctx, s.wakeChannels()...)
	// A blocked read does not watch ctx: closing the subscription is what
	// ends it when the store closes.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	var since time.Time
	defer func() {
		s.subscribed.Store(false)
		stop()
		ps.Close()
	}()
	for {
		msg, err := ps.ReceiveTimeout(ctx, subscribeIdle)
		if err != nil {
			if ok {
				up = time.Since(since)
			}
			if ctx.Err() != nil {
				return up, ok, ctx.Err()
			}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				// Quiet for a while: make sure the connection still lives.
				if err := ps.Ping(ctx); err == nil {
					continue
				}
			}
			return up, ok, err
		}
		switch msg := msg.(type) {
		case *goredis.Subscription:
			if !ok && s.warned.Swap(false) {
				s.log.Info("wake subscription restored")
			}
			if !ok {
				since = time.Now()
				s.upSince.Store(since.UnixNano())
			}
			if !ok && s.subscribes.Load() > 1 {
				// Reconnected, maybe to another server (a failover):
				// look at its persistence before the next push.
				s.forgetAOF()
			}
			ok = true
			s.subscribed.Store(true)
			s.signal()
		case *goredis.Message:
			// This store signalled its own consumer when its script
			// returned: a second wake for the same work would only make
			// it claim (and find nothing) once more.
			if msg.Payload == s.instance {
				s.wakesOwn.Add(1)
				continue
			}
			s.wakesOther.Add(1)
			s.signal()
		}
	}
}

// wrap adds context to a Redis error and marks the ones that mean Redis
// cannot be reached (or cannot serve right now) as otpbot.ErrUnavailable.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if unavailable(err) {
		return fmt.Errorf("redis %s: %w: %w", op, otpbot.ErrUnavailable, err)
	}
	return fmt.Errorf("redis %s: %w", op, err)
}

// unavailableReplies are the server replies that mean "not now" rather
// than "wrong request".
var unavailableReplies = []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS", "MISCONF"}

// unavailable reports whether err means Redis is out of reach: any error
// that is not a server reply (network, pool, closed client, timeout) and
// the replies of a server that is starting, failing over or read-only. A
// cancellation by the caller is not the store's fault.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var re goredis.Error
	if errors.As(err, &re) {
		msg := strings.TrimPrefix(re.Error(), "ERR ")
		for _, p := range unavailableReplies {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true
}

// Time encodings. Scores and script comparisons use microseconds since the
// epoch (exact in a float64 until the year 2255); exact values are kept as
// RFC 3339 text in UTC, so equal instants have equal text.

func us(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// usCeil rounds up, so that a task due a fraction of a microsecond after
// now is not claimable at now.
func usCeil(t time.Time) string {
	v := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		v++
	}
	return strconv.FormatInt(v, 10)
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// gcTTL is the Redis expiry given to data whose logical life is d: twice
// that plus an hour, so that Redis never forgets something the store clock
// still needs, even when the clocks of several processes disagree.
func gcTTL(d time.Duration) time.Duration { return 2*max(d, 0) + time.Hour }

// token returns a random lease token.
func token() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// str returns a script reply element as a string ("" for nil).
func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return ""
}

// isNil reports whether v is a nil script reply element.
func isNil(v any) bool { return v == nil }

// isRedisNil reports whether err is go-redis's "no value" reply.
func isRedisNil(err error) bool { return errors.Is(err, goredis.Nil) }
