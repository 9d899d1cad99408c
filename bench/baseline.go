package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot/bot/bottest"
)

// bareFlag runs this binary as the bare handler (see serveBare).
const bareFlag = "-internal-bare-handler"

// serveBare is the ingest ceiling: a net/http server that reads the body
// and answers UPay's acknowledgement, without authenticating, parsing or
// storing anything. It runs as a process of its own, like otpbot, so the
// load generator drives both across the same process boundary. It prints
// its address and serves until stdin closes.
func serveBare() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "SUCCESS")
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	fmt.Println(ln.Addr().String())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// bareProcess is the bare handler running as a child process.
type bareProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

// startBare re-executes this binary as the bare handler.
func startBare() (*bareProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bare handler: %w", err)
	}
	cmd := exec.Command(self, bareFlag)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("bare handler: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bare handler: %w", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bare handler: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stdin.Close()
		_ = cmd.Wait()
		return nil, fmt.Errorf("bare handler: no address: %w", err)
	}
	return &bareProcess{cmd: cmd, stdin: stdin, addr: strings.TrimSpace(line)}, nil
}

// stop closes its stdin (it then exits) and returns its peak RSS.
func (b *bareProcess) stop() float64 {
	hwm := vmHWM(b.cmd.Process.Pid)
	b.stdin.Close()
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
	return hwm
}

// boltCommit measures one bbolt commit round trip: an Update that puts a
// small value and fsyncs, with the options the embedded store uses, n times
// in a row on a fresh file in dir.
func boltCommit(dir string, n int) (Latency, error) {
	db, err := bbolt.Open(filepath.Join(dir, "baseline.bolt"), 0o600,
		&bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return Latency{}, fmt.Errorf("bolt baseline: %w", err)
	}
	defer db.Close()
	value := make([]byte, 200)
	var s samples
	for i := range n {
		start := time.Now()
		err := db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"+strconv.Itoa(i)), value)
		})
		if err != nil {
			return Latency{}, fmt.Errorf("bolt baseline: %w", err)
		}
		s.add(time.Since(start))
	}
	return s.summary(), nil
}

// redisPing measures one Redis round trip (PING), n times in a row.
func redisPing(ctx context.Context, addr string, n int) (Latency, error) {
	client := goredis.NewClient(&goredis.Options{Addr: addr})
	defer client.Close()
	if err := client.Ping(ctx).Err(); err != nil { // connect outside the timing
		return Latency{}, fmt.Errorf("redis baseline: %w", err)
	}
	var s samples
	for range n {
		start := time.Now()
		if err := client.Ping(ctx).Err(); err != nil {
			return Latency{}, fmt.Errorf("redis baseline: %w", err)
		}
		s.add(time.Since(start))
	}
	return s.summary(), nil
}

// fakeRoundTrip measures the Telegram round trip the scenarios see: a
// getMe through a fake with that round trip, n calls over 8 connections,
// three times; the round with the lowest median counts, as the one least
// disturbed by other work on the machine.
func fakeRoundTrip(ctx context.Context, mean, jitter time.Duration, n int) (Latency, error) {
	fake, err := startFake(bottest.WithRoundTrip(mean, jitter))
	if err != nil {
		return Latency{}, fmt.Errorf("telegram round trip baseline: %w", err)
	}
	defer fake.Close()
	client := newHTTPClient(8)
	url := fake.URL() + "/bot" + benchToken + "/getMe"
	call := func(ctx context.Context, _ int) (time.Duration, error) {
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("getMe: HTTP %d", resp.StatusCode)
		}
		return time.Since(start), nil
	}
	var best Latency
	for range 3 {
		res := closedLoop(ctx, 8, n, time.Minute, call)
		if res.Failed > 0 || res.Acked == 0 {
			return Latency{}, fmt.Errorf("telegram round trip baseline: %d of %d failed: %s", res.Failed, res.Sent, res.FirstErr)
		}
		if best.Count == 0 || res.Ack.P50 < best.P50 {
			best = res.Ack
		}
	}
	return best, nil
}
