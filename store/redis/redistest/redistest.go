// Package redistest runs private redis-server processes for tests that
// must see Redis go away and come back (the store's ErrUnavailable path,
// /readyz), fail over (StartSentinel) or spread keys over several primaries
// (StartCluster), none of which can be done to the shared server on
// 127.0.0.1:6379. Only the redis-server binary is needed: it runs Sentinel
// with --sentinel and Cluster nodes with --cluster-enabled yes, and the
// package sets both up over their own commands.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binary is the redis-server executable StartServer runs, looked up on PATH
// when it is not an absolute path.
const Binary = "redis-server"

// startTimeout bounds how long a starting server may take to answer PING.
// Generous: a loaded CI machine may be slow to fork and bind.
const startTimeout = 15 * time.Second

// T is the part of testing.TB the servers use: a test passes its
// *testing.T, and a program (bench) its own implementation.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

var _ T = testing.TB(nil)

// Server is a redis-server process owned by one test. It listens on a fixed
// port for its whole life, so a client configured with Addr reconnects to it
// after Stop and Start.
type Server struct {
	tb   T
	bin  string
	port int
	dir  string
	// conf is a configuration file given before the options ("" for
	// none): Sentinel needs one it can rewrite.
	conf string
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when the running process has been reaped.
	exited chan struct{}
}

// StartServer starts a private, non-persistent redis-server on a free
// loopback port and stops it when the test ends. args are more
// redis-server command-line options, given after the defaults so that they
// override them: StartServer(tb, "--appendonly", "yes") runs a server with
// an append-only file (in a directory of its own, kept across Stop and
// Start, so that a restart reloads what the killed server had written).
func StartServer(tb T, args ...string) *Server {
	tb.Helper()
	s := newServer(tb, args...)
	s.Start()
	return s
}

// newServer prepares a server on a free port, in a directory of its own,
// without starting it; it is stopped when the test ends.
func newServer(tb T, args ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		tb.Fatalf("redistest: %s not found: %v", Binary, err)
	}
	s := &Server{tb: tb, bin: bin, port: freePort(tb), dir: tb.TempDir(), args: args}
	tb.Cleanup(s.Stop)
	return s
}

// Port is the server's port.
func (s *Server) Port() int { return s.port }

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Start starts the server again on the same port after Stop (it is a no-op
// while the server runs) and returns once it answers PING. The data set
// starts empty unless StartServer's args turned persistence on.
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.startLocked()
		if err == nil {
			return
		}
		// The port may still be held for a moment by the process we just
		// killed; try again until the deadline.
		if time.Now().After(deadline) {
			s.tb.Fatalf("redistest: start redis-server on %s: %v", s.Addr(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startLocked launches one process and waits for it to answer.
func (s *Server) startLocked() error {
	logFile := filepath.Join(s.dir, "redis.log")
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", logFile,
		"--daemonize", "no",
	}
	if s.conf != "" {
		args = append([]string{s.conf}, args...)
	}
	cmd := exec.Command(s.bin, append(args, s.args...)...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(logFile)
			return fmt.Errorf("redis-server exited (%v): %s", waitErr, lastLines(string(log), 5))
		default:
		}
		if ping(s.Addr()) == nil {
			s.cmd, s.exited = cmd, exited
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("no PONG within %v", startTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server with SIGKILL (as a crash would: no clean
// shutdown) and waits until the process is gone. It is a no-op when the
// server is stopped.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd, s.exited = nil, nil
}

// ping sends one inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// freePort asks the kernel for an unused loopback port.
func freePort(tb T) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lastLines returns the last n lines of s, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
