package main

import (
	"fmt"
	"time"
)

// The targets of the scenarios against Telegram's behaviour.
const (
	// overRTTTarget: push → message appears at p99, over the round trip.
	overRTTTarget = 150.0 // ms
	// max429Share: rtt's share of counted calls answered 429.
	max429Share = 0.01
	// maxGrowth: rtt's backlog growth; below half a percent prints as 0 %.
	maxGrowth = 0.005
	// commandsWithin: the slowest command reply.
	commandsWithin = 6 * time.Second
	// recoveryWithin: every live code after the outage ends.
	recoveryWithin = 2 * time.Second
)

// rttMS is the run's Telegram round trip in milliseconds.
func (r *Report) rttMS() float64 { return r.Baseline.TelegramRTT.P50 }

// overRTT quotes a latency against the round trip: "RTT + 72 ms".
func overRTT(v, rtt float64) string {
	d := v - rtt
	if d < 0 {
		return "RTT − " + msf(-d)
	}
	return "RTT + " + msf(d)
}

// latencyVsRTT formats p50 and p99 of l with their relation to the RTT
// ("" when l is empty).
func latencyVsRTT(l Latency, rtt float64) string {
	if l.Count == 0 {
		return ""
	}
	return fmt.Sprintf("%s / %s (%s / %s)", msf(l.P50), msf(l.P99), timesRTT(l.P50, rtt), overRTT(l.P99, rtt))
}

// timesRTT quotes a latency as a multiple of the round trip: "×2.1 RTT".
func timesRTT(v, rtt float64) string {
	if x := times(v, rtt); x != "" {
		return x + " RTT"
	}
	return "—"
}

// telegramTargets adds the targets of the Telegram scenarios of one store.
func telegramTargets(r *Report, store string, sr *StoreResult, add func(store, what, want, got string, met bool)) {
	rtt := r.rttMS()
	want := fmt.Sprintf("≤ RTT + %.0f ms", overRTTTarget)
	if x := sr.RTT; x != nil {
		add(store, fmt.Sprintf("rtt %g/s: p99 push→appears", x.Rate), want, overRTT(x.Appear.P99, rtt),
			x.Appear.Count > 0 && x.Appear.P99 <= rtt+overRTTTarget)
		add(store, "rtt: backlog growth", "0 %", fmt.Sprintf("%.1f %%", x.Growth*100), x.Load.Acked > 0 && x.Growth < maxGrowth)
		add(store, "rtt: calls answered 429", "≤ 1 %", fmt.Sprintf("%.1f %%", x.Calls.Share429*100),
			x.Calls.Counted > 0 && x.Calls.Share429 <= max429Share)
	}
	if x := sr.Busy; x != nil {
		add(store, fmt.Sprintf("busy-chats %d: p99 push→appears", x.Chats), want, overRTT(x.Appear.P99, rtt),
			x.Appear.Count > 0 && x.Appear.P99 <= rtt+overRTTTarget && x.Delivered == x.Load.Acked)
		add(store, "busy-chats: 429s", "0", fmt.Sprint(x.Calls.Answered429), x.Calls.Counted > 0 && x.Calls.Answered429 == 0)
	}
	if x := sr.Commands; x != nil {
		add(store, fmt.Sprintf("commands %d: replies delivered", x.Commands), "all, 0 lost",
			fmt.Sprintf("%d, %d lost", x.Replied, x.Lost), x.Replied == x.Commands && x.Lost == 0)
		add(store, "commands: slowest reply", "≤ 6 s", msf(x.Replies.Max),
			x.Replies.Count > 0 && x.Replies.Max <= ms(commandsWithin))
	}
	if x := sr.Recovery; x != nil {
		add(store, "recovery: live codes sent", "all", fmt.Sprintf("%d of %d", x.LiveSent, x.LiveAcked),
			x.LiveAcked > 0 && x.LiveSent == x.LiveAcked)
		add(store, "recovery: last live code after up", "≤ 2 s", msf(x.SinceUp.Max),
			x.SinceUp.Count > 0 && x.SinceUp.Max <= ms(recoveryWithin) && x.LiveSent == x.LiveAcked)
		add(store, "recovery: each live code once", "0 duplicates", fmt.Sprint(x.Duplicates), x.LiveSent > 0 && x.Duplicates == 0)
		add(store, "recovery: expired codes sent live", "0", fmt.Sprint(x.ExpiredLive), x.ExpiredLive == 0)
	}
}

func (p *reportWriter) rtt() {
	if !p.has(func(sr *StoreResult) bool { return sr.RTT != nil }) {
		return
	}
	o, rtt := p.r.Meta.Options, p.r.rttMS()
	p.header("TELEGRAM ROUND TRIP", fmt.Sprintf("%g codes/s for %s into %d chats; Telegram's round trip (RTT %s) and limits: push → message appears",
		o.RTTRate, o.RTTDuration, o.RTTChats, msf(rtt)))
	x := func(f func(*RTTResult) string) func(*StoreResult) string {
		return func(sr *StoreResult) string {
			if sr.RTT == nil || sr.RTT.Load.Sent == 0 {
				return ""
			}
			return f(sr.RTT)
		}
	}
	p.row("delivered / acked", x(func(x *RTTResult) string { return fmt.Sprintf("%d / %d", x.Delivered, x.Load.Acked) }))
	p.row("push→appears p50 / p99", x(func(x *RTTResult) string { return latencyVsRTT(x.Appear, rtt) }))
	p.row("push→appears max", x(func(x *RTTResult) string { return msf(x.Appear.Max) }))
	p.row("backlog start → end (growth)", x(func(x *RTTResult) string {
		return fmt.Sprintf("%.1f → %.1f (%.1f %%)", x.BacklogStart, x.BacklogEnd, x.Growth*100)
	}))
	p.row("codes not sent when the load ended", x(func(x *RTTResult) string { return fmt.Sprint(x.Undelivered) }))
	p.calls(func(sr *StoreResult) *callCounts {
		if sr.RTT == nil {
			return nil
		}
		return &sr.RTT.Calls
	})
	p.row("otpbot peak RSS / goroutines", x(func(x *RTTResult) string { return proc(x.Proc) }))
}

// calls prints the counted calls of a scenario.
func (p *reportWriter) calls(get func(*StoreResult) *callCounts) {
	c := func(f func(*callCounts) string) func(*StoreResult) string {
		return func(sr *StoreResult) string {
			if x := get(sr); x != nil && x.Counted > 0 {
				return f(x)
			}
			return ""
		}
	}
	p.row("counted calls, answered 429", c(func(x *callCounts) string {
		return fmt.Sprintf("%d, %d (%.1f %%)", x.Counted, x.Answered429, x.Share429*100)
	}))
	p.row("most calls accepted in 1 s", c(func(x *callCounts) string { return fmt.Sprint(x.MaxPerSecond) }))
}

func (p *reportWriter) busy() {
	if !p.has(func(sr *StoreResult) bool { return sr.Busy != nil }) {
		return
	}
	o, rtt := p.r.Meta.Options, p.r.rttMS()
	p.header("BUSY CHATS", fmt.Sprintf("%d chats, each getting a code every second for %s while its earlier codes count down every %s; RTT %s, Telegram's limits",
		o.BusyChats, o.Duration, o.BusyTick, msf(rtt)))
	x := func(f func(*BusyResult) string) func(*StoreResult) string {
		return func(sr *StoreResult) string {
			if sr.Busy == nil || sr.Busy.Load.Sent == 0 {
				return ""
			}
			return f(sr.Busy)
		}
	}
	p.row("delivered / acked", x(func(x *BusyResult) string { return fmt.Sprintf("%d / %d", x.Delivered, x.Load.Acked) }))
	p.row("push→appears p50 / p99", x(func(x *BusyResult) string { return latencyVsRTT(x.Appear, rtt) }))
	p.row("push→appears max", x(func(x *BusyResult) string { return msf(x.Appear.Max) }))
	p.row("countdown edits accepted/s", x(func(x *BusyResult) string { return fmt.Sprintf("%.1f", x.EditsPerSec) }))
	p.calls(func(sr *StoreResult) *callCounts {
		if sr.Busy == nil {
			return nil
		}
		return &sr.Busy.Calls
	})
	p.row("otpbot peak RSS / goroutines", x(func(x *BusyResult) string { return proc(x.Proc) }))
}

func (p *reportWriter) commands() {
	if !p.has(func(sr *StoreResult) bool { return sr.Commands != nil }) {
		return
	}
	o, rtt := p.r.Meta.Options, p.r.rttMS()
	p.header("COMMANDS", fmt.Sprintf("%d /link commands at once from an admin, one per group, while %g codes/s flow to other chats; RTT %s, Telegram's limits",
		o.Commands, o.CommandsRate, msf(rtt)))
	x := func(f func(*CommandsResult) string) func(*StoreResult) string {
		return func(sr *StoreResult) string {
			if sr.Commands == nil {
				return ""
			}
			return f(sr.Commands)
		}
	}
	p.row("replies delivered / commands (lost)", x(func(x *CommandsResult) string {
		return fmt.Sprintf("%d / %d (%d)", x.Replied, x.Commands, x.Lost)
	}))
	p.row("command→reply p50 / max", x(func(x *CommandsResult) string {
		if x.Replies.Count == 0 {
			return ""
		}
		return fmt.Sprintf("%s / %s (%s / %s)", msf(x.Replies.P50), msf(x.Replies.Max),
			timesRTT(x.Replies.P50, rtt), timesRTT(x.Replies.Max, rtt))
	}))
	p.row("codes meanwhile: delivered / acked", x(func(x *CommandsResult) string {
		return fmt.Sprintf("%d / %d", x.CodesDelivered, x.CodesAcked)
	}))
	p.row("codes meanwhile: push→appears p50 / p99", x(func(x *CommandsResult) string { return latencyVsRTT(x.Codes, rtt) }))
	p.calls(func(sr *StoreResult) *callCounts {
		if sr.Commands == nil {
			return nil
		}
		return &sr.Commands.Calls
	})
}

func (p *reportWriter) recovery() {
	if !p.has(func(sr *StoreResult) bool { return sr.Recovery != nil }) {
		return
	}
	o, rtt := p.r.Meta.Options, p.r.rttMS()
	p.header("RECOVERY", fmt.Sprintf("the fake answers HTML 502 for %s; %d codes (ttl 10m) pushed during it, %d (ttl %s) at its start; then it is back; RTT %s",
		o.Outage, o.OutageCodes, o.OutageExpiring, o.Outage/3, msf(rtt)))
	x := func(f func(*RecoveryResult) string) func(*StoreResult) string {
		return func(sr *StoreResult) string {
			if sr.Recovery == nil {
				return ""
			}
			return f(sr.Recovery)
		}
	}
	p.row("calls answered 502 during the outage", x(func(x *RecoveryResult) string { return fmt.Sprint(x.Refused) }))
	p.row("live codes sent / acked", x(func(x *RecoveryResult) string { return fmt.Sprintf("%d / %d", x.LiveSent, x.LiveAcked) }))
	p.row("back up → live code appears p50 / max", x(func(x *RecoveryResult) string {
		if x.SinceUp.Count == 0 {
			return ""
		}
		return fmt.Sprintf("%s / %s (%s / %s)", msf(x.SinceUp.P50), msf(x.SinceUp.Max),
			timesRTT(x.SinceUp.P50, rtt), timesRTT(x.SinceUp.Max, rtt))
	}))
	p.row("duplicate messages of a code", x(func(x *RecoveryResult) string { return fmt.Sprint(x.Duplicates) }))
	p.row("expired codes: live / expired form / none", x(func(x *RecoveryResult) string {
		return fmt.Sprintf("%d / %d / %d of %d", x.ExpiredLive, x.ExpiredForm, x.ExpiredNone, x.Expiring)
	}))
}
