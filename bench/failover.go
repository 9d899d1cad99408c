package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpbot/otpbot/store/redis/redistest"
	"github.com/otpbot/otpbot/webhooks"
)

// failoverRetry is how soon the simulated platform sends a push again
// after an answer other than 200 (UPay and HyperCard retry on their own
// schedules, seconds apart; sooner measures the outage more finely).
const failoverRetry = 200 * time.Millisecond

// failoverResult is what -redis-sentinel measured.
type failoverResult struct {
	Pushes, Acked int
	// Refused counts the answers other than 200 (503 while no primary
	// takes writes with a replica), Retried the pushes that got one.
	Refused, Retried int
	// Unacked is how long after the kill the first 200 came: the time
	// without acknowledgements.
	Unacked time.Duration
	// Promoted is when every sentinel named the new primary and its
	// replica was in sync, after the kill.
	Promoted time.Duration
	// Lost counts acknowledged pushes whose code never reached Telegram;
	// Twice the codes sent more than once.
	Lost, Twice int
}

// failoverPush is one push of the failover run and its retries.
type failoverPush struct {
	code  string
	acked time.Time
}

// sentinelRun starts a primary, two replicas and three sentinels, runs
// otpbot on them with min_replicas_ack 1, sends -rate pushes/s for
// -duration, each retried until acknowledged, kills the primary (SIGKILL)
// a third of the way in, and prints the time without acknowledgements and
// whether any acknowledged push was lost.
func (b *bench) sentinelRun(ctx context.Context, stdout io.Writer) error {
	t := newBenchT(b.dir)
	defer t.close()
	var set *redistest.SentinelSet
	b.logf("redis sentinel: starting a primary, 2 replicas and 3 sentinels")
	if err := t.do(func() { set = redistest.StartSentinel(t, 2) }); err != nil {
		return fmt.Errorf("redis sentinel: %w", err)
	}
	spec := storeSpec{Driver: "redis", Sentinel: set.SentinelAddrs(), MinAcks: 1, Prefix: fmt.Sprintf("otpbench:%s:sentinel:", b.run)}
	s, err := b.newSession(ctx, "sentinel", spec, plan("F", b.o.Chats, 6_000_000), nil, nil)
	if err != nil {
		return fmt.Errorf("redis sentinel: %w", err)
	}
	defer s.close()
	tr := s.fake.track()
	res, err := b.driveFailover(ctx, s, tr, set)
	if err != nil {
		return fmt.Errorf("redis sentinel: %w", err)
	}
	fmt.Fprintf(stdout, "REDIS SENTINEL FAILOVER (a primary, 2 replicas, 3 sentinels started by the bench; down-after %s; min_replicas_ack 1)\n", redistest.DownAfter)
	fmt.Fprintf(stdout, "  %g pushes/s for %s, each retried every %s until acknowledged; the primary killed (SIGKILL) at a third\n",
		b.o.Rate, b.o.Duration, failoverRetry)
	fmt.Fprintf(stdout, "  time without acknowledgements (kill → first 200)   %s\n", res.Unacked.Round(time.Millisecond))
	fmt.Fprintf(stdout, "  replica promoted, its replica in sync, after        %s\n", res.Promoted.Round(time.Millisecond))
	fmt.Fprintf(stdout, "  pushes / acknowledged                               %d / %d\n", res.Pushes, res.Acked)
	fmt.Fprintf(stdout, "  answers 503 during the switch (pushes retried)      %d (%d)\n", res.Refused, res.Retried)
	fmt.Fprintf(stdout, "  pushes lost (acknowledged, never sent)              %d\n", res.Lost)
	fmt.Fprintf(stdout, "  codes sent twice                                    %d\n", res.Twice)
	if res.Lost > 0 || res.Acked < res.Pushes {
		return fmt.Errorf("redis sentinel: %d of %d pushes acknowledged, %d acknowledged pushes lost", res.Acked, res.Pushes, res.Lost)
	}
	return nil
}

// failoverLoad is the state of driveFailover's pushes.
type failoverLoad struct {
	b       *bench
	s       *session
	tr      *tracker
	mu      sync.Mutex
	pushes  []*failoverPush
	wg      sync.WaitGroup
	refused atomic.Int64
	retried atomic.Int64
	kill    time.Time // guarded by mu
	firstOK time.Time // guarded by mu
}

// driveFailover is the load and the kill of sentinelRun.
func (b *bench) driveFailover(ctx context.Context, s *session, tr *tracker, set *redistest.SentinelSet) (failoverResult, error) {
	l := &failoverLoad{b: b, s: s, tr: tr}
	var res failoverResult
	promoted := make(chan struct{})
	killAt := time.Now().Add(b.o.Duration / 3)
	tick := time.NewTicker(time.Duration(float64(time.Second) / b.o.Rate))
	defer tick.Stop()
	end := time.Now().Add(b.o.Duration)
	killed := false
	for seq := int64(1); time.Now().Before(end) && ctx.Err() == nil; seq++ {
		<-tick.C
		if !killed && time.Now().After(killAt) {
			killed = true
			l.mu.Lock()
			l.kill = time.Now()
			l.mu.Unlock()
			set.Data[0].Stop()
			go func() {
				defer close(promoted)
				pctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				if _, err := set.WaitPromoted(pctx, set.Data[0], 1); err == nil {
					l.mu.Lock()
					res.Promoted = time.Since(l.kill)
					l.mu.Unlock()
				}
			}()
		}
		l.start(ctx, seq)
	}
	l.wg.Wait()
	if killed {
		<-promoted
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	res.Pushes, res.Refused, res.Retried = len(l.pushes), int(l.refused.Load()), int(l.retried.Load())
	for _, p := range l.pushes {
		if !p.acked.IsZero() {
			res.Acked++
		}
	}
	if !l.firstOK.IsZero() {
		res.Unacked = l.firstOK.Sub(l.kill)
	}
	// Every acknowledged code reaches Telegram, after the retries of its
	// deliveries too.
	waitFor(b.o.Drain+30*time.Second, func() bool { return tr.matched.Load() >= int64(res.Acked) })
	tr.mu.Lock()
	for _, p := range l.pushes {
		if _, waiting := tr.pending[p.code]; waiting && !p.acked.IsZero() {
			res.Lost++
		}
	}
	tr.mu.Unlock()
	res.Twice = int(tr.sendsOK.Load() - tr.matched.Load())
	return res, nil
}

// start sends push seq in the background, again every failoverRetry until
// it is acknowledged.
func (l *failoverLoad) start(ctx context.Context, seq int64) {
	p := &failoverPush{code: codeFor(seq)}
	card := "F" + strconv.FormatInt(seq%int64(l.b.o.Chats), 10)
	body := pushBody(l.s.p.run, seq, card, p.code, time.Now())
	// X-UPA-TIMESTAMP is the first push's time, kept on retries.
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	l.tr.expect(p.code, time.Now())
	l.mu.Lock()
	l.pushes = append(l.pushes, p)
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for try := 0; ctx.Err() == nil && try < 600; try++ {
			start := time.Now()
			if sendSigned(ctx, l.s.p, body, ts) {
				l.mu.Lock()
				p.acked = time.Now()
				if !l.kill.IsZero() && start.After(l.kill) && (l.firstOK.IsZero() || p.acked.Before(l.firstOK)) {
					l.firstOK = p.acked
				}
				l.mu.Unlock()
				return
			}
			l.refused.Add(1)
			if try == 0 {
				l.retried.Add(1)
			}
			time.Sleep(failoverRetry) // the platform's retry interval
		}
	}()
}

// sendSigned posts one signed push (body as pushBody made it, ts its
// first sending) and reports whether it was acknowledged. A retry sends
// the same body and timestamp, as the platform does.
func sendSigned(ctx context.Context, p *pusher, body []byte, ts string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhooks.UPayHeaderTimestamp, ts)
	req.Header.Set(webhooks.UPayHeaderSign, webhooks.SignUPay(p.secret, "3DS_OTP", ts, body))
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	ack, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && string(ack) == "SUCCESS"
}
