package impl_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"apiv4/impl"
)

// The fuzz targets send what the fuzzer makes through the whole handler
// (routing, auth, body checks, validation, the operation and the SQLite
// store) and check that the answer is never a 5xx and that errors keep
// their shape. Their seed corpora are in testdata/fuzz. Run one with, for
// example:
//
//	go test ./impl -run '^$' -fuzz '^FuzzXFilter$' -fuzztime 3m

// FuzzXFilter sends the input as the X-Filter of both collections: the
// answer is a page or a 400 about X-Filter.
func FuzzXFilter(f *testing.F) {
	f.Add(`{"+order":"desc","+order_by":"created","action":"linode_boot","entity.id":1,"entity.type":"linode"}`)
	s := newTestServer(f, impl.WithTokenRate(impl.Rate{}))
	f.Fuzz(func(t *testing.T, filter string) {
		for _, path := range []string{"/v4/account/events", "/v4/linode/instances"} {
			w := s.do("GET", path, nil, "X-Filter", filter)
			checkAnswer(t, w, nil)
			switch w.Code {
			case http.StatusOK:
				var page struct{ Data []json.RawMessage }
				if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || page.Data == nil {
					t.Errorf("%s: got 200 with %s, want a page", path, w.Body)
				}
			case http.StatusBadRequest:
				var e struct{ Errors []struct{ Field string } }
				_ = json.Unmarshal(w.Body.Bytes(), &e)
				if len(e.Errors) != 1 || e.Errors[0].Field != "X-Filter" {
					t.Errorf("%s: got 400 %s, want it about X-Filter", path, w.Body)
				}
			default:
				t.Errorf("%s: got %d %s, want 200 or 400", path, w.Code, w.Body)
			}
		}
	})
}

// fuzzBody fuzzes the body of one operation; {id} in path is the test
// server's Linode.
func fuzzBody(f *testing.F, method, path string, seeds ...string) {
	for _, seed := range seeds {
		f.Add([]byte(seed))
	}
	s := newTestServer(f, impl.WithTokenRate(impl.Rate{}))
	path = strings.ReplaceAll(path, "{id}", s.linode)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAnswer(t, s.do(method, path, body), body)
	})
}

func FuzzCreateLinodeBody(f *testing.F) {
	fuzzBody(f, "POST", "/v4/linode/instances",
		`{"region":"us-east","type":"g6-nanode-1","image":"linode/debian12","root_pass":"Sup3r-secret!"}`)
}

func FuzzUpdateLinodeBody(f *testing.F) {
	fuzzBody(f, "PUT", "/v4/linode/instances/{id}", `{"label":"web-1","tags":["a"],"alerts":{"cpu":90}}`)
}

func FuzzBootLinodeBody(f *testing.F) {
	fuzzBody(f, "POST", "/v4/linode/instances/{id}/boot", `{"config_id":null}`)
}

func FuzzRebootLinodeBody(f *testing.F) {
	fuzzBody(f, "POST", "/v4/linode/instances/{id}/reboot", `{"config_id":1}`)
}

func FuzzShutdownLinodeBody(f *testing.F) {
	fuzzBody(f, "POST", "/v4/linode/instances/{id}/shutdown", `{}`)
}

func FuzzResetLinodePasswordBody(f *testing.F) {
	fuzzBody(f, "POST", "/v4/linode/instances/{id}/password", `{"root_pass":"Sup3r-secret!"}`)
}

func FuzzRebuildLinodeBody(f *testing.F) {
	fuzzBody(f, "POST", "/v4/linode/instances/{id}/rebuild",
		`{"image":"linode/debian12","root_pass":"Sup3r-secret!","booted":false}`)
}
