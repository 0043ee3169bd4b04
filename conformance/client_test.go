package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linode/linodego"
	"github.com/oapi-codegen/nullable"

	"apiv4/gen"
)

// An api is a raw HTTP client of one target, acting as one user (or as
// no one, with an empty token). Every response it gets is checked.
type api struct {
	tb    testing.TB
	base  string // the target's URL with /v4
	token string
	hc    *http.Client
	tr    *checkedTransport
}

// api returns a raw client of the target that sends token.
func (tg *target) api(tb testing.TB, token string) *api {
	hc, tr := tg.httpClient(tb)
	return &api{tb: tb, base: tg.url + "/v4", token: token, hc: hc, tr: tr}
}

// as returns a client of the same target acting with another token.
func (a *api) as(token string) *api {
	c := *a
	c.token = token
	return &c
}

// in returns a client like a that fails tb, for use in a subtest.
func (a *api) in(tb testing.TB) *api {
	c := *a
	c.tb = tb
	return &c
}

// A reply is a response read in full.
type reply struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
}

// do sends a request and returns the reply, failing the test when no
// reply comes. body is sent as is when it is a []byte, as JSON when it
// is anything else but nil. header holds name, value pairs.
func (a *api) do(method, path string, body any, header ...string) *reply {
	a.tb.Helper()
	r, err := a.send(method, path, body, header...)
	if err != nil {
		a.tb.Fatal(err)
	}
	return r
}

// send is do for goroutines other than the test's: it returns the error
// instead of failing the test.
func (a *api) send(method, path string, body any, header ...string) (*reply, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode request body: %w", err)
		}
		r = bytes.NewReader(js)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return &reply{method, path, resp.StatusCode, resp.Header, b}, nil
}

// must sends a request like do and fails the test unless the reply has
// the wanted status.
func (a *api) must(want int, method, path string, body any, header ...string) *reply {
	a.tb.Helper()
	r := a.do(method, path, body, header...)
	if r.Status != want {
		a.tb.Fatalf("%s %s: got status %d, want %d; body: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// decode decodes the reply's JSON body into v.
func (r *reply) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("%s %s: decode %T: %v; body: %s", r.Method, r.Path, v, err, r.Body)
	}
}

// errs returns the entries of an error reply.
func (r *reply) errs(tb testing.TB) []apiError {
	tb.Helper()
	var e apiErrors
	r.decode(tb, &e)
	return e.Errors
}

// wantError fails the test unless the reply has the status and exactly
// one error entry with the reason and field (empty: no field).
func (r *reply) wantError(tb testing.TB, status int, reason, field string) {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("%s %s: got status %d, want %d; body: %s", r.Method, r.Path, r.Status, status, r.Body)
	}
	got := r.errs(tb)
	want := []apiError{{Reason: reason, Field: field}}
	if len(got) != 1 || got[0] != want[0] {
		tb.Errorf("%s %s: got errors %+v, want %+v", r.Method, r.Path, got, want)
	}
}

// genClient returns the client generated from the spec, sending token.
func (tg *target) genClient(tb testing.TB, token string) *gen.ClientWithResponses {
	tb.Helper()
	hc, _ := tg.httpClient(tb)
	auth := func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
	c, err := gen.NewClientWithResponses(tg.url+"/v4", gen.WithHTTPClient(hc),
		gen.WithRequestEditorFn(auth))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// linodego returns a linodego client of the target acting with token,
// tuned to poll and retry quickly, and the transport that saw its
// exchanges.
func (tg *target) linodego(tb testing.TB, token string) (*linodego.Client, *checkedTransport) {
	tb.Helper()
	hc, tr := tg.httpClient(tb)
	c := linodego.NewClient(hc)
	c.SetBaseURL(tg.url)
	c.SetAPIVersion("v4")
	c.SetToken(token)
	c.SetPollDelay(100 * time.Millisecond)
	c.SetRetryWaitTime(50 * time.Millisecond)
	c.SetRetryMaxWaitTime(200 * time.Millisecond)
	c.SetRetryCount(300)
	c.UseCache(false)
	c.SetDebug(false)
	return &c, tr
}

// jobTimeout bounds every wait for jobs; they take simDuration locally.
const jobTimeout = 60 * time.Second

// eventually calls cond every 50ms until it returns true, and fails the
// test when it has not within jobTimeout. what names the awaited state,
// and cond may return why it is not there yet.
func eventually(tb testing.TB, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(jobTimeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for %s: %s", jobTimeout, what, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// filterJSON encodes an X-Filter.
func filterJSON(tb testing.TB, f map[string]any) string {
	tb.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// value returns what a nullable field holds, or the zero value when it
// is null or absent.
func value[T any](n nullable.Nullable[T]) T {
	v, _ := n.Get()
	return v
}

// isBusy reports whether a reply is the Linode API's busy refusal.
func (r *reply) isBusy() bool {
	return r.Status == http.StatusBadRequest && strings.Contains(string(r.Body), `"Linode busy."`)
}

// testPassword meets the root password strength rule.
const testPassword = "c0nformance-Pass!"

// clockSkew is how far the suite trusts the server's clock to be from its
// own, when it tells linodego from when to look for events.
const clockSkew = time.Minute

var (
	runID    = randomHex(3) // keeps labels of runs on one deployment apart
	labelSeq atomic.Int64
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newLabel returns a Linode label no other Linode of the run has.
func newLabel(prefix string) string {
	return fmt.Sprintf("%s-%s-%d", prefix, runID, labelSeq.Add(1))
}

// createBody is the body of a request creating a Debian Nanode; it is
// running when its job ends if booted, else offline.
func createBody(label string, booted bool) map[string]any {
	return map[string]any{
		"region": "us-east", "type": "g6-nanode-1", "label": label,
		"image": "linode/debian12", "root_pass": testPassword, "booted": booted,
	}
}

// newLinode creates a Linode, still provisioning, and deletes it when the
// test ends.
func newLinode(tb testing.TB, a *api, tg *target, booted bool) gen.Linode {
	tb.Helper()
	a = a.in(tb)
	var l gen.Linode
	body := createBody(newLabel("cf"), booted)
	a.must(http.StatusOK, "POST", "/linode/instances", body).decode(tb, &l)
	deleteAtCleanup(tb, tg, l.Id)
	return l
}

// newIdleLinode creates a Linode and waits until its job has ended.
func newIdleLinode(tb testing.TB, a *api, tg *target, booted bool) gen.Linode {
	tb.Helper()
	return waitIdle(tb, a, newLinode(tb, a, tg, booted).Id)
}

// deleteAtCleanup deletes a Linode of the owner when the test ends;
// linodego waits for its jobs to end first by retrying on "Linode busy.".
func deleteAtCleanup(tb testing.TB, tg *target, id int) {
	tb.Helper()
	tb.Cleanup(func() {
		c, _ := tg.linodego(tb, tg.owner)
		ctx, cancel := context.WithTimeout(context.Background(), jobTimeout)
		defer cancel()
		if err := c.DeleteInstance(ctx, id); err != nil && !linodego.IsNotFound(err) {
			tb.Errorf("clean up Linode %d: %v", id, err)
		}
	})
}

// pendingFilter matches the events of a Linode whose job is scheduled or
// running.
func pendingFilter(id int) map[string]any {
	return map[string]any{
		"entity.type": "linode", "entity.id": id,
		"+or": []any{map[string]any{"status": "scheduled"}, map[string]any{"status": "started"}},
	}
}

// waitIdle waits until a Linode has no job scheduled or running and
// returns it.
func waitIdle(tb testing.TB, a *api, id int) gen.Linode {
	tb.Helper()
	a = a.in(tb)
	pending := filterJSON(tb, pendingFilter(id))
	var l gen.Linode
	eventually(tb, fmt.Sprintf("Linode %d to be idle", id), func() (bool, string) {
		var page gen.EventPage
		a.must(http.StatusOK, "GET", "/account/events?page_size=25", nil, "X-Filter", pending).
			decode(tb, &page)
		if page.Results > 0 {
			return false, fmt.Sprintf("%d events pending", page.Results)
		}
		a.must(http.StatusOK, "GET", fmt.Sprint("/linode/instances/", id), nil).decode(tb, &l)
		return !transitional[l.Status], fmt.Sprintf("status %s", l.Status)
	})
	return l
}

// transitional are the statuses of a Linode while a job runs on it.
var transitional = map[gen.LinodeStatus]bool{
	"provisioning": true, "booting": true, "shutting_down": true, "rebooting": true,
	"rebuilding": true, "deleting": true,
}

// linodeEvents returns every event of a Linode that also matches the
// extra filter keys, in the server's default order.
func linodeEvents(tb testing.TB, a *api, id int, extra map[string]any) []gen.Event {
	tb.Helper()
	a = a.in(tb)
	f := map[string]any{"entity.type": "linode", "entity.id": id}
	for k, v := range extra {
		f[k] = v
	}
	var page gen.EventPage
	a.must(http.StatusOK, "GET", "/account/events?page_size=500", nil, "X-Filter", filterJSON(tb, f)).
		decode(tb, &page)
	if page.Pages != 1 {
		tb.Fatalf("Linode %d has more than 500 events", id)
	}
	return page.Data
}
