package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"apiv4/gen"
)

// linodeState is all the suite can see of one Linode: its answer and its
// events. Two equal states mean that nothing about the Linode changed.
func linodeState(tb testing.TB, a *api, id int) string {
	tb.Helper()
	r := a.in(tb).must(http.StatusOK, "GET", fmt.Sprint("/linode/instances/", id), nil)
	events, err := json.Marshal(linodeEvents(tb, a, id, nil))
	if err != nil {
		tb.Fatal(err)
	}
	return string(r.Body) + "\n" + string(events)
}

// raw sends a request with exactly the given body and headers (name,
// value pairs) besides the token, through the client's checked transport.
// A body that is not a *strings.Reader is sent chunked.
func (a *api) raw(method, path string, body io.Reader, header ...string) *reply {
	a.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		a.tb.Fatal(err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return &reply{method, path, resp.StatusCode, resp.Header, b}
}

// chunked hides a reader's length, so that it is sent chunked.
type chunked struct{ io.Reader }

// controlReason refuses text with a control character.
const controlReason = "Text must not contain control characters other than tab and line breaks"

// hostileBody is a request with a body the server must refuse.
type hostileBody struct {
	name, method, path string // path: "" is the Linode's own, "/x" is below it
	body               string
	contentType        string // "-" sends none
	status             int
	reason, field      string // reason is checked when not empty
}

// TestHostileBodies sends bodies that are malformed, of the wrong type,
// too large, too deep, with unknown fields or nulls where none are
// allowed, or of another media type, to every operation that takes a
// body, and checks that each is refused with a 4xx in the error shape
// and that nothing changed.
func TestHostileBodies(t *testing.T) {
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	big := `{"label":"` + strings.Repeat("a", 1<<20) + `"}`
	create := func(extra string) string {
		return `{"region":"us-east","type":"g6-nanode-1","label":"hostile-never",` + extra + `}`
	}
	tests := []hostileBody{
		{"malformed", "POST", "/linode/instances", `{"region":`, "", 400,
			"Request body is not valid JSON", ""},
		{"two values", "POST", "/linode/instances", create(`"booted":false`) + `{}`, "", 400,
			"Request body must be one JSON value", ""},
		{"an array", "POST", "/linode/instances", `[]`, "", 400, "", ""},
		{"a string", "PUT", "", `"label"`, "", 400, "", ""},
		{"wrong type", "POST", "/linode/instances", `{"region":1,"type":"g6-nanode-1"}`, "", 400,
			"", "region"},
		{"null where not nullable", "POST", "/linode/instances", `{"region":null,"type":"g6-nanode-1"}`,
			"", 400, "", "region"},
		{"unknown field", "POST", "/linode/instances", create(`"bogus":1`), "", 400,
			`property "bogus" is unsupported`, ""},
		{"too deep", "PUT", "", `{"tags":` + deep + `}`, "", 400, "Request body is nested too deeply", ""},
		{"trailing junk", "PUT", "", `{"tags":[]} x`, "", 400, "Request body must be one JSON value", ""},
		{"NUL in text", "PUT", "", `{"label":"a\u0000b"}`, "", 400, controlReason, "label"},
		{"NUL in a tag", "POST", "/linode/instances", create(`"tags":["ok","\u0000"]`), "", 400,
			controlReason, "tags.1"},
		{"escape sequence", "PUT", "", `{"tags":["\u001b[2J"]}`, "", 400, controlReason, "tags.0"},
		{"C1 control", "PUT", "", `{"alerts":{"cpu":1},"group":"a\u0085"}`, "", 400, controlReason, "group"},
		{"control in a key", "PUT", "", `{"\u0007":1}`, "", 400, controlReason, ""},
		{"repeated key", "POST", "/linode/instances", create(`"region":"eu-west"`), "", 400,
			"Request body must not repeat a key in an object", ""},
		{"too large", "PUT", "", big, "", 413, "Request body is too large", ""},
		{"text/plain", "POST", "/linode/instances", create(`"booted":false`), "text/plain", 415,
			"Content-Type must be application/json", ""},
		{"form", "PUT", "", `{"tags":[]}`, "application/x-www-form-urlencoded", 415,
			"Content-Type must be application/json", ""},
		{"another charset", "PUT", "", `{"tags":[]}`, "application/json; charset=iso-8859-1", 415,
			"Content-Type must be application/json", ""},
		{"no Content-Type", "PUT", "", `{"tags":[]}`, "-", 415, "Content-Type must be application/json", ""},
		{"required body empty", "PUT", "", ``, "", 400, "A request body is required", ""},
		{"label null", "PUT", "", `{"label":null}`, "", 400, "", "label"},
		{"integer overflow", "PUT", "", `{"alerts":{"cpu":99999999999999999999}}`, "", 400,
			"alerts.cpu must be an integer", "alerts.cpu"},
		{"tags of numbers", "PUT", "", `{"tags":[1]}`, "", 400, "", "tags.0"},
		{"config_id a string", "POST", "/boot", `{"config_id":"1"}`, "", 400, "", "config_id"},
		{"config_id a fraction", "POST", "/reboot", `{"config_id":1.5}`, "", 400, "", "config_id"},
		{"config_id overflows", "POST", "/boot", `{"config_id":18446744073709551616}`, "", 400,
			"config_id must be an integer", "config_id"},
		{"user_data not Base64", "POST", "/linode/instances", create(`"metadata":{"user_data":"!!!"}`), "",
			400, "metadata.user_data must be Base64", "metadata.user_data"},
		{"config_id past float64", "POST", "/boot", `{"config_id":1e400}`, "", 400,
			"config_id: number is out of range", "config_id"},
		{"null body", "POST", "/boot", `null`, "", 400, "", ""},
		{"shutdown with a field", "POST", "/shutdown", `{"force":true}`, "", 400,
			`property "force" is unsupported`, ""},
		{"root_pass null", "POST", "/password", `{"root_pass":null}`, "", 400, "", "root_pass"},
		{"image a number", "POST", "/rebuild", `{"image":1,"root_pass":"x"}`, "", 400, "", "image"},
	}
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		l := newIdleLinode(t, a, tg, false)
		before := linodeState(t, a, l.Id)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				path := tt.path
				if !strings.HasPrefix(path, "/linode/instances") {
					path = fmt.Sprint("/linode/instances/", l.Id, tt.path)
				}
				header := []string{"Content-Type", "application/json"}
				switch tt.contentType {
				case "-":
					header = nil
				case "":
				default:
					header[1] = tt.contentType
				}
				for _, body := range []io.Reader{strings.NewReader(tt.body), chunked{strings.NewReader(tt.body)}} {
					r := a.in(t).raw(tt.method, path, body, header...)
					if r.Status != tt.status {
						t.Fatalf("got %d, want %d; body: %.300s", r.Status, tt.status, r.Body)
					}
					got := r.errs(t)
					if len(got) != 1 || got[0].Field != tt.field || (tt.reason != "" && got[0].Reason != tt.reason) {
						t.Errorf("got errors %+v, want one with reason %q and field %q", got, tt.reason, tt.field)
					}
				}
			})
		}
		if after := linodeState(t, a, l.Id); after != before {
			t.Errorf("the Linode changed:\nbefore %s\nafter  %s", before, after)
		}
		var page gen.LinodePage
		a.must(http.StatusOK, "GET", "/linode/instances", nil,
			"X-Filter", `{"label":"hostile-never"}`).decode(t, &page)
		if page.Results != 0 {
			t.Errorf("a refused create made %d Linodes", page.Results)
		}
	})
}

// TestOptionalBodies checks that an action whose body is optional takes
// no body, an empty one, {} and an explicit null config_id alike, with
// any spelling of the JSON media type, and that an absent label leaves
// the label while a null one is refused.
func TestOptionalBodies(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		tests := []struct {
			name, body, contentType string
		}{
			{"no body", "", "-"},
			{"empty body", "", "application/json"},
			{"empty object", "{}", "application/json; charset=utf-8"},
			{"null config", `{"config_id":null}`, "Application/JSON"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a := a.in(t)
				l := newIdleLinode(t, a, tg, false)
				var header []string
				if tt.contentType != "-" {
					header = []string{"Content-Type", tt.contentType}
				}
				path := fmt.Sprintf("/linode/instances/%d/boot", l.Id)
				if r := a.raw("POST", path, strings.NewReader(tt.body), header...); r.Status != http.StatusOK {
					t.Fatalf("got %d, want 200; body: %s", r.Status, r.Body)
				}
				boots := linodeEvents(t, a, l.Id, map[string]any{"action": "linode_boot"})
				if len(boots) != 1 {
					t.Fatalf("got %d boot events, want 1", len(boots))
				}
				config, err := value(boots[0].SecondaryEntity).Id.AsEventSecondaryEntityId0()
				if err != nil || config != l.Id {
					t.Errorf("booted config %d (%v), want the Linode's own %d", config, err, l.Id)
				}
			})
		}

		t.Run("absent label", func(t *testing.T) {
			a := a.in(t)
			l := newIdleLinode(t, a, tg, false)
			var got gen.Linode
			a.must(http.StatusOK, "PUT", fmt.Sprint("/linode/instances/", l.Id), map[string]any{"tags": []string{"x"}}).
				decode(t, &got)
			if got.Label != l.Label {
				t.Errorf("got label %q after an update without one, want %q", got.Label, l.Label)
			}
		})
	})
}

// TestHostilePaths sends ids that are no ids, or out of range, in every
// path parameter of every operation, and checks the 400 names the
// parameter; a well-formed id of nothing is 404.
func TestHostilePaths(t *testing.T) {
	spec := mustSpec(t).spec
	bad := []string{"0", "-1", "abc", "1.5", "9223372036854775808", "18446744073709551616", "1e3"}
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		for _, o := range specOps(spec) {
			var names []string // the ids; an address that is not the Linode's is 404
			for _, p := range params(o) {
				if p.In == "path" {
					names = append(names, p.Name)
				}
			}
			ids := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "address" })
			if len(ids) == 0 {
				continue
			}
			t.Run(operationID(o.op), func(t *testing.T) {
				a := a.in(t)
				for _, name := range ids {
					for _, id := range append(bad, "9223372036854775807") {
						path := o.path
						for _, other := range names {
							v := fmt.Sprint(unknownID)
							if other == name {
								v = id
							}
							path = strings.ReplaceAll(path, "{"+other+"}", v)
						}
						var body any
						if valid := bodyExample(o, "valid"); valid != nil {
							body = valid
						}
						r := a.do(o.method, path, body)
						if id == "9223372036854775807" {
							r.wantError(t, http.StatusNotFound, "Not found", "")
							continue
						}
						if r.Status != http.StatusBadRequest {
							t.Errorf("%s: got %d, want 400; body: %s", path, r.Status, r.Body)
							continue
						}
						if got := r.errs(t); len(got) != 1 || got[0].Field != name {
							t.Errorf("%s: got errors %+v, want one with field %s", path, got, name)
						}
					}
				}
			})
		}
	})
}

// TestHostileQueries sends paging parameters and X-Filter values that are
// malformed, out of range or overflow, and times with and without a zone.
func TestHostileQueries(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		l := newIdleLinode(t, a, tg, false)
		created := linodeEvents(t, a, l.Id, map[string]any{"action": "linode_create"})[0]

		t.Run("paging", func(t *testing.T) {
			a := a.in(t)
			for _, q := range []string{"page=abc", "page=1.5", "page=18446744073709551616", "page=-1",
				"page=2147483648", "page=9223372036854775807", "page_size=abc", "page_size=1e2", "page_size=9223372036854775808"} {
				field, _, _ := strings.Cut(q, "=")
				for _, collection := range []string{"/account/events", "/linode/instances"} {
					r := a.do("GET", collection+"?"+q, nil)
					if got := r.errs(t); r.Status != http.StatusBadRequest || len(got) != 1 || got[0].Field != field {
						t.Errorf("%s?%s: got %d %s, want 400 about %s", collection, q, r.Status, r.Body, field)
					}
				}
			}
			// The last page there is, far past the end, is empty and says
			// which page it is.
			for _, collection := range []string{"/account/events", "/linode/instances"} {
				var p struct {
					Data          []json.RawMessage
					Page, Results int
				}
				a.must(http.StatusOK, "GET", collection+"?page=2147483647&page_size=500", nil).decode(t, &p)
				if len(p.Data) != 0 || p.Results == 0 || p.Page != 2147483647 {
					t.Errorf("%s far past the end: got %d items of %d on page %d, want none on page 2147483647",
						collection, len(p.Data), p.Results, p.Page)
				}
			}
		})

		t.Run("X-Filter", func(t *testing.T) {
			a := a.in(t)
			tooDeep := `{"id":1}`
			for range 9 {
				tooDeep = `{"+and":[` + tooDeep + `]}`
			}
			terms := make([]string, 65)
			for i := range terms {
				terms[i] = fmt.Sprintf(`{"id":%d}`, i+1)
			}
			for _, f := range []string{
				`{"id":18446744073709551616}`, `{"id":-9223372036854775809}`, `{"id":1.5}`, `{"id":1e3}`,
				`{"id":true}`, `{"id":{"+gt":"x"}}`, `null`, `[]`, `"x"`, `{"id":1} {}`, `{`,
				`{"created":"2026-01-02"}`, `{"created":"yesterday"}`, `{"created":1796396645}`,
				`{"+order":"sideways"}`, `{"+order_by":"id","+order":1}`, `{"+or":[]}`, `{"+or":[1]}`,
				tooDeep, `{"+or":[` + strings.Join(terms, ",") + `]}`,
				`{"action":"` + strings.Repeat("x", 5000) + `"}`,
			} {
				r := a.do("GET", "/account/events", nil, "X-Filter", f)
				if got := r.errs(t); r.Status != http.StatusBadRequest || len(got) != 1 || got[0].Field != "X-Filter" {
					t.Errorf("X-Filter %.80s: got %d %s, want 400 about X-Filter", f, r.Status, r.Body)
				}
			}
		})

		t.Run("times", func(t *testing.T) {
			a := a.in(t)
			at, err := time.Parse("2006-01-02T15:04:05", created.Created)
			if err != nil {
				t.Fatal(err)
			}
			east := at.In(time.FixedZone("", 5*3600+1800))
			tests := []struct {
				name, when string
				found      bool
			}{
				{"no zone", created.Created, true},
				{"Z", created.Created + "Z", true},
				{"offset, converted", east.Format(time.RFC3339), true},
				{"offset on the UTC digits", created.Created + "+05:30", false},
			}
			for _, tt := range tests {
				f := filterJSON(t, map[string]any{"created": tt.when})
				found := slices.ContainsFunc(linodeEvents(t, a, l.Id, map[string]any{"created": tt.when}),
					func(e gen.Event) bool { return e.Id == created.Id })
				if found != tt.found {
					t.Errorf("%s: X-Filter %s found the create event: %t, want %t", tt.name, f, found, tt.found)
				}
			}
		})
	})
}

// TestMethodsAndPaths checks the one path rule on every route: a wrong
// method is 405 with Allow, HEAD answers like GET without a body, a
// trailing slash and percent-encoded digits change nothing, and an
// encoded slash or an empty segment matches nothing.
func TestMethodsAndPaths(t *testing.T) {
	spec := mustSpec(t).spec
	forEachTargetWithIDs(t, func(t *testing.T, tg *target, a *api, l gen.Linode, ids map[string]string) {
		fill := func(path string) string { return fillPath(path, ids) }
		before := linodeState(t, a, l.Id)

		for _, path := range spec.Paths.InMatchingOrder() {
			item := spec.Paths.Value(path)
			t.Run(path, func(t *testing.T) {
				a := a.in(t)
				want := []string{"OPTIONS"}
				for method := range item.Operations() {
					want = append(want, method)
				}
				if item.Get != nil {
					want = append(want, "HEAD")
				}
				slices.Sort(want)
				for _, method := range []string{"PATCH", "POST", "PUT", "DELETE", "TRACE"} {
					if item.GetOperation(method) != nil {
						continue
					}
					r := a.do(method, fill(path), nil)
					r.wantError(t, http.StatusMethodNotAllowed, "Method Not Allowed", "")
					if got := r.Header.Get("Allow"); got != strings.Join(want, ", ") {
						t.Errorf("%s %s: got Allow %q, want %q", method, path, got, strings.Join(want, ", "))
					}
				}
				if item.Get == nil {
					return
				}
				get := a.must(http.StatusOK, "GET", fill(path), nil)
				head := a.raw("HEAD", fill(path), nil)
				if head.Status != http.StatusOK || len(head.Body) != 0 ||
					head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
					t.Errorf("HEAD %s: got %d, %q, %d bytes; want 200 as GET, no body",
						path, head.Status, head.Header.Get("Content-Type"), len(head.Body))
				}
				slash := a.must(http.StatusOK, "GET", fill(path)+"/", nil)
				if path != "/account/events" && path != "/linode/instances" && string(slash.Body) != string(get.Body) {
					t.Errorf("GET %s/: got %s, want it as without the slash: %s", path, slash.Body, get.Body)
				}
			})
		}

		t.Run("percent-encoded", func(t *testing.T) {
			a := a.in(t)
			digits := fmt.Sprint(l.Id)
			var encoded strings.Builder
			for _, d := range digits {
				fmt.Fprintf(&encoded, "%%%X", d)
			}
			var got gen.Linode
			a.must(http.StatusOK, "GET", "/linode/instances/"+encoded.String(), nil).decode(t, &got)
			if got.Id != l.Id {
				t.Errorf("got Linode %d, want %d", got.Id, l.Id)
			}
			a.must(http.StatusOK, "GET", "/account/%65vents", nil)
		})

		t.Run("matching nothing", func(t *testing.T) {
			b := tg.api(t, tg.owner)
			b.tr.offSpec = true
			for _, path := range []string{
				fmt.Sprintf("/linode/instances/%d%%2Fboot", l.Id), "/linode//instances", "//account/events",
				"/account/events/../events", "/nothing",
			} {
				b.do("GET", path, nil).wantError(t, http.StatusNotFound, "Not found", "")
				b.do("POST", path, nil).wantError(t, http.StatusNotFound, "Not found", "")
			}
		})

		if after := linodeState(t, a, l.Id); after != before {
			t.Errorf("the Linode changed:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// TestSecurityHeaders checks the headers that keep browsers from doing
// more with an answer than a client should, on answers of every kind.
// Over plain HTTP there is no Strict-Transport-Security (impl tests it
// over TLS).
func TestSecurityHeaders(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		b := tg.api(t, tg.owner)
		b.tr.offSpec = true
		replies := []*reply{
			a.do("GET", "/account/events", nil),
			a.do("GET", "/account/events?page=0", nil),
			a.as("").do("GET", "/account/events", nil),
			a.do("GET", fmt.Sprint("/linode/instances/", unknownID), nil),
			a.do("PATCH", "/linode/instances", nil),
			b.do("GET", "/nothing", nil),
		}
		want := map[string]string{
			"X-Content-Type-Options":    "nosniff",
			"X-Frame-Options":           "DENY",
			"Content-Security-Policy":   "default-src 'none'; frame-ancestors 'none'",
			"Cache-Control":             "no-store",
			"Strict-Transport-Security": "",
		}
		for _, r := range replies {
			for name, v := range want {
				// A page with an ETag may be cached and revalidated (304),
				// by this client alone.
				if name == "Cache-Control" && r.Header.Get("ETag") != "" {
					v = "private, no-cache"
				}
				if got := r.Header.Get(name); got != v {
					t.Errorf("%s %s → %d: got %s %q, want %q", r.Method, r.Path, r.Status, name, got, v)
				}
			}
		}
	})
}
