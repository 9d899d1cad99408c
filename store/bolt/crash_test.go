package bolt

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/storetest"
)

// crashChildEnv names the store file when the test binary runs as the
// child that ingests until it is killed.
const crashChildEnv = "OTPBOT_BOLT_CRASH_CHILD"

// TestMain runs the test binary as the child of TestKilledProcessKeepsAcks
// when crashChildEnv names a store file.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	os.Exit(m.Run())
}

// crashChild ingests pushes until it is killed, printing the ID of each
// one Ingest acknowledged.
func crashChild(path string) {
	fail := func(what string, err error) {
		fmt.Println(what+":", err)
		os.Exit(1)
	}
	s, err := Open(path, storetest.DefaultOptions(time.Now), nil)
	if err != nil {
		fail("open", err)
	}
	ctx := context.Background()
	if err := s.Link(ctx, otpbot.Link{Key: otpbot.Key{Type: otpbot.KeyCard, ID: "C1"}, Target: otpbot.Target{ChatID: 1}}); err != nil {
		fail("link", err)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		now := time.Now()
		ev := otpbot.Event{ID: fmt.Sprintf("p%d", i), Group: fmt.Sprintf("p%d", i), Kind: otpbot.KindCode,
			CardID: "C1", Code: "123456", ReceivedAt: now, ExpiresAt: now.Add(time.Hour)}
		if _, err := s.Ingest(ctx, ev); err != nil {
			fail("ingest", err)
		}
		fmt.Fprintln(out, "acked", ev.ID)
		if err := out.Flush(); err != nil {
			fail("write", err)
		}
	}
}

// TestKilledProcessKeepsAcks kills a process that is ingesting (SIGKILL, no
// Close) and checks that every push it acknowledged is in the file, and
// that the dead process's lock does not keep the file from opening.
func TestKilledProcessKeepsAcks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otpbot.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	lines := bufio.NewScanner(stdout)
	deadline := time.Now().Add(20 * time.Second)
	for len(acked) < 200 && time.Now().Before(deadline) && lines.Scan() {
		id, ok := strings.CutPrefix(lines.Text(), "acked ")
		if !ok {
			t.Fatalf("child: %s", lines.Text())
		}
		acked = append(acked, id)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) < 200 {
		t.Fatalf("the child acknowledged only %d pushes", len(acked))
	}

	s, err := Open(path, storetest.DefaultOptions(time.Now), nil)
	if err != nil {
		t.Fatalf("open after the kill: %v", err)
	}
	defer s.Close()
	ctx := t.Context()
	for _, id := range acked {
		m, ok, err := s.Message(ctx, otpbot.MessageKey(id, otpbot.Target{ChatID: 1}))
		if err != nil || !ok || m.Event.Code != "123456" {
			t.Fatalf("acknowledged push %s lost: %v %v", id, ok, err)
		}
	}
	pending, err := s.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := pending[otpbot.PriorityCode].Count; n < len(acked) {
		t.Fatalf("%d send tasks survived, want at least %d", n, len(acked))
	}
}
