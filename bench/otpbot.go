package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/bolt"
	"github.com/otpbot/otpbot/store/redis"
)

// The bot token and UPay SecretKey the instances are configured with.
// Loopback only, throwaway values.
const (
	benchToken  = "1000001:bench-token"
	benchSecret = "bench-upay-secret-key"
)

// buildOtpbot compiles ./cmd/otpbot into dir and returns the binary.
func buildOtpbot(ctx context.Context, moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "otpbot")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/otpbot")
	cmd.Dir = moduleDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build otpbot: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot finds the directory of go.mod from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found: run from the repository")
		}
		dir = parent
	}
}

// storeSpec says which store an instance uses and where.
type storeSpec struct {
	Driver string // embedded | redis
	Path   string // embedded: the bbolt file
	Addr   string // redis
	Prefix string // redis: unique per scenario
	// Sentinel, Cluster and MinAcks are -redis-sentinel's and
	// -redis-cluster's (topology.go): Addr is empty then.
	Sentinel []string
	Cluster  []string
	MinAcks  int
}

// instanceConfig is what differs between the otpbot instances of a run.
type instanceConfig struct {
	Store    storeSpec
	Endpoint string // the fake Bot API ("http://host/bot%s/%s")
	// GlobalPerSec and PerChatPerSec are telegram.rate.
	GlobalPerSec  float64
	PerChatPerSec float64
	TTL           time.Duration // codes.ttl
	Countdown     time.Duration // codes.countdown_interval
	Workers       int           // delivery.workers (0 = otpbot's default)
	LogLevel      string
	Pprof         bool // http.pprof: otpbot serves /debug/pprof/ on its address (with -pprof)
}

// configYAML renders the configuration file of an instance listening on
// addr. Every key the run depends on is written out, so that a change of
// otpbot's defaults does not silently change what is measured.
func configYAML(c instanceConfig, addr string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log:\n  level: %s\n  format: text\n", c.LogLevel)
	fmt.Fprintf(&b, "telegram:\n  token: %q\n  api_endpoint: %q\n  updates: polling\n", benchToken, c.Endpoint)
	fmt.Fprintf(&b, "  rate:\n    global_per_second: %g\n    per_chat_per_second: %g\n    group_per_minute: 20\n",
		c.GlobalPerSec, c.PerChatPerSec)
	fmt.Fprintf(&b, "http:\n  listen: %q\n  admin_backup: false\n", addr)
	if c.Pprof {
		b.WriteString("  pprof: true\n")
	}
	fmt.Fprintf(&b, "store:\n  driver: %s\n", c.Store.Driver)
	if c.Store.Driver == "embedded" {
		fmt.Fprintf(&b, "  path: %q\n", c.Store.Path)
	} else {
		b.WriteString(redisYAML(c.Store))
	}
	fmt.Fprintf(&b, "providers:\n  upay:\n    enabled: true\n    secret_key: %q\n  hypercard:\n    enabled: false\n", benchSecret)
	fmt.Fprintf(&b, "codes:\n  ttl: %s\n  countdown_interval: %s\n", c.TTL, c.Countdown)
	if c.Workers > 0 {
		fmt.Fprintf(&b, "delivery:\n  workers: %d\n", c.Workers)
	}
	b.WriteString("shutdown_timeout: 10s\n")
	return b.String()
}

// instance is one running otpbot process.
type instance struct {
	cmd     *exec.Cmd
	addr    string // host:port of its HTTP server
	logPath string
	// pprofAddr serves net/http/pprof (http.pprof) with -pprof: the
	// instance's own address, "" otherwise.
	pprofAddr string
	done      chan struct{}
	waitErr   error

	scrapeStop context.CancelFunc
	scrapeDone chan struct{}
	peakMu     sync.Mutex
	peak       procPeak
	// The CPU times at the start of the phase; redisAddr is set for the
	// redis store.
	cpuStart, redisCPUStart, writtenStart float64
	redisAddr                             string
}

// procPeak is the highest resident memory and goroutine count seen.
type procPeak struct {
	RSSBytes   float64 `json:"rss_peak_bytes"`
	Goroutines float64 `json:"goroutines_peak"`
	// HWMBytes is the kernel's peak resident set (VmHWM), read at the end.
	HWMBytes float64 `json:"vm_hwm_bytes,omitempty"`
	// CPUSeconds is the CPU time otpbot used in the phase (user + system):
	// unlike a rate or a latency, it hardly moves with other work on the
	// machine, so it is what to compare between two builds.
	CPUSeconds float64 `json:"cpu_seconds"`
	// RedisCPUSeconds is the CPU time the Redis server used meanwhile
	// (its INFO; other clients of the same server count too).
	RedisCPUSeconds float64 `json:"redis_cpu_seconds,omitempty"`
	// WriteBytes is what otpbot sent to storage in the phase (write_bytes
	// of /proc/PID/io) less what its log grew by: for the embedded store,
	// the bbolt pages of its commits.
	WriteBytes float64 `json:"store_write_bytes,omitempty"`
}

// ioWritten is the bytes pid caused to be written to storage
// (write_bytes of /proc/PID/io; sockets do not count).
func ioWritten(pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// cpuSeconds is the user + system CPU time of pid (0 if unknown).
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on Linux.
const clockTicks = 100

// redisCPUSeconds is the Redis server's used_cpu_user + used_cpu_sys.
func redisCPUSeconds(addr string) float64 {
	client := goredis.NewClient(&goredis.Options{Addr: addr})
	defer client.Close()
	info, err := client.Info(context.Background(), "cpu").Result()
	if err != nil {
		return 0
	}
	total := 0.0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}

// freeAddr picks a free loopback port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// startInstance writes a configuration into dir, starts bin on it, and
// waits until it answers /readyz and has reached the fake Bot API (its
// delivery workers run once it has), then scrapes /metrics until stopped.
func startInstance(ctx context.Context, bin, dir, name string, c instanceConfig, fake *fakeAPI) (*instance, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cfgPath := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(configYAML(c, addr)), 0o600); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	calls := fake.deleteWebhooks.Load()
	cmd := exec.Command(bin, "serve", "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// An otpbot reads OTPBOT_* from the environment: only this run's file
	// may configure it.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTPBOT_") && !strings.HasPrefix(kv, "OTPBENCH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var pprofAddr string
	if c.Pprof {
		pprofAddr = addr
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	in := &instance{cmd: cmd, addr: addr, pprofAddr: pprofAddr, logPath: logPath, done: make(chan struct{})}
	go func() {
		in.waitErr = cmd.Wait()
		logFile.Close()
		close(in.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-in.done:
			return nil, fmt.Errorf("start %s: otpbot exited: %v\n%s", name, in.waitErr, tail(logPath, 15))
		default:
		}
		if ready(addr) && fake.deleteWebhooks.Load() > calls {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			in.stop()
			return nil, fmt.Errorf("start %s: not ready within 30s\n%s", name, tail(logPath, 15))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c.Store.Driver == "redis" && c.Store.Addr != "" {
		in.redisAddr = c.Store.Addr
	}
	in.resetPeak()
	sctx, cancel := context.WithCancel(context.Background())
	in.scrapeStop, in.scrapeDone = cancel, make(chan struct{})
	go in.scrape(sctx)
	return in, nil
}

func ready(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// scrape reads /metrics every 200ms for the peak RSS and goroutines.
func (in *instance) scrape(ctx context.Context) {
	defer close(in.scrapeDone)
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		rss, gor, err := scrapeOnce(client, in.addr)
		if err == nil {
			in.peakMu.Lock()
			in.peak.RSSBytes = max(in.peak.RSSBytes, rss)
			in.peak.Goroutines = max(in.peak.Goroutines, gor)
			in.peakMu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// scrapeOnce reads process_resident_memory_bytes and go_goroutines.
func scrapeOnce(client *http.Client, addr string) (rss, goroutines float64, err error) {
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			rss, _ = strconv.ParseFloat(val, 64)
		case "go_goroutines":
			goroutines, _ = strconv.ParseFloat(val, 64)
		}
	}
	return rss, goroutines, sc.Err()
}

// resetPeak starts a new peak window (a scenario's measured phase).
func (in *instance) resetPeak() {
	cpu := cpuSeconds(in.cmd.Process.Pid)
	written := ioWritten(in.cmd.Process.Pid) - fileSize(in.logPath)
	var rcpu float64
	if in.redisAddr != "" {
		rcpu = redisCPUSeconds(in.redisAddr)
	}
	in.peakMu.Lock()
	in.peak = procPeak{}
	in.cpuStart, in.redisCPUStart, in.writtenStart = cpu, rcpu, written
	in.peakMu.Unlock()
}

// peakNow returns the peaks seen so far and the kernel's high-water mark.
func (in *instance) peakNow() procPeak {
	// One sample now, so that a phase shorter than the scrape interval
	// has one too.
	if rss, gor, err := scrapeOnce(&http.Client{Timeout: 2 * time.Second}, in.addr); err == nil {
		in.peakMu.Lock()
		in.peak.RSSBytes = max(in.peak.RSSBytes, rss)
		in.peak.Goroutines = max(in.peak.Goroutines, gor)
		in.peakMu.Unlock()
	}
	in.peakMu.Lock()
	p := in.peak
	cpuStart, redisStart, writtenStart := in.cpuStart, in.redisCPUStart, in.writtenStart
	in.peakMu.Unlock()
	p.WriteBytes = max(0, ioWritten(in.cmd.Process.Pid)-fileSize(in.logPath)-writtenStart)
	p.HWMBytes = vmHWM(in.cmd.Process.Pid)
	p.CPUSeconds = cpuSeconds(in.cmd.Process.Pid) - cpuStart
	if in.redisAddr != "" {
		p.RedisCPUSeconds = redisCPUSeconds(in.redisAddr) - redisStart
	}
	return p
}

// vmHWM reads the peak resident set of pid from /proc (0 if unknown).
func vmHWM(pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// stop ends the instance with SIGTERM (a graceful shutdown, as in
// production), killing it if it is still there after 20s.
func (in *instance) stop() error {
	if in.scrapeStop != nil {
		in.scrapeStop()
		<-in.scrapeDone
		in.scrapeStop = nil
	}
	select {
	case <-in.done:
		return nil
	default:
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
		return nil
	case <-time.After(20 * time.Second):
		_ = in.cmd.Process.Kill()
		<-in.done
		return fmt.Errorf("otpbot did not stop within 20s of SIGTERM")
	}
}

// fileSize is the size of path in bytes (0 if unknown).
func fileSize(path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(fi.Size())
}

// tail returns the last n lines of a log file, for error messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// benchStoreOptions mirror what serve passes to the store.
func benchStoreOptions() otpbot.StoreOptions {
	return otpbot.StoreOptions{DedupeWindow: 72 * time.Hour, HistoryPerKey: 1000, HistoryRetention: 720 * time.Hour}
}

// chatOf is the chat a bench card is linked to.
type linkPlan struct {
	Card string
	Chat int64
}

// prepopulate links the planned cards to their chats before otpbot starts,
// through the store packages themselves (what /link card ID would write),
// since linking thousands of chats through bot commands would measure the
// command path instead.
func prepopulate(ctx context.Context, spec storeSpec, plan []linkPlan) error {
	now := time.Now()
	links := make([]otpbot.Link, len(plan))
	for i, p := range plan {
		links[i] = otpbot.Link{Key: otpbot.Key{Type: otpbot.KeyCard, ID: p.Card},
			Target: otpbot.Target{ChatID: p.Chat}, CreatedAt: now, CreatedBy: 1}
	}
	switch spec.Driver {
	case "embedded":
		s, err := bolt.Open(spec.Path, benchStoreOptions(), nil)
		if err != nil {
			return fmt.Errorf("prepopulate: %w", err)
		}
		recs := make([]otpbot.Record, len(links))
		for i := range links {
			recs[i] = otpbot.Record{Link: &links[i]}
		}
		err = s.Import(ctx, recs)
		return errors.Join(err, s.Close())
	case "redis":
		client := benchRedisClient(spec)
		defer client.Close()
		s, err := redis.New(ctx, client, spec.Prefix, benchStoreOptions(), nil)
		if err != nil {
			return fmt.Errorf("prepopulate: %w", err)
		}
		defer s.Close()
		// One link per call, many at once: a round trip each, overlapped.
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		next := make(chan otpbot.Link)
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for l := range next {
					if err := s.Link(ctx, l); err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				}
			}()
		}
		for _, l := range links {
			next <- l
		}
		close(next)
		wg.Wait()
		select {
		case err := <-errs:
			return fmt.Errorf("prepopulate: %w", err)
		default:
		}
		return nil
	}
	return fmt.Errorf("prepopulate: unknown driver %q", spec.Driver)
}

// cleanRedis deletes every key under prefix (never anything else: no
// FLUSHDB), returning how many went.
func cleanRedis(ctx context.Context, addr, prefix string) (int, error) {
	client := goredis.NewClient(&goredis.Options{Addr: addr})
	defer client.Close()
	deleted := 0
	var cursor uint64
	for {
		keys, next, err := client.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return deleted, fmt.Errorf("clean redis: %w", err)
		}
		if len(keys) > 0 {
			if err := client.Unlink(ctx, keys...).Err(); err != nil {
				return deleted, fmt.Errorf("clean redis: %w", err)
			}
			deleted += len(keys)
		}
		if cursor = next; cursor == 0 {
			return deleted, nil
		}
	}
}

// profile fetches a CPU profile of the next d into path, in the
// background; the returned function waits for it. It does nothing unless
// the binary serves pprof.
func (in *instance) profile(path string, d time.Duration) (wait func() error) {
	if in.pprofAddr == "" || path == "" {
		return func() error { return nil }
	}
	errc := make(chan error, 1)
	go func() {
		secs := max(1, int(d.Round(time.Second)/time.Second))
		client := &http.Client{Timeout: d + 30*time.Second}
		resp, err := client.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", in.pprofAddr, secs))
		if err != nil {
			errc <- fmt.Errorf("profile: %w", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			errc <- fmt.Errorf("profile: %w", err)
			return
		}
		_, err = io.Copy(f, resp.Body)
		errc <- errors.Join(err, f.Close())
	}()
	return func() error { return <-errc }
}

// heapProfile writes the otpbot's heap profile to path (with -pprof).
func (in *instance) heapProfile(path string) error {
	if in.pprofAddr == "" || path == "" {
		return nil
	}
	resp, err := http.Get("http://" + in.pprofAddr + "/debug/pprof/heap")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}
