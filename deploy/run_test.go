package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot/bot/bottest"
)

// These tests start the binary the Dockerfile builds the three ways the
// deployment files start it (the image's ENTRYPOINT/CMD and ENV, the same
// plus compose's environment on Redis, the unit's ExecStart in its working
// directory) against the fake Bot API, and hold each to what the files
// promise: it becomes healthy by the HEALTHCHECK's own probe, keeps its data
// where the file says, and stops on SIGTERM within the stop timeout.

// waitDeadline bounds every wait: generous, so a loaded machine does not fail.
const waitDeadline = 15 * time.Second

// Secrets, passed the way the deployment files pass them: in the environment.
const (
	testBotToken  = "123456:deploy-test-token"
	testURLSecret = "deploy-test-url-secret"
)

func secretEnv() []string {
	return []string{
		"OTPBOT_TELEGRAM_TOKEN=" + testBotToken,
		"OTPBOT_PROVIDERS_UPAY_TOKEN=" + testURLSecret,
		"OTPBOT_PROVIDERS_HYPERCARD_TOKEN=" + testURLSecret,
	}
}

// lockedBuffer collects a process's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// daemon is one otpbot process started as a service manager starts it.
type daemon struct {
	cmd  *exec.Cmd
	logs *lockedBuffer
	done chan struct{}
	err  error // valid once done is closed
}

func startDaemon(t *testing.T, bin string, args, env []string, dir string) *daemon {
	t.Helper()
	d := &daemon{logs: &lockedBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Env = env
	d.cmd.Dir = dir
	d.cmd.Stdout = d.logs
	d.cmd.Stderr = d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s %v: %v", bin, args, err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

// stop sends SIGTERM, as systemd and Docker do, and wants a clean exit
// within grace; after grace they would SIGKILL it mid-drain.
func (d *daemon) stop(t *testing.T, grace time.Duration) {
	t.Helper()
	start := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-d.done:
	case <-time.After(grace):
		t.Fatalf("otpbot did not stop within %v of SIGTERM; logs:\n%s", grace, d.logs)
	}
	took := time.Since(start).Round(time.Millisecond)
	if d.err != nil {
		t.Errorf("otpbot exited with %v after SIGTERM (after %v); logs:\n%s", d.err, took, d.logs)
	}
	t.Logf("stopped %v after SIGTERM (allowed %v)", took, grace)
}

// exited fails the test if the daemon has already exited.
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// freePort is a TCP port free on loopback at the time of asking.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// probe runs the image's HEALTHCHECK command with env, as Docker does inside
// the container.
func probe(img imageBuild, t *testing.T, env []string, args ...string) error {
	t.Helper()
	h := img.final.health
	cmd := exec.Command(img.localOf(t, h[0]), append(h[1:], args...)...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// waitHealthy polls the probe until it passes, failing if the daemon exits.
func waitHealthy(t *testing.T, d *daemon, check func() error) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for {
		err := check()
		if err == nil {
			return
		}
		if d.exited() {
			t.Fatalf("otpbot exited before it was healthy (%v); logs:\n%s", d.err, d.logs)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy within %v: %v; logs:\n%s", waitDeadline, err, d.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// imageEnv is the runtime stage's ENV with the paths and port that exist
// only inside a container moved to dir and a free port, plus overrides.
func imageEnv(t *testing.T, img imageBuild, dir, port string, overrides map[string]string) (env []string, vars map[string]string) {
	t.Helper()
	vars = map[string]string{}
	for k, v := range img.final.env {
		vars[k] = v
	}
	for k, want := range map[string]string{
		"OTPBOT_CONFIG":      "/etc/otpbot/config.yaml",
		"OTPBOT_STORE_PATH":  "/data/otpbot.db",
		"OTPBOT_HTTP_LISTEN": ":8080",
	} {
		if vars[k] != want {
			t.Fatalf("the image sets %s=%q; this test moves %q out of the container and needs updating", k, vars[k], want)
		}
	}
	vars["OTPBOT_CONFIG"] = filepath.Join(dir, "config.yaml")
	vars["OTPBOT_STORE_PATH"] = filepath.Join(dir, "otpbot.db")
	vars["OTPBOT_HTTP_LISTEN"] = ":" + port // all interfaces, as in the image
	for k, v := range overrides {
		vars[k] = v
	}
	env = append(env, "PATH="+os.Getenv("PATH"))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return append(env, secretEnv()...), vars
}

// writeConfig writes the non-secret configuration an operator mounts.
func writeConfig(t *testing.T, path string, fake *bottest.Server, extra string) {
	t.Helper()
	cfg := fmt.Sprintf("telegram:\n  api_endpoint: %q\nshutdown_timeout: 5s\n%s", fake.Endpoint(), extra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func composeGrace(t *testing.T) time.Duration {
	t.Helper()
	c, err := parseCompose(readRepoFile(t, "deploy/compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := time.ParseDuration(c.Services["otpbot"].StopGracePeriod)
	if err != nil {
		t.Fatalf("stop_grace_period: %v", err)
	}
	return d
}

// TestImageRuns starts ENTRYPOINT + CMD with the image's environment, as
// `docker run -e OTPBOT_TELEGRAM_TOKEN=... -v config.yaml:/etc/otpbot/config.yaml otpbot` does.
func TestImageRuns(t *testing.T) {
	img := builtImage(t)
	fake := bottest.New(t)
	dir := t.TempDir()
	port := freePort(t)
	env, vars := imageEnv(t, img, dir, port, nil)
	writeConfig(t, vars["OTPBOT_CONFIG"], fake, "")

	bin := img.localOf(t, img.final.entrypoint[0])
	args := append(append([]string{}, img.final.entrypoint[1:]...), img.final.cmd...)
	d := startDaemon(t, bin, args, env, dir)
	waitHealthy(t, d, func() error { return probe(img, t, env) })

	if _, err := os.Stat(vars["OTPBOT_STORE_PATH"]); err != nil {
		t.Errorf("the embedded store is not at OTPBOT_STORE_PATH (the /data volume): %v", err)
	}
	// `docker exec otpbot /otpbot check`: OTPBOT_CONFIG finds the file.
	check := exec.Command(bin, "check", "-offline")
	check.Env = env
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("otpbot check -offline in the image's environment: %v\n%s", err, out)
	}

	d.stop(t, composeGrace(t))
	if err := probe(img, t, env); err == nil {
		t.Error("the HEALTHCHECK still passes after otpbot stopped")
	}
}

// TestComposeRuns adds compose.yaml's environment to the image's, with
// Redis at 127.0.0.1 standing in for the redis service: otpbot runs on the
// Redis store and reports ready.
func TestComposeRuns(t *testing.T) {
	img := builtImage(t)
	c, err := parseCompose(readRepoFile(t, "deploy/compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	overrides := map[string]string{}
	for k, v := range c.Services["otpbot"].Environment {
		overrides[k] = v
	}
	delete(overrides, "OTPBOT_CONFIG")      // moved out of the container by imageEnv
	delete(overrides, "OTPBOT_HTTP_LISTEN") // likewise
	_, redisPort, err := net.SplitHostPort(overrides["OTPBOT_STORE_REDIS_ADDR"])
	if err != nil {
		t.Fatalf("OTPBOT_STORE_REDIS_ADDR: %v", err)
	}
	overrides["OTPBOT_STORE_REDIS_ADDR"] = net.JoinHostPort("127.0.0.1", redisPort)
	prefix := "otpbot-deploytest:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	overrides["OTPBOT_STORE_REDIS_PREFIX"] = prefix
	t.Cleanup(func() { deleteRedisPrefix(t, overrides["OTPBOT_STORE_REDIS_ADDR"], prefix) })

	fake := bottest.New(t)
	dir := t.TempDir()
	port := freePort(t)
	env, vars := imageEnv(t, img, dir, port, overrides)
	writeConfig(t, vars["OTPBOT_CONFIG"], fake, "")

	bin := img.localOf(t, img.final.entrypoint[0])
	args := append(append([]string{}, img.final.entrypoint[1:]...), img.final.cmd...)
	d := startDaemon(t, bin, args, env, dir)
	waitHealthy(t, d, func() error { return probe(img, t, env) })
	waitHealthy(t, d, func() error { return getOK("http://127.0.0.1:" + port + "/readyz") })
	if _, err := os.Stat(vars["OTPBOT_STORE_PATH"]); err == nil {
		t.Error("with store.driver redis from compose's environment, otpbot still created the embedded store")
	}
	d.stop(t, composeGrace(t))
}

// deleteRedisPrefix removes what a test wrote under its own prefix.
func deleteRedisPrefix(t *testing.T, addr, prefix string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		if err := rdb.Del(ctx, iter.Val()).Err(); err != nil {
			t.Logf("redis cleanup: %v", err)
			return
		}
	}
	if err := iter.Err(); err != nil {
		t.Logf("redis cleanup: %v", err)
	}
}

func getOK(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// TestUnitRuns starts the unit's ExecStart in its working directory with
// the secrets from its EnvironmentFile, as systemd does: the embedded
// store's relative default path lands in the state directory, and otpbot
// stops within TimeoutStopSec.
func TestUnitRuns(t *testing.T) {
	img := builtImage(t)
	u, err := parseUnit(readRepoFile(t, "deploy/otpbot.service"))
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir() // %S/otpbot
	etc := t.TempDir()   // /etc/otpbot
	fake := bottest.New(t)
	port := freePort(t)
	writeConfig(t, filepath.Join(etc, "config.yaml"), fake, "http:\n  listen: 127.0.0.1:"+port+"\n")
	envFile := filepath.Join(etc, "env")
	if err := os.WriteFile(envFile, []byte(strings.Join(secretEnv(), "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	execStart, _ := u.last("Service", "ExecStart")
	argv := strings.Fields(strings.ReplaceAll(execStart, "/etc/otpbot/", etc+"/"))
	if argv[0] != "/usr/local/bin/otpbot" {
		t.Fatalf("ExecStart runs %s, not the installed otpbot", argv[0])
	}
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, f := range u["Service"]["EnvironmentFile"] {
		env = append(env, readEnvFile(t, strings.ReplaceAll(strings.TrimPrefix(f, "-"), "/etc/otpbot/", etc+"/"))...)
	}
	d := startDaemon(t, img.localOf(t, img.final.entrypoint[0]), argv[1:], env, state)
	waitHealthy(t, d, func() error { return probe(img, t, nil, "http://127.0.0.1:"+port+"/healthz") })
	if _, err := os.Stat(filepath.Join(state, "otpbot.db")); err != nil {
		t.Errorf("the embedded store is not in the working (state) directory: %v", err)
	}
	ts, _ := u.last("Service", "TimeoutStopSec")
	grace, err := parseSystemdDuration(ts)
	if err != nil {
		t.Fatal(err)
	}
	d.stop(t, grace)
}

// readEnvFile reads KEY=VALUE lines as systemd's EnvironmentFile= does
// (comments and blank lines skipped).
func readEnvFile(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		env = append(env, line)
	}
	return env
}
