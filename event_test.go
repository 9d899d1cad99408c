package otpbot

import (
	"slices"
	"testing"
)

func TestNextState(t *testing.T) {
	pending := Event{Kind: KindApproval, AuthState: AuthPending}
	approved := Event{Kind: KindApproval, AuthState: AuthApproved}
	declined := Event{Kind: KindApproval, AuthState: AuthDeclined}
	unknown := Event{Kind: KindApproval, AuthState: AuthUnknown, AuthResult: 7}
	code := Event{Kind: KindCode, AuthState: AuthApproved} // only an approval request is decided
	tests := []struct {
		name string
		cur  MessageState
		ev   Event
		want MessageState
	}{
		{"new pending request", "", pending, StateLive},
		{"new request decided by its push", "", approved, StateDecided},
		{"live request declined by a push", StateLive, declined, StateDecided},
		{"expired request decided by a late push", StateExpired, approved, StateDecided},
		{"unknown result stays pending", StateLive, unknown, StateLive},
		{"pending push keeps a decision", StateDecided, pending, StateDecided},
		{"hidden stays hidden", StateHidden, approved, StateHidden},
		{"failed stays failed", StateFailed, approved, StateFailed},
		{"a code is never decided", "", code, StateLive},
	}
	for _, tt := range tests {
		if got := NextState(tt.cur, tt.ev); got != tt.want {
			t.Errorf("%s: NextState(%q) = %q, want %q", tt.name, tt.cur, got, tt.want)
		}
	}
}

func TestHistoryKeys(t *testing.T) {
	noKey := Event{Name: "OPEN_CARD"}
	if got := noKey.HistoryKeys(); !slices.Equal(got, []Key{EventsKey}) {
		t.Errorf("an event without card or customer is kept under %v, want the events key only", got)
	}
	ev := Event{CardID: "C1", CustomerNo: "U1"}
	want := []Key{{KeyCard, "C1"}, {KeyCustomer, "U1"}, EventsKey}
	if got := ev.HistoryKeys(); !slices.Equal(got, want) {
		t.Errorf("HistoryKeys = %v, want %v", got, want)
	}
	if !slices.Equal(ev.Keys(), want[:2]) {
		t.Errorf("Keys (routing) = %v: the events key must not route", ev.Keys())
	}
}

func TestEventsKeyIsNotLinkable(t *testing.T) {
	if EventsKey.Linkable() {
		t.Fatal("EventsKey is linkable")
	}
	if _, err := ParseKey(EventsKey.String()); err == nil {
		t.Fatalf("ParseKey(%q) accepted the events key", EventsKey.String())
	}
	for _, s := range []string{"card:C1", "customer:U1"} {
		k, err := ParseKey(s)
		if err != nil || !k.Linkable() || k.String() != s {
			t.Errorf("ParseKey(%q) = %v, %v", s, k, err)
		}
	}
}
