package bench

import (
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	for _, us := range []uint64{0, 1, 63, 64, 65, 100, 1000, 12345, 1 << 30} {
		i := bucketOf(us)
		if lo, hi := lowerBound(i), lowerBound(i+1); us < lo || us >= hi {
			t.Errorf("%d µs in bucket %d = [%d, %d)", us, i, lo, hi)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 500 * time.Microsecond},
		{0.99, 990 * time.Microsecond},
		{0, time.Microsecond},
	}
	for _, tt := range tests {
		got := h.quantile(tt.q)
		if diff := got - tt.want; diff < -tt.want/25 || diff > tt.want/25 {
			t.Errorf("quantile(%v) = %v, want %v within 4%%", tt.q, got, tt.want)
		}
	}
}
