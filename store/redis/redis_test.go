package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/redis/redistest"
	"github.com/otpbot/otpbot/store/storetest"
)

// The Redis-specific behaviour the conformance suite cannot see: several
// Store instances (processes) on one prefix, Cluster-compatible keys, Redis
// expiry as garbage collection, secrets in Redis, and Redis going away.

var (
	testCard   = otpbot.Key{Type: otpbot.KeyCard, ID: "C77"}
	testTarget = otpbot.Target{ChatID: -100555, ThreadID: 3}
	testCode   = "731946"
	testLink   = "https://pay.example/confirm?t=very-secret"
)

// epoch is the fake clock's start, far from the real time so that a
// decision taken on Redis's clock instead of the store's would show.
var epoch = time.Date(2031, time.March, 4, 10, 20, 30, 0, time.UTC)

func testOptions(clock *storetest.Clock) otpbot.StoreOptions {
	return storetest.DefaultOptions(clock.Now)
}

func codeEvent(id string, at time.Time) otpbot.Event {
	return otpbot.Event{
		ID: id, Group: id, Provider: otpbot.ProviderUPay, Name: "3DS_OTP", Kind: otpbot.KindCode,
		CardID: testCard.ID, CustomerNo: "U9", CardLast4: "4242", Amount: "10.00", Currency: "EUR",
		Code: testCode, Link: testLink, ReceivedAt: at, ExpiresAt: at.Add(5 * time.Minute),
	}
}

func task(id string, p otpbot.Priority, due time.Time) otpbot.Task {
	return otpbot.Task{ID: id, Kind: otpbot.TaskNotice, Priority: p, Target: testTarget, Due: due, Created: due, Text: "ops " + id}
}

// twoStores opens two stores (two clients, as two processes would have) on
// one prefix, sharing a fake clock.
func twoStores(t *testing.T) (a, b *Store, clock *storetest.Clock) {
	t.Helper()
	clock = storetest.NewClock(epoch)
	a, _, prefix := newTestStore(t, testOptions(clock))
	b = openStore(t, newClient(t, sharedAddr), prefix, testOptions(clock))
	return a, b, clock
}

func TestBase(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"otpbot:", "otpbot:{otpbot}:"},
		{"", "otpbot:{otpbot}:"},
		{"prod", "prod{prod}:"},
		{"a:b:", "a:b:{a:b}:"},
		{"app:{x}:", "app:{x}:"},
		{"odd{:", "odd{:{otpbot}:"},
	}
	for _, tt := range tests {
		if got := Base(tt.prefix); got != tt.want {
			t.Errorf("Base(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

// hashTag returns the part of key Redis Cluster hashes.
func hashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}

// allKeys lists the keys under prefix.
func allKeys(t *testing.T, c goredis.UniversalClient, prefix string) []string {
	t.Helper()
	keys, err := c.Keys(t.Context(), escapeGlob(prefix)+"*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	return keys
}

// everyValue returns every string stored under prefix, with its key.
func everyValue(t *testing.T, c goredis.UniversalClient, prefix string) map[string][]string {
	t.Helper()
	ctx := t.Context()
	out := map[string][]string{}
	for _, k := range allKeys(t, c, prefix) {
		typ, err := c.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", k, err)
		}
		var vals []string
		switch typ {
		case "string":
			vals = []string{c.Get(ctx, k).Val()}
		case "hash":
			for f, v := range c.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "list":
			vals = c.LRange(ctx, k, 0, -1).Val()
		case "set":
			vals = c.SMembers(ctx, k).Val()
		case "zset":
			vals = c.ZRange(ctx, k, 0, -1).Val()
		default:
			t.Fatalf("key %s has unexpected type %s", k, typ)
		}
		out[k] = vals
	}
	return out
}

// holdingSecret lists the keys whose values contain the code or the link.
func holdingSecret(vals map[string][]string) []string {
	var keys []string
	for k, vs := range vals {
		for _, v := range vs {
			if strings.Contains(v, testCode) || strings.Contains(v, "very-secret") {
				keys = append(keys, k)
				break
			}
		}
	}
	return keys
}

// TestKeysShareOneHashTag drives every kind of write and checks that all
// keys carry the prefix's hash tag, which is what lets the multi-key
// scripts run on Redis Cluster.
func TestKeysShareOneHashTag(t *testing.T) {
	clock := storetest.NewClock(epoch)
	s, c, prefix := newTestStore(t, testOptions(clock))
	ctx := t.Context()
	now := clock.Now()
	mustDo(t, s.Link(ctx, otpbot.Link{Key: testCard, Target: testTarget, CreatedAt: now}))
	mustDo(t, s.MarkBroken(ctx, otpbot.Target{ChatID: 9}, "gone"))
	mustDo(t, s.Link(ctx, otpbot.Link{Key: otpbot.Key{Type: otpbot.KeyCard, ID: "B"}, Target: otpbot.Target{ChatID: 9}, CreatedAt: now}))
	mustDo(t, s.MarkBroken(ctx, otpbot.Target{ChatID: 9}, "gone"))
	if _, err := s.Ingest(ctx, codeEvent("e1", now)); err != nil {
		t.Fatal(err)
	}
	mustDo(t, s.Enqueue(ctx, task("n1", otpbot.PriorityOther, now)))
	jobs, err := s.Claim(ctx, now, time.Minute, 10)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("Claim = %d jobs, %v", len(jobs), err)
	}
	mustDo(t, s.CreateInvite(ctx, otpbot.Invite{Hash: "h1", Key: testCard, ExpiresAt: now.Add(time.Hour)}))
	if _, err := s.Once(ctx, "update:1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, "poller", "p1", time.Minute); err != nil {
		t.Fatal(err)
	}

	keys := allKeys(t, c, prefix)
	if len(keys) < 15 {
		t.Fatalf("only %d keys written: %v", len(keys), keys)
	}
	want := hashTag(Base(prefix))
	for _, k := range keys {
		if !strings.HasPrefix(k, Base(prefix)) {
			t.Errorf("key %q outside the base %q", k, Base(prefix))
		}
		if got := hashTag(k); got != want {
			t.Errorf("key %q hashes on %q, want %q", k, got, want)
		}
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSecretsInRedis looks at the raw Redis contents: a code and a link are
// never in history, and once the message reaches a final state they are
// nowhere at all.
func TestSecretsInRedis(t *testing.T) {
	clock := storetest.NewClock(epoch)
	s, c, prefix := newTestStore(t, testOptions(clock))
	ctx := t.Context()
	now := clock.Now()
	mustDo(t, s.Link(ctx, otpbot.Link{Key: testCard, Target: testTarget, CreatedAt: now}))
	res, err := s.Ingest(ctx, codeEvent("e1", now))
	if err != nil || res.Outcome != otpbot.OutcomeQueued {
		t.Fatalf("Ingest = %+v, %v", res, err)
	}

	vals := everyValue(t, c, prefix)
	base := Base(prefix)
	for _, k := range holdingSecret(vals) {
		// Only the live message may hold the code: it must survive a crash.
		if k != base+"m:"+otpbot.MessageKey("e1", testTarget) {
			t.Errorf("key %s holds a secret while the code is live", k)
		}
	}
	for _, key := range []string{"card:C77", "customer:U9"} {
		if len(vals[base+"h:"+key]) != 1 {
			t.Errorf("history of %s = %v, want one entry", key, vals[base+"h:"+key])
		}
	}

	jobs, err := s.Claim(ctx, now, time.Minute, 1)
	if err != nil || len(jobs) != 1 || jobs[0].Message == nil || jobs[0].Message.Event.Code != testCode {
		t.Fatalf("Claim = %+v, %v; want the send job with its code", jobs, err)
	}
	m := *jobs[0].Message
	m.State, m.TelegramID, m.UpdatedAt = otpbot.StateExpired, 77, clock.Advance(5*time.Minute)
	mustDo(t, s.Complete(ctx, jobs[0], &m))
	if keys := holdingSecret(everyValue(t, c, prefix)); len(keys) > 0 {
		t.Fatalf("after the code expired, keys still hold a secret: %v", keys)
	}
}

// TestRedisExpiry checks that data with a logical lifetime also expires in
// Redis, later than the store clock needs it.
func TestRedisExpiry(t *testing.T) {
	clock := storetest.NewClock(epoch)
	opts := testOptions(clock)
	s, c, prefix := newTestStore(t, opts)
	ctx := t.Context()
	now := clock.Now()
	base := Base(prefix)
	mustDo(t, s.Link(ctx, otpbot.Link{Key: testCard, Target: testTarget, CreatedAt: now}))
	if _, err := s.Ingest(ctx, codeEvent("e1", now)); err != nil {
		t.Fatal(err)
	}
	mustDo(t, s.CreateInvite(ctx, otpbot.Invite{Hash: "h1", Key: testCard, ExpiresAt: now.Add(opts.InviteTTL)}))
	if _, err := s.Once(ctx, "update:1", time.Hour); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.Claim(ctx, now, time.Minute, 1)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim = %v, %v", jobs, err)
	}
	m := *jobs[0].Message
	m.State = otpbot.StateHidden
	mustDo(t, s.Complete(ctx, jobs[0], &m))

	tests := []struct {
		key     string
		atLeast time.Duration // the logical lifetime
	}{
		{base + "dd", opts.DedupeWindow},
		{base + "h:card:C77", opts.HistoryRetention},
		{base + "h:customer:U9", opts.HistoryRetention},
		{base + "iv:h1", opts.InviteTTL},
		{base + "once:update:1", time.Hour},
		{base + "m:" + otpbot.MessageKey("e1", testTarget), opts.DedupeWindow},
	}
	for _, tt := range tests {
		ttl, err := c.PTTL(ctx, tt.key).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", tt.key, err)
		}
		if ttl <= tt.atLeast {
			t.Errorf("PTTL %s = %v, want an expiry beyond %v", tt.key, ttl, tt.atLeast)
		}
	}
	// Links, and a live message with its tasks, never expire by themselves.
	for _, k := range []string{base + "lk:card:C77"} {
		if ttl := c.PTTL(ctx, k).Val(); ttl != -1 {
			t.Errorf("PTTL %s = %v, want no expiry", k, ttl)
		}
	}
}

// TestTwoStoresShareWork: two stores on one prefix (two processes) claim
// concurrently; every task goes to exactly one of them.
func TestTwoStoresShareWork(t *testing.T) {
	a, b, clock := twoStores(t)
	ctx := t.Context()
	now := clock.Now()
	const n = 200
	var tasks []otpbot.Task
	for i := range n {
		tasks = append(tasks, task(fmt.Sprintf("t%03d", i), otpbot.Priority(i%4), now))
	}
	mustDo(t, a.Enqueue(ctx, tasks[:n/2]...))
	mustDo(t, b.Enqueue(ctx, tasks[n/2:]...))

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		seen   = map[string]int{}
		byProc = map[string]int{}
	)
	for i := range 8 {
		s, name := a, "a"
		if i%2 == 1 {
			s, name = b, "b"
		}
		wg.Go(func() {
			for {
				jobs, err := s.Claim(ctx, now, time.Minute, 3)
				if err != nil {
					t.Errorf("Claim: %v", err)
					return
				}
				if len(jobs) == 0 {
					return
				}
				for _, j := range jobs {
					if err := s.Complete(ctx, j, nil); err != nil {
						t.Errorf("Complete %s: %v", j.Task.ID, err)
					}
				}
				mu.Lock()
				for _, j := range jobs {
					seen[j.Task.ID]++
					byProc[name]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d distinct tasks done, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("task %s done %d times", id, c)
		}
	}
	if byProc["a"] == 0 || byProc["b"] == 0 {
		t.Errorf("work not shared: %v", byProc)
	}
	if _, ok, err := b.NextDue(ctx); err != nil || ok {
		t.Errorf("NextDue after all work = %v, %v; want an empty outbox", ok, err)
	}
}

// TestLeaseTakeoverAcrossStores: a job claimed by one process whose lease
// runs out (the process died) is taken over by the other; the first one's
// late Complete and Retry are refused.
func TestLeaseTakeoverAcrossStores(t *testing.T) {
	a, b, clock := twoStores(t)
	ctx := t.Context()
	now := clock.Now()
	mustDo(t, a.Link(ctx, otpbot.Link{Key: testCard, Target: testTarget, CreatedAt: now}))
	if _, err := a.Ingest(ctx, codeEvent("e1", now)); err != nil {
		t.Fatal(err)
	}
	first, err := a.Claim(ctx, now, 30*time.Second, 10)
	if err != nil || len(first) != 1 {
		t.Fatalf("a.Claim = %v, %v", first, err)
	}
	if at, ok, err := b.NextDue(ctx); err != nil || !ok || !at.Equal(now.Add(30*time.Second)) {
		t.Fatalf("b.NextDue = %v, %v, %v; want the lease's end", at, ok, err)
	}
	if jobs, err := b.Claim(ctx, now.Add(29*time.Second), time.Minute, 10); err != nil || len(jobs) != 0 {
		t.Fatalf("b.Claim during a's lease = %v, %v; want nothing", jobs, err)
	}
	second, err := b.Claim(ctx, now.Add(30*time.Second), time.Minute, 10)
	if err != nil || len(second) != 1 || second[0].Task.ID != first[0].Task.ID {
		t.Fatalf("b.Claim after a's lease = %v, %v; want the same task", second, err)
	}
	if second[0].Message == nil || second[0].Message.Event.Code != testCode {
		t.Fatalf("taken-over job lost its message: %+v", second[0].Message)
	}
	if err := a.Complete(ctx, first[0], nil); !errors.Is(err, otpbot.ErrLeaseLost) {
		t.Fatalf("a.Complete after takeover: %v, want ErrLeaseLost", err)
	}
	if err := a.Retry(ctx, first[0], now.Add(time.Minute), "late"); !errors.Is(err, otpbot.ErrLeaseLost) {
		t.Fatalf("a.Retry after takeover: %v, want ErrLeaseLost", err)
	}
	m := *second[0].Message
	m.TelegramID, m.SentAt, m.UpdatedAt = 10, now.Add(31*time.Second), now.Add(31*time.Second)
	tick := otpbot.Task{ID: otpbot.TaskID(m.ID, otpbot.TaskRefresh), Kind: otpbot.TaskRefresh,
		Priority: otpbot.PriorityRefresh, MessageID: m.ID, Target: m.Target, Due: now.Add(time.Minute), Created: now}
	mustDo(t, b.Complete(ctx, second[0], &m, tick))
	got, ok, err := a.Message(ctx, m.ID)
	if err != nil || !ok || got.TelegramID != 10 {
		t.Fatalf("a.Message after b's Complete = %+v, %v, %v", got, ok, err)
	}
	if at, ok, err := a.NextDue(ctx); err != nil || !ok || !at.Equal(now.Add(time.Minute)) {
		t.Fatalf("a.NextDue = %v, %v, %v; want the countdown tick", at, ok, err)
	}
}

// waitSubscribed waits until s's wake subscription is established.
func waitSubscribed(t *testing.T, s *Store) {
	t.Helper()
	waitFor(t, "wake subscription", func() bool { return s.subscribed.Load() })
}

// wakeStep is one store call whose script publishes on the wake channel.
type wakeStep struct {
	name string
	do   func() error
}

// publishingSteps are every call of a that publishes on the wake channel,
// in an order where each finds the work it needs. The card is linked.
func publishingSteps(t *testing.T, a *Store, now time.Time) []wakeStep {
	ctx := t.Context()
	mustDo(t, a.Link(ctx, otpbot.Link{Key: testCard, Target: testTarget, CreatedAt: now}))
	claimOne := func() (otpbot.Job, error) {
		jobs, err := a.Claim(ctx, now, time.Minute, 1)
		if err != nil || len(jobs) != 1 {
			return otpbot.Job{}, fmt.Errorf("claim: %v, %v", jobs, err)
		}
		return jobs[0], nil
	}
	return []wakeStep{
		{"Enqueue", func() error { return a.Enqueue(ctx, task("t1", otpbot.PriorityOther, now)) }},
		{"Ingest", func() error { _, err := a.Ingest(ctx, codeEvent("e1", now)); return err }},
		{"Complete with next", func() error {
			job, err := claimOne() // e1's send
			if err != nil {
				return err
			}
			return a.Complete(ctx, job, nil, task("t2", otpbot.PriorityOther, now.Add(time.Second)))
		}},
		{"Retry", func() error {
			job, err := claimOne() // t1
			if err != nil {
				return err
			}
			return a.Retry(ctx, job, now.Add(time.Minute), "flood wait")
		}},
		{"UpdateMessage with next", func() error {
			m, ok, err := a.Message(ctx, otpbot.MessageKey("e1", testTarget))
			if err != nil || !ok {
				return fmt.Errorf("message: %v, %v", ok, err)
			}
			next := m
			next.UpdatedAt = m.UpdatedAt.Add(time.Second)
			return a.UpdateMessage(ctx, m.UpdatedAt, next, task("t3", otpbot.PriorityUpdate, now))
		}},
	}
}

// TestWakeAcrossStores: work written by one process wakes the other.
func TestWakeAcrossStores(t *testing.T) {
	a, b, clock := twoStores(t)
	waitSubscribed(t, b)
	for _, st := range publishingSteps(t, a, clock.Now()) {
		storetest.DrainWake(b.Wake())
		mustDo(t, st.do())
		storetest.WaitWake(t, b.Wake(), "a's "+st.name)
	}
}

// TestWakeSkipsOwnPublications: the store that wrote the work wakes its
// own consumer once, directly; its subscriber skips the publication that
// wakes the other processes, which would only make the consumer claim
// again and find nothing.
func TestWakeSkipsOwnPublications(t *testing.T) {
	a, b, clock := twoStores(t)
	ctx := t.Context()
	now := clock.Now()
	waitSubscribed(t, a)
	waitSubscribed(t, b)
	for i, st := range publishingSteps(t, a, now) {
		own, other := a.wakesOwn.Load(), a.wakesOther.Load()
		storetest.DrainWake(a.Wake())
		mustDo(t, st.do())
		select {
		case <-a.Wake():
		default:
			t.Fatalf("%s did not wake its own store when it returned", st.name)
		}
		// A publication of b's after a's own: once a has received it, a
		// has received its own too (one connection delivers in order).
		mustDo(t, b.Enqueue(ctx, task(fmt.Sprintf("b%d", i), otpbot.PriorityOther, now.Add(time.Hour))))
		waitFor(t, "b's publication at a", func() bool { return a.wakesOther.Load() >= other+1 })
		if got := a.wakesOwn.Load(); got != own+1 {
			t.Fatalf("after %s: a's subscriber skipped %d of its own publications, want 1", st.name, got-own)
		}
		if got := a.wakesOther.Load(); got != other+1 {
			t.Fatalf("after %s: a was woken by %d publications, want only b's", st.name, got-other)
		}
	}
}

// TestRedisUnavailable stops a private Redis under a running store: every
// method fails with ErrUnavailable (so pushes get 503), Ping fails, the
// wake subscriber backs off instead of spinning; when Redis is back the
// same store works again by itself, cross-process wakes included.
func TestRedisUnavailable(t *testing.T) {
	srv := redistest.StartServer(t)
	clock := storetest.NewClock(epoch)
	opts := testOptions(clock)
	clientA := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), DialTimeout: time.Second, MaxRetries: 1})
	clientB := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), DialTimeout: time.Second, MaxRetries: 1})
	t.Cleanup(func() { clientA.Close(); clientB.Close() })
	a := openStore(t, clientA, "otpbot:", opts)
	b := openStore(t, clientB, "otpbot:", opts)
	ctx := t.Context()
	now := clock.Now()
	mustDo(t, a.Link(ctx, otpbot.Link{Key: testCard, Target: testTarget, CreatedAt: now}))
	if _, err := a.Ingest(ctx, codeEvent("before", now)); err != nil {
		t.Fatal(err)
	}
	jobs, err := a.Claim(ctx, now, time.Minute, 1)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim = %v, %v", jobs, err)
	}
	waitSubscribed(t, b)

	start, from := time.Now(), b.subscribes.Load()
	srv.Stop()
	// The subscriber retries with a doubling backoff: three more attempts
	// take at least 100+200+400ms however fast the machine is.
	waitFor(t, "subscriber retries", func() bool { return b.subscribes.Load() >= from+3 })
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("3 resubscriptions within %v: the subscriber spins", d)
	}

	msg := *jobs[0].Message
	calls := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return a.Ping(ctx) }},
		{"Ingest", func() error { _, err := a.Ingest(ctx, codeEvent("during", now)); return err }},
		{"Claim", func() error { _, err := a.Claim(ctx, now, time.Minute, 1); return err }},
		{"NextDue", func() error { _, _, err := a.NextDue(ctx); return err }},
		{"Complete", func() error { return a.Complete(ctx, jobs[0], &msg) }},
		{"Retry", func() error { return a.Retry(ctx, jobs[0], now, "x") }},
		{"Enqueue", func() error { return a.Enqueue(ctx, task("t1", otpbot.PriorityOther, now)) }},
		{"Pending", func() error { _, err := a.Pending(ctx); return err }},
		{"Message", func() error { _, _, err := a.Message(ctx, msg.ID); return err }},
		{"MessagesForChat", func() error { _, err := a.MessagesForChat(ctx, testTarget.ChatID); return err }},
		{"UpdateMessage", func() error { return a.UpdateMessage(ctx, msg.UpdatedAt, msg) }},
		{"Link", func() error { return a.Link(ctx, otpbot.Link{Key: testCard, Target: otpbot.Target{ChatID: 5}}) }},
		{"Unlink", func() error { _, err := a.Unlink(ctx, testCard, testTarget); return err }},
		{"LinksForKey", func() error { _, err := a.LinksForKey(ctx, testCard); return err }},
		{"LinksForChat", func() error { _, err := a.LinksForChat(ctx, testTarget.ChatID); return err }},
		{"MarkBroken", func() error { return a.MarkBroken(ctx, testTarget, "x") }},
		{"History", func() error { _, err := a.History(ctx, testCard, 10); return err }},
		{"CreateInvite", func() error { return a.CreateInvite(ctx, otpbot.Invite{Hash: "h", Key: testCard}) }},
		{"RedeemInvite", func() error { _, err := a.RedeemInvite(ctx, "h", testTarget, now); return err }},
		{"Once", func() error { _, err := a.Once(ctx, "u1", time.Hour); return err }},
		{"AcquireLease", func() error { _, err := a.AcquireLease(ctx, "poll", "a", time.Minute); return err }},
		{"ReleaseLease", func() error { return a.ReleaseLease(ctx, "poll", "a") }},
		{"Export", func() error { return a.Export(ctx, func(otpbot.Record) error { return nil }) }},
		{"Import", func() error { return a.Import(ctx, []otpbot.Record{{Dedupe: &otpbot.DedupeMark{ID: "x", Seen: now}}}) }},
	}
	for _, c := range calls {
		t0 := time.Now()
		err := c.call()
		t.Logf("%s: %v", c.name, time.Since(t0))
		if !errors.Is(err, otpbot.ErrUnavailable) {
			t.Errorf("%s while Redis is down: %v, want ErrUnavailable", c.name, err)
		}
	}

	srv.Start()
	waitFor(t, "Ping after restart", func() bool { return a.Ping(ctx) == nil })
	// The restarted server is empty (it persists nothing); work resumes.
	mustDo(t, a.Link(ctx, otpbot.Link{Key: testCard, Target: testTarget, CreatedAt: now}))
	res, err := a.Ingest(ctx, codeEvent("after", now))
	if err != nil || res.Outcome != otpbot.OutcomeQueued {
		t.Fatalf("Ingest after restart = %+v, %v", res, err)
	}
	waitSubscribed(t, b)
	storetest.DrainWake(b.Wake())
	mustDo(t, a.Enqueue(ctx, task("t2", otpbot.PriorityOther, now)))
	storetest.WaitWake(t, b.Wake(), "Enqueue after restart")
	jobs, err = b.Claim(ctx, now, time.Minute, 10)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("b.Claim after restart = %d jobs, %v; want the new send and the notice", len(jobs), err)
	}
}

// TestIdleCardMemory measures what an idle linked card costs in Redis: its
// link (and the chat's index entry) plus a few history entries.
func TestIdleCardMemory(t *testing.T) {
	clock := storetest.NewClock(epoch)
	s, c, prefix := newTestStore(t, testOptions(clock))
	ctx := t.Context()
	base := Base(prefix)
	const entries = 5
	now := clock.Now()
	mustDo(t, s.Link(ctx, otpbot.Link{Key: testCard, Target: testTarget, CreatedAt: now, CreatedBy: 12345678}))
	for i := range entries {
		ev := codeEvent(fmt.Sprintf("mem-%d", i), now)
		ev.Kind, ev.Name, ev.Status = otpbot.KindInfo, "TRANSACTION", "successful"
		ev.CustomerNo = ""
		if _, err := s.Ingest(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{base + "lk:card:C77", base + "lc:-100555", base + "h:card:C77"}
	total := int64(0)
	for _, k := range keys {
		n, err := c.MemoryUsage(ctx, k).Result()
		if err != nil {
			t.Fatalf("MEMORY USAGE %s: %v", k, err)
		}
		t.Logf("MEMORY USAGE %s = %d bytes", strings.TrimPrefix(k, base), n)
		total += n
	}
	t.Logf("idle card (link + %d history entries): %d bytes", entries, total)
	if total > 8<<10 {
		t.Errorf("an idle card costs %d bytes, want under 8 KiB", total)
	}
}

// BenchmarkIngest is the shared ingest benchmark on the Redis store; compare
// it with BenchmarkRoundTrip (one PING on the same client) in the same run.
func BenchmarkIngest(b *testing.B) {
	c := goredis.NewClient(&goredis.Options{Addr: sharedAddr, PoolSize: 64})
	b.Cleanup(func() { c.Close() })
	prefix := testPrefix()
	cleanPrefix(b, c, prefix)
	s := openStore(b, c, prefix, otpbot.StoreOptions{})
	storetest.BenchmarkIngest(b, s)
}

// BenchmarkRoundTrip is the baseline: one PING, with the same parallelism
// as BenchmarkIngest.
func BenchmarkRoundTrip(b *testing.B) {
	c := goredis.NewClient(&goredis.Options{Addr: sharedAddr, PoolSize: 64})
	b.Cleanup(func() { c.Close() })
	ctx := context.Background()
	b.SetParallelism(storetest.BenchParallelism)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.Ping(ctx).Err(); err != nil {
				b.Errorf("PING: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pings/s")
}
