package deliver

import (
	"context"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/internal/promreg"
	"github.com/prometheus/client_golang/prometheus"
)

// track and forget keep the live-countdown gauge.
func (d *Deliverer) track(msg otpbot.Message) {
	if msg.State != otpbot.StateLive || msg.Event.ExpiresAt.IsZero() {
		return
	}
	d.liveMu.Lock()
	d.live[msg.ID] = msg.Event.ExpiresAt
	d.liveGauge.Set(float64(len(d.live)))
	d.liveMu.Unlock()
}

func (d *Deliverer) forget(id string) {
	d.countdown.drop(id)
	d.liveMu.Lock()
	delete(d.live, id)
	d.liveGauge.Set(float64(len(d.live)))
	d.liveMu.Unlock()
}

// sampleLoop samples the outbox for the queue metrics until ctx ends.
func (d *Deliverer) sampleLoop(ctx context.Context) {
	tick := time.NewTicker(d.metEvery)
	defer tick.Stop()
	for {
		d.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sample updates queue depth, oldest age and live countdowns.
func (d *Deliverer) sample(ctx context.Context) {
	now := d.now()
	d.liveMu.Lock()
	for id, exp := range d.live {
		// Finished by another process, or lost: past expiry it is not live.
		if now.After(exp.Add(time.Minute)) {
			delete(d.live, id)
		}
	}
	d.liveGauge.Set(float64(len(d.live)))
	d.liveMu.Unlock()

	stats, err := d.store.Pending(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("outbox pending failed", "err", err)
		}
		return
	}
	for p := otpbot.PriorityCode; p <= otpbot.PriorityOther; p++ {
		st := stats[p]
		label := priorityLabel(p)
		d.depth.WithLabelValues(label).Set(float64(st.Count))
		age := 0.0
		if st.Count > 0 && !st.Oldest.IsZero() {
			age = max(now.Sub(st.Oldest).Seconds(), 0)
		}
		d.oldest.WithLabelValues(label).Set(age)
	}
}

func priorityLabel(p otpbot.Priority) string {
	switch p {
	case otpbot.PriorityCode:
		return "code"
	case otpbot.PriorityUpdate:
		return "update"
	case otpbot.PriorityRefresh:
		return "refresh"
	}
	return "other"
}

// registerMetrics creates the Deliverer's metrics on reg (none when nil).
func (d *Deliverer) registerMetrics(reg prometheus.Registerer) {
	d.latency = promreg.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "otpbot_delivery_seconds",
		Help:    "Time from a task's creation (a push's receipt, for a send) to Telegram's acceptance, by task kind.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300},
	}, []string{"kind"}))
	d.depth = promreg.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "otpbot_queue_depth",
		Help: "Pending outbox tasks by priority (0 codes, 1 updates, 2 refreshes, 3 other).",
	}, []string{"priority"}))
	d.oldest = promreg.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "otpbot_queue_oldest_seconds",
		Help: "Age of the oldest pending outbox task by priority.",
	}, []string{"priority"}))
	d.liveGauge = promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "otpbot_live_countdowns",
		Help: "Code and approval messages with a running countdown, as seen by this process.",
	}))
	d.broken = promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "otpbot_broken_links_total",
		Help: "Targets Telegram refused for good (chat not found, bot blocked or kicked).",
	}))
	d.deliveries = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "otpbot_deliveries_total",
		Help: "Finished outbox tasks by kind and result (sent, edited, deleted, skipped, retried, deferred, postponed, duplicate, migrated, gone, failed).",
	}, []string{"kind", "result"}))
}
