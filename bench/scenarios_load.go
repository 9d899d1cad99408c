package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// RTTResult is the rtt scenario: steady codes under Telegram's round trip
// and limits.
type RTTResult struct {
	Rate      float64    `json:"rate"`
	Chats     int        `json:"chats"`
	Load      loadResult `json:"load"`
	Appear    Latency    `json:"push_to_appear"`
	Delivered int        `json:"delivered"`
	// BacklogStart and BacklogEnd are the mean number of codes pushed and
	// not sent yet over the first and the last seconds of the load
	// (backlogWindows); Growth is their difference as a share of the
	// acknowledged codes: 0 when otpbot keeps up.
	BacklogStart float64 `json:"backlog_start"`
	BacklogEnd   float64 `json:"backlog_end"`
	Growth       float64 `json:"backlog_growth"`
	// Undelivered is the codes not sent yet when the load ended.
	Undelivered int        `json:"undelivered_at_end"`
	Calls       callCounts `json:"calls"`
	Proc        procPeak   `json:"process"`
}

// callCounts are the calls that count against Telegram's limits (see
// bottest.Limits) in a measured phase.
type callCounts struct {
	Counted     int     `json:"counted"`
	Answered429 int     `json:"answered_429"`
	Share429    float64 `json:"share_429"`
	// MaxPerSecond is the most the fake accepted within any second.
	MaxPerSecond int `json:"max_accepted_per_second"`
}

func (b *bench) callCounts(s *session, tr *tracker) callCounts {
	c := callCounts{Counted: int(tr.counted.Load()), Answered429: int(tr.counted429.Load()),
		MaxPerSecond: s.fake.MaxCallsPerWindow(time.Second)}
	c.Share429 = ratio(float64(c.Answered429), float64(c.Counted))
	return c
}

// telegramSession is a session whose fake behaves like Telegram (round
// trip and limits) and whose otpbot runs with Telegram's limits.
func (b *bench) telegramSession(ctx context.Context, name string, spec storeSpec, links []linkPlan, cfg func(*instanceConfig)) (*session, error) {
	return b.newSession(ctx, name, spec, links, b.fakeOpts(true), func(c *instanceConfig) {
		b.telegramRates(c)
		if cfg != nil {
			cfg(c)
		}
	})
}

// rtt: -rtt-rate codes/s for -rtt-duration into -rtt-chats chats.
func (b *bench) rtt(ctx context.Context, spec storeSpec) (*RTTResult, error) {
	o := b.o
	s, err := b.telegramSession(ctx, "rtt", spec, plan("R", o.RTTChats, 8_000_000), nil)
	if err != nil {
		return nil, err
	}
	defer s.close()
	res := &RTTResult{Rate: o.RTTRate, Chats: o.RTTChats}
	s.fake.ForgetCalls()
	tr := s.fake.track()
	s.in.resetPeak()
	send := func(ctx context.Context, i int) (time.Duration, error) {
		return s.p.send(ctx, "R"+strconv.Itoa(i%o.RTTChats), tr.expect)
	}
	stop := watchBacklog(tr, 100*time.Millisecond)
	res.Load = fixedRate(ctx, o.RTTRate, int(o.RTTRate*o.RTTDuration.Seconds())+1, o.RTTDuration, 512, send)
	res.Undelivered = int(tr.backlog())
	res.BacklogStart, res.BacklogEnd = backlogWindows(stop(), o.RTTDuration)
	res.Growth = ratio(res.BacklogEnd-res.BacklogStart, float64(res.Load.Acked))
	waitFor(o.Drain, func() bool { return tr.matched.Load() >= int64(res.Load.Acked) })
	res.Appear = tr.appear.summary()
	res.Delivered = int(tr.matched.Load())
	res.Calls = b.callCounts(s, tr)
	res.Proc = s.in.peakNow()
	if res.Load.Acked == 0 {
		return res, fmt.Errorf("nothing acknowledged: %s", res.Load.FirstErr)
	}
	return res, nil
}

// backlogSample is the number of codes not sent yet, at some time into
// the load.
type backlogSample struct {
	at time.Duration
	n  int64
}

// watchBacklog samples tr's backlog every interval until the returned
// function is called; that returns the samples.
func watchBacklog(tr *tracker, every time.Duration) (stop func() []backlogSample) {
	done := make(chan struct{})
	out := make(chan []backlogSample, 1)
	go func() {
		start := time.Now()
		var samples []backlogSample
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				out <- samples
				return
			case <-tick.C:
				samples = append(samples, backlogSample{at: time.Since(start), n: tr.backlog()})
			}
		}
	}()
	return func() []backlogSample {
		close(done)
		return <-out
	}
}

// backlogWindows averages the backlog over the start and the end of a
// load of length d: from 1 s to 3 s in, and over its last 2 s (the first
// and last thirds of a load shorter than 6 s). The first second is left
// out: the backlog rises from 0 to what is in flight.
func backlogWindows(samples []backlogSample, d time.Duration) (start, end float64) {
	lo, hi, w := time.Second, d-2*time.Second, 2*time.Second
	if d < 6*time.Second {
		lo, hi, w = 0, d-d/3, d/3
	}
	mean := func(from, to time.Duration) float64 {
		sum, n := 0.0, 0
		for _, s := range samples {
			if s.at >= from && s.at < to {
				sum += float64(s.n)
				n++
			}
		}
		return ratio(sum, float64(n))
	}
	return mean(lo, lo+w), mean(hi, hi+w)
}

// BusyResult is the busy-chats scenario: chats that get a code every
// second while their earlier codes count down.
type BusyResult struct {
	Chats     int        `json:"chats"`
	Load      loadResult `json:"load"`
	Appear    Latency    `json:"push_to_appear"`
	Delivered int        `json:"delivered"`
	// EditsPerSec is the countdown edits the fake accepted.
	EditsPerSec float64    `json:"edits_per_sec"`
	Calls       callCounts `json:"calls"`
	Proc        procPeak   `json:"process"`
}

// busy: -busy-chats chats, a code each every second, -busy-tick
// countdowns. A warm-up of two countdown steps comes first, so that every
// measured code has earlier ones counting down in its chat.
func (b *bench) busy(ctx context.Context, spec storeSpec) (*BusyResult, error) {
	o := b.o
	chats := o.BusyChats
	s, err := b.telegramSession(ctx, "busy", spec, plan("H", chats, 9_000_000), func(c *instanceConfig) {
		c.TTL, c.Countdown = 5*time.Minute, o.BusyTick
	})
	if err != nil {
		return nil, err
	}
	defer s.close()
	res := &BusyResult{Chats: chats}
	rate := float64(chats) // a code a second in each chat
	warm := 2 * o.BusyTick
	next := 0 // round robin across both phases
	send := func(tr *tracker) sendFunc {
		return func(ctx context.Context, i int) (time.Duration, error) {
			var onSend func(string, time.Time)
			if tr != nil {
				onSend = tr.expect
			}
			return s.p.send(ctx, "H"+strconv.Itoa((next+i)%chats), onSend)
		}
	}
	warmLoad := fixedRate(ctx, rate, int(rate*warm.Seconds())+1, warm, 512, send(nil))
	next = warmLoad.Sent
	s.fake.ForgetCalls()
	tr := s.fake.track()
	s.in.resetPeak()
	start := time.Now()
	res.Load = fixedRate(ctx, rate, int(rate*o.Duration.Seconds())+1, o.Duration, 512, send(tr))
	elapsed := time.Since(start)
	res.EditsPerSec = float64(tr.editsOK.Load()) / elapsed.Seconds()
	waitFor(o.Drain, func() bool { return tr.matched.Load() >= int64(res.Load.Acked) })
	res.Appear = tr.appear.summary()
	res.Delivered = int(tr.matched.Load())
	res.Calls = b.callCounts(s, tr)
	res.Proc = s.in.peakNow()
	if res.Load.Acked == 0 {
		return res, fmt.Errorf("nothing acknowledged: %s", res.Load.FirstErr)
	}
	return res, nil
}
