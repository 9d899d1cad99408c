package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/store/redis/redistest"
)

// failoverDeadline bounds each wait of the failover test: the promotion,
// the retries of the pushes and their deliveries. Generous, for a loaded
// 2-core machine; the test measures, it does not race.
const failoverDeadline = 60 * time.Second

// sentinelEnv is the environment of otpbot on set, acknowledging a push
// once minAcks replicas have it.
func sentinelEnv(set *redistest.SentinelSet, minAcks int) map[string]string {
	return map[string]string{
		"OTPBOT_STORE_DRIVER":                      "redis",
		"OTPBOT_STORE_REDIS_SENTINEL_MASTER_NAME":  redistest.MasterName,
		"OTPBOT_STORE_REDIS_SENTINEL_ADDRS":        strings.Join(set.SentinelAddrs(), ","),
		"OTPBOT_STORE_REDIS_MIN_REPLICAS_ACK":      fmt.Sprint(minAcks),
		"OTPBOT_TELEGRAM_RATE_GLOBAL_PER_SECOND":   "1000",
		"OTPBOT_TELEGRAM_RATE_PER_CHAT_PER_SECOND": "100",
		"OTPBOT_LOG_LEVEL":                         "info",
	}
}

// TestSentinelFailover: two otpbot processes on a Sentinel-run Redis (a
// primary, two replicas, three sentinels) with min_replicas_ack 1 take
// pushes at 20/s; the primary is killed (SIGKILL). Pushes during the
// switch get 503 and /readyz says 503; the sentinels promote a replica and
// otpbot follows by itself, without a restart: every push is acknowledged
// after its retries, every acknowledged code reaches its chat and is shown
// there once, and the bot still answers commands. The time from the kill
// to the first 200 is logged (go test ./cmd/otpbot -run TestSentinelFailover -v).
//
// Two replicas, not one: with min_replicas_ack 1 the promoted replica
// needs a replica of its own before it can acknowledge anything.
func TestSentinelFailover(t *testing.T) {
	set := redistest.StartSentinel(t, 2)
	fake := bottest.New(t, bottest.WithWaitTimeout(failoverDeadline))
	cfg := testConfig(t, t.TempDir(), fake, `
codes:
  ttl: 10m
delivery:
  lease: 3s
`)
	env := sentinelEnv(set, 1)
	procs := []*proc{startProc(t, env, "serve", "-config", cfg), startProc(t, env, "serve", "-config", cfg)}
	const chats = 20
	for i := range chats {
		linkCard(t, fake, chatOf(i), fmt.Sprintf("CARD-%02d", i))
	}

	ld := newLoadDriver(procs, chats)
	ready := watchReady(procs[0].url)
	defer ready.stop()
	ld.start(20)
	waitUntil(t, "40 pushes acknowledged before the kill", func() bool { return ld.acked() >= 40 })

	old := set.Data[0]
	kill := time.Now()
	old.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), failoverDeadline)
	defer cancel()
	promoted, err := set.WaitPromoted(ctx, old, 1)
	if err != nil {
		t.Fatal(err)
	}
	promotedAt := time.Since(kill)
	firstOK := ld.waitFirstOKAfter(t, kill)
	waitUntil(t, "40 pushes acknowledged after the failover", func() bool { return ld.ackedAfter(kill) >= 40 })
	ld.stopAndWait(t)
	t.Logf("failover: primary killed; a replica promoted and in sync after %v; first 200 after %v (%s now primary)",
		promotedAt.Round(time.Millisecond), firstOK.Round(time.Millisecond), promoted.Addr())

	recs := ld.records()
	refused := checkAnswers(t, recs, kill)
	if !ready.saw(http.StatusServiceUnavailable, kill) {
		t.Errorf("/readyz never said 503 after the kill")
	}
	resent := waitShownOnce(t, fake, recs, chats, kill)
	t.Logf("%d pushes, %d answers 503 during the switch, %d codes sent twice (the extra copy removed)", len(recs), refused, resent)

	// No restart: both processes run and are ready again (a connection
	// pool that gave up dialing during the switch tries again once a
	// second), and the bot still takes commands.
	for i, p := range procs {
		select {
		case <-p.done:
			t.Fatalf("otpbot %d exited during the failover: %v\n%s", i, p.err, p.stderr)
		default:
		}
		waitUntil(t, fmt.Sprintf("otpbot %d ready again", i), func() bool {
			code, _ := get(t, p.url+"/readyz")
			return code == http.StatusOK
		})
	}
	t.Logf("both ready again %v after the kill", time.Since(kill).Round(time.Millisecond))
	linkCard(t, fake, chatOf(chats), "CARD-AFTER")
}

// checkAnswers wants every push acknowledged in the end, and every other
// answer a 503 of the switch (an attempt started at most a second before
// the kill, or after it); it returns how many 503s there were, at least
// one.
func checkAnswers(t *testing.T, recs []pushRecord, kill time.Time) int {
	t.Helper()
	refused := 0
	for _, r := range recs {
		for _, a := range r.attempts {
			switch {
			case a.code == http.StatusOK:
			case a.code == http.StatusServiceUnavailable && !a.start.Before(kill.Add(-time.Second)):
				refused++
			default:
				t.Errorf("push %d: attempt at %v answered %d (%v), want 200, or 503 during the switch",
					r.n, a.start.Sub(kill).Round(time.Millisecond), a.code, a.err)
			}
		}
		if r.okAt.IsZero() {
			t.Errorf("push %d was never acknowledged", r.n)
		}
	}
	if refused == 0 {
		t.Errorf("no push was answered 503 during the switch")
	}
	return refused
}

// waitShownOnce waits until every pushed code is shown in its chat once
// (a copy sent twice across the switch is removed again by the bot) and
// returns how many extra copies were sent.
func waitShownOnce(t *testing.T, fake *bottest.Server, recs []pushRecord, chats int, kill time.Time) int {
	t.Helper()
	deadline := time.Now().Add(failoverDeadline)
	resent := 0
	for _, r := range recs {
		chat, code := chatOf(r.n%chats), codeOf(r.n)
		for len(messagesWith(fake, chat, code)) != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("push %d (acknowledged %v after the kill): shown %d times in chat %d, sent %d times",
					r.n, r.okAt.Sub(kill).Round(time.Millisecond), len(messagesWith(fake, chat, code)), chat, sentWith(fake, chat, code))
			}
			time.Sleep(10 * time.Millisecond)
		}
		resent += sentWith(fake, chat, code) - 1
	}
	return resent
}

// loadDriver sends pushes at a steady rate, alternating between the
// processes, and retries each until it is acknowledged, as a provider's
// platform does.
type loadDriver struct {
	procs []*proc
	chats int

	mu   sync.Mutex
	recs []*pushRecord
	wg   sync.WaitGroup
	quit chan struct{}
	done chan struct{}
}

// pushRecord is one push and its attempts.
type pushRecord struct {
	n        int
	attempts []attempt
	okAt     time.Time
}

// attempt is one POST of a push.
type attempt struct {
	start, end time.Time
	code       int
	err        error
}

// retryEvery is how soon the simulated platform sends a push again after
// an answer other than 200.
const retryEvery = 200 * time.Millisecond

func newLoadDriver(procs []*proc, chats int) *loadDriver {
	return &loadDriver{procs: procs, chats: chats, quit: make(chan struct{}), done: make(chan struct{})}
}

// start sends perSecond pushes a second until stopAndWait.
func (ld *loadDriver) start(perSecond int) {
	go func() {
		defer close(ld.done)
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-ld.quit:
				return
			case <-tick.C:
			}
			r := &pushRecord{n: n}
			ld.mu.Lock()
			ld.recs = append(ld.recs, r)
			ld.mu.Unlock()
			ld.wg.Add(1)
			go func() {
				defer ld.wg.Done()
				ld.push(r, ld.procs[n%len(ld.procs)].url)
			}()
		}
	}()
}

// push sends r until it is acknowledged or failoverDeadline passes.
func (ld *loadDriver) push(r *pushRecord, url string) {
	client := &http.Client{Timeout: 15 * time.Second}
	body := upayOTP(fmt.Sprintf("ORD-F%05d", r.n), fmt.Sprintf("CARD-%02d", r.n%ld.chats), codeOf(r.n))
	deadline := time.Now().Add(failoverDeadline)
	for time.Now().Before(deadline) {
		a := attempt{start: time.Now()}
		resp, err := client.Post(url+"/webhooks/upay?token="+upayToken, "application/json", strings.NewReader(body))
		a.err = err
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			a.code = resp.StatusCode
			if a.code == http.StatusOK && string(b) != "SUCCESS" {
				a.code, a.err = 0, fmt.Errorf("200 with body %q", b)
			}
		}
		a.end = time.Now()
		ld.mu.Lock()
		r.attempts = append(r.attempts, a)
		if a.code == http.StatusOK {
			r.okAt = a.end
		}
		ld.mu.Unlock()
		if a.code == http.StatusOK {
			return
		}
		time.Sleep(retryEvery) // the platform's retry interval
	}
}

// acked counts the acknowledged pushes.
func (ld *loadDriver) acked() int { return ld.ackedAfter(time.Time{}) }

// ackedAfter counts the pushes acknowledged after t.
func (ld *loadDriver) ackedAfter(t time.Time) int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	n := 0
	for _, r := range ld.recs {
		if !r.okAt.IsZero() && r.okAt.After(t) {
			n++
		}
	}
	return n
}

// waitFirstOKAfter waits for the first 200 to a request sent after t and
// returns how long after t it was answered.
func (ld *loadDriver) waitFirstOKAfter(tb testing.TB, t time.Time) time.Duration {
	tb.Helper()
	deadline := time.Now().Add(failoverDeadline)
	for {
		ld.mu.Lock()
		var first time.Time
		for _, r := range ld.recs {
			for _, a := range r.attempts {
				if a.code == http.StatusOK && !a.start.Before(t) && (first.IsZero() || a.end.Before(first)) {
					first = a.end
				}
			}
		}
		ld.mu.Unlock()
		if !first.IsZero() {
			return first.Sub(t)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no push acknowledged within %v of the kill", failoverDeadline)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopAndWait stops sending new pushes and waits until every push sent
// is acknowledged or given up.
func (ld *loadDriver) stopAndWait(tb testing.TB) {
	tb.Helper()
	close(ld.quit)
	<-ld.done
	finished := make(chan struct{})
	go func() { ld.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(2 * failoverDeadline):
		tb.Fatalf("pushes still retrying after %v", 2*failoverDeadline)
	}
}

// records returns the pushes, in the order they were sent.
func (ld *loadDriver) records() []pushRecord {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	out := make([]pushRecord, len(ld.recs))
	for i, r := range ld.recs {
		out[i] = *r
		out[i].attempts = slices.Clone(r.attempts)
	}
	return out
}

// readyWatch polls /readyz every 20ms and remembers each answer's time.
type readyWatch struct {
	mu      sync.Mutex
	answers []readyAnswer
	quit    chan struct{}
	done    chan struct{}
}

type readyAnswer struct {
	at   time.Time
	code int
}

func watchReady(url string) *readyWatch {
	w := &readyWatch{quit: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.quit:
				return
			case <-time.After(20 * time.Millisecond):
			}
			code := 0
			if resp, err := client.Get(url + "/readyz"); err == nil {
				resp.Body.Close()
				code = resp.StatusCode
			}
			w.mu.Lock()
			w.answers = append(w.answers, readyAnswer{time.Now(), code})
			w.mu.Unlock()
		}
	}()
	return w
}

// saw reports whether /readyz answered code after t.
func (w *readyWatch) saw(code int, t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.answers {
		if a.code == code && a.at.After(t) {
			return true
		}
	}
	return false
}

func (w *readyWatch) stop() {
	close(w.quit)
	<-w.done
}
