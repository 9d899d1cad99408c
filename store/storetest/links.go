package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

var linkTests = []subtest{
	{"link is idempotent", testLinkIdempotent},
	{"mark broken and relink", testMarkBroken},
	{"unlink", testUnlink},
	{"links for chat", testLinksForChat},
}

func testLinkIdempotent(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	l := e.link(cardC1, chatA)
	e.link(cardC1, chatA)
	got := e.links(cardC1)
	if len(got) != 1 || got[0].Key != cardC1 || got[0].Target != chatA || got[0].Broken {
		t.Fatalf("links after linking twice: %s", js(got))
	}
	if !got[0].CreatedAt.Equal(l.CreatedAt) || got[0].CreatedBy != l.CreatedBy {
		t.Fatalf("link %s, want created %v by %d", js(got[0]), l.CreatedAt, l.CreatedBy)
	}
	if ls := e.links(cardC2); len(ls) != 0 {
		t.Fatalf("unlinked card has links: %s", js(ls))
	}
}

func testMarkBroken(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	e.link(cardC1, chatAT5)
	e.link(custU1, chatA)
	e.link(cardC2, chatB)
	const reason = "Forbidden: bot was kicked from the group chat"
	if err := e.s.MarkBroken(e.ctx, chatA, reason); err != nil {
		t.Fatalf("MarkBroken: %v", err)
	}
	type state struct {
		key    otpbot.Key
		target otpbot.Target
		broken bool
	}
	check := func(what string, want []state) {
		t.Helper()
		for _, w := range want {
			var found *otpbot.Link
			for _, l := range e.links(w.key) {
				if l.Target == w.target {
					found = &l
				}
			}
			if found == nil {
				t.Fatalf("%s: link %v → %v missing", what, w.key, w.target)
			}
			if found.Broken != w.broken {
				t.Fatalf("%s: link %v → %v broken = %v, want %v", what, w.key, w.target, found.Broken, w.broken)
			}
			if w.broken && found.BrokenReason != reason {
				t.Fatalf("%s: reason %q, want %q", what, found.BrokenReason, reason)
			}
			if !w.broken && found.BrokenReason != "" {
				t.Fatalf("%s: a working link keeps reason %q", what, found.BrokenReason)
			}
		}
	}
	check("after MarkBroken", []state{
		{cardC1, chatA, true}, {cardC1, chatAT5, false}, {custU1, chatA, true}, {cardC2, chatB, false},
	})
	e.link(cardC1, chatA)
	check("after linking again", []state{
		{cardC1, chatA, false}, {cardC1, chatAT5, false}, {custU1, chatA, true}, {cardC2, chatB, false},
	})
	if res := e.ingest(codeEvent("e1", "C1", e.clock.Now())); res.Outcome != otpbot.OutcomeQueued || len(res.Targets) != 2 {
		t.Fatalf("push after relinking: %s", js(res))
	}
}

func testUnlink(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	e.link(cardC1, chatB)
	tests := []struct {
		key    otpbot.Key
		target otpbot.Target
		want   bool
	}{
		{cardC1, chatA, true},
		{cardC1, chatA, false},
		{cardC2, chatB, false},
		{cardC1, chatBT7, false},
	}
	for _, tc := range tests {
		got, err := e.s.Unlink(e.ctx, tc.key, tc.target)
		if err != nil {
			t.Fatalf("Unlink: %v", err)
		}
		if got != tc.want {
			t.Fatalf("Unlink(%v, %v) = %v, want %v", tc.key, tc.target, got, tc.want)
		}
	}
	ls := e.links(cardC1)
	if len(ls) != 1 || ls[0].Target != chatB {
		t.Fatalf("links after unlink: %s", js(ls))
	}
	byChat, err := e.s.LinksForChat(e.ctx, chatA.ChatID)
	if err != nil {
		t.Fatalf("LinksForChat: %v", err)
	}
	if len(byChat) != 0 {
		t.Fatalf("unlinked chat still lists %s", js(byChat))
	}
	res := e.ingest(codeEvent("e1", "C1", e.clock.Now()))
	equal(t, "targets after unlink", res.Targets, []otpbot.Target{chatB})
}

func testLinksForChat(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	want := sortLinks([]otpbot.Link{e.link(cardC1, chatB), e.link(cardC2, chatBT7), e.link(custU1, chatB)})
	other := e.link(cardC1, chatA)
	got, err := e.s.LinksForChat(e.ctx, chatB.ChatID)
	if err != nil {
		t.Fatalf("LinksForChat: %v", err)
	}
	equal(t, "links of chat B", sortLinks(got), want)
	got, err = e.s.LinksForChat(e.ctx, chatA.ChatID)
	if err != nil {
		t.Fatalf("LinksForChat: %v", err)
	}
	equal(t, "links of chat A", sortLinks(got), sortLinks([]otpbot.Link{other}))
	got, err = e.s.LinksForChat(e.ctx, chatC.ChatID)
	if err != nil {
		t.Fatalf("LinksForChat: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("links of an unknown chat: %s", js(got))
	}
}

var inviteTests = []subtest{
	{"redeem once", testRedeemInvite},
	{"not found, used or expired", testRedeemInviteMissing},
	{"redeem repairs a broken link", testRedeemBroken},
	{"racing chats: exactly one wins", testRedeemRace},
}

func newInvite(e *env, hash string, key otpbot.Key) otpbot.Invite {
	e.t.Helper()
	inv := otpbot.Invite{Hash: hash, Key: key, CreatedBy: 7, ExpiresAt: e.clock.Now().Add(e.opts.InviteTTL)}
	if err := e.s.CreateInvite(e.ctx, inv); err != nil {
		e.t.Fatalf("CreateInvite: %v", err)
	}
	return inv
}

func testRedeemInvite(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	inv := newInvite(e, "hash1", cardC1)
	now := e.clock.Advance(time.Hour)
	got, err := e.s.RedeemInvite(e.ctx, "hash1", chatBT7, now)
	if err != nil {
		t.Fatalf("RedeemInvite: %v", err)
	}
	equal(t, "redeemed invite", normInvite(got), normInvite(inv))
	ls := e.links(cardC1)
	if len(ls) != 1 || ls[0].Target != chatBT7 || ls[0].Broken {
		t.Fatalf("links after redeeming: %s", js(ls))
	}
	_, err = e.s.RedeemInvite(e.ctx, "hash1", chatC, now)
	wantErr(t, "second redeem", err, otpbot.ErrNotFound)
	if ls := e.links(cardC1); len(ls) != 1 {
		t.Fatalf("a used invite linked again: %s", js(ls))
	}
	if res := e.ingest(codeEvent("e1", "C1", now)); res.Outcome != otpbot.OutcomeQueued {
		t.Fatalf("push to the invited chat: %s", js(res))
	}
}

func testRedeemInviteMissing(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	inv := newInvite(e, "hash1", cardC1)
	tests := []struct {
		name string
		hash string
		now  time.Time
	}{
		{"unknown hash", "hash2", inv.ExpiresAt.Add(-time.Hour)},
		{"at expiry", "hash1", inv.ExpiresAt},
		{"after expiry", "hash1", inv.ExpiresAt.Add(time.Second)},
	}
	for _, tc := range tests {
		// The clock stays before the expiry: the `now` argument decides.
		_, err := e.s.RedeemInvite(e.ctx, tc.hash, chatA, tc.now)
		wantErr(t, tc.name, err, otpbot.ErrNotFound)
	}
	if ls := e.links(cardC1); len(ls) != 0 {
		t.Fatalf("a failed redeem linked: %s", js(ls))
	}
}

func testRedeemBroken(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	e.link(cardC1, chatA)
	if err := e.s.MarkBroken(e.ctx, chatA, "Forbidden: bot was blocked by the user"); err != nil {
		t.Fatalf("MarkBroken: %v", err)
	}
	newInvite(e, "hash1", cardC1)
	if _, err := e.s.RedeemInvite(e.ctx, "hash1", chatA, e.clock.Now()); err != nil {
		t.Fatalf("RedeemInvite: %v", err)
	}
	ls := e.links(cardC1)
	if len(ls) != 1 || ls[0].Broken || ls[0].BrokenReason != "" {
		t.Fatalf("links after redeeming: %s", js(ls))
	}
}

func testRedeemRace(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	newInvite(e, "hash1", cardC1)
	now := e.clock.Now()
	const n = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []otpbot.Target
	)
	for i := range n {
		target := otpbot.Target{ChatID: int64(5000 + i)}
		wg.Go(func() {
			_, err := e.s.RedeemInvite(e.ctx, "hash1", target, now)
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, target)
				mu.Unlock()
			case !errors.Is(err, otpbot.ErrNotFound):
				t.Errorf("RedeemInvite: %v", err)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d chats redeemed one invite: %v", len(winners), winners)
	}
	ls := e.links(cardC1)
	if len(ls) != 1 || ls[0].Target != winners[0] {
		t.Fatalf("links %s, want only the winner %v", js(ls), winners[0])
	}
}

var coordinatorTests = []subtest{
	{"once", testOnce},
	{"lease", testLease},
}

func testOnce(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	steps := []struct {
		advance time.Duration
		key     string
		want    bool
	}{
		{0, "update:1", true},
		{0, "update:1", false},
		{0, "update:2", true},
		{30 * time.Second, "update:1", false},
		{29 * time.Second, "update:1", false},
		{2 * time.Second, "update:1", true},
		{0, "update:1", false},
	}
	for i, st := range steps {
		e.clock.Advance(st.advance)
		got, err := e.s.Once(e.ctx, st.key, time.Minute)
		if err != nil {
			t.Fatalf("Once: %v", err)
		}
		if got != st.want {
			t.Fatalf("step %d: Once(%s) = %v, want %v", i, st.key, got, st.want)
		}
	}
}

func testLease(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	const ttl = 10 * time.Second
	type op int
	const (
		acquire op = iota
		release
	)
	steps := []struct {
		advance time.Duration
		op      op
		name    string
		owner   string
		want    bool
	}{
		{0, acquire, "poller", "a", true},
		{0, acquire, "poller", "b", false},
		{0, acquire, "other", "b", true},                 // leases are independent
		{8 * time.Second, acquire, "poller", "a", true},  // renewal
		{5 * time.Second, acquire, "poller", "b", false}, // still inside the renewed lease
		{6 * time.Second, acquire, "poller", "b", true},  // a stopped renewing: b takes over
		{0, acquire, "poller", "a", false},
		{0, release, "poller", "a", false}, // not a's to release
		{0, acquire, "poller", "a", false},
		{0, release, "poller", "b", false},
		{0, acquire, "poller", "a", true}, // released: free at once
	}
	for i, st := range steps {
		e.clock.Advance(st.advance)
		what := fmt.Sprintf("step %d (%s by %s)", i, st.name, st.owner)
		if st.op == release {
			if err := e.s.ReleaseLease(e.ctx, st.name, st.owner); err != nil {
				t.Fatalf("%s: ReleaseLease: %v", what, err)
			}
			continue
		}
		got, err := e.s.AcquireLease(e.ctx, st.name, st.owner, ttl)
		if err != nil {
			t.Fatalf("%s: AcquireLease: %v", what, err)
		}
		if got != st.want {
			t.Fatalf("%s: AcquireLease = %v, want %v", what, got, st.want)
		}
	}
}
