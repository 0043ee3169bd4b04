package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// request is one HTTP request a scenario sends.
type request struct {
	method string
	path   string // with the query string
	filter string // the X-Filter header, if any
	body   string // a JSON body, if any
}

// result is what one side of a scenario measured: latencies, failures and
// how long it ran.
type result struct {
	hist     histogram
	failures uint64
	firstErr error
	elapsed  time.Duration
}

func (r *result) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.hist.n) / r.elapsed.Seconds()
}

// merge adds another run of the same side to r.
func (r *result) merge(o *result) {
	r.hist.merge(&o.hist)
	r.failures += o.failures
	r.elapsed += o.elapsed
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
}

// workerResult gathers what each worker measured into one result.
type workerResult struct {
	mu  sync.Mutex
	res result
}

func (w *workerResult) add(h *histogram, failures uint64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.res.hist.merge(h)
	w.res.failures += failures
	if w.res.firstErr == nil {
		w.res.firstErr = err
	}
}

// loadHTTP sends requests from next over clients keep-alive connections
// to addr for d, each client waiting for its answer before the next
// request (a closed loop, as polling clients behave). A request fails
// unless it is answered 200.
func loadHTTP(ctx context.Context, addr, token string, clients int, d time.Duration,
	next func(rng *rand.Rand, worker int) request) *result {
	var out workerResult
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for w := range clients {
		wg.Go(func() {
			var h histogram
			failures, err := httpWorker(ctx, addr, token, deadline, &h, func(rng *rand.Rand) request {
				return next(rng, w)
			})
			out.add(&h, failures, err)
		})
	}
	wg.Wait()
	out.res.elapsed = time.Since(start)
	return &out.res
}

// httpWorker is one client of loadHTTP: one connection, reopened only if
// the server closes it. It returns its failures and the first error.
func httpWorker(ctx context.Context, addr, token string, deadline time.Time, h *histogram,
	next func(*rand.Rand) request) (uint64, error) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var failures uint64
	var firstErr error
	fail := func(err error) {
		failures++
		if firstErr == nil {
			firstErr = err
		}
	}
	var conn net.Conn
	var br *bufio.Reader
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	buf := make([]byte, 0, 2048)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if conn == nil {
			var err error
			if conn, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
				fail(err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			_ = conn.SetDeadline(deadline.Add(30 * time.Second)) // a hung server ends the run
			br = bufio.NewReaderSize(conn, 64<<10)
		}
		buf = appendRequest(buf[:0], next(rng), addr, token)

		start := time.Now()
		status, closed, err := roundTrip(conn, br, buf)
		h.add(time.Since(start))
		switch {
		case err != nil:
			fail(err)
		case status != http.StatusOK:
			fail(fmt.Errorf("status %d", status))
		}
		if err != nil || closed {
			conn.Close()
			conn = nil
		}
	}
	return failures, firstErr
}

// roundTrip writes one request and reads its whole answer.
func roundTrip(conn net.Conn, br *bufio.Reader, req []byte) (status int, closed bool, err error) {
	if _, err := conn.Write(req); err != nil {
		return 0, true, err
	}
	return readResponse(br)
}

// readResponse reads one HTTP/1.1 response and throws its body away: the
// least work that still checks the status and finds the end of the body,
// so that the load generator takes little of the machine from the server.
// It understands Content-Length and chunked bodies, and a body that runs
// to the end of the connection.
func readResponse(br *bufio.Reader) (status int, closed bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, true, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, true, fmt.Errorf("bad status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, true, fmt.Errorf("bad status line %q", line)
	}
	length, chunked := int64(-1), false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return status, true, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil {
				return status, true, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closed = bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		return status, closed, discardChunks(br)
	case length >= 0:
		_, err = br.Discard(int(length))
		return status, closed, err
	case status == http.StatusNoContent || status == http.StatusNotModified:
		return status, closed, nil
	}
	_, err = io.Copy(io.Discard, br) // the body ends with the connection
	return status, true, err
}

func discardChunks(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		hexSize, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		size, err := strconv.ParseInt(string(hexSize), 16, 64)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 { // trailers, then a blank line
			for {
				line, err := br.ReadSlice('\n')
				if err != nil || len(bytes.TrimRight(line, "\r\n")) == 0 {
					return err
				}
			}
		}
		if _, err := br.Discard(int(size) + 2); err != nil {
			return err
		}
	}
}

// appendRequest writes an HTTP/1.1 request with the headers linodego
// sends.
func appendRequest(b []byte, r request, host, token string) []byte {
	b = append(b, r.method...)
	b = append(b, ' ')
	b = append(b, r.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nAuthorization: Bearer "...)
	b = append(b, token...)
	b = append(b, "\r\nAccept: application/json\r\nContent-Type: application/json\r\n"...)
	b = append(b, "User-Agent: apiv4-bench\r\n"...)
	if r.filter != "" {
		b = append(b, "X-Filter: "...)
		b = append(b, r.filter...)
		b = append(b, "\r\n"...)
	}
	if r.body != "" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(r.body)), 10)
		b = append(b, "\r\n\r\n"...)
		return append(b, r.body...)
	}
	return append(b, "\r\n"...)
}
