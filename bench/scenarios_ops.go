package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// benchAdmin is the Telegram user the commands scenario's otpbot lists in
// telegram.admins.
const benchAdmin int64 = 4242

// CommandsResult is the commands scenario.
type CommandsResult struct {
	Commands int `json:"commands"`
	Replied  int `json:"replied"`
	Lost     int `json:"lost"`
	// Replies run from the command's injection to its reply appearing.
	Replies Latency `json:"command_to_reply"`
	// The codes that flowed meanwhile: push → message appears.
	Codes          Latency    `json:"codes_push_to_appear"`
	CodesAcked     int        `json:"codes_acked"`
	CodesDelivered int        `json:"codes_delivered"`
	Calls          callCounts `json:"calls"`
}

// commandWait bounds how long the commands scenario waits for replies.
const commandWait = 30 * time.Second

// commands: -commands /link commands at once, one per group chat, while
// codes flow to other chats.
func (b *bench) commands(ctx context.Context, spec storeSpec) (*CommandsResult, error) {
	o := b.o
	const codeChats = 50
	s, err := b.telegramSession(ctx, "commands", spec, plan("K", codeChats, 10_000_000), func(c *instanceConfig) {
		c.Admins = []int64{benchAdmin}
	})
	if err != nil {
		return nil, err
	}
	defer s.close()
	res := &CommandsResult{Commands: o.Commands}
	s.fake.ForgetCalls()
	tr := s.fake.track()
	var wg sync.WaitGroup
	var codes loadResult
	wg.Add(1)
	go func() {
		defer wg.Done()
		send := func(ctx context.Context, i int) (time.Duration, error) {
			return s.p.send(ctx, "K"+strconv.Itoa(i%codeChats), tr.expect)
		}
		codes = fixedRate(ctx, o.CommandsRate, int(o.CommandsRate*o.Duration.Seconds())+1, o.Duration, 512, send)
	}()
	// Let the codes flow first, then an admin links a card in each of as
	// many groups at once.
	if !sleepCtx(ctx, min(time.Second, o.Duration/4)) {
		wg.Wait()
		return res, ctx.Err()
	}
	for i := range o.Commands {
		chat := -10_000_000_000 - int64(i)
		tr.expectReply(chat, time.Now())
		s.fake.SendCommand(chat, benchAdmin, "/link card G"+strconv.Itoa(i))
	}
	waitFor(commandWait, func() bool { return tr.replied.Load() >= int64(o.Commands) })
	wg.Wait()
	waitFor(o.Drain, func() bool { return tr.matched.Load() >= int64(codes.Acked) })
	res.Replies = tr.replies.summary()
	res.Replied = int(tr.replied.Load())
	res.Lost = o.Commands - res.Replied
	res.Codes, res.CodesAcked, res.CodesDelivered = tr.appear.summary(), codes.Acked, int(tr.matched.Load())
	res.Calls = b.callCounts(s, tr)
	if res.Lost > 0 {
		return res, fmt.Errorf("%d of %d commands got no reply within %s", res.Lost, o.Commands, commandWait)
	}
	return res, nil
}

// sleepCtx waits d; false when ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// RecoveryResult is the recovery scenario.
type RecoveryResult struct {
	Outage time.Duration `json:"outage_ns"`
	// Refused is the calls the fake answered with its HTML 502.
	Refused int `json:"refused_502"`
	// LiveAcked live codes were acknowledged during the outage; LiveSent
	// of them were sent after it; SinceUp runs from the recovery to each
	// one's first message appearing.
	LiveAcked int     `json:"live_acked"`
	LiveSent  int     `json:"live_sent"`
	SinceUp   Latency `json:"recovery_to_appear"`
	// Duplicates are the messages showing a code beyond its first.
	Duplicates int `json:"duplicates"`
	// Expiring codes were acknowledged at the start of the outage with a
	// ttl of a third of it. Each ended up sent showing its code (ExpiredLive: a
	// failure), sent in its expired form (a message without the code), or
	// not sent at all.
	Expiring    int `json:"expiring_acked"`
	ExpiredLive int `json:"expired_sent_live"`
	ExpiredForm int `json:"expired_sent_expired"`
	ExpiredNone int `json:"expired_not_sent"`
}

// recoveryWait bounds how long the recovery scenario waits for the live
// codes after the fake comes back; recoveryLinger is how long it then
// keeps watching for duplicates and expired forms.
const (
	recoveryWait   = 40 * time.Second
	recoveryLinger = 3 * time.Second
)

// recovery: an HTML 502 outage with codes pushed during it.
func (b *bench) recovery(ctx context.Context, spec storeSpec) (*RecoveryResult, error) {
	o := b.o
	links := append(plan("V", o.OutageCodes, 11_000_000), plan("X", o.OutageExpiring, 11_500_000)...)
	s, err := b.telegramSession(ctx, "recovery", spec, links, func(c *instanceConfig) {
		c.TTL, c.TTLByEvent = 10*time.Minute, map[string]time.Duration{"3DS_CONFIRM": o.Outage / 3}
	})
	if err != nil {
		return nil, err
	}
	defer s.close()
	res := &RecoveryResult{Outage: o.Outage}
	tr := s.fake.track()
	tr.keep()
	var mu sync.Mutex
	pushed := recoveryCodes{live: map[string]bool{}, expiring: map[int64]string{}}

	s.fake.SetDown(502)
	downAt := time.Now()
	for i := range o.OutageExpiring {
		chat := 11_500_000 + int64(i)
		onSend := func(code string, _ time.Time) { pushed.expiring[chat] = code }
		if _, err := s.p.push(ctx, "3DS_CONFIRM", "X"+strconv.Itoa(i), onSend); err == nil {
			res.Expiring++
		}
	}
	// The live codes are spread over the outage, the last 1 s before its end.
	n := o.OutageCodes
	spread := o.Outage - time.Since(downAt) - time.Second
	send := func(ctx context.Context, i int) (time.Duration, error) {
		return s.p.send(ctx, "V"+strconv.Itoa(i), func(code string, _ time.Time) {
			mu.Lock()
			pushed.live[code] = true
			mu.Unlock()
		})
	}
	live := fixedRate(ctx, float64(n)/spread.Seconds(), n, spread+spread/time.Duration(2*n), 64, send)
	res.LiveAcked = live.Acked
	if !sleepCtx(ctx, time.Until(downAt.Add(o.Outage))) {
		return res, ctx.Err()
	}
	res.Refused = int(tr.down.Load())
	upAt := time.Now()
	s.fake.SetUp()
	firsts := func() map[string]time.Time {
		out := map[string]time.Time{}
		for _, m := range tr.sentMessages() {
			if _, ok := out[m.Code]; m.Code != "" && !ok {
				out[m.Code] = m.Acted
			}
		}
		return out
	}
	waitFor(recoveryWait, func() bool { return len(firsts()) >= res.LiveAcked })
	sleepCtx(ctx, recoveryLinger)
	pushed.outcome(res, tr.sentMessages(), upAt)
	if res.LiveAcked < n || res.Expiring < o.OutageExpiring {
		return res, fmt.Errorf("pushes during the outage not acknowledged: %d of %d live, %d of %d expiring: %s",
			res.LiveAcked, n, res.Expiring, o.OutageExpiring, live.FirstErr)
	}
	return res, nil
}

// recoveryCodes are the codes pushed during the outage: the live ones,
// and the expiring ones by chat (each has its own).
type recoveryCodes struct {
	live     map[string]bool
	expiring map[int64]string
}

// outcome sorts the messages the fake accepted: the live codes' first
// appearance after upAt and their duplicates, and what the chats of the
// expiring codes got.
func (p recoveryCodes) outcome(res *RecoveryResult, sent []sentMessage, upAt time.Time) {
	seen := map[string]bool{}
	var since samples
	got := map[int64]string{} // expiring code's chat → "live" or "expired"
	for _, m := range sent {
		if code, ok := p.expiring[m.Chat]; ok {
			if m.Code == code {
				got[m.Chat] = "live"
			} else if got[m.Chat] == "" {
				got[m.Chat] = "expired"
			}
			continue
		}
		if !p.live[m.Code] {
			continue
		}
		if seen[m.Code] {
			res.Duplicates++
			continue
		}
		seen[m.Code] = true
		since.add(m.Acted.Sub(upAt))
	}
	res.LiveSent, res.SinceUp = len(seen), since.summary()
	for chat := range p.expiring {
		switch got[chat] {
		case "live":
			res.ExpiredLive++
		case "expired":
			res.ExpiredForm++
		default:
			res.ExpiredNone++
		}
	}
}
