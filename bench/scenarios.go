package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/otpbot/otpbot/bot/bottest"
)

// bench runs the scenarios of one invocation.
type bench struct {
	o    options
	bin  string
	dir  string
	run  string // unique per run: Redis prefixes, order numbers
	logf func(string, ...any)
	seq  int
	base Baseline
	// burstKey: the otpbot binary knows telegram.rate.per_chat_burst.
	burstKey bool
}

// baselines measures the ceilings.
func (b *bench) baselines(ctx context.Context, r *Report) error {
	b.logf("baseline: bare handler")
	bare, err := startBare()
	if err != nil {
		return err
	}
	p := &pusher{url: "http://" + bare.addr + "/webhooks/upay", secret: []byte(benchSecret),
		client: newHTTPClient(b.o.Conns), run: b.run + "-bare"}
	send := func(ctx context.Context, i int) (time.Duration, error) {
		return p.send(ctx, "C"+strconv.Itoa(i%b.o.Chats), nil)
	}
	closedLoop(ctx, b.o.Conns, min(b.o.N, 2000), 2*time.Second, send) // warm up connections and the CPU
	r.Baseline.BareIngest = closedLoop(ctx, b.o.Conns, b.o.N, b.o.Duration, send)
	r.Baseline.BareRate = fixedRate(ctx, b.o.Rate, b.o.N, min(b.o.Duration, 5*time.Second), 512, send)
	r.Baseline.BareRSS = bare.stop()
	if bi := r.Baseline.BareIngest; bi.Acked == 0 {
		return fmt.Errorf("baseline: bare handler acknowledged nothing: %s", bi.FirstErr)
	}
	b.logf("baseline: bbolt commit")
	if r.Baseline.BoltCommit, err = boltCommit(b.dir, 300); err != nil {
		return err
	}
	b.logf("baseline: redis PING")
	if r.Baseline.RedisPing, err = redisPing(ctx, b.o.Redis, 2000); err != nil {
		return err
	}
	b.logf("baseline: Telegram round trip (fake)")
	if r.Baseline.TelegramRTT, err = fakeRoundTrip(ctx, b.o.RTT, b.o.RTTJitter, 32); err != nil {
		return err
	}
	b.base = r.Baseline
	return nil
}

// storeRT is the store's round-trip baseline in milliseconds.
func (b *bench) storeRT(driver string) float64 {
	if driver == "embedded" {
		return b.base.BoltCommit.P50
	}
	return b.base.RedisPing.P50
}

// newStore returns a fresh store of driver and a function that removes
// what it left behind.
func (b *bench) newStore(driver, name string) (storeSpec, func()) {
	b.seq++
	if driver == "embedded" {
		return storeSpec{Driver: driver, Path: filepath.Join(b.dir, fmt.Sprintf("%s-%d.db", name, b.seq))}, func() {}
	}
	spec := storeSpec{Driver: driver, Addr: b.o.Redis, Prefix: fmt.Sprintf("otpbench:%s:%s%d:", b.run, name, b.seq)}
	return spec, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := cleanRedis(ctx, spec.Addr, spec.Prefix)
		if err != nil {
			b.logf("redis cleanup of %s failed after %d keys: %v", spec.Prefix, n, err)
		}
	}
}

// instanceFor is the configuration every scenario starts from.
func (b *bench) instanceFor(spec storeSpec, fake *fakeAPI) instanceConfig {
	return instanceConfig{
		Store: spec, Endpoint: fake.Endpoint(),
		GlobalPerSec: 1000, PerChatPerSec: 1,
		TTL: 5 * time.Minute, Countdown: 30 * time.Second,
		Workers: b.o.Workers, LogLevel: b.o.LogLevel, Pprof: b.o.Pprof != "",
	}
}

// profPath is where the profile of a measured phase goes ("" without -pprof).
func (b *bench) profPath(spec storeSpec, phase string) string {
	if b.o.Pprof == "" {
		return ""
	}
	return filepath.Join(b.o.Pprof, spec.Driver+"-"+phase+".pprof")
}

func (b *bench) scenario(ctx context.Context, driver, name string, sr *StoreResult) error {
	spec, clean := b.newStore(driver, name)
	defer clean()
	switch name {
	case "ingest":
		res, err := b.ingest(ctx, spec)
		sr.Ingest = res
		return err
	case "e2e":
		res, err := b.e2e(ctx, spec)
		sr.E2E = res
		return err
	case "pressure":
		res, err := b.pressure(ctx, spec)
		sr.Pressure = res
		return err
	case "live10k":
		res, err := b.live(ctx, spec)
		sr.Live = res
		return err
	case "rtt":
		res, err := b.rtt(ctx, spec)
		sr.RTT = res
		return err
	case "busy-chats":
		res, err := b.busy(ctx, spec)
		sr.Busy = res
		return err
	case "commands":
		res, err := b.commands(ctx, spec)
		sr.Commands = res
		return err
	case "recovery":
		res, err := b.recovery(ctx, spec)
		sr.Recovery = res
		return err
	}
	return fmt.Errorf("unknown scenario %q", name)
}

// plan links count cards named prefix+i to chats base+i.
func plan(prefix string, count int, base int64) []linkPlan {
	out := make([]linkPlan, count)
	for i := range out {
		out[i] = linkPlan{Card: prefix + strconv.Itoa(i), Chat: base + int64(i)}
	}
	return out
}

// session is an otpbot instance with its fake Bot API and store, ready.
type session struct {
	fake *fakeAPI
	in   *instance
	p    *pusher
}

func (s *session) close() {
	if s.in != nil {
		_ = s.in.stop()
	}
	if s.fake != nil {
		s.fake.Close()
	}
}

// start starts (or restarts) otpbot of the session with cfg.
func (b *bench) start(ctx context.Context, s *session, name string, cfg instanceConfig) error {
	in, err := startInstance(ctx, b.bin, b.dir, fmt.Sprintf("%s-%d", name, b.seq), cfg, s.fake)
	if err != nil {
		return err
	}
	s.in = in
	s.p = &pusher{url: "http://" + in.addr + "/webhooks/upay", secret: []byte(benchSecret),
		client: newHTTPClient(max(b.o.Conns, 64)), run: fmt.Sprintf("%s-%s-%d", b.run, name, b.seq)}
	return nil
}

// fakeOpts are a scenario fake's options: the round trip, and
// Telegram's limits when limited.
func (b *bench) fakeOpts(limited bool) []bottest.Option {
	opts := []bottest.Option{bottest.WithRoundTrip(b.o.RTT, b.o.RTTJitter)}
	if limited {
		opts = append(opts, bottest.WithTelegramLimits(bottest.RealLimits()))
	}
	return opts
}

// telegramRates gives otpbot Telegram's limits as telegram.rate.
func (b *bench) telegramRates(c *instanceConfig) {
	c.GlobalPerSec, c.PerChatPerSec = 30, 1
	if b.burstKey {
		c.PerChatBurst = bottest.RealLimits().ChatBurst
	}
}

// newSession links plan in a fresh store, starts a fake Bot API with
// opts, and starts otpbot.
func (b *bench) newSession(ctx context.Context, name string, spec storeSpec, links []linkPlan, opts []bottest.Option, cfg func(*instanceConfig)) (*session, error) {
	if err := prepopulate(ctx, spec, links); err != nil {
		return nil, err
	}
	fake, err := startFake(opts...)
	if err != nil {
		return nil, err
	}
	s := &session{fake: fake}
	c := b.instanceFor(spec, fake)
	if cfg != nil {
		cfg(&c)
	}
	if err := b.start(ctx, s, name, c); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// ingest: acknowledged pushes per second over -c connections.
func (b *bench) ingest(ctx context.Context, spec storeSpec) (*IngestResult, error) {
	s, err := b.newSession(ctx, "ingest", spec, plan("I", b.o.Chats, 1_000_000), b.fakeOpts(true), b.telegramRates)
	if err != nil {
		return nil, err
	}
	defer s.close()
	chats := b.o.Chats
	send := func(ctx context.Context, i int) (time.Duration, error) {
		return s.p.send(ctx, "I"+strconv.Itoa(i%chats), nil)
	}
	closedLoop(ctx, b.o.Conns, min(b.o.N/10, 1000), 2*time.Second, send) // warm up
	s.in.resetPeak()
	prof := s.in.profile(b.profPath(spec, "ingest.cpu"), b.o.Duration)
	res := &IngestResult{Load: closedLoop(ctx, b.o.Conns, b.o.N, b.o.Duration, send)}
	res.Proc = s.in.peakNow()
	if err := prof(); err != nil {
		b.logf("%v", err)
	}
	res.OfBare = ratio(res.Load.PerSec, b.base.BareIngest.PerSec)
	if res.Load.Acked == 0 {
		return res, fmt.Errorf("nothing acknowledged: %s", res.Load.FirstErr)
	}
	return res, nil
}

// e2eLoad sends -rate pushes/s for -duration to cards prefix0..chats-1 and
// waits for their messages; tr matches them.
func (b *bench) e2eLoad(ctx context.Context, s *session, prefix string, chats int, spec storeSpec, phase string) E2EResult {
	tr := s.fake.track()
	prof := s.in.profile(b.profPath(spec, phase+".cpu"), b.o.Duration)
	defer func() {
		if err := prof(); err != nil {
			b.logf("%v", err)
		}
	}()
	send := func(ctx context.Context, i int) (time.Duration, error) {
		return s.p.send(ctx, prefix+strconv.Itoa(i%chats), tr.expect)
	}
	var res E2EResult
	res.Load = fixedRate(ctx, b.o.Rate, b.o.N, b.o.Duration, 512, send)
	waitFor(b.o.Drain, func() bool { return tr.matched.Load() >= int64(res.Load.Acked) })
	res.E2E = tr.e2e.summary()
	res.Delivered = int(tr.matched.Load())
	res.Missing = res.Load.Acked - res.Delivered
	res.Proc = s.in.peakNow()
	res.FloorMS = 2*b.base.BareRate.Ack.P50 + b.storeRT(spec.Driver)
	return res
}

// e2e: push sent -> sendMessage received, at -rate.
func (b *bench) e2e(ctx context.Context, spec storeSpec) (*E2EResult, error) {
	s, err := b.newSession(ctx, "e2e", spec, plan("E", b.o.Chats, 2_000_000), b.fakeOpts(false), nil)
	if err != nil {
		return nil, err
	}
	defer s.close()
	s.in.resetPeak()
	res := b.e2eLoad(ctx, s, "E", b.o.Chats, spec, "e2e")
	return &res, checkE2E(res)
}

func checkE2E(res E2EResult) error {
	switch {
	case res.Load.Acked == 0:
		return fmt.Errorf("nothing acknowledged: %s", res.Load.FirstErr)
	case res.Missing > 0:
		return fmt.Errorf("%d of %d acknowledged codes not sent within the drain time", res.Missing, res.Load.Acked)
	}
	return nil
}

// warm pushes count codes round robin over the cards prefix0..chats-1 and
// waits until the fake accepted that many sendMessage calls.
func (b *bench) warm(ctx context.Context, s *session, prefix string, count, chats int, timeout time.Duration) (time.Duration, error) {
	tr := s.fake.track()
	start := time.Now()
	send := func(ctx context.Context, i int) (time.Duration, error) {
		return s.p.send(ctx, prefix+strconv.Itoa(i%chats), nil)
	}
	res := closedLoop(ctx, min(b.o.Conns, 16), count, timeout, send)
	if res.Acked < count {
		return 0, fmt.Errorf("warm-up: %d of %d pushes acknowledged: %s", res.Acked, count, res.FirstErr)
	}
	if !waitFor(timeout-time.Since(start), func() bool { return tr.sendsOK.Load() >= int64(count) }) {
		return 0, fmt.Errorf("warm-up: %d of %d codes sent within %s", tr.sendsOK.Load(), count, timeout)
	}
	return time.Since(start), nil
}

// pressure: issue 5's scenario, see the usage text.
func (b *bench) pressure(ctx context.Context, spec storeSpec) (*PressureResult, error) {
	o := b.o
	fresh := int(o.Duration/o.PressureEvery) + 1
	links := append(plan("P", o.PressureChats, 3_000_000), plan("F", fresh, 4_000_000)...)
	long := func(c *instanceConfig) {
		c.TTL, c.Countdown = time.Hour, o.PressureTick
		c.GlobalPerSec, c.PerChatPerSec = 1000, 100
	}
	// The warm-up sets the scene at full speed: no round trip, no limits.
	s, err := b.newSession(ctx, "pressure", spec, links, nil, long)
	if err != nil {
		return nil, err
	}
	defer s.close()
	res := &PressureResult{Live: o.PressureLive, Chats: o.PressureChats}
	b.logf("pressure: warm-up, %d live codes in %d chats", o.PressureLive, o.PressureChats)
	if res.WarmUp, err = b.warm(ctx, s, "P", o.PressureLive, o.PressureChats, 3*time.Minute); err != nil {
		return res, err
	}
	// Restart on the same store under Telegram's limits: the countdowns
	// carry on from the store.
	if err := s.in.stop(); err != nil {
		return res, err
	}
	s.in = nil
	s.fake.ForgetCalls()
	s.fake.SetTelegramLimits(bottest.RealLimits())
	s.fake.SetRoundTrip(o.RTT, o.RTTJitter)
	cfg := b.instanceFor(spec, s.fake)
	long(&cfg)
	b.telegramRates(&cfg)
	if err := b.start(ctx, s, "pressure-limited", cfg); err != nil {
		return res, err
	}
	b.logf("pressure: a new code every %s for %s", o.PressureEvery, o.Duration)
	base429 := s.fake.Count429()
	tr := s.fake.track()
	start := time.Now()
	send := func(ctx context.Context, i int) (time.Duration, error) {
		return s.p.send(ctx, "F"+strconv.Itoa(i), tr.expect)
	}
	prof := s.in.profile(b.profPath(spec, "pressure.cpu"), o.Duration)
	load := fixedRate(ctx, float64(time.Second)/float64(o.PressureEvery), fresh, o.Duration, 512, send)
	elapsed := time.Since(start)
	if err := prof(); err != nil {
		b.logf("%v", err)
	}
	edits, sends := tr.editsOK.Load(), tr.sendsOK.Load()
	waitFor(o.Drain, func() bool { return tr.matched.Load() >= int64(load.Acked) })
	res.NewCodes = tr.appear.summary()
	res.NewSent, res.NewDelivered = load.Acked, int(tr.matched.Load())
	within := 0
	tr.appear.mu.Lock()
	for _, d := range tr.appear.d {
		if d <= time.Second {
			within++
		}
	}
	tr.appear.mu.Unlock()
	res.WithinSecond = ratio(float64(within), float64(load.Acked))
	res.Count429 = s.fake.Count429() - base429
	res.Sends429, res.Edits429 = int(tr.sends429.Load()), int(tr.edits429.Load())
	res.EditsPerSec = float64(edits) / elapsed.Seconds()
	res.SendsPerSec = float64(sends) / elapsed.Seconds()
	res.Proc = s.in.peakNow()
	if load.Acked == 0 {
		return res, fmt.Errorf("no new code acknowledged: %s", load.FirstErr)
	}
	if res.NewDelivered < res.NewSent {
		return res, fmt.Errorf("%d of %d new codes not sent within the drain time", res.NewSent-res.NewDelivered, res.NewSent)
	}
	return res, nil
}

// live: -live codes with countdowns, then the e2e load.
func (b *bench) live(ctx context.Context, spec storeSpec) (*LiveResult, error) {
	o := b.o
	chats := (o.LiveCodes + 3) / 4
	links := append(plan("L", chats, 5_000_000), plan("N", o.Chats, 6_000_000)...)
	// The warm-up sets the scene at full speed, without the round trip.
	s, err := b.newSession(ctx, "live", spec, links, nil, func(c *instanceConfig) {
		c.TTL, c.Countdown = time.Hour, o.LiveTick
	})
	if err != nil {
		return nil, err
	}
	defer s.close()
	res := &LiveResult{Live: o.LiveCodes}
	b.logf("live10k: warm-up, %d live codes", o.LiveCodes)
	if res.WarmUp, err = b.warm(ctx, s, "L", o.LiveCodes, chats, 5*time.Minute); err != nil {
		return res, err
	}
	s.fake.ForgetCalls()
	s.fake.SetRoundTrip(o.RTT, o.RTTJitter)
	// Measure while the countdowns run: the first refreshes come one
	// countdown step after each send.
	tr := s.fake.track()
	if !waitFor(o.LiveTick+10*time.Second, func() bool { return tr.editsOK.Load() > 0 }) {
		return res, fmt.Errorf("no countdown edit within %s of the warm-up", o.LiveTick+10*time.Second)
	}
	s.in.resetPeak()
	start := time.Now()
	res.E2E = b.e2eLoad(ctx, s, "N", o.Chats, spec, "live10k")
	res.EditsPerSec = float64(s.fake.cur.Load().editsOK.Load()) / time.Since(start).Seconds()
	if err := s.in.heapProfile(b.profPath(spec, "live10k.heap")); err != nil {
		b.logf("%v", err)
	}
	return res, checkE2E(res.E2E)
}
