// Package wait holds the two waits every retry loop of otpbot uses: a
// sleep that ends with its context, and jitter that keeps many retries
// from landing at the same instant.
package wait

import (
	"context"
	"math/rand/v2"
	"time"
)

// Sleep sleeps d or until ctx ends; false when ctx ended.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Jitter spreads d by ±20 %.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - d/5 + time.Duration(rand.Int64N(int64(d)*2/5+1))
}
