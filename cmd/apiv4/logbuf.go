package main

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// lineBuffer batches log lines into few writes: the server logs one line
// per request, and a write to stderr per line was a system call per
// request. It flushes every interval, when its buffer fills, and on Close,
// so a line is late by at most the interval.
type lineBuffer struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newLineBuffer(w io.Writer, interval time.Duration) *lineBuffer {
	b := &lineBuffer{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}),
		done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				b.flush()
			}
		}
	}()
	return b
}

// Write buffers p, which slog hands over one whole line at a time.
func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

func (b *lineBuffer) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

// Close stops the periodic flush and writes what is left.
func (b *lineBuffer) Close() error {
	close(b.stop)
	<-b.done
	return b.flush()
}
