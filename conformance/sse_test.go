package conformance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
)

func init() {
	// Response bodies of text/event-stream are validated as the string
	// the spec declares.
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
}

// followKey marks a request whose event stream the caller reads itself:
// the checked transport leaves the body open for it.
type followKey struct{}

// following returns ctx marked so.
func following(ctx context.Context) context.Context {
	return context.WithValue(ctx, followKey{}, true)
}

func isEventStream(resp *http.Response) bool {
	return strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
}

// openingFrame reads a stream up to the end of its first frame, which the
// server sends at once, and gives up after ten seconds.
func openingFrame(body io.Reader) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		var buf bytes.Buffer
		r := bufio.NewReader(body)
		for !bytes.HasSuffix(buf.Bytes(), []byte("\n\n")) {
			b, err := r.ReadByte()
			if err != nil {
				done <- result{buf.Bytes(), err}
				return
			}
			buf.WriteByte(b)
		}
		done <- result{buf.Bytes(), nil}
	}()
	select {
	case res := <-done:
		return res.b, res.err
	case <-time.After(10 * time.Second):
		return nil, errors.New("the event stream sent no opening frame within 10s")
	}
}

// A frame is one Server-Sent Events frame: its fields, and whether it
// was only comments.
type frame struct {
	ID      int64 // -1 when the frame has no id field
	Data    string
	Retry   int
	Comment string
}

// sseReader reads frames from an event stream.
type sseReader struct {
	r *bufio.Reader
}

func newSSEReader(body io.Reader) *sseReader { return &sseReader{r: bufio.NewReader(body)} }

// next returns the next frame, or an error when the stream ends.
func (s *sseReader) next() (frame, error) {
	f := frame{ID: -1}
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return f, nil
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "":
			f.Comment = value
		case "id":
			f.ID, err = strconv.ParseInt(value, 10, 64)
			if err != nil {
				return f, errors.New("frame id is not an integer: " + value)
			}
		case "data":
			if f.Data != "" {
				f.Data += "\n"
			}
			f.Data += value
		case "retry":
			f.Retry, _ = strconv.Atoi(value)
		default:
			return f, errors.New("unknown field in frame: " + line)
		}
	}
}
