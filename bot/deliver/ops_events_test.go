package deliver

import (
	"context"
	"strings"
	"testing"

	"github.com/otpbot/otpbot"
)

// Ops hear of a code that expired on arrival (how old it was by the
// provider's clock, never the code) and of a failed card application,
// which names no card so no cardholder chat hears of it; other history
// events stay out of the ops chat.
func TestOpsHearOfExpiredCodesAndFailedApplications(t *testing.T) {
	for _, tc := range opsRenderers(t) {
		t.Run(tc.name, func(t *testing.T) {
			q := &noticeRecorder{}
			ops := NewOps(OpsOptions{Queue: q, Chat: otpbot.Target{ChatID: dlOps}, Renderer: tc.renderer, Now: (&dlClock{now: dlStart}).Now})
			ctx := context.Background()
			expired := otpbot.Event{ID: "x1", Provider: otpbot.ProviderHyperCard, Name: "OPT_CODE", Kind: otpbot.KindCode,
				CardID: "1085185460000094505", Code: "888666",
				Reason: "10m0s old by the provider's clock when it arrived, longer than its lifetime of 5m0s"}
			ops.Report(ctx, expired, otpbot.IngestResult{Outcome: otpbot.OutcomeExpired})
			failed := otpbot.Event{ID: "o1", Provider: otpbot.ProviderHyperCard, Name: "OPEN_CARD", Kind: otpbot.KindInfo,
				Status: "failed", Alert: "card application failed", CardType: "40000002", Remark: "KYC data incomplete"}
			ops.Report(ctx, failed, otpbot.IngestResult{Outcome: otpbot.OutcomeRecorded})
			ok := failed
			ok.ID, ok.Status, ok.Alert = "o2", "successful", ""
			ops.Report(ctx, ok, otpbot.IngestResult{Outcome: otpbot.OutcomeRecorded})
			if err := ops.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			tasks := q.all()
			if len(tasks) != 1 {
				t.Fatalf("%d notices", len(tasks))
			}
			text := tasks[0].Text
			wantText(t, text, []string{"hypercard OPT_CODE expired on arrival", "card …4505", "10m0s old by the provider",
				"hypercard OPEN_CARD: card application failed", "Card type 40000002", "KYC data incomplete"},
				[]string{"888666", "1085185460000094505", "successful"})
		})
	}
}

// wantText fails t unless text holds every want and no avoid.
func wantText(t *testing.T, text string, want, avoid []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%q not in:\n%s", w, text)
		}
	}
	for _, a := range avoid {
		if strings.Contains(text, a) {
			t.Errorf("%q in:\n%s", a, text)
		}
	}
}
