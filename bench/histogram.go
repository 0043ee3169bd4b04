package bench

import (
	"math/bits"
	"time"
)

// histogram counts latencies in microseconds in log-linear buckets: exact
// below 64 µs, then 32 buckets per doubling (about 3% wide), up to hours.
type histogram struct {
	counts [64 + 40*32]uint64
	n      uint64
}

func bucketOf(us uint64) int {
	if us < 64 {
		return int(us)
	}
	shift := bits.Len64(us) - 6 // us>>shift is in [32, 64)
	i := 64 + (shift-1)*32 + int(us>>shift) - 32
	return min(i, len(histogram{}.counts)-1)
}

// lowerBound is the smallest latency, in microseconds, of bucket i.
func lowerBound(i int) uint64 {
	if i < 64 {
		return uint64(i)
	}
	shift := (i-64)/32 + 1
	return uint64((i-64)%32+32) << shift
}

func (h *histogram) add(d time.Duration) {
	h.counts[bucketOf(uint64(max(0, d.Microseconds())))]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the latency below which a share q of the samples fall:
// the middle of its bucket, or the exact value below 64 µs.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			lo, hi := lowerBound(i), lowerBound(i+1)
			if i < 64 {
				return time.Duration(lo) * time.Microsecond
			}
			return time.Duration(lo+hi) * time.Microsecond / 2
		}
	}
	return 0
}
