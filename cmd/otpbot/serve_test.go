package main

import (
	"testing"
	"time"

	"github.com/otpbot/otpbot/bot"
)

// TestDrainTimeout: the deliverer's calls are cut off early enough that
// the store writes after them (DrainGrace) still end within
// shutdown_timeout, at the default and at the shortest sensible values.
func TestDrainTimeout(t *testing.T) {
	tests := []struct {
		shutdown, want time.Duration
	}{
		{15 * time.Second, 12 * time.Second},
		{5 * time.Second, 2500 * time.Millisecond},
		{6 * time.Second, 3 * time.Second},
		{60 * time.Second, 57 * time.Second},
	}
	for _, tt := range tests {
		got := drainTimeout(tt.shutdown)
		if got != tt.want {
			t.Errorf("drainTimeout(%s) = %s, want %s", tt.shutdown, got, tt.want)
		}
		if got+bot.DrainGrace >= tt.shutdown {
			t.Errorf("shutdown_timeout %s: drain %s + grace %s does not end before it", tt.shutdown, got, bot.DrainGrace)
		}
	}
}
