package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/deliver"
	"github.com/otpbot/otpbot/bot/telegram"
	"github.com/otpbot/otpbot/logs"
	"github.com/otpbot/otpbot/store/bolt"
	"github.com/otpbot/otpbot/store/redis"
	"github.com/otpbot/otpbot/templates"
	"github.com/otpbot/otpbot/webhooks"
)

// pipeline is otpbot wired in-process the way cmd/otpbot's serve wires it
// (webhooks → store → deliverer → Telegram client), so that a Go benchmark
// can profile it with -cpuprofile / -memprofile: the binary itself has no
// pprof endpoint.
type pipeline struct {
	store *timedStore
	fake  *fakeAPI
	srv   *httptest.Server
	p     *pusher
	d     *deliver.Deliverer
}

// newPipeline starts the pipeline on a fresh store of driver, with chats
// cards "B<i>" linked to chats 7_000_000+i, and the deliverer running.
func newPipeline(tb testing.TB, driver string, chats int, global float64, countdown time.Duration) *pipeline {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	// Logs are written and discarded: formatting and redaction cost as
	// in production, without a terminal in the way.
	logger := logs.New(io.Discard, "info", "text", benchToken, benchSecret)
	reg := prometheus.NewRegistry()
	spec := storeSpec{Driver: driver, Path: filepath.Join(tb.TempDir(), "otpbot.db"),
		Addr: "127.0.0.1:6379", Prefix: fmt.Sprintf("otpbench:test:%d:", time.Now().UnixNano())}
	if err := prepopulate(ctx, spec, plan("B", chats, 7_000_000)); err != nil {
		tb.Fatal(err)
	}
	var store otpbot.Store
	switch driver {
	case "embedded":
		s, err := bolt.Open(spec.Path, benchStoreOptions(), logger)
		if err != nil {
			tb.Fatal(err)
		}
		store = s
	case "redis":
		client := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{spec.Addr}})
		s, err := redis.New(ctx, client, spec.Prefix, benchStoreOptions(), logger)
		if err != nil {
			tb.Fatal(err)
		}
		store = s
		tb.Cleanup(func() {
			client.Close()
			if _, err := cleanRedis(context.Background(), spec.Addr, spec.Prefix); err != nil {
				tb.Error(err)
			}
		})
	}
	tb.Cleanup(func() { store.Close() })
	timed := newTimedStore(store)

	tmpl, err := templates.New("")
	if err != nil {
		tb.Fatal(err)
	}
	wh, err := webhooks.New(webhooks.Config{
		UPay:     webhooks.UPayConfig{Enabled: true, SecretKey: []byte(benchSecret)},
		Codes:    webhooks.CodeConfig{TTL: time.Hour},
		IDSecret: []byte("bench-test-installation-key-0000"),
	}, timed, webhooks.Options{Logger: logger, Registerer: reg})
	if err != nil {
		tb.Fatal(err)
	}
	r := mux.NewRouter()
	wh.Register(r)
	srv := httptest.NewServer(r)
	tb.Cleanup(srv.Close)

	fake, err := startFake()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(fake.Close)
	client, err := telegram.NewClient(ctx, telegram.ClientOptions{Token: benchToken, Endpoint: fake.Endpoint(), Logger: logger, Registerer: reg})
	if err != nil {
		tb.Fatal(err)
	}
	d, err := deliver.NewDeliverer(deliver.DelivererOptions{
		Store: timed, Client: client, Renderer: tmpl, Logger: logger, Registerer: reg,
		Limiter: telegram.NewLimiter(telegram.LimiterOptions{GlobalPerSec: global, GlobalBurst: max(1, int(global/6)),
			ChatPerSec: 1, ChatBurst: 1, Logger: logger}),
		CountdownInterval: countdown, Workers: 4,
	})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	return &pipeline{store: timed, fake: fake, srv: srv, d: d,
		p: &pusher{url: srv.URL + "/webhooks/upay", secret: []byte(benchSecret), client: newHTTPClient(64), run: "pipe"}}
}

func (pl *pipeline) send(chats int, onSend func(string, time.Time)) sendFunc {
	return func(ctx context.Context, i int) (time.Duration, error) {
		return pl.p.send(ctx, "B"+strconv.Itoa(i%chats), onSend)
	}
}

// BenchmarkPipelineIngest pushes b.N codes over 32 connections as fast as
// they are acknowledged (Telegram held to 30/s, as in the ingest scenario).
//
//	go test ./bench -run '^$' -bench PipelineIngest/redis -benchtime 20000x -cpuprofile cpu.out
func BenchmarkPipelineIngest(b *testing.B) {
	for _, driver := range []string{"embedded", "redis"} {
		b.Run(driver, func(b *testing.B) {
			pl := newPipeline(b, driver, 500, 30, 30*time.Second)
			b.ResetTimer()
			cpu := processCPU()
			res := closedLoop(context.Background(), 32, b.N, time.Minute, pl.send(500, nil))
			b.StopTimer()
			b.ReportMetric((processCPU()-cpu).Seconds()*1e6/float64(b.N), "cpu-µs/push")
			if res.Failed > 0 {
				b.Fatalf("%d pushes failed: %s", res.Failed, res.FirstErr)
			}
			pl.store.report(b)
			b.ReportMetric(res.PerSec, "acks/s")
			b.ReportMetric(res.Ack.P50, "ack-p50-ms")
			b.ReportMetric(res.Ack.P99, "ack-p99-ms")
		})
	}
}

// BenchmarkPipelineE2E pushes b.N codes at 200/s and waits for each to
// reach the fake Bot API.
//
//	go test ./bench -run '^$' -bench PipelineE2E/embedded -benchtime 2000x -cpuprofile cpu.out
func BenchmarkPipelineE2E(b *testing.B) {
	for _, driver := range []string{"embedded", "redis"} {
		b.Run(driver, func(b *testing.B) {
			pl := newPipeline(b, driver, 500, 1000, 30*time.Second)
			tr := pl.fake.track()
			b.ResetTimer()
			cpu := processCPU()
			res := fixedRate(context.Background(), 200, b.N, time.Hour, 512, pl.send(500, tr.expect))
			waitFor(time.Minute, func() bool { return tr.matched.Load() >= int64(res.Acked) })
			b.StopTimer()
			b.ReportMetric((processCPU()-cpu).Seconds()*1e6/float64(b.N), "cpu-µs/push")
			e := tr.e2e.summary()
			if res.Failed > 0 || e.Count < res.Acked {
				b.Fatalf("%d pushes failed (%s), %d of %d delivered", res.Failed, res.FirstErr, e.Count, res.Acked)
			}
			pl.store.report(b)
			b.ReportMetric(e.P50, "e2e-p50-ms")
			b.ReportMetric(e.P99, "e2e-p99-ms")
		})
	}
}

// processCPU is the CPU time this process used so far (user + system):
// the whole pipeline, load generator and fake Bot API included, so only
// differences between two builds mean something.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timedStore records how long each store call the pipeline makes takes,
// to see where a push's time goes.
type timedStore struct {
	otpbot.Store
	mu    sync.Mutex
	calls map[string]*samples
}

func newTimedStore(s otpbot.Store) *timedStore {
	return &timedStore{Store: s, calls: map[string]*samples{}}
}

func (t *timedStore) rec(op string, start time.Time) {
	t.mu.Lock()
	s := t.calls[op]
	if s == nil {
		s = &samples{}
		t.calls[op] = s
	}
	t.mu.Unlock()
	s.add(time.Since(start))
}

func (t *timedStore) report(tb testing.TB) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ops := slices.Sorted(maps.Keys(t.calls))
	for _, op := range ops {
		l := t.calls[op].summary()
		tb.Logf("%-14s n=%6d p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  total %7.0f ms", op, l.Count, l.P50, l.P99, l.Max, l.Mean*float64(l.Count))
	}
}

func (t *timedStore) Ingest(ctx context.Context, ev otpbot.Event) (otpbot.IngestResult, error) {
	defer t.rec("Ingest", time.Now())
	return t.Store.Ingest(ctx, ev)
}

func (t *timedStore) Claim(ctx context.Context, now time.Time, lease time.Duration, max int) ([]otpbot.Job, error) {
	defer t.rec("Claim", time.Now())
	return t.Store.Claim(ctx, now, lease, max)
}

func (t *timedStore) NextDue(ctx context.Context) (time.Time, bool, error) {
	defer t.rec("NextDue", time.Now())
	return t.Store.NextDue(ctx)
}

func (t *timedStore) CompleteMessage(ctx context.Context, job otpbot.Job, prev time.Time, msg otpbot.Message, next ...otpbot.Task) error {
	defer t.rec("CompleteMessage", time.Now())
	return t.Store.CompleteMessage(ctx, job, prev, msg, next...)
}

func (t *timedStore) Complete(ctx context.Context, job otpbot.Job, msg *otpbot.Message, next ...otpbot.Task) error {
	defer t.rec("Complete", time.Now())
	return t.Store.Complete(ctx, job, msg, next...)
}

func (t *timedStore) Retry(ctx context.Context, job otpbot.Job, at time.Time, reason string) error {
	defer t.rec("Retry", time.Now())
	return t.Store.Retry(ctx, job, at, reason)
}

func (t *timedStore) UpdateMessage(ctx context.Context, prev time.Time, msg otpbot.Message, next ...otpbot.Task) error {
	defer t.rec("UpdateMessage", time.Now())
	return t.Store.UpdateMessage(ctx, prev, msg, next...)
}

func (t *timedStore) Message(ctx context.Context, id string) (otpbot.Message, bool, error) {
	defer t.rec("Message", time.Now())
	return t.Store.Message(ctx, id)
}

func (t *timedStore) Pending(ctx context.Context) (map[otpbot.Priority]otpbot.QueueStat, error) {
	defer t.rec("Pending", time.Now())
	return t.Store.Pending(ctx)
}
