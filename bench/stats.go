package main

import (
	"slices"
	"time"
)

// latency summarises timed runs.
type latency struct {
	Median time.Duration `json:"median_ns"`
	P90    time.Duration `json:"p90_ns"`
	P99    time.Duration `json:"p99_ns"`
	Min    time.Duration `json:"min_ns"`
	Runs   int           `json:"runs"`
}

func summarize(d []time.Duration) latency {
	if len(d) == 0 {
		return latency{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return latency{Median: pick(s, 0.5), P90: pick(s, 0.9), P99: pick(s, 0.99), Min: s[0], Runs: len(s)}
}

// pick returns the nearest-rank q-quantile of sorted s (the median of an
// even count is the mean of the middle two).
func pick(s []time.Duration, q float64) time.Duration {
	n := len(s)
	if q == 0.5 && n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	i := int(q*float64(n)+0.999999) - 1
	return s[max(0, min(i, n-1))]
}

// mbps is throughput in MB/s (10^6 bytes).
func mbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / d.Seconds()
}

func medianFloat(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[n/2]
}
