package deliver

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/templates"
)

// noticeRecorder is a NoticeQueue that keeps what it is given.
type noticeRecorder struct {
	mu    sync.Mutex
	tasks []otpbot.Task
	fail  error
}

func (r *noticeRecorder) Enqueue(_ context.Context, tasks ...otpbot.Task) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.tasks = append(r.tasks, tasks...)
	return nil
}

func (r *noticeRecorder) all() []otpbot.Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]otpbot.Task(nil), r.tasks...)
}

func opsEvent(name string, kind otpbot.Kind, card string) otpbot.Event {
	return otpbot.Event{ID: name + card, Provider: otpbot.ProviderUPay, Name: name, Kind: kind, CardID: card,
		CardLast4: "1234", Code: dlCode, Link: "https://secret.example/x", Reason: "missing detail.3dsCode"}
}

// opsRenderer is one way ops notices are rendered.
type opsRenderer struct {
	name     string
	renderer OpsRenderer
}

// opsRenderers are the two ways ops notices are rendered: by the templates,
// and by the built-in texts when Ops has no Renderer. Ops must behave the
// same with either.
func opsRenderers(t *testing.T) []opsRenderer {
	t.Helper()
	tmpl, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	return []opsRenderer{{"templates", tmpl}, {"built-in texts", nil}}
}

func TestOpsAggregatesIntoOneNotice(t *testing.T) {
	for _, tc := range opsRenderers(t) {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			q := &noticeRecorder{}
			clock := &dlClock{now: dlStart}
			ops := NewOps(OpsOptions{Queue: q, Chat: otpbot.Target{ChatID: dlOps, ThreadID: 3}, Renderer: tc.renderer,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: clock.Now})
			ctx := context.Background()
			unrouted := otpbot.IngestResult{Outcome: otpbot.OutcomeUnrouted}
			for range 3 {
				ops.Report(ctx, opsEvent("3DS_OTP", otpbot.KindCode, "5355771234561234"), unrouted)
			}
			ops.Report(ctx, opsEvent("3DS_OTP", otpbot.KindCode, "5355771234561234"), otpbot.IngestResult{Duplicate: true, Outcome: otpbot.OutcomeUnrouted})
			ops.Report(ctx, opsEvent("3DS_OTP", otpbot.KindRejected, "C9"), otpbot.IngestResult{Outcome: otpbot.OutcomeRejected})
			ops.Report(ctx, opsEvent("NEW_THING", otpbot.KindUnknown, "C9"), otpbot.IngestResult{Outcome: otpbot.OutcomeRecorded})
			ops.Report(ctx, opsEvent("CC_CONSUME", otpbot.KindInfo, "C9"), otpbot.IngestResult{Outcome: otpbot.OutcomeRecorded})
			ops.Broken(otpbot.Target{ChatID: dlChat}, "Forbidden: bot was blocked by the user")
			ops.Failing(otpbot.Target{ChatID: dlChat2}, 5, errors.New("telegram sendMessage: 502 Bad Gateway"))

			if err := ops.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			tasks := q.all()
			if len(tasks) != 1 {
				t.Fatalf("%d notices, want one aggregated", len(tasks))
			}
			n := tasks[0]
			if n.Kind != otpbot.TaskNotice || n.Priority != otpbot.PriorityOther || n.Target != (otpbot.Target{ChatID: dlOps, ThreadID: 3}) {
				t.Fatalf("notice task %+v", n)
			}
			for _, want := range []string{"Unrouted", "3 times", "Rejected", "NEW_THING", "Delivery stopped", "blocked", "502", "•••• 1234"} {
				if !strings.Contains(n.Text, want) {
					t.Errorf("notice lacks %q:\n%s", want, n.Text)
				}
			}
			for _, secret := range []string{dlCode, "secret.example", "5355771234561234", "CC_CONSUME"} {
				if strings.Contains(n.Text, secret) || strings.Contains(logs.String(), secret) {
					t.Errorf("%q leaked:\n%s\n%s", secret, n.Text, logs.String())
				}
			}
			if ops.Flush(ctx); len(q.all()) != 1 {
				t.Fatal("an empty flush sent a notice")
			}
		})
	}
}

func TestOpsKeepsReportsWhenTheQueueFails(t *testing.T) {
	q := &noticeRecorder{fail: otpbot.ErrUnavailable}
	ops := NewOps(OpsOptions{Queue: q, Chat: otpbot.Target{ChatID: dlOps}})
	ops.Broken(otpbot.Target{ChatID: dlChat}, "chat not found")
	if err := ops.Flush(context.Background()); !errors.Is(err, otpbot.ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
	q.fail = nil
	if err := ops.Flush(context.Background()); err != nil || len(q.all()) != 1 {
		t.Fatalf("retry: %v, %d notices", err, len(q.all()))
	}
}

func TestOpsWithoutAChatOnlyLogs(t *testing.T) {
	var logs bytes.Buffer
	q := &noticeRecorder{}
	ops := NewOps(OpsOptions{Queue: q, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ops.Report(context.Background(), opsEvent("3DS_OTP", otpbot.KindCode, "C1"), otpbot.IngestResult{Outcome: otpbot.OutcomeUnrouted})
	if err := ops.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(q.all()) != 0 {
		t.Fatal("notice queued without an ops chat")
	}
	if !strings.Contains(logs.String(), "report=unrouted") {
		t.Fatalf("not logged: %s", logs.String())
	}
	var nilOps *Ops
	nilOps.Broken(otpbot.Target{ChatID: 1}, "x") // must not panic
}

func TestOpsRunSendsAtMostOncePerInterval(t *testing.T) {
	q := &noticeRecorder{}
	ops := NewOps(OpsOptions{Queue: q, Chat: otpbot.Target{ChatID: dlOps}, Interval: 300 * time.Millisecond, Gather: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = ops.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	wait := func(n int) {
		t.Helper()
		for len(q.all()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("want %d notices, have %d", n, len(q.all()))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ops.Broken(otpbot.Target{ChatID: 1}, "chat not found")
	wait(1)
	ops.Broken(otpbot.Target{ChatID: 2}, "chat not found")
	ops.Broken(otpbot.Target{ChatID: 3}, "chat not found")
	wait(2)
	tasks := q.all()
	if gap := tasks[1].Created.Sub(tasks[0].Created); gap < 300*time.Millisecond {
		t.Fatalf("second notice %v after the first, within the interval", gap)
	}
	if !strings.Contains(tasks[1].Text, "to 2") || !strings.Contains(tasks[1].Text, "to 3") {
		t.Fatalf("second notice does not hold both reports: %s", tasks[1].Text)
	}
	cancel()
	<-done
}

// Ops reports name cards one way whether a template or a built-in text
// renders them: a card id masked to its last four characters ("…RD-A",
// otpbot.MaskID), a card number's last four as "•••• 1234".
func TestOpsMaskCardsOneWay(t *testing.T) {
	for _, tc := range opsRenderers(t) {
		t.Run(tc.name, func(t *testing.T) {
			q := &noticeRecorder{}
			ops := NewOps(OpsOptions{Queue: q, Chat: otpbot.Target{ChatID: dlOps}, Renderer: tc.renderer, Now: (&dlClock{now: dlStart}).Now})
			ev := otpbot.Event{ID: "e1", Provider: otpbot.ProviderUPay, Name: "3DS_OTP", Kind: otpbot.KindCode, CardID: "MY-CARD-A"}
			ops.Report(context.Background(), ev, otpbot.IngestResult{Outcome: otpbot.OutcomeUnrouted})
			withNumber := otpbot.Event{ID: "e2", Provider: otpbot.ProviderUPay, Name: "3DS_OTP", Kind: otpbot.KindCode, CardID: "C-77", CardLast4: "4321"}
			ops.Report(context.Background(), withNumber, otpbot.IngestResult{Outcome: otpbot.OutcomeUnrouted})
			if err := ops.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			text := q.all()[0].Text
			wantText(t, text, []string{"card …RD-A", "•••• 4321"}, []string{"•••• RD-A", "MY-CARD-A"})
		})
	}
}

// A code delivered without some of its display fields is reported to ops
// (which fields, which event), never with the code; Ops implements the
// webhooks' DegradedReporter.
func TestOpsHearOfDegradedCodes(t *testing.T) {
	for _, tc := range opsRenderers(t) {
		t.Run(tc.name, func(t *testing.T) {
			q := &noticeRecorder{}
			ops := NewOps(OpsOptions{Queue: q, Chat: otpbot.Target{ChatID: dlOps}, Renderer: tc.renderer, Now: (&dlClock{now: dlStart}).Now})
			ctx := context.Background()
			ops.Degraded(ctx, opsEvent("3DS_OTP", otpbot.KindCode, "C9"), []string{"trace", "detail.cardNumber"})
			if err := ops.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			tasks := q.all()
			if len(tasks) != 1 {
				t.Fatalf("%d notices", len(tasks))
			}
			for _, want := range []string{"3DS_OTP", "without", "trace", "detail.cardNumber"} {
				if !strings.Contains(tasks[0].Text, want) {
					t.Errorf("notice lacks %q:\n%s", want, tasks[0].Text)
				}
			}
			if strings.Contains(tasks[0].Text, dlCode) {
				t.Errorf("the code leaked:\n%s", tasks[0].Text)
			}
		})
	}
}
