package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otpbot/otpbot/bot/bottest"
)

// stampedVersion is what the test binary is stamped with through -ldflags.
const stampedVersion = "v9.9.9-test"

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// otpbotBinary builds the command once per test run, stamped with
// stampedVersion, the way the Makefile builds it.
func otpbotBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "otpbot-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "otpbot")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version="+stampedVersion, "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// baseEnv is the environment of a child process: enough to run, and no
// OTPBOT_* from the developer's shell.
func baseEnv(extra map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// proc is a running otpbot process.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error
	url    string
}

// startProc starts `otpbot args...` and, when it serves, waits for its
// listening line.
func startProc(t testing.TB, env map[string]string, args ...string) *proc {
	t.Helper()
	p := spawn(t, env, args...)
	if len(args) > 0 && args[0] == "serve" {
		waitUntil(t, "the process to listen", func() bool {
			if a := listenAddr(p.stderr.String()); a != "" {
				p.url = "http://" + a
				return true
			}
			select {
			case <-p.done:
				t.Fatalf("otpbot exited at start: %v\n%s", p.err, p.stderr)
			default:
			}
			return false
		})
	}
	return p
}

// spawn starts `otpbot args...` without waiting for anything.
func spawn(t testing.TB, env map[string]string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(otpbotBinary(t), args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = baseEnv(env)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("otpbot did not exit within %s\n%s", within, p.stderr)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

func TestBinaryVersionIsStamped(t *testing.T) {
	out, err := exec.Command(otpbotBinary(t), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^otpbot ` + regexp.QuoteMeta(stampedVersion) + ` \(.*go1\.\d+.*\)\n$`).Match(out) {
		t.Errorf("version printed %q", out)
	}
}

// TestBinaryExitCodes drives the built binary through every exit status
// of docs/contract.md#commands: 0 on success, 2 with one line naming the key on a
// configuration error (and on usage errors), 1 when serving fails.
func TestBinaryExitCodes(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, fake, "")
	noToken := writeFile(t, dir, "notoken.yaml", minimal)
	noHCAuth := writeFile(t, dir, "nohc.yaml", fmt.Sprintf("telegram: {token: %q}\nproviders: {upay: {token: x}}\n", testToken))
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stderr string // the whole last line, or "" to not check
	}{
		{"check ok", []string{"check", "-offline", "-config", cfg}, nil, 0, ""},
		{"check online ok", []string{"check", "-config", cfg}, nil, 0, ""},
		{"config from OTPBOT_CONFIG", []string{"check", "-offline"}, map[string]string{"OTPBOT_CONFIG": cfg}, 0, ""},
		{"serve without token", []string{"serve", "-config", noToken}, nil, 2, "config: telegram.token is required"},
		{"check without token", []string{"check", "-config", noToken}, nil, 2, "config: telegram.token is required"},
		{"env error names the key", []string{"serve", "-config", cfg}, map[string]string{"OTPBOT_DEDUPE_WINDOW": "1h"}, 2,
			"config: dedupe_window (1h0m0s) must exceed providers.hypercard.signature_tolerance (25h0m0s), so that a replayed request is only ever a repeat"},
		{"provider without auth", []string{"serve", "-config", noHCAuth}, nil, 2,
			"config: providers.hypercard is enabled but has no authentication: set providers.hypercard.token or providers.hypercard.public_key_file (or disable it)"},
		{"no config", []string{"serve"}, nil, 2, "config: no configuration file: pass -config FILE or set OTPBOT_CONFIG"},
		{"no command", nil, nil, 2, "otpbot: a command is required"},
		{"unknown command", []string{"frobnicate"}, nil, 2, `otpbot: unknown command "frobnicate"`},
		{"bad flag", []string{"serve", "-config", cfg, "-verbose"}, nil, 2, "otpbot serve: flag provided but not defined: -verbose"},
		{"check cannot reach telegram", []string{"check", "-config", cfg}, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:rejected"}, 2, ""},
		{"version", []string{"version"}, nil, 0, ""},
	}
	// The fake accepts only the test token, so "1:rejected" gets 401.
	fake2 := bottest.New(t, bottest.WithToken(testToken))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"OTPBOT_TELEGRAM_API_ENDPOINT": fake2.Endpoint()}
			for k, v := range tt.env {
				env[k] = v
			}
			p := spawn(t, env, tt.args...)
			if code := p.wait(t, 30*time.Second); code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", code, tt.code, p.stderr)
			}
			if tt.stderr != "" {
				lines := strings.Split(strings.TrimRight(p.stderr.String(), "\n"), "\n")
				if last := lines[len(lines)-1]; last != tt.stderr {
					t.Errorf("last stderr line %q\nwant %q", last, tt.stderr)
				}
			}
			if strings.Contains(p.stderr.String(), testToken) {
				t.Errorf("stderr shows the token")
			}
		})
	}

	t.Run("store in use", func(t *testing.T) {
		holder := startProc(t, nil, "serve", "-config", cfg)
		p := spawn(t, nil, "serve", "-config", cfg)
		if code := p.wait(t, 30*time.Second); code != 1 {
			t.Errorf("second serve on one file exited %d, want 1\n%s", code, p.stderr)
		}
		if !strings.Contains(p.stderr.String(), "in use by another otpbot process") {
			t.Errorf("second serve said:\n%s", p.stderr)
		}
		_ = holder.cmd.Process.Signal(syscall.SIGTERM)
		if code := holder.wait(t, 20*time.Second); code != 0 {
			t.Errorf("holder exited %d", code)
		}
	})
}

// TestBinaryGracefulShutdown: SIGTERM (and SIGINT) stop serve with status
// 0 well within shutdown_timeout, after the code already accepted was sent,
// and the metrics show the stamped build.
func TestBinaryGracefulShutdown(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			fake := bottest.New(t)
			dir := t.TempDir()
			p := startProc(t, nil, "serve", "-config", testConfig(t, dir, fake, ""))
			in := &instance{t: t, url: p.url}
			const chat = int64(3001)
			linkCard(t, fake, chat, "C1")
			in.pushUPay(upayOTP("ORD-SIG", "C1", "606060"))
			waitUntil(t, "code", func() bool { return sentWith(fake, chat, "606060") == 1 })
			_, metrics := get(t, p.url+"/metrics")
			if !strings.Contains(metrics, `otpbot_build_info{goversion="go1.`) || !strings.Contains(metrics, `version="`+stampedVersion+`"} 1`) {
				t.Errorf("metrics lack the stamped build info:\n%s", grepLines(metrics, "otpbot_build_info"))
			}
			start := time.Now()
			_ = p.cmd.Process.Signal(sig)
			if code := p.wait(t, 20*time.Second); code != 0 {
				t.Errorf("exit %d after %s\n%s", code, sig, p.stderr)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("shutdown took %s, more than shutdown_timeout", d)
			}
			if !strings.Contains(p.stderr.String(), "msg=stopped") {
				t.Errorf("no orderly stop in the log:\n%s", p.stderr)
			}
		})
	}
}

func grepLines(s, sub string) string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			out = append(out, sc.Text())
		}
	}
	return strings.Join(out, "\n")
}

// TestBinaryShutdownFinishesInFlightWork: a SIGTERM while a Telegram call
// is in flight lets that call finish (the code is delivered, once) and
// exits 0; a call that hangs does not hold the process past
// shutdown_timeout, and its work is done by the next start.
func TestBinaryShutdownFinishesInFlightWork(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	// shutdown_timeout: 5s; a short lease so that the next start may take
	// over the hung job soon.
	cfg := testConfig(t, dir, fake, "delivery:\n  lease: 3s\n")
	const chat = int64(3101)

	p := startProc(t, nil, "serve", "-config", cfg)
	in := &instance{t: t, url: p.url}
	linkCard(t, fake, chat, "C1")

	// In flight, then released during shutdown: delivered.
	release := fake.Hold("sendMessage")
	in.pushUPay(upayOTP("ORD-FLIGHT-1", "C1", "818181"))
	waitUntil(t, "the send in flight", func() bool { return fake.Waiting("sendMessage") == 1 })
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	waitUntil(t, "shutdown to begin", func() bool { return strings.Contains(p.stderr.String(), "shutting down") })
	release()
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.stderr)
	}
	if n := sentWith(fake, chat, "818181"); n != 1 {
		t.Errorf("the in-flight code was sent %d times, want 1", n)
	}

	// In flight and hanging: the process still exits within
	// shutdown_timeout, and the next start delivers.
	p = startProc(t, nil, "serve", "-config", cfg)
	in = &instance{t: t, url: p.url}
	release = fake.Hold("sendMessage")
	in.pushUPay(upayOTP("ORD-FLIGHT-2", "C1", "828282"))
	waitUntil(t, "the hanging send", func() bool { return fake.Waiting("sendMessage") >= 1 })
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	code := p.wait(t, 20*time.Second)
	if d := time.Since(start); d > 5*time.Second+2*time.Second {
		t.Errorf("shutdown took %s with a hanging call; shutdown_timeout is 5s", d)
	}
	if code != 0 {
		t.Errorf("exit %d\n%s", code, p.stderr)
	}
	// The hung call's outcome is unknown to the stopped process, so the
	// work stayed in the outbox and the next start sends it.
	release()
	next := startProc(t, nil, "serve", "-config", cfg)
	waitUntil(t, "delivery by the next start", func() bool {
		return grepLines(grepLines(next.stderr.String(), "msg=delivered"), "task=upay:ORD-FLIGHT-2@") != ""
	})
	if n := sentWith(fake, chat, "828282"); n < 1 {
		t.Errorf("the code was never sent")
	}
}

// TestBinaryKilledDuringOutage: a push acknowledged while Telegram answers
// 502 survives a SIGKILL of the process and is delivered, once, by the
// next start on the same store file after Telegram recovers.
func TestBinaryKilledDuringOutage(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, fake, "delivery:\n  lease: 3s\n")
	const chat = int64(3201)
	p := startProc(t, nil, "serve", "-config", cfg)
	in := &instance{t: t, url: p.url}
	linkCard(t, fake, chat, "C1")

	fake.SetDown(502)
	in.pushUPay(upayOTP("ORD-KILL", "C1", "919191"))
	waitUntil(t, "a failed attempt", func() bool {
		for _, c := range fake.Calls("sendMessage") {
			if c.Code == 502 {
				return true
			}
		}
		return false
	})
	_ = p.cmd.Process.Kill()
	p.wait(t, 10*time.Second)
	fake.SetUp()

	next := startProc(t, nil, "serve", "-config", cfg)
	waitUntil(t, "delivery after the restart", func() bool { return sentWith(fake, chat, "919191") == 1 })
	// A later code goes out after it, and the first is still sent once:
	// nothing was left pending to send it again.
	(&instance{t: t, url: next.url}).pushUPay(upayOTP("ORD-AFTER", "C1", "929292"))
	waitUntil(t, "the later code", func() bool { return sentWith(fake, chat, "929292") == 1 })
	if n := sentWith(fake, chat, "919191"); n != 1 {
		t.Errorf("the code acknowledged before the kill was sent %d times", n)
	}
}

// TestBinaryShutdownCutsOffAHangingCall: with the default delivery.lease
// (30s, far beyond shutdown_timeout), a SIGTERM while a Telegram call
// hangs still exits 0 within shutdown_timeout, without an error in the
// log: the call is cut off at the drain deadline and its job handed back
// to the outbox due at once, so the next start sends the code at once
// (not after the lease) and exactly once.
func TestBinaryShutdownCutsOffAHangingCall(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, fake, "") // shutdown_timeout: 5s, lease 30s
	const chat = int64(3151)

	p := startProc(t, nil, "serve", "-config", cfg)
	in := &instance{t: t, url: p.url}
	linkCard(t, fake, chat, "C1")
	release := fake.Hold("sendMessage")
	defer release()
	in.pushUPay(upayOTP("ORD-HANG", "C1", "838383"))
	waitUntil(t, "the hanging send", func() bool { return fake.Waiting("sendMessage") == 1 })

	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit %d\n%s", code, p.stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s with a hanging call; shutdown_timeout is 5s", d)
	}
	_, stopping, _ := strings.Cut(p.stderr.String(), "shutting down")
	if errs := grepLines(stopping, "level=ERROR"); errs != "" {
		t.Errorf("errors while stopping:\n%s", errs)
	}
	if strings.Contains(stopping, "shutdown timeout") {
		t.Errorf("the shutdown ran out of time:\n%s", stopping)
	}

	// The cut-off call was dropped by the fake unanswered; the next start
	// sends the code well before the 30s lease of the stopped process
	// would have run out.
	release()
	restart := time.Now()
	startProc(t, nil, "serve", "-config", cfg)
	waitUntil(t, "delivery by the next start", func() bool { return sentWith(fake, chat, "838383") >= 1 })
	if d := time.Since(restart); d > 10*time.Second {
		t.Errorf("the next start sent the code after %s: the job was not handed back", d)
	}
	if n := sentWith(fake, chat, "838383"); n != 1 {
		t.Errorf("the code was sent %d times, want once", n)
	}
}

// TestBinaryRedisLibraryLogs: while Redis cannot be reached, go-redis's
// own complaints come out through otpbot's logger (logfmt here, with
// component=go-redis), never as raw "redis: ... pool.go:..." lines that
// would break a structured log stream.
func TestBinaryRedisLibraryLogs(t *testing.T) {
	fake := bottest.New(t)
	cfg := testConfig(t, t.TempDir(), fake, "") // log.level: debug
	env := map[string]string{"OTPBOT_STORE_DRIVER": "redis", "OTPBOT_STORE_REDIS_ADDR": "127.0.0.1:1"}
	raw := func(stderr string) string {
		var out []string
		for _, l := range strings.Split(stderr, "\n") {
			if strings.HasPrefix(l, "redis: ") || strings.Contains(l, "pool.go:") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}

	check := spawn(t, env, "check", "-config", cfg)
	if code := check.wait(t, 30*time.Second); code != 2 {
		t.Errorf("check with Redis away exited %d, want 2\n%s", code, check.stderr)
	}
	if r := raw(check.stderr.String()); r != "" {
		t.Errorf("check let go-redis print raw lines:\n%s", r)
	}

	serve := spawn(t, env, "serve", "-config", cfg)
	waitUntil(t, "serve to retry the store", func() bool {
		return strings.Contains(serve.stderr.String(), "store unavailable at start")
	})
	waitUntil(t, "a go-redis line through the logger", func() bool {
		return grepLines(grepLines(serve.stderr.String(), "component=go-redis"), "failed to dial") != ""
	})
	_ = serve.cmd.Process.Signal(syscall.SIGTERM)
	if code := serve.wait(t, 20*time.Second); code != 0 {
		t.Errorf("serve exited %d\n%s", code, serve.stderr)
	}
	if r := raw(serve.stderr.String()); r != "" {
		t.Errorf("serve let go-redis print raw lines:\n%s", r)
	}
}
