package redis

import (
	"testing"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/storetest"
)

// TestConformance runs the shared store suite against the Redis server on
// 127.0.0.1:6379, each subtest under its own prefix.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts otpbot.StoreOptions) otpbot.Store {
		s, _, _ := newTestStore(t, opts)
		return s
	})
}
