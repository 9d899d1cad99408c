package webhooks

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/otpbot/otpbot"
)

// fakeFollowUps records the events the handler hands to Options.FollowUps.
type fakeFollowUps struct{ eventLog }

func (f *fakeFollowUps) FollowUp(_ context.Context, ev otpbot.Event) { f.record(ev) }

func (f *fakeFollowUps) followedUp() []otpbot.Event { return f.recorded() }

// newFollowUpsEnv is a webhook server for both providers with a FollowUps hook.
func newFollowUpsEnv(t *testing.T) (*env, *fakeFollowUps) {
	t.Helper()
	th := &fakeFollowUps{}
	e := newEnvWith(t, Config{
		UPay:      UPayConfig{Enabled: true, Token: testToken},
		HyperCard: HyperCardConfig{Enabled: true, Token: testToken},
	}, func(o *Options) { o.FollowUps = th })
	return e, th
}

// The follow-ups hook hears of a new info event that carries a trace (the
// CC_CONSUME after a 3DS_OTP), without its secrets, and of nothing else:
// not codes, repeats, events without a trace, rejected pushes or pushes
// the store did not take.
func TestFollowUpsHook(t *testing.T) {
	consume := mustRead("upay", "cc_consume.json")
	noTrace := strings.Replace(string(consume), `"trace": "TR202508150001",`, ``, 1)
	if noTrace == string(consume) {
		t.Fatal("cc_consume.json has no trace to remove")
	}
	upay, hc := withToken(DefaultUPayPath, testToken), withToken(DefaultHyperCardPath, testToken)
	tests := []struct {
		name     string
		path     string
		body     []byte
		times    int // pushes of the same body
		storeErr error
		want     int // events handed to the hook
	}{
		{"payment with a trace", upay, consume, 1, nil, 1},
		{"repeated payment: once", upay, consume, 3, nil, 1},
		{"code: sent as a message of its own", upay, mustRead("upay", "3ds_otp.json"), 1, nil, 0},
		{"event without a trace is rejected", upay, []byte(noTrace), 1, nil, 0},
		{"unknown event", upay, mustRead("upay", "unknown_event.json"), 1, nil, 0},
		{"hypercard has no trace", hc, mustRead("hypercard", "consume.json"), 1, nil, 0},
		{"store down: not acknowledged, not threaded", upay, consume, 1, errors.New("down"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, th := newFollowUpsEnv(t)
			e.ing.err = tt.storeErr
			for range tt.times {
				r := e.post(t, tt.path, tt.body, nil)
				if acked := isUPayAck(r) || isHyperCardAck(r); acked != (tt.storeErr == nil) {
					t.Errorf("answer %d %q: acknowledged = %v, want %v", r.status, r.body, acked, tt.storeErr == nil)
				}
			}
			got := th.followedUp()
			if len(got) != tt.want {
				t.Fatalf("hook called %d times, want %d: %+v", len(got), tt.want, got)
			}
			for _, ev := range got {
				if ev.Name != "CC_CONSUME" || ev.Trace != "TR202508150001" || ev.Kind != otpbot.KindInfo || ev.ID == "" {
					t.Errorf("hook got %+v, want the parsed CC_CONSUME with its trace", ev)
				}
				if ev.Code != "" || ev.Link != "" {
					t.Errorf("hook got a secret: %+v", ev)
				}
			}
		})
	}
}
