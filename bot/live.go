package bot

import (
	"context"
	"time"

	"github.com/otpbot/otpbot"
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
