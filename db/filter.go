package db

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// kind is the type of a filterable field, which decides the operators and
// values it accepts.
type kind int

const (
	kindInt kind = iota
	kindString
	kindBool
	kindTime
	kindTags // a JSON array of strings; equality means "has this tag"
	kindIPv4 // a Linode's IPv4 addresses, public or private; equality means "has this address"
	kindSeen // computed from the caller's seen watermark
	kindRead // computed from the caller's read marks
)

// field is one X-Filter key: its kind, the SQL expression it reads, and
// whether +order_by may name it.
type field struct {
	kind    kind
	column  string
	orderBy bool
}

// Filter is a parsed X-Filter: a WHERE clause with its arguments and the
// requested order. A nil *Filter means no filter and the default order.
type Filter struct {
	where   string
	args    []any
	orderBy string // a key of the field table, or "" for the default
	desc    bool
	ordered bool // +order was given
	seen    bool // the clause reads the caller's seen watermark (argument 0)
}

// Limits on an X-Filter, so that a hostile header cannot make the parser or
// the database do unbounded work.
const (
	maxFilterBytes = 4096
	maxFilterDepth = 8
	maxFilterTerms = 64
)

// parseFilter parses an X-Filter header against a table of fields. Any
// fault is Invalid with field "X-Filter"; an unknown key is reported as
// "Cannot filter on <key>", as the Linode API does.
func parseFilter(raw string, fields map[string]field) (*Filter, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	if len(raw) > maxFilterBytes {
		return nil, filterErr("X-Filter is too long")
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil || top == nil {
		return nil, filterErr("X-Filter must be a JSON object")
	}
	if dec.More() {
		return nil, filterErr("X-Filter must be a single JSON object")
	}

	p := filterParser{fields: fields}
	f := &Filter{}
	if v, ok := top["+order_by"]; ok {
		key, ok := v.(string)
		fd, known := fields[key]
		if !ok {
			return nil, filterErr("+order_by must name a key")
		}
		if !known || !fd.orderBy {
			return nil, filterErr("Cannot order by %s", key)
		}
		f.orderBy = key
		delete(top, "+order_by")
	}
	if v, ok := top["+order"]; ok {
		switch v {
		case "asc":
		case "desc":
			f.desc = true
		default:
			return nil, filterErr("+order must be asc or desc")
		}
		f.ordered = true
		delete(top, "+order")
	}
	var buf bytes.Buffer
	if len(top) > 0 {
		if err := p.object(&buf, top, 0); err != nil {
			return nil, err
		}
	}
	f.where, f.args, f.seen = buf.String(), p.args, p.seen
	return f, nil
}

// descending reports the direction of the order: +order when given, else
// ascending for an explicit +order_by and the collection's own default
// (defaultDesc) otherwise. A nil filter takes the default.
func (f *Filter) descending(defaultDesc bool) bool {
	switch {
	case f == nil:
		return defaultDesc
	case f.ordered:
		return f.desc
	case f.orderBy != "":
		return false
	}
	return defaultDesc
}

type filterParser struct {
	fields map[string]field
	args   []any
	terms  int
	seen   bool
}

// object writes the conjunction of the keys of one filter object. Keys are
// taken in sorted order so that one filter always yields one statement.
func (p *filterParser) object(w *bytes.Buffer, obj map[string]any, depth int) error {
	if depth > maxFilterDepth {
		return filterErr("X-Filter is nested too deeply")
	}
	keys := sortedKeys(obj)
	if len(keys) == 0 {
		w.WriteString("1 = 1")
		return nil
	}
	for i, key := range keys {
		if i > 0 {
			w.WriteString(" AND ")
		}
		if err := p.term(w, key, obj[key], depth); err != nil {
			return err
		}
	}
	return nil
}

func (p *filterParser) term(w *bytes.Buffer, key string, v any, depth int) error {
	if p.terms++; p.terms > maxFilterTerms {
		return filterErr("X-Filter has too many terms")
	}
	switch key {
	case "+and", "+or":
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return filterErr("%s takes a non-empty list of filters", key)
		}
		sep := map[string]string{"+and": " AND ", "+or": " OR "}[key]
		w.WriteByte('(')
		for i, item := range list {
			obj, ok := item.(map[string]any)
			if !ok {
				return filterErr("%s takes a list of objects", key)
			}
			if i > 0 {
				w.WriteString(sep)
			}
			w.WriteByte('(')
			if err := p.object(w, obj, depth+1); err != nil {
				return err
			}
			w.WriteByte(')')
		}
		w.WriteByte(')')
		return nil
	case "+order_by", "+order":
		return filterErr("%s is only allowed at the top level", key)
	}

	fd, ok := p.fields[key]
	if !ok {
		return filterErr("Cannot filter on %s", key)
	}
	ops, isOps := v.(map[string]any)
	if !isOps {
		return p.compare(w, key, fd, "+eq", v)
	}
	if len(ops) == 0 {
		return filterErr("%s needs an operator", key)
	}
	w.WriteByte('(')
	for i, op := range sortedKeys(ops) {
		if i > 0 {
			w.WriteString(" AND ")
		}
		if err := p.compare(w, key, fd, op, ops[op]); err != nil {
			return err
		}
	}
	w.WriteByte(')')
	return nil
}

var sqlOps = map[string]string{
	"+eq": "=", "+neq": "<>", "+gt": ">", "+gte": ">=", "+lt": "<", "+lte": "<=",
}

// compare writes one comparison of a field with a value.
func (p *filterParser) compare(w *bytes.Buffer, key string, fd field, op string, v any) error {
	sqlOp, known := sqlOps[op]
	if !known && op != "+contains" {
		return filterErr("Unknown operator %s", op)
	}

	switch fd.kind {
	case kindInt:
		n, err := filterInt(key, v)
		if err != nil || op == "+contains" {
			return orOp(err, key, op)
		}
		p.emit(w, fd.column+" "+sqlOp+" ?", n)
	case kindString:
		s, ok := v.(string)
		if !ok || strings.ContainsRune(s, 0) {
			return filterErr("%s must be a string without NUL characters", key)
		}
		if op == "+contains" {
			// Case-insensitive on both databases: SQLite's LIKE already is.
			p.emit(w, "LOWER("+fd.column+`) LIKE ? ESCAPE '\'`, "%"+escapeLike(strings.ToLower(s))+"%")
			return nil
		}
		p.emit(w, fd.column+" "+sqlOp+" ?", s)
	case kindBool, kindSeen, kindRead:
		b, ok := v.(bool)
		if !ok || (op != "+eq" && op != "+neq") {
			return filterErr("%s takes true or false with equality only", key)
		}
		if op == "+neq" {
			b = !b
		}
		p.boolean(w, fd, b)
	case kindTime:
		s, ok := v.(string)
		t, err := parseFilterTime(s)
		if !ok || err != nil || op == "+contains" {
			return filterErr("%s takes a time like 2006-01-02T15:04:05", key)
		}
		p.timeRange(w, fd.column, op, t)
	case kindTags:
		s, ok := v.(string)
		if !ok || strings.ContainsRune(s, 0) || (op != "+eq" && op != "+contains" && op != "+neq") {
			return filterErr("%s takes a tag with equality or +contains", key)
		}
		// Tags are stored as a JSON array: match the tag's JSON form, in
		// which a quote inside a tag is escaped and so cannot match the
		// quotes around one.
		quoted := encodeJSON(s)
		pattern := "%" + escapeLike(quoted) + "%"
		if op == "+contains" {
			pattern = "%" + escapeLike(quoted[1:len(quoted)-1]) + "%"
		}
		not := ""
		if op == "+neq" {
			not = "NOT "
		}
		p.emit(w, fd.column+" "+not+`LIKE ? ESCAPE '\'`, pattern)
	case kindIPv4:
		s, ok := v.(string)
		addr, err := netip.ParseAddr(s)
		if !ok || err != nil || !addr.Is4() || (op != "+eq" && op != "+neq") {
			return filterErr("%s takes an IPv4 address with equality only", key)
		}
		not := ""
		if op == "+neq" {
			not = "NOT "
		}
		p.emit(w, not+"EXISTS (SELECT 1 FROM ips AS i WHERE i.account_id = l.account_id"+
			" AND i.linode_id = l.id AND i.family = 'ipv4' AND i.address = ?)", addr.String())
	}
	return nil
}

func orOp(err error, key, op string) error {
	if err != nil {
		return err
	}
	return filterErr("%s does not take %s", key, op)
}

// boolean writes a test of a boolean field. seen and read are not columns:
// seen compares the id with the caller's watermark, passed as argument 0 of
// every statement that uses it, and read looks for the caller's read mark.
func (p *filterParser) boolean(w *bytes.Buffer, fd field, b bool) {
	switch fd.kind {
	case kindSeen:
		p.seen = true
		if b {
			w.WriteString("e.id <= ?0")
		} else {
			w.WriteString("e.id > ?0")
		}
	case kindRead:
		if !b {
			w.WriteString("NOT ")
		}
		w.WriteString("EXISTS (SELECT 1 FROM event_reads AS r WHERE r.account_id = e.account_id" +
			" AND r.user_id = ?1 AND r.event_id = e.id)")
	default:
		p.emit(w, fd.column+" = ?", b)
	}
}

// timeRange compares a time column, stored in microseconds, with a time of
// whole seconds: equality means within that second.
func (p *filterParser) timeRange(w *bytes.Buffer, col, op string, t time.Time) {
	lo, hi := micros(t), micros(t.Add(time.Second))
	switch op {
	case "+eq":
		p.emit(w, "("+col+" >= ? AND "+col+" < ?)", lo, hi)
	case "+neq":
		p.emit(w, "("+col+" < ? OR "+col+" >= ?)", lo, hi)
	case "+gt":
		p.emit(w, col+" >= ?", hi)
	case "+gte":
		p.emit(w, col+" >= ?", lo)
	case "+lt":
		p.emit(w, col+" < ?", lo)
	case "+lte":
		p.emit(w, col+" < ?", hi)
	}
}

// emit writes an expression whose positional "?" placeholders take args.
// Placeholders are numbered so that they stay apart from ?0 and ?1, which
// are reserved for the caller's seen watermark and user id.
func (p *filterParser) emit(w *bytes.Buffer, expr string, args ...any) {
	for _, part := range strings.SplitAfter(expr, "?") {
		if strings.HasSuffix(part, "?") && len(args) > 0 {
			w.WriteString(part)
			w.WriteString(strconv.Itoa(len(p.args) + 2))
			p.args = append(p.args, args[0])
			args = args[1:]
			continue
		}
		w.WriteString(part)
	}
}

// filterInt decodes an integer exactly: a JSON number (never through
// float64) or a string of digits.
func filterInt(key string, v any) (int64, error) {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = v
	default:
		return 0, filterErr("%s must be an integer", key)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, filterErr("%s must be an integer", key)
	}
	return n, nil
}

// parseFilterTime reads "2006-01-02T15:04:05" as UTC, or an RFC 3339 time
// with a zone, converted to UTC.
func parseFilterTime(s string) (time.Time, error) {
	if t, err := time.Parse(TimeLayout, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	return t.UTC().Truncate(time.Second), err
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func filterErr(format string, args ...any) error {
	return Errorf(Invalid, "X-Filter", format, args...)
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
