package db

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		name  string
		raw   string
		where string
		args  []any
		order string
		desc  bool
	}{
		{"empty", "", "", nil, "", false},
		{"equality", `{"action":"linode_boot"}`, "e.action = ?2", []any{"linode_boot"}, "", false},
		{
			"linodego WaitForEventFinished",
			`{"+order":"desc","+order_by":"created","action":"linode_boot",` +
				`"created":{"+gte":"2026-12-04T15:04:05"},"entity.id":123,"entity.type":"linode",` +
				`"id":{"+gte":9}}`,
			"e.action = ?2 AND (e.created >= ?3) AND e.entity_id = ?4 AND e.entity_type = ?5 AND (e.id >= ?6)",
			[]any{"linode_boot", int64(1796396645000000), int64(123), "linode", int64(9)},
			"created", true,
		},
		{
			"or of and",
			`{"+or":[{"id":1},{"+and":[{"status":"started"},{"seen":false}]}]}`,
			"((e.id = ?2) OR (((e.status = ?3) AND (e.id > ?0))))",
			[]any{int64(1), "started"}, "", false,
		},
		{"read", `{"read":true}`, "EXISTS (SELECT 1 FROM event_reads AS r WHERE r.account_id = e.account_id" +
			" AND r.user_id = ?1 AND r.event_id = e.id)", nil, "", false},
		{"contains escapes", `{"action":{"+contains":"A_%"}}`, `(LOWER(e.action) LIKE ?2 ESCAPE '\')`,
			[]any{`%a\_\%%`}, "", false},
		{"big id is exact", `{"id":9007199254740993}`, "e.id = ?2", []any{int64(9007199254740993)}, "", false},
		{"time with zone", `{"created":{"+lt":"2026-12-04T16:04:05+01:00"}}`, "(e.created < ?2)",
			[]any{int64(1796396645000000)}, "", false},
		{"order asc by id", `{"+order_by":"id"}`, "", nil, "id", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseFilter(tt.raw, eventFields)
			if err != nil {
				t.Fatalf("parseFilter: %v", err)
			}
			if f == nil {
				if tt.where != "" || tt.order != "" {
					t.Fatalf("got no filter, want %q", tt.where)
				}
				return
			}
			if f.where != tt.where {
				t.Errorf("where\n got %s\nwant %s", f.where, tt.where)
			}
			if !reflect.DeepEqual(f.args, tt.args) {
				t.Errorf("args got %#v, want %#v", f.args, tt.args)
			}
			if f.orderBy != tt.order || f.desc != tt.desc {
				t.Errorf("order got %q desc=%v, want %q desc=%v", f.orderBy, f.desc, tt.order, tt.desc)
			}
		})
	}
}

func TestParseFilterErrors(t *testing.T) {
	tests := []struct {
		name, raw, reason string
	}{
		{"unknown key", `{"foo":1}`, "Cannot filter on foo"},
		{"unknown nested key", `{"+and":[{"bar":1}]}`, "Cannot filter on bar"},
		{"not an object", `[1]`, "X-Filter must be a JSON object"},
		{"broken json", `{"id":`, "X-Filter must be a JSON object"},
		{"two objects", `{} {}`, "X-Filter must be a single JSON object"},
		{"overflow", `{"id":99999999999999999999}`, "id must be an integer"},
		{"fraction", `{"id":1.5}`, "id must be an integer"},
		{"string for bool", `{"seen":"yes"}`, "seen takes true or false with equality only"},
		{"bad operator", `{"id":{"+like":1}}`, "Unknown operator +like"},
		{"contains on int", `{"id":{"+contains":"1"}}`, "id does not take +contains"},
		{"bad time", `{"created":{"+gt":"yesterday"}}`, "created takes a time like 2006-01-02T15:04:05"},
		{"bad order", `{"+order":"up"}`, "+order must be asc or desc"},
		{"bad order_by", `{"+order_by":"action"}`, "Cannot order by action"},
		{"nested order_by", `{"+and":[{"+order_by":"id"}]}`, "+order_by is only allowed at the top level"},
		{"empty or", `{"+or":[]}`, "+or takes a non-empty list of filters"},
		{"too deep", strings.Repeat(`{"+and":[`, 10) + `{}` + strings.Repeat(`]}`, 10),
			"X-Filter is nested too deeply"},
		{"too long", `{"action":"` + strings.Repeat("a", 5000) + `"}`, "X-Filter is too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFilter(tt.raw, eventFields)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if e.Code != Invalid || e.Field != "X-Filter" || e.Reason != tt.reason {
				t.Errorf("got %s %q %q, want invalid X-Filter %q", e.Code, e.Field, e.Reason, tt.reason)
			}
		})
	}
}

func BenchmarkParseFilter(b *testing.B) {
	raw := `{"+order":"desc","+order_by":"created","action":"linode_boot",` +
		`"created":{"+gte":"2026-12-04T15:04:05"},"entity.id":123,"entity.type":"linode","id":{"+gte":9}}`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseFilter(raw, eventFields); err != nil {
			b.Fatal(err)
		}
	}
}
