package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a one-line progress bar, redrawn in place.
type progress struct {
	w          io.Writer
	label      string
	total, n   int64
	start      time.Time
	lastRedraw time.Time
}

func newProgress(w io.Writer, label string, total int64) *progress {
	p := &progress{w: w, label: label, total: max(1, total), start: time.Now()}
	p.draw()
	return p
}

// add records n more units done.
func (p *progress) add(n int64) {
	p.n += n
	if time.Since(p.lastRedraw) >= 200*time.Millisecond {
		p.draw()
	}
}

// done draws the final state and ends the line.
func (p *progress) done() {
	p.draw()
	fmt.Fprintln(p.w)
}

func (p *progress) draw() {
	p.lastRedraw = time.Now()
	const width = 30
	filled := int(p.n * width / p.total)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3d%% %s/%s %s ", p.label,
		strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		p.n*100/p.total, count(p.n), count(p.total),
		time.Since(p.start).Round(time.Second))
}

// count writes a number of items short: 950, 12.3k, 1.0M.
func count(n int64) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	case n >= 1_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// size names a round number of items: 1k, 20k, 1M, 10M.
func size(n int64) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return count(n)
}
