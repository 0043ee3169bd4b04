package impl

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"apiv4/db"
	"apiv4/gen"
)

// sampleEvents are events with every shape the wire form has: nulls,
// both kinds of secondary entity id, and strings that need escaping.
func sampleEvents() []db.Event {
	str := func(s string) *string { return &s }
	num := func(n int) *int { return &n }
	id := func(n int64) *int64 { return &n }
	f := func(x float64) *float64 { return &x }
	notBefore := time.Date(2026, 12, 10, 4, 0, 0, 0, time.UTC).UnixMicro()
	return []db.Event{
		{ID: 1, Action: "linode_create", Status: "finished", Created: 1796396645123456,
			Username: str("alice"), Message: str("Creating Linode web-1"), EntityType: str("linode"),
			EntityID: id(123), EntityLabel: str("web-1"), EntityURL: str("/v4/linode/instances/123"),
			SecondaryJSON: str(`{"id":"linode/debian12","label":"Debian 12","type":"image",` +
				`"url":"/v4/images/linode/debian12"}`),
			PercentComplete: num(100), TimeRemaining: num(0), Duration: f(30.5), Seen: true,
			Started: id(1796396646000000), Updated: 1796396676500000},
		{ID: 9007199254740993, Action: "linode_boot", Status: "started", Created: 0,
			EntityType: str("linode"), SecondaryJSON: str(`{"id":7,"label":"Boot Config",` +
				`"type":"linode_config","url":"/v4/linode/instances/1/configs/7"}`),
			PercentComplete: num(45), Duration: f(1e-7), Read: true, NotBefore: &notBefore,
			Started: id(5), Updated: 6},
		{ID: 3, Action: "linode_update", Status: "notification", Created: -1,
			Username: str("<script>&\"\\\n\r\t\b\f\x01\x7f é \u2028\u2029 \xff"),
			Message:  str("Updated Linode \U0001F600"), Duration: f(1e21)},
		{ID: 4, Action: "linode_delete", Status: "failed", Duration: f(math.NaN()),
			SecondaryJSON: str("not json"), Updated: 1796396645000001},
	}
}

func TestEncodeEventPageMatchesTheTypes(t *testing.T) {
	events := sampleEvents()
	pages := map[string]*db.EventPage{
		"empty": {Events: []db.Event{}, Page: 1, Pages: 1},
		"one":   {Events: events[:1], Page: 3, Pages: 7, Results: 151},
		"all":   {Events: events[:3], Page: 1, Pages: 1, Results: 3},
	}
	for name, page := range pages {
		t.Run(name, func(t *testing.T) {
			typed := gen.EventPage{Data: []gen.Event{}, Page: page.Page, Pages: page.Pages,
				Results: page.Results}
			for i := range page.Events {
				typed.Data = append(typed.Data, eventOut(&page.Events[i]))
			}
			var want bytes.Buffer
			if err := json.NewEncoder(&want).Encode(typed); err != nil {
				t.Fatal(err)
			}
			if got := *encodeEventPage(page); !bytes.Equal(got, want.Bytes()) {
				t.Errorf("encodeEventPage\n got %s\nwant %s", got, want.Bytes())
			}
		})
	}
}

func TestEncodeEventOddValues(t *testing.T) {
	e := sampleEvents()[3]
	var got map[string]any
	if err := json.Unmarshal(*encodeEvent(&e), &got); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if got["duration"] != nil || got["secondary_entity"] != nil {
		t.Errorf("a NaN duration and a broken secondary entity: got %v and %v, want null and null",
			got["duration"], got["secondary_entity"])
	}
}

// benchPage is a full page of 100 events, linodego's page size.
func benchPage() *db.EventPage {
	page := &db.EventPage{Page: 1, Pages: 10000, Results: 1000000}
	for i := range 100 {
		e := sampleEvents()[i%2]
		e.ID = int64(1000000 - i)
		page.Events = append(page.Events, e)
	}
	return page
}

func BenchmarkEncodeEventPage(b *testing.B) {
	page := benchPage()
	b.ReportAllocs()
	for b.Loop() {
		buf := encodeEventPage(page)
		b.SetBytes(int64(len(*buf)))
		*buf = (*buf)[:0]
		buffers.Put(buf)
	}
}

// BenchmarkEncodeEventPageTyped is the same page through gen's types and
// encoding/json, as the handler encoded it before, for comparison.
func BenchmarkEncodeEventPageTyped(b *testing.B) {
	page := benchPage()
	b.ReportAllocs()
	for b.Loop() {
		typed := gen.EventPage{Page: page.Page, Pages: page.Pages, Results: page.Results}
		for i := range page.Events {
			typed.Data = append(typed.Data, eventOut(&page.Events[i]))
		}
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(typed); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(buf.Len()))
	}
}

// TestAppendTime holds appendTime to db.FormatTime around the edges of
// its fast path and of months, leap days and the epoch.
func TestAppendTime(t *testing.T) {
	times := []int64{0, -1, 1, 1796396645123456, math.MaxInt64, math.MinInt64}
	for _, d := range []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(0, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 6, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
	} {
		times = append(times, d.UnixMicro(), d.UnixMicro()-1, d.UnixMicro()+1)
	}
	for us := int64(-5e15); us < 5e15; us += 7919e9 + 123457 { // some 1,300 points over ±158 years
		times = append(times, us)
	}
	for _, us := range times {
		if got, want := string(appendTime(nil, us)), db.FormatTime(us); got != want {
			t.Errorf("appendTime(%d) = %s, want %s", us, got, want)
		}
	}
}

// FuzzAppendString holds appendString to encoding/json's encoding of any
// string, whatever bytes it holds and wherever they fall in a word.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain ascii text here", "<script>&\"\\\n\r\t\b\f\x01\x7f é \u2028\u2029 \xff",
		"12345678<", "1234567\"12345678", "\x80abcdefgh", "abcdefg\x1f", "Updated Linode \U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}
