// Package promreg registers Prometheus collectors the way every otpbot
// component wants it: idempotently, so that two components built on one
// registry share a metric instead of failing.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns the collector that is in use: c,
// or the identical one registered earlier (a second Client on the same
// registry shares the first one's counters instead of failing). A nil reg
// leaves c unregistered, which is how metrics are switched off.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A conflicting definition is a programming error; the metric
		// still counts, it is just not exported.
	}
	return c
}
