package redis

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/redis/redistest"
	"github.com/otpbot/otpbot/store/storetest"
)

// TestIngestWaitsForReplicas: with min_replicas_ack 1 a push is on the
// replica when Ingest returns; while the replica is away the push, and its
// repeat too, is ErrUnavailable (the provider retries) rather than
// acknowledged from the primary alone; once the replica is back the retry
// is acknowledged as the repeat it is. Waiting for more replicas than are
// connected is reported as a problem and never acknowledges.
func TestIngestWaitsForReplicas(t *testing.T) {
	// A replica's full sync starts at once, not after the default 5 s.
	primary := redistest.StartServer(t, "--repl-diskless-sync-delay", "0")
	replica := redistest.StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port()))
	ctx := t.Context()
	waitInSync := func(n int) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := redistest.WaitReplicas(wctx, primary.Addr(), n); err != nil {
			t.Fatal(err)
		}
	}
	waitInSync(1)

	clock := storetest.NewClock(epoch)
	c := newClient(t, primary.Addr())
	s := openStoreWith(t, c, "otpbot:", testOptions(clock), WithMinReplicasAck(1))
	now := clock.Now()
	mustDo(t, s.Link(ctx, otpbot.Link{Key: testCard, Target: testTarget, CreatedAt: now}))

	rep, err := s.Durability(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replicas != 1 || rep.MinReplicasAck != 1 || !rep.Wait || rep.Problem() != "" {
		t.Fatalf("report %+v, problem %q; want 1 replica, waiting for 1, no problem", rep, rep.Problem())
	}
	if p := rep.Promise(); !strings.Contains(p, "on the primary and 1 replica") {
		t.Errorf("Promise() = %q", p)
	}

	if res, err := s.Ingest(ctx, codeEvent("a", now)); err != nil || res.Outcome != otpbot.OutcomeQueued {
		t.Fatalf("Ingest with the replica up = %+v, %v", res, err)
	}
	// Acknowledged means on the replica already, not soon.
	rc := newClient(t, replica.Addr())
	if _, err := rc.ZScore(ctx, s.k.dedupe(), "a").Result(); err != nil {
		t.Fatalf("acknowledged push not on the replica: %v", err)
	}

	replica.Stop()
	start := time.Now()
	if _, err := s.Ingest(ctx, codeEvent("b", now)); !errors.Is(err, otpbot.ErrUnavailable) {
		t.Fatalf("Ingest with the replica away = %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > replicaAckTimeout+5*time.Second {
		t.Errorf("Ingest took %v to give up, want about %v", took, replicaAckTimeout)
	}
	// The retry is a repeat now (the primary has it), and still not
	// acknowledged while no replica has it.
	if _, err := s.Ingest(ctx, codeEvent("b", now)); !errors.Is(err, otpbot.ErrUnavailable) {
		t.Fatalf("repeat with the replica away = %v, want ErrUnavailable", err)
	}

	replica.Start()
	waitInSync(1)
	if res, err := s.Ingest(ctx, codeEvent("b", now)); err != nil || !res.Duplicate {
		t.Fatalf("retry with the replica back = %+v, %v; want an acknowledged repeat", res, err)
	}

	two := openStoreWith(t, c, "otpbot:", testOptions(clock), WithMinReplicasAck(2))
	rep, err = two.Durability(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Problem(); !strings.Contains(p, "min_replicas_ack is 2 but the primary has 1 connected") {
		t.Errorf("Problem() = %q, want one saying 2 replicas are awaited and 1 is connected", p)
	}
	if _, err := two.Ingest(ctx, codeEvent("c", now)); !errors.Is(err, otpbot.ErrUnavailable) {
		t.Fatalf("Ingest waiting for 2 of 1 replicas = %v, want ErrUnavailable", err)
	}
}
