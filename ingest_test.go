package otpbot

import (
	"testing"
	"time"
)

// The outcome rule both stores apply before looking at links.
func TestIngestOutcome(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		ev        Event
		want      Outcome
		wantRoute bool
	}{
		{"rejected", Event{Kind: KindRejected}, OutcomeRejected, false},
		{"history only", Event{Kind: KindInfo}, OutcomeRecorded, false},
		{"unknown", Event{Kind: KindUnknown}, OutcomeRecorded, false},
		{"code expired on arrival", Event{Kind: KindCode, ExpiresAt: now.Add(-time.Second)}, OutcomeExpired, false},
		{"live code", Event{Kind: KindCode, ExpiresAt: now.Add(time.Minute)}, OutcomeUnrouted, true},
		{"approval request", Event{Kind: KindApproval, ExpiresAt: now.Add(time.Minute)}, OutcomeUnrouted, true},
	}
	for _, tt := range tests {
		got, route := IngestOutcome(tt.ev, now)
		if got != tt.want || route != tt.wantRoute {
			t.Errorf("%s: IngestOutcome = %s, %v; want %s, %v", tt.name, got, route, tt.want, tt.wantRoute)
		}
	}
}

// An import holds at most one installation secret, of the right size.
func TestImportedSecret(t *testing.T) {
	k1, k2 := make([]byte, InstallationSecretSize), make([]byte, InstallationSecretSize)
	k2[0] = 1
	if key, err := ImportedSecret([]Record{{}, {InstallationSecret: k1}, {InstallationSecret: k1}}); err != nil || len(key) != InstallationSecretSize {
		t.Fatalf("one key twice: %v, %v", key, err)
	}
	if _, err := ImportedSecret([]Record{{InstallationSecret: k1}, {InstallationSecret: k2}}); err == nil {
		t.Fatal("two different keys accepted")
	}
	if _, err := ImportedSecret([]Record{{InstallationSecret: k1[:5]}}); err == nil {
		t.Fatal("a short key accepted")
	}
	if key, err := ImportedSecret(nil); err != nil || key != nil {
		t.Fatalf("no key: %v, %v", key, err)
	}
}
