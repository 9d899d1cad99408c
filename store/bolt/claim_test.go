package bolt

import (
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/storetest"
)

// TestClaimMarksSends: claiming a send stores its message marked as send
// started, in a new version whose time the mark is, and hands the job the
// message as it was before the mark: the first claim sees none, a claim
// after a lease ran out (the send's outcome unknown) sees the first.
func TestClaimMarksSends(t *testing.T) {
	clock := storetest.NewClock(leaseEpoch)
	s, _ := openTemp(t, storetest.DefaultOptions(clock.Now))
	ctx := t.Context()
	if !s.ClaimMarksSends() {
		t.Fatal("the embedded store does not mark sends")
	}
	ev := fixture(t, s, clock.Now())
	id := otpbot.MessageKey(ev.Group, otpbot.Target{ChatID: 10})
	claimSend := func() otpbot.Job {
		t.Helper()
		jobs, err := s.Claim(ctx, clock.Now(), 30*time.Second, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.Task.MessageID == id {
				return j
			}
		}
		t.Fatalf("no job for %s among %d", id, len(jobs))
		return otpbot.Job{}
	}
	stored := func() otpbot.Message {
		t.Helper()
		m, ok, err := s.Message(ctx, id)
		if err != nil || !ok {
			t.Fatalf("Message: %v %v", ok, err)
		}
		return m
	}
	before := stored()

	first := claimSend()
	m := stored()
	if !first.Message.SendStarted.IsZero() || m.SendStarted.IsZero() || !m.SendStarted.Equal(m.UpdatedAt) ||
		!first.Message.UpdatedAt.Equal(m.UpdatedAt) || !m.UpdatedAt.After(before.UpdatedAt) {
		t.Fatalf("first claim: job's send started %v, version %v; stored mark %v, version %v (was %v)",
			first.Message.SendStarted, first.Message.UpdatedAt, m.SendStarted, m.UpdatedAt, before.UpdatedAt)
	}
	mark := m.SendStarted

	clock.Advance(time.Minute) // the lease ran out: the call may have gone through
	again := claimSend()
	if !again.Message.SendStarted.Equal(mark) || !stored().SendStarted.Equal(again.Message.UpdatedAt) {
		t.Fatalf("second claim: job's send started %v, want the first mark %v", again.Message.SendStarted, mark)
	}
	// The sent message clears the mark as before.
	sent := *again.Message
	sent.TelegramID, sent.SendStarted, sent.UpdatedAt = 7, time.Time{}, again.Message.UpdatedAt.Add(time.Second)
	if err := s.CompleteMessage(ctx, again, again.Message.UpdatedAt, sent); err != nil {
		t.Fatal(err)
	}
	if m := stored(); m.TelegramID != 7 || !m.SendStarted.IsZero() {
		t.Fatalf("after the send: %+v", m)
	}
}
