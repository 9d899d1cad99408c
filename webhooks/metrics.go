package webhooks

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the webhook server's Prometheus series.
type metrics struct {
	// pushes counts pushes by provider, event (a known name, else
	// "unknown") and outcome (queued, unrouted, recorded, rejected, expired,
	// duplicate, unauthorized, too_large, malformed, unavailable).
	pushes *prometheus.CounterVec
	// ingest times the store's Ingest, which the acknowledgement waits for.
	ingest *prometheus.HistogramVec
	// degraded counts the fields code events and approval requests were
	// delivered without (missing or malformed), by provider, event and
	// field: the names of declared fields of known events, so few.
	degraded *prometheus.CounterVec
}

// newMetrics creates the series and registers them on reg (when not nil).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpbot_pushes_total",
			Help: "Provider pushes received, by provider, event and outcome.",
		}, []string{"provider", "event", "outcome"}),
		ingest: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "otpbot_ingest_seconds",
			Help: "Time the store took to ingest a push (the acknowledgement waits for it).",
			// 0.5 ms to ~4 s: an fsync on one side, UPay's 5-second answer limit on the other.
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"provider"}),
		degraded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpbot_pushes_degraded_total",
			Help: "Fields missing or malformed in delivered code and approval pushes, by provider, event and field.",
		}, []string{"provider", "event", "field"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.pushes, m.ingest, m.degraded} {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if errors.As(err, &already) {
				return nil, fmt.Errorf("webhooks metrics: already registered (one Handler per registry): %w", err)
			}
			return nil, fmt.Errorf("webhooks metrics: %w", err)
		}
	}
	return m, nil
}
