package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
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
	// PerChatBurst is telegram.rate.per_chat_burst, written only when
	// positive (an otpbot that predates the key refuses it).
	PerChatBurst int
	Admins       []int64                  // telegram.admins
	TTL          time.Duration            // codes.ttl
	TTLByEvent   map[string]time.Duration // codes.ttl_by_event
	Countdown    time.Duration            // codes.countdown_interval
	Workers      int                      // delivery.workers (0 = otpbot's default)
	LogLevel     string
	Pprof        bool // http.pprof: otpbot serves /debug/pprof/ on its address (with -pprof)
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
	if c.PerChatBurst > 0 {
		fmt.Fprintf(&b, "    per_chat_burst: %d\n", c.PerChatBurst)
	}
	if len(c.Admins) > 0 {
		b.WriteString("  admins: [")
		for i, a := range c.Admins {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%d", a)
		}
		b.WriteString("]\n")
	}
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
	if len(c.TTLByEvent) > 0 {
		b.WriteString("  ttl_by_event:\n")
		for _, ev := range slices.Sorted(maps.Keys(c.TTLByEvent)) {
			fmt.Fprintf(&b, "    %q: %s\n", ev, c.TTLByEvent[ev])
		}
	}
	if c.Workers > 0 {
		fmt.Fprintf(&b, "delivery:\n  workers: %d\n", c.Workers)
	}
	b.WriteString("shutdown_timeout: 10s\n")
	return b.String()
}

// knowsBurstKey reports whether bin accepts telegram.rate.per_chat_burst
// (otpbot check -offline on a configuration with it): an otpbot that
// predates the key refuses every configuration naming it.
func knowsBurstKey(ctx context.Context, bin, dir string) (bool, error) {
	c := instanceConfig{Store: storeSpec{Driver: "embedded", Path: filepath.Join(dir, "probe.db")},
		Endpoint: "http://127.0.0.1:1/bot%s/%s", GlobalPerSec: 30, PerChatPerSec: 1, PerChatBurst: 3,
		TTL: time.Minute, Countdown: 30 * time.Second, LogLevel: "info"}
	path := filepath.Join(dir, "probe.yaml")
	if err := os.WriteFile(path, []byte(configYAML(c, "127.0.0.1:1")), 0o600); err != nil {
		return false, fmt.Errorf("probe otpbot: %w", err)
	}
	out, err := exec.CommandContext(ctx, bin, "check", "-offline", "-config", path).CombinedOutput()
	switch {
	case err == nil:
		return true, nil
	case bytes.Contains(out, []byte("per_chat_burst is not a known key")):
		return false, nil
	}
	return false, fmt.Errorf("probe otpbot: check -offline: %w\n%s", err, out)
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
