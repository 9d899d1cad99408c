package redis

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpbot/otpbot/store/redis/redistest"
	"github.com/otpbot/otpbot/store/storetest"
)

// TestSubscriberFlapping: a subscription that is dropped right after it is
// made (a proxy or a server that kills pub/sub clients) must not make the
// subscriber retry every 100 ms with a warning each time. Only a
// subscription that held for a while resets the backoff, and the warning
// is rate-limited.
func TestSubscriberFlapping(t *testing.T) {
	srv := redistest.StartServer(t)
	c := newClient(t, srv.Addr())
	killer := newClient(t, srv.Addr())
	var logs lockedBuffer
	s, err := New(t.Context(), c, "otpbot:", testOptions(storetest.NewClock(epoch)),
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	waitSubscribed(t, s)

	// Kill every pub/sub connection as soon as it appears.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				killer.ClientKillByFilter(t.Context(), "TYPE", "pubsub")
			}
		}
	})
	from := s.subscribes.Load()
	// Five drops in a row: the backoff doubles from 100 ms each time,
	// whether or not the subscription was made before it was killed.
	waitFor(t, "five resubscriptions", func() bool { return s.subscribes.Load() >= from+5 })
	close(stop)
	wg.Wait()

	if b := time.Duration(s.lastBackoff.Load()); b < 800*time.Millisecond {
		t.Errorf("backoff after five quick drops is %v, want at least 800ms (it was reset by a subscription that did not hold)", b)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n > 1 {
		t.Errorf("%d warnings for one flapping subscription, want at most 1:\n%s", n, logs.String())
	}

	// A subscription that holds resets the backoff: the next drop is
	// retried quickly again.
	waitSubscribed(t, s)
	s.stableAfter.Store(int64(50 * time.Millisecond))
	waitFor(t, "the subscription to hold", func() bool {
		return s.subscribed.Load() && time.Since(time.Unix(0, s.upSince.Load())) > 100*time.Millisecond
	})
	from = s.subscribes.Load()
	killer.ClientKillByFilter(t.Context(), "TYPE", "pubsub")
	waitFor(t, "a resubscription", func() bool { return s.subscribes.Load() > from && s.subscribed.Load() })
	if b := time.Duration(s.lastBackoff.Load()); b != subscribeBackoffMin {
		t.Errorf("backoff after a drop of a subscription that held is %v, want %v", b, subscribeBackoffMin)
	}
}
