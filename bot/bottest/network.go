package bottest

import (
	"context"
	"math/rand/v2"
	"time"
)

// roundTrip is the simulated network between the bot and Telegram.
type roundTrip struct {
	mean, jitter time.Duration
}

// WithRoundTrip makes every call take a network round trip of mean ±
// jitter (uniformly drawn per call, never below 0), the way calls to
// Telegram do. The request reaches Telegram after half of it: the fake
// acts then (a sent message exists, visible through Messages, and the
// limits count the call at that moment); the answer arrives after the
// other half. A client that gives up or dies in between leaves what the
// fake did in place without hearing about it, as with the real Telegram.
// Long polls (getUpdates) take the round trip too; updates POSTed to a
// webhook do not. It adds to SetLatency and Hold, which still hold a call
// before it leaves. 0 is no delay.
func WithRoundTrip(mean, jitter time.Duration) Option {
	return func(s *Server) { s.trip = roundTrip{mean: mean, jitter: jitter} }
}

// SetRoundTrip changes the round trip of WithRoundTrip while the server
// runs; calls already on their way keep theirs.
func (s *Server) SetRoundTrip(mean, jitter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trip = roundTrip{mean: mean, jitter: jitter}
}

// drawTrip draws one call's round trip and splits it: the way to
// Telegram and the way back.
func (s *Server) drawTrip() (there, back time.Duration) {
	s.mu.Lock()
	t := s.trip
	s.mu.Unlock()
	d := t.mean
	if t.jitter > 0 {
		d += time.Duration(rand.Int64N(int64(2*t.jitter)+1)) - t.jitter
	}
	d = max(d, 0)
	return d / 2, d - d/2
}

// travel waits d; false when ctx ends or the server closes first.
func (s *Server) travel(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}
