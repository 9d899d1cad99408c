package deliver

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/store/bolt"
)

// The Run loop's own timers run on real time; these tests run the store,
// the Deliverer and the events on the real clock too, and never Poke: what
// they check is that the loop looks at the outbox when it must on its own.

// newRealTimeDlEnv is a dlEnv whose store, Deliverer and events use the
// real clock.
func newRealTimeDlEnv(t *testing.T) *dlEnv {
	t.Helper()
	e := newDlEnv(t)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := bolt.Open(filepath.Join(t.TempDir(), "realtime.db"), otpbot.StoreOptions{DedupeWindow: time.Hour,
		HistoryPerKey: 100, HistoryRetention: 24 * time.Hour, InviteTTL: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// After the Deliverer stopped: its last writes need the store.
	t.Cleanup(func() { e.stop(); s.Close() })
	e.store = s
	// Events are stamped with the test clock: now, for a code that is
	// live for minutes of real time.
	e.clock.now = time.Now()
	e.opts.Now = time.Now
	e.opts.Limiter = telegram.NewLimiter(telegram.LimiterOptions{GlobalPerSec: 1e6, GlobalBurst: 1e6, ChatPerSec: 1e6, ChatBurst: 1e6,
		GroupPerMin: 1e8, GroupBurst: 1e6})
	return e
}

// A send Telegram put off (429, retry after 1s) is handed back to the
// outbox due a second later. Nothing wakes the loop then: its timer, set
// from NextDue, must. And it waits rather than looking again and again.
func TestRunSendsARetryAtItsDueTimeWithoutAWakeUp(t *testing.T) {
	e := newRealTimeDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	e.tg.FailNext("sendMessage", 1, 429, "Too Many Requests: retry after 1", 1)
	var cs *countingStore
	e.start(func(o *DelivererOptions) {
		cs = &countingStore{DeliveryStore: o.Store}
		o.Store = cs
	})
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	e.tg.WaitFor(t, func() bool { return len(e.tg.Calls("sendMessage")) == 1 })
	before := cs.counts()
	e.waitMessages(dlChat, 1)
	calls := e.tg.Calls("sendMessage")
	if gap := calls[1].Time.Sub(calls[0].Time); gap < time.Second {
		t.Errorf("sent again %v after the 429; Telegram asked for 1s", gap)
	}
	// The handback wakes the loop once (a claim that finds nothing due,
	// NextDue), the timer once more (the claim that finds the send): a
	// loop polling the outbox while it waits would make many more.
	if got := cs.counts().minus(before); got.claims > 4 || got.nextDue > 4 {
		t.Errorf("%d claims and %d NextDue calls while the send waited out its second", got.claims, got.nextDue)
	}
}

// failingStore fails Claim and NextDue with ErrUnavailable while down is
// set, recording when each Claim came.
type failingStore struct {
	DeliveryStore
	down   atomic.Bool
	mu     sync.Mutex
	claims []time.Time
}

func (f *failingStore) Claim(ctx context.Context, now time.Time, lease time.Duration, max int) ([]otpbot.Job, error) {
	if f.down.Load() {
		f.mu.Lock()
		f.claims = append(f.claims, time.Now())
		f.mu.Unlock()
		return nil, fmt.Errorf("claim: %w", otpbot.ErrUnavailable)
	}
	return f.DeliveryStore.Claim(ctx, now, lease, max)
}

func (f *failingStore) NextDue(ctx context.Context) (time.Time, bool, error) {
	if f.down.Load() {
		return time.Time{}, false, fmt.Errorf("next due: %w", otpbot.ErrUnavailable)
	}
	return f.DeliveryStore.NextDue(ctx)
}

func (f *failingStore) failedClaims() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.claims...)
}

// While the store fails, the loop tries again after a backoff that
// doubles (100ms, 200ms, 400ms...) rather than hammering it; once the
// store is back, the code that came meanwhile goes out without a wake-up.
func TestRunBacksOffWhileTheStoreFails(t *testing.T) {
	e := newRealTimeDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	fs := &failingStore{}
	e.start(func(o *DelivererOptions) {
		fs.DeliveryStore = o.Store
		o.Store = fs
	})
	e.settle()
	fs.down.Store(true)
	// The push's wake-up is taken by a claim that fails.
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	e.tg.WaitFor(t, func() bool { return len(fs.failedClaims()) >= 4 })
	fs.down.Store(false)
	claims := fs.failedClaims()
	for i, want := 1, 100*time.Millisecond; i < 4; i, want = i+1, want*2 {
		if gap := claims[i].Sub(claims[i-1]); gap < want {
			t.Errorf("failed claim %d came %v after the one before; want a backoff of at least %v", i+1, gap, want)
		}
	}
	e.waitMessages(dlChat, 1)
}

// pushOnComplete ingests ev right after the first Complete or
// CompleteMessage that enqueues a task (a send's countdown tick), as a
// push from another process would land then: its wake-up and the
// completion's own are one.
type pushOnComplete struct {
	DeliveryStore
	ingest func(otpbot.Event) (otpbot.IngestResult, error)
	ev     otpbot.Event
	once   sync.Once
}

func (p *pushOnComplete) Complete(ctx context.Context, job otpbot.Job, msg *otpbot.Message, next ...otpbot.Task) error {
	err := p.DeliveryStore.Complete(ctx, job, msg, next...)
	p.pushAfter(err, next)
	return err
}

func (p *pushOnComplete) CompleteMessage(ctx context.Context, job otpbot.Job, prev time.Time, msg otpbot.Message, next ...otpbot.Task) error {
	err := p.DeliveryStore.CompleteMessage(ctx, job, prev, msg, next...)
	p.pushAfter(err, next)
	return err
}

// pushAfter ingests ev once, after the first successful completion that
// enqueued a task.
func (p *pushOnComplete) pushAfter(err error, next []otpbot.Task) {
	if err == nil && len(next) > 0 {
		p.once.Do(func() {
			if _, err := p.ingest(p.ev); err != nil {
				panic(err)
			}
		})
	}
}

// A wake-up that follows a worker's own write is answered by NextDue
// alone when nothing is due; when a code came with it, the code is due
// and is claimed and sent as any other, once.
func TestRunCodeWhoseWakeUpMergesWithAWorkersOwnIsSent(t *testing.T) {
	e := newDlEnv(t)
	e.link("C1", otpbot.Target{ChatID: dlChat})
	e.link("C2", otpbot.Target{ChatID: dlChat2})
	e.start(func(o *DelivererOptions) {
		o.Store = &pushOnComplete{DeliveryStore: o.Store, ev: e.codeEvent("ev2", "C2", 5*time.Minute),
			ingest: func(ev otpbot.Event) (otpbot.IngestResult, error) { return e.store.Ingest(context.Background(), ev) }}
	})
	e.push(e.codeEvent("ev1", "C1", 5*time.Minute))
	e.waitMessages(dlChat, 1)
	e.waitMessages(dlChat2, 1)
	e.settle()
	if n1, n2 := len(e.tg.Messages(dlChat)), len(e.tg.Messages(dlChat2)); n1 != 1 || n2 != 1 {
		t.Fatalf("%d and %d messages", n1, n2)
	}
}
