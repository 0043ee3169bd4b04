package main

import (
	"fmt"
	"io"
	"time"
)

// progress reports how far a long operator command has come, on its own
// line of stderr at most every interval, with the rate and the time left.
type progress struct {
	w        io.Writer
	what     string
	total    int // 0 when unknown
	done     int
	start    time.Time
	last     time.Time
	interval time.Duration
}

func newProgress(w io.Writer, what string, total int) *progress {
	now := time.Now()
	return &progress{w: w, what: what, total: total, start: now, last: now, interval: time.Second}
}

// add counts n more items and reports if the interval has passed.
func (p *progress) add(n int) {
	p.done += n
	if time.Since(p.last) >= p.interval {
		p.report()
	}
}

// finish reports the final count.
func (p *progress) finish() {
	p.report()
}

func (p *progress) report() {
	p.last = time.Now()
	elapsed := p.last.Sub(p.start)
	rate := float64(p.done) / max(elapsed.Seconds(), 1e-3)
	line := fmt.Sprintf("%s: %d", p.what, p.done)
	if p.total > 0 {
		line += fmt.Sprintf(" of %d (%d%%)", p.total, p.done*100/p.total)
		if left := p.total - p.done; left > 0 && rate > 0 {
			eta := time.Duration(float64(left) / rate * float64(time.Second))
			line += fmt.Sprintf(", about %v left", eta.Round(time.Second))
		}
	}
	fmt.Fprintf(p.w, "%s, %.0f/s, %v\n", line, rate, elapsed.Round(100*time.Millisecond))
}
