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

// TestShared runs the checks that need two stores on one prefix: here both
// stay open, as two otpbot processes sharing Redis would.
func TestShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T, opts otpbot.StoreOptions) (otpbot.Store, func() otpbot.Store) {
		first, c, prefix := newTestStore(t, opts)
		return first, func() otpbot.Store { return openStore(t, c, prefix, opts) }
	})
}
