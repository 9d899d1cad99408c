package main

import (
	"math"
	"slices"
	"sync"
	"time"
)

// samples collects latencies; every sample is kept (runs are bounded in
// count), so the percentiles are exact rather than bucketed.
type samples struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *samples) add(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

// Latency summarises a set of latencies, in milliseconds for the JSON.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// summary computes the percentiles of what was collected.
func (s *samples) summary() Latency {
	s.mu.Lock()
	d := slices.Clone(s.d)
	s.mu.Unlock()
	return summarize(d)
}

// summarize computes nearest-rank percentiles: p99 is the smallest sample
// that at least 99% of the samples do not exceed.
func summarize(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return Latency{
		Count: len(d),
		P50:   ms(rank(d, 0.50)),
		P99:   ms(rank(d, 0.99)),
		P999:  ms(rank(d, 0.999)),
		Max:   ms(d[len(d)-1]),
		Mean:  ms(sum / time.Duration(len(d))),
	}
}

// rank is the nearest-rank percentile q of sorted d.
func rank(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ratio is a/b, or 0 when b is not positive (no baseline to compare with).
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}
