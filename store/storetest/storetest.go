// Package storetest is the conformance suite every otpbot.Store passes: the
// embedded bbolt store and the Redis store run the very same subtests, so the
// rest of otpbot can rely on one behaviour whichever driver is configured.
//
// The suite never sleeps. Every store compares times with
// StoreOptions.Now or with the explicit `now` argument of the method, and
// the suite drives a fake clock that it advances by hand. A store may keep
// its own garbage collection on real time (Redis key TTLs, say) as long as it
// leaves generous slack, so that it never decides an outcome.
//
// Semantics pinned here beyond the doc comments of otpbot.Store:
//   - a pushed kind goes to the union of the unbroken links of all of
//     ev.Keys() (its card and its customer), each target once: a chat
//     linked to both the card and its customer gets one message, two topics
//     of one chat are two targets, and a target whose link is broken under
//     one key but not under the other still receives; with no unbroken link
//     under any key the push is unrouted;
//   - a pushed kind already expired at its ReceivedAt is OutcomeExpired and
//     writes no message and no task, even when a link exists;
//   - Ingest that updates an existing message sets its UpdatedAt to the
//     store's clock, so a concurrent UpdateMessage by the bot conflicts;
//   - a stored message in a final state never holds a code or a link
//     (Complete and UpdateMessage both redact), nor a Rendered hash carried
//     over unchanged from its live version (it hashed a text showing the
//     code); a Rendered that changed with the state is kept;
//   - Claim drops the code and link of a live message past its expiry (at
//     the claim's now), keeps it live and gives it a new UpdatedAt;
//   - Enqueue replacing a leased task clears the lease: the new task is
//     claimable at its due time and the old job's Complete gets ErrLeaseLost;
//   - Complete may enqueue a task with the completed task's own ID (the next
//     countdown tick) and that task stays pending;
//   - Pending counts leased tasks too (they are still in the outbox);
//   - UpdateMessage of an unknown message is ErrNotFound;
//   - MarkBroken marks the exact target (chat and topic), not the whole chat;
//   - Export emits one History record per stored entry event, and Import
//     writes it under each of the event's history keys, so a round trip
//     through Export/Import neither loses nor duplicates history;
//   - every event is kept under otpbot.EventsKey too (Event.HistoryKeys),
//     events without a card or customer only there; that key is capped
//     like any other and can never be linked (ErrNotLinkable);
//   - a new message takes the name the target's link under the event's
//     card gives it (Message.CardName), and keeps it through every write;
//   - Ingest sets the state of a group's message by otpbot.NextState: an
//     approval request that its push says is decided is decided.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

// NewStoreFunc opens a fresh, empty store with opts for one subtest and
// registers its Close with t.Cleanup.
type NewStoreFunc func(t *testing.T, opts otpbot.StoreOptions) otpbot.Store

// Run runs the whole conformance suite against the stores newStore opens.
// Every subtest gets a fresh store and its own fake clock.
func Run(t *testing.T, newStore NewStoreFunc) {
	groups := []struct {
		name  string
		tests []subtest
	}{
		{"Ingest", ingestTests},
		{"History", historyTests},
		{"Events", eventsTests},
		{"Queue", queueTests},
		{"CompleteMessage", completeMessageTests},
		{"Messages", messageTests},
		{"Links", linkTests},
		{"Invites", inviteTests},
		{"Chats", chatTests},
		{"Coordinator", coordinatorTests},
		{"Porter", append(porterTests, keyPorterTests...)},
		{"InstallationSecret", keyTests},
		{"Ping", []subtest{{"answers", testPing}}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, st := range g.tests {
				t.Run(st.name, func(t *testing.T) {
					st.fn(t, newStore)
				})
			}
		})
	}
}

// subtest is one named conformance check.
type subtest struct {
	name string
	fn   func(t *testing.T, newStore NewStoreFunc)
}

// epoch is where every fake clock starts: far from the real time, so that a
// store reading the wall clock instead of StoreOptions.Now fails the suite.
var epoch = time.Date(2031, time.March, 4, 10, 20, 30, 0, time.UTC)

// Clock is a fake clock that only moves when told. It is safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// DefaultOptions are the settings the suite runs with unless a subtest
// needs others; they mirror the configuration's defaults
// (docs/configuration.md).
func DefaultOptions(now func() time.Time) otpbot.StoreOptions {
	return otpbot.StoreOptions{
		DedupeWindow:     72 * time.Hour,
		HistoryPerKey:    1000,
		HistoryRetention: 720 * time.Hour,
		InviteTTL:        24 * time.Hour,
		Now:              now,
	}
}

// env is one subtest's store, clock and context.
type env struct {
	t     *testing.T
	ctx   context.Context
	clock *Clock
	opts  otpbot.StoreOptions
	s     otpbot.Store
}

// newEnv opens a store with the default options, changed by mods.
func newEnv(t *testing.T, newStore NewStoreFunc, mods ...func(*otpbot.StoreOptions)) *env {
	t.Helper()
	clock := NewClock(epoch)
	opts := DefaultOptions(clock.Now)
	for _, m := range mods {
		m(&opts)
	}
	return &env{t: t, ctx: t.Context(), clock: clock, opts: opts, s: newStore(t, opts)}
}

// reopenEmpty opens a second, empty store sharing e's clock and options (the
// destination of an Import).
func (e *env) second(newStore NewStoreFunc) *env {
	e.t.Helper()
	return &env{t: e.t, ctx: e.ctx, clock: e.clock, opts: e.opts, s: newStore(e.t, e.opts)}
}

// Test keys and targets.
var (
	cardC1   = otpbot.Key{Type: otpbot.KeyCard, ID: "C1"}
	cardC2   = otpbot.Key{Type: otpbot.KeyCard, ID: "C2"}
	custU1   = otpbot.Key{Type: otpbot.KeyCustomer, ID: "U1"}
	chatA    = otpbot.Target{ChatID: 1001}
	chatAT5  = otpbot.Target{ChatID: 1001, ThreadID: 5}
	chatB    = otpbot.Target{ChatID: -100200}
	chatBT7  = otpbot.Target{ChatID: -100200, ThreadID: 7}
	chatC    = otpbot.Target{ChatID: 3003}
	secret   = "864209"
	linkText = "https://pay.example/confirm?t=secret-token"
)

// codeEvent is a UPay 3-D Secure code for card, received at at.
func codeEvent(id, card string, at time.Time) otpbot.Event {
	return otpbot.Event{
		ID: id, Group: id, Provider: otpbot.ProviderUPay, Name: "3DS_OTP", Kind: otpbot.KindCode,
		CardID: card, CardLast4: "1234", Amount: "12.50", Currency: "USD", Merchant: "Coffee Shop",
		Trace: "tr-" + id, Code: secret, Link: linkText,
		OccurredAt: at.Add(-2 * time.Second), ReceivedAt: at, ExpiresAt: at.Add(5 * time.Minute),
	}
}

// approvalEvent is a HyperCard AUTH_3DS request in group auth, received at at.
func approvalEvent(id, auth, card string, result int, at time.Time) otpbot.Event {
	return otpbot.Event{
		ID: id, Group: "auth-" + auth, Provider: otpbot.ProviderHyperCard, Name: "AUTH_3DS",
		Kind: otpbot.KindApproval, CardID: card, CardLast4: "9876", Amount: "99.00", Currency: "EUR",
		Merchant: "Shoe Store", AuthID: auth, AuthResult: result, ReceivedAt: at,
		ExpiresAt: at.Add(10 * time.Minute),
	}
}

// infoEvent is a history-only event for card.
func infoEvent(id, card string, at time.Time) otpbot.Event {
	return otpbot.Event{
		ID: id, Group: id, Provider: otpbot.ProviderUPay, Name: "CARD_FROZEN", Kind: otpbot.KindInfo,
		CardID: card, CardLast4: "1234", Status: "frozen", ReceivedAt: at,
	}
}

// link links key to target at the clock's time.
func (e *env) link(key otpbot.Key, target otpbot.Target) otpbot.Link {
	e.t.Helper()
	l := otpbot.Link{Key: key, Target: target, CreatedAt: e.clock.Now(), CreatedBy: 42}
	if err := e.s.Link(e.ctx, l); err != nil {
		e.t.Fatalf("Link(%v, %v): %v", key, target, err)
	}
	return l
}

// ingest ingests ev and fails the test on error.
func (e *env) ingest(ev otpbot.Event) otpbot.IngestResult {
	e.t.Helper()
	res, err := e.s.Ingest(e.ctx, ev)
	if err != nil {
		e.t.Fatalf("Ingest(%s): %v", ev.ID, err)
	}
	return res
}

// message returns the stored message id, failing when it is missing.
func (e *env) message(id string) otpbot.Message {
	e.t.Helper()
	m, ok, err := e.s.Message(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Message(%s): %v", id, err)
	}
	if !ok {
		e.t.Fatalf("Message(%s): not found", id)
	}
	return m
}

// claimedMessage is the stored message of claimed job j as the claim
// handed it out. A store that marks sends as it claims them
// (otpbot.SendMarker) stores the mark (SendStarted equal to UpdatedAt)
// and hands out the SendStarted of before the claim: checked here, and
// the job's taken.
func (e *env) claimedMessage(j otpbot.Job) otpbot.Message {
	e.t.Helper()
	m := e.message(j.Task.MessageID)
	sm, ok := e.s.(otpbot.SendMarker)
	if !ok || !sm.ClaimMarksSends() || j.Task.Kind != otpbot.TaskSend || m.TelegramID != 0 || m.State == otpbot.StateFailed {
		return m
	}
	if m.SendStarted.IsZero() || !m.SendStarted.Equal(m.UpdatedAt) {
		e.t.Fatalf("claimed send not marked as started: %s", js(m))
	}
	if j.Message != nil {
		m.SendStarted = j.Message.SendStarted
	}
	return m
}

// noMessage fails when message id exists.
func (e *env) noMessage(id string) {
	e.t.Helper()
	m, ok, err := e.s.Message(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Message(%s): %v", id, err)
	}
	if ok {
		e.t.Fatalf("Message(%s) = %s, want none", id, js(m))
	}
}

// claim claims up to max tasks at now with a 30s lease.
func (e *env) claim(now time.Time, max int) []otpbot.Job {
	e.t.Helper()
	jobs, err := e.s.Claim(e.ctx, now, 30*time.Second, max)
	if err != nil {
		e.t.Fatalf("Claim(%v): %v", now, err)
	}
	return jobs
}

// claimAll claims everything due at now.
func (e *env) claimAll(now time.Time) []otpbot.Job { e.t.Helper(); return e.claim(now, 1000) }

// enqueue enqueues tasks and fails the test on error.
func (e *env) enqueue(tasks ...otpbot.Task) {
	e.t.Helper()
	if err := e.s.Enqueue(e.ctx, tasks...); err != nil {
		e.t.Fatalf("Enqueue: %v", err)
	}
}

// nextDue asserts what NextDue reports.
func (e *env) wantNextDue(want time.Time, wantOK bool) {
	e.t.Helper()
	at, ok, err := e.s.NextDue(e.ctx)
	if err != nil {
		e.t.Fatalf("NextDue: %v", err)
	}
	if ok != wantOK || (ok && !at.Equal(want)) {
		e.t.Fatalf("NextDue = %v, %v; want %v, %v", at, ok, want, wantOK)
	}
}

// history returns the history of key.
func (e *env) history(key otpbot.Key, limit int) []otpbot.HistoryEntry {
	e.t.Helper()
	h, err := e.s.History(e.ctx, key, limit)
	if err != nil {
		e.t.Fatalf("History(%v): %v", key, err)
	}
	return h
}

// historyIDs returns the event ids of key's history, newest first.
func (e *env) historyIDs(key otpbot.Key, limit int) []string {
	e.t.Helper()
	var ids []string
	for _, h := range e.history(key, limit) {
		ids = append(ids, h.Event.ID)
	}
	return ids
}

// links returns the links of key sorted by target.
func (e *env) links(key otpbot.Key) []otpbot.Link {
	e.t.Helper()
	ls, err := e.s.LinksForKey(e.ctx, key)
	if err != nil {
		e.t.Fatalf("LinksForKey(%v): %v", key, err)
	}
	return sortLinks(ls)
}

// sortLinks orders links by key then target, for comparisons.
func sortLinks(ls []otpbot.Link) []otpbot.Link {
	out := make([]otpbot.Link, len(ls))
	for i, l := range ls {
		out[i] = normLink(l)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key.String() < out[j].Key.String()
		}
		return out[i].Target.String() < out[j].Target.String()
	})
	return out
}

// sortTargets orders targets for comparisons.
func sortTargets(ts []otpbot.Target) []otpbot.Target {
	out := slices.Clone(ts)
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Normalisers: stores may hand times back in another location (UTC, Local)
// or drop the monotonic reading; compare instants, not representations.

func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func normEvent(e otpbot.Event) otpbot.Event {
	e.OccurredAt = normTime(e.OccurredAt)
	e.ReceivedAt = normTime(e.ReceivedAt)
	e.ExpiresAt = normTime(e.ExpiresAt)
	return e
}

func normMessage(m otpbot.Message) otpbot.Message {
	m.Event = normEvent(m.Event)
	m.SentAt = normTime(m.SentAt)
	m.UpdatedAt = normTime(m.UpdatedAt)
	return m
}

func normTask(t otpbot.Task) otpbot.Task {
	t.Due = normTime(t.Due)
	t.Created = normTime(t.Created)
	return t
}

func normLink(l otpbot.Link) otpbot.Link {
	l.CreatedAt = normTime(l.CreatedAt)
	return l
}

func normInvite(i otpbot.Invite) otpbot.Invite {
	i.ExpiresAt = normTime(i.ExpiresAt)
	return i
}

func normHistory(h otpbot.HistoryEntry) otpbot.HistoryEntry {
	h.Event = normEvent(h.Event)
	return h
}

func normRecord(r otpbot.Record) otpbot.Record {
	switch {
	case r.Link != nil:
		v := normLink(*r.Link)
		r.Link = &v
	case r.History != nil:
		v := normHistory(*r.History)
		r.History = &v
	case r.Message != nil:
		v := normMessage(*r.Message)
		r.Message = &v
	case r.Task != nil:
		v := normTask(*r.Task)
		r.Task = &v
	case r.Invite != nil:
		v := normInvite(*r.Invite)
		r.Invite = &v
	case r.Dedupe != nil:
		v := *r.Dedupe
		v.Seen = normTime(v.Seen)
		r.Dedupe = &v
	}
	return r
}

// js renders v for failure messages.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// equal fails the test when got and want differ.
func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %s\n want %s", what, js(got), js(want))
	}
}

// wantErr fails unless err matches target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// noSecrets fails when an event carries a code or a link.
func noSecrets(t *testing.T, what string, ev otpbot.Event) {
	t.Helper()
	if ev.Code != "" || ev.Link != "" {
		t.Fatalf("%s holds a secret: code %q link %q", what, ev.Code, ev.Link)
	}
	if strings.Contains(js(ev), secret) {
		t.Fatalf("%s holds the code: %s", what, js(ev))
	}
}

// WaitWake waits (generously: a shared store may signal asynchronously) for
// a value on the wake channel.
func WaitWake(t *testing.T, wake <-chan struct{}, after string) {
	t.Helper()
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatalf("no wake-up after %s", after)
	}
}

// DrainWake empties the wake channel.
func DrainWake(wake <-chan struct{}) {
	for {
		select {
		case <-wake:
		default:
			return
		}
	}
}

func testPing(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	if err := e.s.Ping(e.ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
