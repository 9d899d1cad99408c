package storetest

import (
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

// completeMessageTests cover Queue.CompleteMessage: a job's message write
// and its completion in one transaction.
var completeMessageTests = []subtest{
	{"complete message", testCompleteMessage},
	{"complete message conflict writes nothing", testCompleteMessageConflict},
	{"complete message with a lost lease writes nothing", testCompleteMessageLeaseLost},
	{"complete message of an unknown message writes nothing", testCompleteMessageUnknown},
	{"complete message in a final state drops the code", testCompleteMessageFinal},
}

// sentJob ingests a code for chatA, claims its send at now and returns the
// job with the message as Telegram accepted it at now+300ms, and the
// countdown tick that follows.
func sentJob(e *env, now time.Time) (otpbot.Job, otpbot.Message, otpbot.Task) {
	e.t.Helper()
	e.link(cardC1, chatA)
	e.ingest(codeEvent("e1", "C1", now))
	jobs := e.claimAll(now)
	if len(jobs) != 1 || jobs[0].Message == nil {
		e.t.Fatalf("claimed %d jobs, want one send with its message", len(jobs))
	}
	job := jobs[0]
	sent := e.clock.Advance(300 * time.Millisecond)
	msg := *job.Message
	msg.TelegramID, msg.SentAt, msg.UpdatedAt, msg.Rendered = 42, sent, sent, "h1"
	tick := otpbot.Task{
		ID: otpbot.TaskID(msg.ID, otpbot.TaskRefresh), Kind: otpbot.TaskRefresh, Priority: otpbot.PriorityRefresh,
		MessageID: msg.ID, Target: chatA, Due: now.Add(30 * time.Second), Created: now.Add(30 * time.Second),
	}
	return job, msg, tick
}

func testCompleteMessage(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	now := e.clock.Now()
	job, msg, tick := sentJob(e, now)
	DrainWake(e.s.Wake())
	if err := e.s.CompleteMessage(e.ctx, job, job.Message.UpdatedAt, msg, tick); err != nil {
		t.Fatalf("CompleteMessage: %v", err)
	}
	WaitWake(t, e.s.Wake(), "CompleteMessage enqueued a tick")
	stored := e.message(msg.ID)
	equal(t, "stored message", normMessage(stored), normMessage(msg))
	if stored.Event.Code != secret {
		t.Fatalf("a live message lost its code")
	}
	// The send is gone and the tick is the only pending task.
	wantErr(t, "Complete after CompleteMessage", e.s.Complete(e.ctx, job, nil), otpbot.ErrLeaseLost)
	e.wantNextDue(now.Add(30*time.Second), true)
	if got := e.claim(now.Add(29*time.Second), 5); len(got) != 0 {
		t.Fatalf("claimed before the tick was due: %v", jobIDs(got))
	}
	next := e.claim(now.Add(30*time.Second), 5)
	if len(next) != 1 {
		t.Fatalf("tick not claimed: %v", jobIDs(next))
	}
	equal(t, "tick", normTask(next[0].Task), normTask(tick))
	if next[0].Message == nil || next[0].Message.TelegramID != 42 {
		t.Fatalf("tick job message: %s", js(next[0].Message))
	}
}

func testCompleteMessageConflict(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	now := e.clock.Now()
	job, msg, tick := sentJob(e, now)
	// Meanwhile the message changed (ops hid it).
	hidden := *job.Message
	hidden.State, hidden.UpdatedAt = otpbot.StateHidden, e.clock.Advance(time.Millisecond)
	if err := e.s.UpdateMessage(e.ctx, job.Message.UpdatedAt, hidden); err != nil {
		t.Fatalf("UpdateMessage: %v", err)
	}
	wantErr(t, "CompleteMessage over a newer version", e.s.CompleteMessage(e.ctx, job, job.Message.UpdatedAt, msg, tick), otpbot.ErrConflict)
	if got, ok, err := e.s.Message(e.ctx, msg.ID); err != nil || (ok && (got.TelegramID != 0 || got.State != otpbot.StateHidden)) {
		t.Fatalf("after the conflict the message is %s (%v, %v), want the hidden version", js(got), ok, err)
	}
	// The task is still leased by the job: not claimable inside the lease,
	// no tick was enqueued, and the holder can still finish it.
	if got := e.claim(now.Add(10*time.Second), 5); len(got) != 0 {
		t.Fatalf("claim inside the lease got %v", jobIDs(got))
	}
	e.wantNextDue(now.Add(30*time.Second), true)
	if err := e.s.Complete(e.ctx, job, nil); err != nil {
		t.Fatalf("Complete by the holder after the conflict: %v", err)
	}
	e.wantNextDue(time.Time{}, false)
}

func testCompleteMessageLeaseLost(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	now := e.clock.Now()
	job, msg, tick := sentJob(e, now)
	second := e.claimAll(now.Add(31 * time.Second))
	if len(second) != 1 {
		t.Fatalf("takeover claim got %v", jobIDs(second))
	}
	wantErr(t, "CompleteMessage by the old holder", e.s.CompleteMessage(e.ctx, job, job.Message.UpdatedAt, msg, tick), otpbot.ErrLeaseLost)
	stored := e.message(msg.ID)
	// The version the takeover claim handed out: a store that marks sends
	// as it claims them (otpbot.SendMarker) made a new one.
	if stored.TelegramID != 0 || second[0].Message == nil || !stored.UpdatedAt.Equal(second[0].Message.UpdatedAt) {
		t.Fatalf("a lost lease wrote the message: %s", js(stored))
	}
	// The new holder's task is untouched and no tick was enqueued.
	if err := e.s.Complete(e.ctx, second[0], nil); err != nil {
		t.Fatalf("Complete by the new holder: %v", err)
	}
	e.wantNextDue(time.Time{}, false)
}

func testCompleteMessageUnknown(t *testing.T, newStore NewStoreFunc) {
	e := newEnv(t, newStore)
	now := e.clock.Now()
	job, msg, tick := sentJob(e, now)
	msg.ID = "unknown@1"
	wantErr(t, "CompleteMessage of an unknown message", e.s.CompleteMessage(e.ctx, job, job.Message.UpdatedAt, msg, tick), otpbot.ErrNotFound)
	e.noMessage(msg.ID)
	e.wantNextDue(now.Add(30*time.Second), true) // the send's lease end: no tick
	if err := e.s.Complete(e.ctx, job, nil); err != nil {
		t.Fatalf("Complete by the holder: %v", err)
	}
	e.wantNextDue(time.Time{}, false)
}

func testCompleteMessageFinal(t *testing.T, newStore NewStoreFunc) {
	for _, state := range []otpbot.MessageState{otpbot.StateExpired, otpbot.StateHidden, otpbot.StateDecided, otpbot.StateFailed} {
		t.Run(string(state), func(t *testing.T) {
			e := newEnv(t, newStore)
			now := e.clock.Now()
			job, msg, tick := sentJob(e, now)
			if err := e.s.CompleteMessage(e.ctx, job, job.Message.UpdatedAt, msg, tick); err != nil {
				t.Fatalf("CompleteMessage (send): %v", err)
			}
			jobs := e.claimAll(now.Add(30 * time.Second))
			if len(jobs) != 1 || jobs[0].Message == nil {
				t.Fatalf("tick not claimed: %v", jobIDs(jobs))
			}
			tj := jobs[0]
			final := *tj.Message
			// Rendered is carried over from the live version: a hash of a
			// text that showed the code.
			final.State, final.UpdatedAt = state, e.clock.Advance(time.Second)
			if err := e.s.CompleteMessage(e.ctx, tj, tj.Message.UpdatedAt, final); err != nil {
				t.Fatalf("CompleteMessage (final): %v", err)
			}
			// A store may forget a final message; if it keeps it, no code.
			m, ok, err := e.s.Message(e.ctx, final.ID)
			if err != nil {
				t.Fatalf("Message: %v", err)
			}
			if ok {
				noSecrets(t, "final message", m.Event)
				if m.State != state {
					t.Fatalf("state %q, want %q", m.State, state)
				}
				if m.Rendered != "" {
					t.Fatalf("the final message kept the live version's Rendered %q", m.Rendered)
				}
			}
			e.wantNextDue(time.Time{}, false)
		})
	}
}
