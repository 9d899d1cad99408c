package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Target is one of issue 7's (and issue 5's) targets, checked against
// the run.
type Target struct {
	Store string `json:"store"`
	What  string `json:"what"`
	Want  string `json:"want"`
	Got   string `json:"got"`
	Met   bool   `json:"met"`
}

// checkTargets compares the run with the targets, for every figure the
// run measured.
func checkTargets(r *Report) []Target {
	var out []Target
	add := func(store, what, want, got string, met bool) {
		out = append(out, Target{Store: store, What: what, Want: want, Got: got, Met: met})
	}
	for _, store := range r.Meta.Options.Stores {
		sr := r.Stores[store]
		if sr == nil {
			continue
		}
		if in := sr.Ingest; in != nil {
			if store == "redis" {
				add(store, "ingest", "≥ 40% of bare handler", pct(in.OfBare), in.OfBare >= 0.40)
			} else {
				add(store, "ingest", "≥ 5,000 durable acks/s", num(in.Load.PerSec)+"/s", in.Load.PerSec >= 5000)
			}
		}
		e2eTargets := func(what string, e E2EResult) {
			add(store, what+" p50", "≤ 5 ms", msf(e.E2E.P50), e.E2E.Count > 0 && e.E2E.P50 <= 5)
			add(store, what+" p99", "≤ 25 ms", msf(e.E2E.P99), e.E2E.Count > 0 && e.E2E.P99 <= 25 && e.Missing == 0)
		}
		if e := sr.E2E; e != nil {
			e2eTargets(fmt.Sprintf("e2e at %g/s", r.Meta.Options.Rate), *e)
		}
		if p := sr.Pressure; p != nil {
			add(store, "pressure new code p99", "≤ 1 s", msf(p.NewCodes.P99),
				p.NewCodes.Count > 0 && p.NewCodes.P99 <= 1000 && p.NewDelivered == p.NewSent)
		}
		if l := sr.Live; l != nil {
			add(store, fmt.Sprintf("%d live: RSS", l.Live), "≤ 150 MB", mb(l.E2E.Proc.RSSBytes),
				l.E2E.Proc.RSSBytes > 0 && l.E2E.Proc.RSSBytes <= 150<<20)
			e2eTargets(fmt.Sprintf("%d live: new code", l.Live), l.E2E)
		}
		telegramTargets(r, store, sr, add)
	}
	return out
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }
func msf(f float64) string {
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f ms", f)
	case f >= 10:
		return fmt.Sprintf("%.1f ms", f)
	}
	return fmt.Sprintf("%.2f ms", f)
}
func mb(b float64) string { return fmt.Sprintf("%.0f MB", b/(1<<20)) }

// num formats a rate with thousands separators.
func num(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// times formats a ratio to a baseline latency ("×3.2").
func times(a, base float64) string {
	if base <= 0 || a <= 0 {
		return ""
	}
	return fmt.Sprintf("×%.1f", a/base)
}

// cpuPer is the CPU time per acknowledged push of otpbot and, for the
// redis store, of the Redis server, in microseconds.
func cpuPer(p procPeak, pushes int) string {
	if pushes == 0 || p.CPUSeconds == 0 {
		return ""
	}
	s := fmt.Sprintf("%.0f", p.CPUSeconds/float64(pushes)*1e6)
	if p.RedisCPUSeconds > 0 {
		s += fmt.Sprintf(" / %.0f", p.RedisCPUSeconds/float64(pushes)*1e6)
	}
	return s
}

// bytesPer is what otpbot wrote to its store file per push, in KiB (the
// embedded store; nothing for Redis).
func bytesPer(p procPeak, pushes int) string {
	if pushes == 0 || p.WriteBytes/float64(pushes) < 100 {
		return "" // Redis: otpbot writes no store file
	}
	return fmt.Sprintf("%.1f KiB", p.WriteBytes/float64(pushes)/1024)
}

// printReport writes the human table: baselines, then each scenario with
// the stores side by side, then the targets.
func printReport(w io.Writer, r *Report) {
	p := &reportWriter{w: w, r: r, stores: r.Meta.Options.Stores}
	p.baselines()
	p.ingest()
	p.e2e()
	p.pressure()
	p.live()
	p.rtt()
	p.busy()
	p.commands()
	p.recovery()
	p.flush()
	p.targets()
}

// reportWriter prints the sections of the human table: each a title, a
// description, and rows with a cell per store.
type reportWriter struct {
	w      io.Writer
	r      *Report
	stores []string
	tw     *tabwriter.Writer
}

func (p *reportWriter) flush() {
	if p.tw != nil {
		p.tw.Flush()
	}
}

// header ends the previous section's table and starts one: a title, an
// optional description, then the store names over their columns.
func (p *reportWriter) header(title, desc string) {
	p.flush()
	fmt.Fprintf(p.w, "\n%s\n", title)
	if desc != "" {
		fmt.Fprintf(p.w, "  %s\n", desc)
	}
	p.tw = tabwriter.NewWriter(p.w, 0, 0, 3, ' ', 0)
	fmt.Fprint(p.tw, " ")
	for _, s := range p.stores {
		fmt.Fprintf(p.tw, "\t%s", s)
	}
	fmt.Fprintln(p.tw, "\t")
}

// row prints a label and a cell per store ("—" where cell has nothing).
func (p *reportWriter) row(label string, cell func(sr *StoreResult) string) {
	fmt.Fprintf(p.tw, "  %s", label)
	for _, s := range p.stores {
		c := "—"
		if sr := p.r.Stores[s]; sr != nil {
			if v := cell(sr); v != "" {
				c = v
			}
		}
		fmt.Fprintf(p.tw, "\t%s", c)
	}
	fmt.Fprintln(p.tw, "\t")
}

// has reports whether any store has what f looks for.
func (p *reportWriter) has(f func(*StoreResult) bool) bool {
	for _, s := range p.stores {
		if sr := p.r.Stores[s]; sr != nil && f(sr) {
			return true
		}
	}
	return false
}

func proc(x procPeak) string {
	if x.RSSBytes == 0 {
		return ""
	}
	if x.AnonBytes > 0 && x.FileBytes > 0 {
		// The split: the process's own memory + mapped file pages.
		return fmt.Sprintf("%s (%.0f + %.0f file) / %.0f", mb(x.RSSBytes), x.AnonBytes/(1<<20), x.FileBytes/(1<<20), x.Goroutines)
	}
	return fmt.Sprintf("%s / %.0f", mb(x.RSSBytes), x.Goroutines)
}

func (p *reportWriter) baselines() {
	r, o, bl := p.r, p.r.Meta.Options, p.r.Baseline
	fmt.Fprintf(p.w, "otpbot bench — %d CPUs, %s %s, %s\n", r.Meta.CPUs, r.Meta.Go, r.Meta.OS, r.Meta.Started)
	fmt.Fprintf(p.w, "%s\n", r.Meta.Command)
	fmt.Fprintf(p.w, "load average %s at the start, %s at the end (other work on the machine skews every figure)\n",
		r.Meta.LoadStart, r.Meta.LoadEnd)
	if !r.Meta.PerChatBurst {
		fmt.Fprintln(p.w, "this otpbot does not know telegram.rate.per_chat_burst: it ran without a per-chat burst")
	}
	fmt.Fprintln(p.w)
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BASELINES (this run)\t\t")
	fmt.Fprintf(tw, "  bare handler, %d conns\t%s acks/s\tack p50 %s  p99 %s  p99.9 %s\n", o.Conns,
		num(bl.BareIngest.PerSec), msf(bl.BareIngest.Ack.P50), msf(bl.BareIngest.Ack.P99), msf(bl.BareIngest.Ack.P999))
	fmt.Fprintf(tw, "  bare handler, %g/s\t\tack p50 %s  p99 %s  p99.9 %s\n", o.Rate,
		msf(bl.BareRate.Ack.P50), msf(bl.BareRate.Ack.P99), msf(bl.BareRate.Ack.P999))
	fmt.Fprintf(tw, "  bbolt commit (Update+fsync)\t\tp50 %s  p99 %s\n", msf(bl.BoltCommit.P50), msf(bl.BoltCommit.P99))
	fmt.Fprintf(tw, "  redis round trip (PING)\t\tp50 %s  p99 %s\n", msf(bl.RedisPing.P50), msf(bl.RedisPing.P99))
	fmt.Fprintf(tw, "  Telegram round trip (fake, %s ± %s)\t\tp50 %s  p99 %s  (best of 3 rounds; RTT below)\n", o.RTT, o.RTTJitter,
		msf(bl.TelegramRTT.P50), msf(bl.TelegramRTT.P99))
	fmt.Fprintf(tw, "  bare handler peak RSS\t%s\t\n", mb(bl.BareRSS))
	tw.Flush()
}

func (p *reportWriter) ingest() {
	if !p.has(func(sr *StoreResult) bool { return sr.Ingest != nil }) {
		return
	}
	o, bi := p.r.Meta.Options, p.r.Baseline.BareIngest.Ack
	p.header("INGEST", fmt.Sprintf("as fast as acknowledged over %d connections, ≤%d pushes, ≤%s; Telegram's limits and round trip", o.Conns, o.N, o.Duration))
	in := func(f func(*IngestResult) string) func(*StoreResult) string {
		return func(sr *StoreResult) string {
			if sr.Ingest == nil {
				return ""
			}
			return f(sr.Ingest)
		}
	}
	p.row("acks/s (of bare handler)", in(func(x *IngestResult) string {
		return fmt.Sprintf("%s (%s)", num(x.Load.PerSec), pct(x.OfBare))
	}))
	p.row("ack p50 (× bare)", in(func(x *IngestResult) string {
		return fmt.Sprintf("%s (%s)", msf(x.Load.Ack.P50), times(x.Load.Ack.P50, bi.P50))
	}))
	p.row("ack p99 (× bare)", in(func(x *IngestResult) string {
		return fmt.Sprintf("%s (%s)", msf(x.Load.Ack.P99), times(x.Load.Ack.P99, bi.P99))
	}))
	p.row("ack p99.9 (× bare)", in(func(x *IngestResult) string {
		return fmt.Sprintf("%s (%s)", msf(x.Load.Ack.P999), times(x.Load.Ack.P999, bi.P999))
	}))
	p.row("acked / failed", in(func(x *IngestResult) string { return fmt.Sprintf("%d / %d", x.Load.Acked, x.Load.Failed) }))
	p.row("otpbot peak RSS / goroutines", in(func(x *IngestResult) string { return proc(x.Proc) }))
	p.row("CPU µs per push: otpbot / redis", in(func(x *IngestResult) string { return cpuPer(x.Proc, x.Load.Acked) }))
	p.row("store bytes written per push", in(func(x *IngestResult) string { return bytesPer(x.Proc, x.Load.Acked) }))
}

// e2eRows prints an E2EResult of each store (e2e, and live10k's phase).
func (p *reportWriter) e2eRows(get func(*StoreResult) *E2EResult) {
	bare := p.r.Baseline.BareRate.Ack
	e := func(f func(*E2EResult) string) func(*StoreResult) string {
		return func(sr *StoreResult) string {
			x := get(sr)
			if x == nil || x.Load.Sent == 0 {
				return ""
			}
			return f(x)
		}
	}
	p.row("delivered / acked", e(func(x *E2EResult) string { return fmt.Sprintf("%d / %d", x.Delivered, x.Load.Acked) }))
	p.row("push→send p50 (× floor)", e(func(x *E2EResult) string {
		return fmt.Sprintf("%s (%s)", msf(x.E2E.P50), times(x.E2E.P50, x.FloorMS))
	}))
	p.row("push→send p99 (× floor)", e(func(x *E2EResult) string {
		return fmt.Sprintf("%s (%s)", msf(x.E2E.P99), times(x.E2E.P99, x.FloorMS))
	}))
	p.row("push→send p99.9 (× floor)", e(func(x *E2EResult) string {
		return fmt.Sprintf("%s (%s)", msf(x.E2E.P999), times(x.E2E.P999, x.FloorMS))
	}))
	p.row("floor (2 bare round trips + store)", e(func(x *E2EResult) string { return msf(x.FloorMS) }))
	p.row("ack p50 / p99 (× bare at rate)", e(func(x *E2EResult) string {
		return fmt.Sprintf("%s / %s (%s / %s)", msf(x.Load.Ack.P50), msf(x.Load.Ack.P99),
			times(x.Load.Ack.P50, bare.P50), times(x.Load.Ack.P99, bare.P99))
	}))
	p.row("otpbot peak RSS / goroutines", e(func(x *E2EResult) string { return proc(x.Proc) }))
	p.row("CPU µs per push: otpbot / redis", e(func(x *E2EResult) string { return cpuPer(x.Proc, x.Load.Acked) }))
	p.row("store bytes written per delivered code", e(func(x *E2EResult) string { return bytesPer(x.Proc, x.Load.Acked) }))
}

func (p *reportWriter) e2e() {
	if !p.has(func(sr *StoreResult) bool { return sr.E2E != nil }) {
		return
	}
	o := p.r.Meta.Options
	p.header("END TO END", fmt.Sprintf("%g pushes/s for ≤%s over %d chats: push sent → otpbot's sendMessage reaches the fake (round trip %s, no limits)", o.Rate, o.Duration, o.Chats, o.RTT))
	p.e2eRows(func(sr *StoreResult) *E2EResult { return sr.E2E })
}

func (p *reportWriter) pressure() {
	if !p.has(func(sr *StoreResult) bool { return sr.Pressure != nil }) {
		return
	}
	o := p.r.Meta.Options
	p.header("PRESSURE", fmt.Sprintf("fake behaves like Telegram (round trip, limits with bursts, real 429s); %d live codes in %d chats, %s countdowns; a new code every %s to a fresh chat for ≤%s: push → message appears",
		o.PressureLive, o.PressureChats, o.PressureTick, o.PressureEvery, o.Duration))
	x := func(f func(*PressureResult) string) func(*StoreResult) string {
		return func(sr *StoreResult) string {
			if sr.Pressure == nil || sr.Pressure.NewSent == 0 {
				return ""
			}
			return f(sr.Pressure)
		}
	}
	p.row("new codes delivered / acked", x(func(x *PressureResult) string { return fmt.Sprintf("%d / %d", x.NewDelivered, x.NewSent) }))
	p.row("new code p50 / p99 / p99.9", x(func(x *PressureResult) string {
		return fmt.Sprintf("%s / %s / %s", msf(x.NewCodes.P50), msf(x.NewCodes.P99), msf(x.NewCodes.P999))
	}))
	p.row("new code max", x(func(x *PressureResult) string { return msf(x.NewCodes.Max) }))
	p.row("sent within 1 s", x(func(x *PressureResult) string { return pct(x.WithinSecond) }))
	p.row("429s provoked (sends / edits)", x(func(x *PressureResult) string {
		return fmt.Sprintf("%d (%d / %d)", x.Count429, x.Sends429, x.Edits429)
	}))
	p.row("sends/s, countdown edits/s", x(func(x *PressureResult) string {
		return fmt.Sprintf("%.1f, %.1f", x.SendsPerSec, x.EditsPerSec)
	}))
	p.row("warm-up (no round trip, no limits)", x(func(x *PressureResult) string { return x.WarmUp.Round(100 * time.Millisecond).String() }))
	p.row("otpbot peak RSS / goroutines", x(func(x *PressureResult) string { return proc(x.Proc) }))
}

func (p *reportWriter) live() {
	if !p.has(func(sr *StoreResult) bool { return sr.Live != nil }) {
		return
	}
	o := p.r.Meta.Options
	p.header("LIVE", fmt.Sprintf("%d live codes, %s countdowns, measured once their edits flow; new codes at %g/s for ≤%s to other chats (round trip %s, no limits)",
		o.LiveCodes, o.LiveTick, o.Rate, o.Duration, o.RTT))
	p.row("warm-up (push + send all, no round trip)", func(sr *StoreResult) string {
		if sr.Live == nil || sr.Live.WarmUp == 0 {
			return ""
		}
		return sr.Live.WarmUp.Round(100 * time.Millisecond).String()
	})
	p.row("countdown edits/s", func(sr *StoreResult) string {
		if sr.Live == nil || sr.Live.E2E.Load.Sent == 0 {
			return ""
		}
		return fmt.Sprintf("%.0f", sr.Live.EditsPerSec)
	})
	p.e2eRows(func(sr *StoreResult) *E2EResult {
		if sr.Live == nil {
			return nil
		}
		return &sr.Live.E2E
	})
}

func (p *reportWriter) targets() {
	r := p.r
	if len(r.Targets) > 0 {
		fmt.Fprintln(p.w, "\nTARGETS")
		tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
		for _, t := range r.Targets {
			mark := "met"
			if !t.Met {
				mark = "MISSED"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", t.Store, t.What, t.Want, t.Got, mark)
		}
		tw.Flush()
	}
	for _, s := range p.stores {
		if sr := r.Stores[s]; sr != nil {
			for _, e := range sr.Errors {
				fmt.Fprintf(p.w, "\nERROR %s %s\n", s, e)
			}
		}
	}
}
