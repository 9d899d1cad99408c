// Command bench is otpbot's load tool: it builds and starts the otpbot
// binary against the fake Bot API (bot/bottest), links chats, drives
// signed UPay pushes at it, and prints, for each store driver side by side,
// what a cardholder and a provider would notice — pushes acknowledged per
// second, push-to-Telegram latency, memory — each next to a ceiling
// measured in the same run on the same machine.
//
//	go run ./bench                       # everything, both stores
//	go run ./bench -scenario e2e -store redis -rate 200 -duration 10s
//	go run ./bench -h                    # the flags and what each figure means
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	Stores    []string
	Scenarios []string
	Conns     int
	N         int
	Rate      float64
	Duration  time.Duration
	Chats     int
	Drain     time.Duration
	Redis     string
	Bin       string
	Dir       string
	JSON      string
	LogLevel  string
	Workers   int
	Keep      bool
	Quiet     bool
	Pprof     string

	PressureLive  int
	PressureChats int
	PressureEvery time.Duration
	PressureTick  time.Duration

	LiveCodes int
	LiveTick  time.Duration

	// RTT and RTTJitter are the fake's Telegram round trip.
	RTT       time.Duration
	RTTJitter time.Duration

	RTTRate     float64
	RTTChats    int
	RTTDuration time.Duration

	BusyChats int
	BusyTick  time.Duration

	Commands     int
	CommandsRate float64

	Outage         time.Duration
	OutageCodes    int
	OutageExpiring int
	// RedisSentinel and RedisCluster run the topology modes instead of
	// the scenarios (topology.go).
	RedisSentinel bool
	RedisCluster  bool
}

var allScenarios = []string{"ingest", "e2e", "pressure", "live10k", "rtt", "busy-chats", "commands", "recovery"}

const usageText = `usage: go run ./bench [flags]

Starts the otpbot binary (built from ./cmd/otpbot unless -bin is given)
against the fake Bot API of bot/bottest on loopback, links chats by writing
the links into the store before otpbot starts (what /link card ID writes),
and drives signed UPay 3DS_OTP pushes (X-UPA-SIGN) at it. Every scenario
gets a fresh store: a new bbolt file, or a new Redis key prefix whose keys
are deleted at the end (never FLUSHDB). Every load loop is bounded in count
and in time.

Scenarios (-scenario, comma-separated, or all):
  ingest    as fast as possible over -c connections, at most -n pushes and
            -duration: acknowledged pushes/s and ack latency. Telegram is
            held to its real limits (30/s), so the deliverer does what it
            would in production meanwhile.
  e2e       -rate pushes/s for -duration, round robin over -chats chats:
            push sent -> sendMessage received by the fake, matched by code.
            otpbot's telegram.rate is 1000/s global, 1/s per chat.
  pressure  (issue 5) the fake enforces 30/s global and 1/s per chat with
            real 429s; -pressure-live codes with -pressure-tick countdowns
            live in -pressure-chats chats (delivered in a warm-up with the
            limits off, then otpbot is restarted on the same store with
            telegram.rate 30/s + 1/s and the limits on); then a new code
            every -pressure-every to a fresh chat for -duration: p99
            push -> sendMessage of the new codes, and the 429s provoked.
  live10k   -live codes with -live-tick countdowns delivered first, then
            the e2e load (-rate for -duration) to other chats: otpbot's RSS
            and the new-code latency with that many countdowns running.

Scenarios against Telegram's behaviour: the fake answers every call after
a round trip of -rtt ± -rtt-jitter (it acts half way: a message exists from
then), enforces Telegram's limits with bursts (30/s with a burst of 30,
1/s per chat with a burst of 3, 20/min per group with a burst of 3; sends,
edits and deletes count, callback answers count globally) with real 429s,
and answers outages with nginx's HTML 502. otpbot runs with telegram.rate
30/s, 1/s per chat, 20/min per group. Latencies end when the message
appears (the fake acted on the sendMessage) and are quoted against the
round trip measured in the same run (RTT):
  rtt        -rtt-rate codes/s for -rtt-duration into -rtt-chats chats:
             p50/p99 push -> message appears (target p99 <= RTT + 150 ms),
             backlog growth (codes not yet sent, end of the load vs its
             start; target 0 %), share of counted calls answered 429
             (target <= 1 %).
  busy-chats -busy-chats chats, each receiving a code every second for
             -duration while its earlier codes count down every -busy-tick:
             p99 push -> message appears (<= RTT + 150 ms), 429s (0).
  commands   -commands "/link card ..." commands injected at once by an
             admin, one in each of as many group chats, while codes flow
             at -commands-rate/s to other chats: replies delivered (all),
             the slowest (<= 6 s), lost (0).
  recovery   the fake answers HTML 502 for -outage; -outage-codes codes
             (ttl 10m) are pushed during it, and -outage-expiring codes
             (3DS_CONFIRM, ttl a third of the outage) at its start; then it
             comes back: every live code sent within 2 s of recovery, each
             exactly once, and what became of the expired ones (sent live:
             a failure; sent in expired form, or not at all: reported).

Every fake has the round trip (the warm-ups of pressure and live10k run
without it: they set the scene and measure nothing). ingest, pressure and
the four above enforce Telegram's limits; e2e and live10k measure otpbot
beyond one bot's limits, so their fake limits nothing, and their
push -> send latency ends when otpbot's sendMessage reaches the fake (it
left otpbot), not when the fake acts on it.

Baselines, measured in the same run and quoted as ratios:
  bare      a bare net/http handler in its own process that reads the body
            and answers SUCCESS (no auth, parsing or store), driven by the
            same generator: closed loop (ingest ceiling) and at -rate
            (unloaded HTTP round trip).
  bbolt     one commit round trip: Update + fsync, bbolt options as the store.
  redis     one round trip: PING.
  e2e floor two bare HTTP round trips at -rate (push, sendMessage) + one
            store round trip: what push -> Telegram cannot beat.
  RTT       a getMe through a fake with the -rtt round trip, 32 calls over
            8 connections, three rounds; the median of the least disturbed
            round is the RTT the Telegram scenarios are quoted against.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	stores := fs.String("store", "embedded,redis", "store drivers to run, comma-separated: embedded, redis")
	scenarios := fs.String("scenario", "all", "scenarios to run, comma-separated: all, "+strings.Join(allScenarios, ", "))
	fs.IntVar(&o.Conns, "c", 32, "ingest: concurrent connections")
	fs.IntVar(&o.N, "n", 20000, "ingest: at most this many pushes (and e2e/live10k: at most rate x duration)")
	fs.Float64Var(&o.Rate, "rate", 200, "e2e and live10k: pushes per second")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "time bound of each measured load loop")
	fs.IntVar(&o.Chats, "chats", 500, "ingest and e2e: chats the pushes go to, round robin")
	fs.DurationVar(&o.Drain, "drain", 15*time.Second, "after a loop, how long to wait for the deliveries still due")
	fs.StringVar(&o.Redis, "redis", "127.0.0.1:6379", "Redis address for the redis store (a unique key prefix per scenario)")
	fs.StringVar(&o.Bin, "bin", "", "otpbot binary to run (default: go build ./cmd/otpbot into the work dir)")
	fs.StringVar(&o.Dir, "dir", "", "work dir for the binary, configs, logs and bbolt files (default: a new temp dir; must be a real disk, not tmpfs, or fsync costs nothing)")
	fs.StringVar(&o.JSON, "json", "", "also write every figure as JSON to this file")
	fs.StringVar(&o.LogLevel, "loglevel", "info", "otpbot log.level (info logs a line per push and per delivery, as in production)")
	fs.IntVar(&o.Workers, "workers", 0, "otpbot delivery.workers (0: otpbot's default)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the work dir (configs and otpbot logs) and print where it is")
	fs.BoolVar(&o.Quiet, "q", false, "no progress lines on stderr")
	fs.StringVar(&o.Pprof, "pprof", "", "write CPU profiles of each measured phase (and a heap profile for live10k) of otpbot into this dir: otpbot runs with http.pprof: true and serves them on its own address (loopback)")
	fs.IntVar(&o.PressureLive, "pressure-live", 2000, "pressure: live codes")
	fs.IntVar(&o.PressureChats, "pressure-chats", 500, "pressure: chats the live codes are spread over")
	fs.DurationVar(&o.PressureEvery, "pressure-every", 100*time.Millisecond, "pressure: a new code to a fresh chat this often")
	fs.DurationVar(&o.PressureTick, "pressure-tick", 2*time.Second, "pressure: codes.countdown_interval")
	fs.IntVar(&o.LiveCodes, "live", 10000, "live10k: live codes (4 per chat)")
	fs.DurationVar(&o.LiveTick, "live-tick", 30*time.Second, "live10k: codes.countdown_interval")
	telegramFlags(fs, &o)
	fs.BoolVar(&o.RedisSentinel, "redis-sentinel", false, "instead of the scenarios: a Sentinel failover under -rate pushes/s for -duration (starts its own redis-server processes; see topology.go)")
	fs.BoolVar(&o.RedisCluster, "redis-cluster", false, "instead of the scenarios: the ingest scenario on a Redis Cluster of 3 primaries it starts, and how the pushes spread over them")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := o.choose(*stores, *scenarios); err != nil {
		return o, err
	}
	return o, o.check()
}

// telegramFlags are the flags of the fake's round trip and of the
// scenarios against Telegram's behaviour.
func telegramFlags(fs *flag.FlagSet, o *options) {
	fs.DurationVar(&o.RTT, "rtt", 80*time.Millisecond, "the fake's Telegram round trip, mean (0: it answers at once)")
	fs.DurationVar(&o.RTTJitter, "rtt-jitter", 20*time.Millisecond, "the fake's Telegram round trip: ± this much, uniformly")
	fs.Float64Var(&o.RTTRate, "rtt-rate", 28, "rtt: codes per second")
	fs.IntVar(&o.RTTChats, "rtt-chats", 420, "rtt: chats the codes go to, round robin")
	fs.DurationVar(&o.RTTDuration, "rtt-duration", 15*time.Second, "rtt: how long codes are pushed")
	fs.IntVar(&o.BusyChats, "busy-chats", 20, "busy-chats: chats, each receiving a code every second")
	fs.DurationVar(&o.BusyTick, "busy-tick", 2*time.Second, "busy-chats: codes.countdown_interval")
	fs.IntVar(&o.Commands, "commands", 120, "commands: /link commands injected at once")
	fs.Float64Var(&o.CommandsRate, "commands-rate", 5, "commands: codes per second flowing meanwhile")
	fs.DurationVar(&o.Outage, "outage", 30*time.Second, "recovery: how long the fake answers HTML 502")
	fs.IntVar(&o.OutageCodes, "outage-codes", 30, "recovery: codes pushed during the outage, each to its own chat")
	fs.IntVar(&o.OutageExpiring, "outage-expiring", 5, "recovery: codes with a ttl of a third of the outage, pushed at its start")
}

// choose sets the stores and scenarios named by -store and -scenario.
func (o *options) choose(stores, scenarios string) error {
	for _, s := range splitList(stores) {
		if s != "embedded" && s != "redis" {
			return fmt.Errorf("-store: unknown driver %q (embedded, redis)", s)
		}
		o.Stores = append(o.Stores, s)
	}
	for _, s := range splitList(scenarios) {
		switch {
		case s == "all":
			o.Scenarios = allScenarios
		case slices.Contains(allScenarios, s):
			if !slices.Contains(o.Scenarios, s) {
				o.Scenarios = append(o.Scenarios, s)
			}
		default:
			return fmt.Errorf("-scenario: unknown scenario %q (%s, all)", s, strings.Join(allScenarios, ", "))
		}
	}
	return nil
}

// check refuses options no scenario can run with.
func (o options) check() error {
	switch {
	case len(o.Stores) == 0:
		return errors.New("-store: none given")
	case len(o.Scenarios) == 0:
		return errors.New("-scenario: none given")
	case o.Conns < 1 || o.N < 1 || o.Chats < 1 || o.Rate <= 0 || o.Duration <= 0:
		return errors.New("-c, -n, -chats, -rate and -duration must be positive")
	case o.PressureLive < 1 || o.PressureChats < 1 || o.PressureEvery <= 0 || o.PressureTick <= 0:
		return errors.New("-pressure-* must be positive")
	case o.LiveCodes < 4 || o.LiveTick <= 0:
		return errors.New("-live must be at least 4 and -live-tick positive")
	case o.RTT < 0 || o.RTTJitter < 0 || o.RTTJitter > o.RTT:
		return errors.New("-rtt and -rtt-jitter must not be negative, and the jitter not above the round trip")
	case o.RTTRate <= 0 || o.RTTChats < 1 || o.RTTDuration <= 0 || o.BusyChats < 1 || o.BusyTick <= 0:
		return errors.New("-rtt-rate, -rtt-chats, -rtt-duration, -busy-chats and -busy-tick must be positive")
	case o.Commands < 1 || o.CommandsRate <= 0:
		return errors.New("-commands and -commands-rate must be positive")
	case o.Outage < 3*time.Second || o.OutageCodes < 1 || o.OutageExpiring < 0:
		return errors.New("-outage must be at least 3s and -outage-codes positive")
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == bareFlag {
		if err := serveBare(); err != nil {
			fmt.Fprintln(os.Stderr, "bare handler:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run is the whole tool: flags, baselines, scenarios, report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		if !o.Quiet {
			fmt.Fprintf(stderr, "bench: "+format+"\n", a...)
		}
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "otpbench-"); err != nil {
			return err
		}
		if o.Keep {
			defer fmt.Fprintln(stderr, "bench: work dir kept:", dir)
		} else {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	bin, burstKey, err := otpbotBinary(ctx, o.Bin, root, dir, logf)
	if err != nil {
		return err
	}
	if o.Pprof != "" {
		if err := os.MkdirAll(o.Pprof, 0o755); err != nil {
			return err
		}
	}

	r := &Report{
		Meta: Meta{
			Started: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(),
			Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
			Command: "go run ./bench " + strings.Join(args, " "), Options: o,
			LoadStart: loadavg(),
		},
		Stores: map[string]*StoreResult{},
	}
	b := &bench{o: o, bin: bin, dir: dir, logf: logf, run: fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffffff), burstKey: burstKey}
	r.Meta.Run = b.run
	r.Meta.PerChatBurst = burstKey
	if o.RedisSentinel || o.RedisCluster {
		return b.topologies(ctx, stdout)
	}
	if err := b.baselines(ctx, r); err != nil {
		return err
	}
	for _, store := range o.Stores {
		sr := &StoreResult{}
		r.Stores[store] = sr
		for _, sc := range o.Scenarios {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			logf("%s: %s", store, sc)
			if err := b.scenario(ctx, store, sc, sr); err != nil {
				// One scenario failing does not hide the others' figures.
				logf("%s: %s failed: %v", store, sc, err)
				sr.Errors = append(sr.Errors, fmt.Sprintf("%s: %v", sc, err))
			}
		}
	}
	r.Meta.Finished = time.Now().UTC().Format(time.RFC3339)
	r.Meta.LoadEnd = loadavg()
	r.Targets = checkTargets(r)
	printReport(stdout, r)
	if o.JSON == "" {
		return nil
	}
	return writeReportJSON(o.JSON, r)
}

// otpbotBinary builds otpbot into dir unless bin names one, and finds out
// whether it knows telegram.rate.per_chat_burst.
func otpbotBinary(ctx context.Context, bin, root, dir string, logf func(string, ...any)) (string, bool, error) {
	if bin == "" {
		logf("building otpbot")
		var err error
		if bin, err = buildOtpbot(ctx, root, dir); err != nil {
			return "", false, err
		}
	}
	burstKey, err := knowsBurstKey(ctx, bin, dir)
	if err != nil {
		return "", false, err
	}
	if !burstKey {
		logf("this otpbot does not know telegram.rate.per_chat_burst: its per-chat limit has no burst")
	}
	return bin, burstKey, nil
}

// writeReportJSON writes every figure of r to path.
func writeReportJSON(path string, r *Report) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("json report: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("json report: %w", err)
	}
	return nil
}
