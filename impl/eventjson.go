package impl

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"apiv4/db"
)

// The events list is the most polled endpoint, so its answers are written
// by hand from the stored events straight into one buffer: the same bytes
// encoding/json writes for gen.EventPage and gen.Event (a test checks),
// without building those values first.

// eventPageJSON is a 200 answer of ListEvents, already encoded.
type eventPageJSON struct{ buf *[]byte }

// VisitListEventsResponse writes the answer and recycles its buffer.
func (r eventPageJSON) VisitListEventsResponse(w http.ResponseWriter) error {
	return writeJSON(w, r.buf)
}

// eventJSON is a 200 answer of GetEvent, already encoded.
type eventJSON struct{ buf *[]byte }

// VisitGetEventResponse writes the answer and recycles its buffer.
func (r eventJSON) VisitGetEventResponse(w http.ResponseWriter) error {
	return writeJSON(w, r.buf)
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func writeJSON(w http.ResponseWriter, buf *[]byte) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(*buf)))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(*buf)
	if cap(*buf) <= 1<<20 { // a rare huge page does not stay in the pool
		*buf = (*buf)[:0]
		buffers.Put(buf)
	}
	return err
}

// encodeEventPage encodes a page as encoding/json encodes gen.EventPage,
// with the newline json.Encoder ends with.
func encodeEventPage(page *db.EventPage) *[]byte {
	buf := buffers.Get().(*[]byte)
	b := append(*buf, `{"data":[`...)
	for i := range page.Events {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEvent(b, &page.Events[i])
	}
	b = append(b, `],"page":`...)
	b = strconv.AppendInt(b, int64(page.Page), 10)
	b = append(b, `,"pages":`...)
	b = strconv.AppendInt(b, int64(page.Pages), 10)
	b = append(b, `,"results":`...)
	b = strconv.AppendInt(b, int64(page.Results), 10)
	*buf = append(b, "}\n"...)
	return buf
}

// encodeEvent encodes one event as encoding/json encodes gen.Event.
func encodeEvent(e *db.Event) *[]byte {
	buf := buffers.Get().(*[]byte)
	*buf = append(appendEvent(*buf, e), '\n')
	return buf
}

// appendEvent appends the wire form of an event, the fields in the order
// of gen.Event; see eventOut for what each one means.
func appendEvent(b []byte, e *db.Event) []byte {
	b = append(b, `{"action":`...)
	b = appendString(b, e.Action)
	b = append(b, `,"complete_time":`...)
	b = appendNullTime(b, e.CompleteTime())
	b = append(b, `,"created":"`...)
	b = appendTime(b, e.Created)
	b = append(b, `","duration":`...)
	b = appendFloat(b, e.Duration)
	b = append(b, `,"entity":`...)
	if e.EntityType == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"id":`...)
		b = appendInt(b, e.EntityID)
		b = append(b, `,"label":`...)
		b = appendString(b, deref(e.EntityLabel))
		b = append(b, `,"type":`...)
		b = appendString(b, *e.EntityType)
		b = append(b, `,"url":`...)
		b = appendString(b, deref(e.EntityURL))
		b = append(b, '}')
	}
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, e.ID, 10)
	b = append(b, `,"message":`...)
	b = appendNullString(b, e.Message)
	b = append(b, `,"not_before":`...)
	b = appendNullTime(b, e.NotBefore)
	b = append(b, `,"percent_complete":`...)
	b = appendSmallInt(b, e.PercentComplete)
	b = append(b, `,"rate":null,"read":`...)
	b = strconv.AppendBool(b, e.Read)
	b = append(b, `,"secondary_entity":`...)
	// The secondary entity is stored as the JSON the server encoded with
	// the wire's keys (db.Entity); it is copied as it is.
	if e.SecondaryJSON != nil && json.Valid([]byte(*e.SecondaryJSON)) {
		b = append(b, *e.SecondaryJSON...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"seen":`...)
	b = strconv.AppendBool(b, e.Seen)
	b = append(b, `,"start_time":`...)
	b = appendNullTime(b, e.StartTime())
	b = append(b, `,"status":`...)
	b = appendString(b, e.Status)
	b = append(b, `,"time_remaining":`...)
	b = appendSmallInt(b, e.TimeRemaining)
	b = append(b, `,"username":`...)
	b = appendNullString(b, e.Username)
	return append(b, '}')
}

// appendNullTime appends a time as a JSON string, or null for nil.
func appendNullTime(b []byte, us *int64) []byte {
	if us == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = appendTime(b, *us)
	return append(b, '"')
}

// appendTime appends a time in microseconds since the epoch as
// db.FormatTime writes it, without parsing db.TimeLayout each time: the
// layout is fixed, and a page holds a time or two per event. Years
// outside 1 to 9999 take time's own formatting.
func appendTime(b []byte, us int64) []byte {
	t := time.UnixMicro(us).UTC()
	year, month, day := t.Date()
	if year < 1 || year > 9999 {
		return t.AppendFormat(b, db.TimeLayout)
	}
	hour, minute, second := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	return appendDigits(b, second, 2)
}

// appendDigits appends the width last decimal digits of n ≥ 0, zero-padded.
func appendDigits(b []byte, n, width int) []byte {
	for i := width - 1; i >= 0; i-- {
		b = append(b, 0)
	}
	for i := len(b) - 1; i >= len(b)-width; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return b
}

func appendNullString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

func appendInt(b []byte, n *int64) []byte {
	if n == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *n, 10)
}

func appendSmallInt(b []byte, n *int) []byte {
	if n == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, int64(*n), 10)
}

// appendFloat writes a float64 as encoding/json does: no exponent between
// 1e-6 and 1e21. A NaN or an infinity, which JSON cannot hold, is null.
func appendFloat(b []byte, f *float64) []byte {
	if f == nil || math.IsNaN(*f) || math.IsInf(*f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(*f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, *f, format, -1, 64)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1] // e-09 becomes e-9
		b = b[:n-1]
	}
	return b
}

// appendString writes a JSON string as encoding/json does by default:
// HTML's <, > and & escaped too, invalid UTF-8 replaced by U+FFFD, and
// U+2028 and U+2029 escaped for JavaScript.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
