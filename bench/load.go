package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/otpbot/otpbot/webhooks"
)

// pusher builds and sends signed UPay 3DS_OTP pushes, the way UPay sends
// them: X-UPA-TIMESTAMP and X-UPA-SIGN (HMAC-SHA256 with the SecretKey).
type pusher struct {
	url    string // the UPay webhook URL
	secret []byte
	client *http.Client
	// run makes order numbers unique across runs sharing a store.
	run string
	seq atomic.Int64
}

// newHTTPClient is the load generator's client: keep-alive connections to
// one host, as many as the generator runs concurrently.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns + 16,
			MaxIdleConnsPerHost: conns + 16,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// pushBody is one 3DS_OTP push for card with code; seq makes its order
// number (the dedupe identity) unique.
func pushBody(run string, seq int64, card, code string, now time.Time) []byte {
	var b bytes.Buffer
	b.Grow(320)
	ord := run + "-" + strconv.FormatInt(seq, 10)
	b.WriteString(`{"event":"3DS_OTP","trace":"TR`)
	b.WriteString(ord)
	b.WriteString(`","orderNo":"PN`)
	b.WriteString(ord)
	b.WriteString(`","timestamp":`)
	b.WriteString(strconv.FormatInt(now.UnixMilli(), 10))
	b.WriteString(`,"detail":{"cardId":"`)
	b.WriteString(card)
	b.WriteString(`","cardNumber":"5235560000001234","customerNo":"CU`)
	b.WriteString(card)
	b.WriteString(`","3dsCode":"`)
	b.WriteString(code)
	b.WriteString(`","orderNo":"TX`)
	b.WriteString(ord)
	b.WriteString(`"}}`)
	return b.Bytes()
}

// confirmBody is one 3DS_CONFIRM push (a confirmation code for a named
// purchase) for card with code.
func confirmBody(run string, seq int64, card, code string, now time.Time) []byte {
	ord := run + "-" + strconv.FormatInt(seq, 10)
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	return []byte(`{"event":"3DS_CONFIRM","trace":"TR` + ord + `","orderNo":"PN` + ord + `","timestamp":` + ms +
		`,"detail":{"cardId":"` + card + `","cardNumber":"5235560000001234","customerNo":"CU` + card +
		`","validateCode":"` + code + `","merchants":"Bench Shop","transactionTime":` + ms +
		`,"amount":12.5,"transactionCurrency":"EUR"}}`)
}

// codeFor is the code of push seq: unique within a run, digits only, like
// a real code, so a sendMessage is matched to its push by the code in it.
func codeFor(seq int64) string { return strconv.FormatInt(10_000_000+seq, 10) }

// errNotAcked is a push answered with something else than UPay's ack.
var errNotAcked = errors.New("not acknowledged")

// send pushes one 3DS_OTP code to card. onSend runs right before the
// request is written (the start of both the ack and the end-to-end
// latency); it returns the ack latency.
func (p *pusher) send(ctx context.Context, card string, onSend func(code string, at time.Time)) (time.Duration, error) {
	return p.push(ctx, "3DS_OTP", card, onSend)
}

// push pushes one code event (3DS_OTP or 3DS_CONFIRM) to card, as send.
func (p *pusher) push(ctx context.Context, event, card string, onSend func(code string, at time.Time)) (time.Duration, error) {
	seq := p.seq.Add(1)
	code := codeFor(seq)
	now := time.Now()
	body := pushBody(p.run, seq, card, code, now)
	if event == "3DS_CONFIRM" {
		body = confirmBody(p.run, seq, card, code, now)
	}
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("push: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhooks.UPayHeaderTimestamp, ts)
	req.Header.Set(webhooks.UPayHeaderSign, webhooks.SignUPay(p.secret, event, ts, body))
	start := time.Now()
	if onSend != nil {
		onSend(code, start)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("push: %w", err)
	}
	ack, err := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("push: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK || string(ack) != "SUCCESS" {
		return 0, fmt.Errorf("push: %w: HTTP %d %.80q", errNotAcked, resp.StatusCode, ack)
	}
	return took, nil
}

// loadResult is what a load loop measured.
type loadResult struct {
	Sent    int           `json:"sent"`
	Acked   int           `json:"acked"`
	Failed  int           `json:"failed"`
	Elapsed time.Duration `json:"-"`
	// PerSec is acknowledged pushes per second of wall time.
	PerSec   float64 `json:"acks_per_sec"`
	Ack      Latency `json:"ack_latency"`
	FirstErr string  `json:"first_error,omitempty"`
}

// sendFunc sends push number i and returns its ack latency.
type sendFunc func(ctx context.Context, i int) (time.Duration, error)

// tally accumulates the outcome of the pushes of one loop.
type tally struct {
	lat      samples
	acked    atomic.Int64
	failed   atomic.Int64
	errOnce  sync.Once
	firstErr string
}

func (t *tally) record(took time.Duration, err error) {
	if err != nil {
		t.failed.Add(1)
		t.errOnce.Do(func() { t.firstErr = err.Error() })
		return
	}
	t.acked.Add(1)
	t.lat.add(took)
}

func (t *tally) result(sent int, elapsed time.Duration) loadResult {
	r := loadResult{
		Sent: sent, Acked: int(t.acked.Load()), Failed: int(t.failed.Load()),
		Elapsed: elapsed, Ack: t.lat.summary(), FirstErr: t.firstErr,
	}
	r.PerSec = float64(r.Acked) / elapsed.Seconds()
	return r
}

// closedLoop sends as fast as possible over conns connections: each
// worker sends its next push when the previous one is answered. It stops
// after n pushes or when dur has passed, whichever comes first.
func closedLoop(ctx context.Context, conns, n int, dur time.Duration, send sendFunc) loadResult {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var next atomic.Int64
	var t tally
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				took, err := send(ctx, i)
				if ctx.Err() != nil && err != nil {
					return // cut off by the time bound: not the server's failure
				}
				t.record(took, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sent := int(t.acked.Load() + t.failed.Load())
	return t.result(sent, elapsed)
}

// fixedRate sends pushes at rate per second on a fixed schedule (open
// loop: a slow answer does not delay the next push), at most n of them
// and for at most dur. At most maxInFlight pushes wait for an answer at
// once; beyond that a push is counted failed rather than queued, so a
// stalled server cannot turn the schedule into a backlog.
func fixedRate(ctx context.Context, rate float64, n int, dur time.Duration, maxInFlight int, send sendFunc) loadResult {
	if rate <= 0 {
		return loadResult{}
	}
	n = min(n, int(rate*dur.Seconds()))
	interval := time.Duration(float64(time.Second) / rate)
	sem := make(chan struct{}, maxInFlight)
	var t tally
	var wg sync.WaitGroup
	start := time.Now()
	sent := 0
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-ctx.Done():
				timer.Stop()
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		sent++
		select {
		case sem <- struct{}{}:
		default:
			t.record(0, fmt.Errorf("push %d: %d pushes already waiting for an answer", i, maxInFlight))
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			t.record(send(ctx, i))
		}(i)
	}
	wg.Wait()
	return t.result(sent, time.Since(start))
}
