package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"apiv4/invariant"
)

// An account of the run, with the Linodes and events its users know of.
// Its users share its Linodes, so that actions on one Linode come from
// several clients through several server processes at once.
type account struct {
	name  string
	users []*user

	mu      sync.Mutex
	linodes []int64
	events  []int64 // the most recent event ids seen, newest last
}

type user struct {
	name, token string
	account     *account
}

// pick returns a random element of a list, or 0.
func pick(rng *mrand.Rand, ids []int64) int64 {
	if len(ids) == 0 {
		return 0
	}
	return ids[rng.IntN(len(ids))]
}

func (a *account) linode(rng *mrand.Rand) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return pick(rng, a.linodes)
}

func (a *account) countLinodes() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.linodes)
}

func (a *account) addLinode(id int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.linodes = append(a.linodes, id)
}

func (a *account) dropLinode(id int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, l := range a.linodes {
		if l == id {
			a.linodes = append(a.linodes[:i], a.linodes[i+1:]...)
			return
		}
	}
}

// event returns a recent event id, mostly one of the newest.
func (a *account) event(rng *mrand.Rand) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.events) == 0 {
		return 0
	}
	if rng.IntN(2) == 0 {
		return a.events[len(a.events)-1-rng.IntN(min(10, len(a.events)))]
	}
	return pick(rng, a.events)
}

func (a *account) addEvents(ids []int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, ids...)
	if len(a.events) > 400 {
		a.events = append([]int64(nil), a.events[len(a.events)-200:]...)
	}
}

// A client sends requests as one user until its context ends, one at a
// time, to a random server each, and logs every one.
type client struct {
	n    int
	h    *harness
	u    *user
	rng  *mrand.Rand
	hc   *http.Client
	made int // Linodes created, for labels
}

// requestTimeout is how long a client waits for an answer: the servers
// answer within their own 10 s deadline, so no answer by then is a hang.
const requestTimeout = 20 * time.Second

func (c *client) run(ctx context.Context) {
	for ctx.Err() == nil {
		c.step(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(c.rng.IntN(40)) * time.Millisecond):
		}
	}
}

// step sends one request, chosen at random with these weights.
func (c *client) step(ctx context.Context) {
	a := c.u.account
	n, pool := c.rng.IntN(100), a.countLinodes()
	switch {
	case pool < 2 || n < 2 && pool < 8:
		c.create(ctx)
	case n < 22:
		c.act(ctx)
	case n < 58:
		c.listEvents(ctx)
	case n < 65:
		c.getEvent(ctx)
	case n < 72:
		c.mark(ctx, "seen")
	case n < 76:
		c.mark(ctx, "read")
	case n < 83:
		c.listLinodes(ctx)
	case n < 88:
		c.getLinode(ctx)
	case n < 96:
		c.foreign(ctx)
	default:
		c.hostile(ctx)
	}
}

// answer is what came back for one request.
type answer struct {
	status int
	body   []byte
}

// send sends one request to a random server and logs it; rec holds what
// the caller knows of it already.
func (c *client) send(ctx context.Context, rec invariant.Record, method, path string, body []byte,
	header ...string) answer {
	return c.sendFill(ctx, rec, nil, method, path, body, header...)
}

// sendFill is send with a hook that completes the record from a 200
// answer before it is logged.
func (c *client) sendFill(ctx context.Context, rec invariant.Record, fill func(*invariant.Record, []byte),
	method, path string, body []byte, header ...string) answer {
	rec.Client, rec.Account, rec.User = c.n, c.u.account.name, c.u.name
	srv := c.h.servers[c.rng.IntN(len(c.h.servers))]
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+srv.addr+"/v4"+path, r)
	if err != nil {
		panic(err) // the harness built a bad request
	}
	req.Header.Set("Authorization", "Bearer "+c.u.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}

	rec.Start = time.Now()
	resp, err := c.hc.Do(req)
	var ans answer
	if err == nil {
		ans.body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		ans.status = resp.StatusCode
	}
	rec.End = time.Now()
	switch {
	case err != nil && ctx.Err() != nil && rec.End.Sub(rec.Start) >= requestTimeout:
		rec.Status, rec.Problem = 0, fmt.Sprintf("no answer within %v", requestTimeout)
	case err != nil:
		rec.Status, ans.status = 0, 0 // the process died, or was not there
	default:
		rec.Status = ans.status
		rec.Problem = problem(resp, ans.body)
		if fill != nil && ans.status == http.StatusOK {
			fill(&rec, ans.body)
		}
	}
	c.h.record(rec)
	return ans
}

// problem says what is wrong with the form of an answer: linodego needs
// errors as JSON with Content-Type exactly application/json and a
// non-empty errors array, and Retry-After in whole seconds on 429 and 503.
func problem(resp *http.Response, body []byte) string {
	if resp.StatusCode < 400 {
		if !json.Valid(body) {
			return "a success that is not JSON"
		}
		return ""
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		return fmt.Sprintf("Content-Type %q", ct)
	}
	var e struct{ Errors []struct{ Reason string } }
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 || e.Errors[0].Reason == "" {
		return fmt.Sprintf("not in the error shape: %.100s", body)
	}
	if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests {
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
			return fmt.Sprintf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
	}
	return ""
}

// secret returns a new root password, remembered so that the run can
// look for it where it must never be.
func (c *client) secret() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	s := "Rp-" + hex.EncodeToString(b) + "!Z"
	c.h.secrets.add(s)
	return s
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (c *client) create(ctx context.Context) {
	c.made++
	body := map[string]any{
		"region": "us-east", "type": "g6-nanode-1", "image": "linode/debian12",
		"label": fmt.Sprintf("c%d-%d", c.n, c.made), "root_pass": c.secret(), "booted": c.rng.IntN(2) == 0,
	}
	// The Linode's id is known only from the answer.
	fill := func(rec *invariant.Record, body []byte) {
		var l struct{ ID int64 }
		if json.Unmarshal(body, &l) == nil {
			rec.Linode = l.ID
			c.u.account.addLinode(l.ID)
		}
	}
	c.sendFill(ctx, invariant.Record{Op: "create"}, fill, "POST", "/linode/instances", mustJSON(body))
}

// act sends an action, or a settings update, to one of the account's
// Linodes.
func (c *client) act(ctx context.Context) {
	id := c.u.account.linode(c.rng)
	if id == 0 {
		return
	}
	// Boots are always accepted, and queue behind the running job: few of
	// them, so that the jobs keep up with the load.
	ops := []string{"boot", "shutdown", "shutdown", "shutdown", "reboot", "reboot", "reboot", "rebuild",
		"rebuild", "password", "password", "update", "update", "update", "delete"}
	op := ops[c.rng.IntN(len(ops))]
	path := fmt.Sprint("/linode/instances/", id, "/", op)
	method, body := "POST", []byte(`{}`)
	switch op {
	case "rebuild":
		body = mustJSON(map[string]any{"image": "linode/debian12", "root_pass": c.secret(), "booted": true})
	case "password":
		body = mustJSON(map[string]any{"root_pass": c.secret()})
	case "update":
		method, path = "PUT", fmt.Sprint("/linode/instances/", id)
		body = mustJSON(map[string]any{"tags": []string{fmt.Sprint("t", c.rng.IntN(5))}})
	case "delete":
		method, path, body = "DELETE", fmt.Sprint("/linode/instances/", id), nil
	}
	ans := c.send(ctx, invariant.Record{Op: op, Linode: id}, method, path, body)
	if op == "delete" && (ans.status == http.StatusOK || ans.status == http.StatusNotFound) {
		c.u.account.dropLinode(id)
	}
}

// eventFilters are the X-Filters event lists use; %d is a Linode or an
// event id.
var eventFilters = []string{
	``,
	`{"entity.type":"linode","entity.id":%d}`,
	`{"seen":false}`,
	`{"+order":"desc","+order_by":"created","action":"linode_boot"}`,
	`{"id":{"+gte":%d}}`,
	`{"+or":[{"status":"started"},{"status":"scheduled"}]}`,
	`{"read":true}`,
}

func (c *client) listEvents(ctx context.Context) {
	f := eventFilters[c.rng.IntN(len(eventFilters))]
	switch {
	case f == "":
	case bytes.Contains([]byte(f), []byte("entity.id")):
		f = fmt.Sprintf(f, c.u.account.linode(c.rng))
	case bytes.Contains([]byte(f), []byte("%d")):
		f = fmt.Sprintf(f, max(1, c.u.account.event(c.rng)))
	}
	var header []string
	if f != "" {
		header = []string{"X-Filter", f}
	}
	fill := func(rec *invariant.Record, body []byte) {
		var page struct{ Data []invariant.Flags }
		if json.Unmarshal(body, &page) != nil {
			return
		}
		rec.Events = page.Data
		ids := make([]int64, len(page.Data))
		for i, e := range page.Data {
			ids[i] = e.ID
		}
		c.u.account.addEvents(ids)
	}
	c.sendFill(ctx, invariant.Record{Op: "list_events"}, fill, "GET", "/account/events?page_size=25", nil,
		header...)
}

func (c *client) getEvent(ctx context.Context) {
	id := c.u.account.event(c.rng)
	if id == 0 {
		return
	}
	fill := func(rec *invariant.Record, body []byte) {
		var e invariant.Flags
		if json.Unmarshal(body, &e) == nil {
			rec.Events = []invariant.Flags{e}
		}
	}
	c.sendFill(ctx, invariant.Record{Op: "get_event", Event: id}, fill, "GET", fmt.Sprint("/account/events/", id), nil)
}

func (c *client) mark(ctx context.Context, op string) {
	id := c.u.account.event(c.rng)
	if id == 0 {
		return
	}
	c.send(ctx, invariant.Record{Op: op, Event: id}, "POST", fmt.Sprintf("/account/events/%d/%s", id, op),
		[]byte(`{}`))
}

var linodeFilters = []string{``, `{"region":"us-east"}`, `{"+order_by":"label","+order":"desc"}`,
	`{"tags":"t1"}`, `{"status":{"+neq":"running"}}`}

func (c *client) listLinodes(ctx context.Context) {
	var header []string
	if f := linodeFilters[c.rng.IntN(len(linodeFilters))]; f != "" {
		header = []string{"X-Filter", f}
	}
	fill := func(rec *invariant.Record, body []byte) {
		var page struct{ Data []struct{ ID int64 } }
		if json.Unmarshal(body, &page) == nil {
			for _, l := range page.Data {
				rec.Linodes = append(rec.Linodes, l.ID)
			}
		}
	}
	c.sendFill(ctx, invariant.Record{Op: "list_linodes"}, fill, "GET", "/linode/instances?page_size=25", nil,
		header...)
}

func (c *client) getLinode(ctx context.Context) {
	id := c.u.account.linode(c.rng)
	if id == 0 {
		return
	}
	c.send(ctx, invariant.Record{Op: "get_linode", Linode: id}, "GET", fmt.Sprint("/linode/instances/", id), nil)
}

// foreign asks for, or acts on, another account's Linode or event, as a
// client guessing ids would: the answer must be 404.
func (c *client) foreign(ctx context.Context) {
	other := c.h.accounts[c.rng.IntN(len(c.h.accounts))]
	if other == c.u.account {
		return
	}
	l, e := other.linode(c.rng), other.event(c.rng)
	rec := invariant.Record{Foreign: true}
	switch c.rng.IntN(6) {
	case 0:
		rec.Op, rec.Linode = "get_linode", l
		c.send(ctx, rec, "GET", fmt.Sprint("/linode/instances/", l), nil)
	case 1:
		rec.Op, rec.Linode = "boot", l
		c.send(ctx, rec, "POST", fmt.Sprintf("/linode/instances/%d/boot", l), []byte(`{}`))
	case 2:
		rec.Op, rec.Linode = "update", l
		c.send(ctx, rec, "PUT", fmt.Sprint("/linode/instances/", l), []byte(`{"tags":["stolen"]}`))
	case 3:
		rec.Op, rec.Linode = "delete", l
		c.send(ctx, rec, "DELETE", fmt.Sprint("/linode/instances/", l), nil)
	case 4:
		rec.Op, rec.Event = "get_event", e
		c.send(ctx, rec, "GET", fmt.Sprint("/account/events/", e), nil)
	default:
		rec.Op, rec.Event = "seen", e
		c.send(ctx, rec, "POST", fmt.Sprintf("/account/events/%d/seen", e), []byte(`{}`))
	}
}

// hostile sends a request no server may accept.
func (c *client) hostile(ctx context.Context) {
	id := c.u.account.linode(c.rng)
	path := fmt.Sprint("/linode/instances/", id)
	rec := invariant.Record{Op: "hostile", Linode: id}
	var ans answer
	switch c.rng.IntN(4) {
	case 0:
		ans = c.send(ctx, rec, "PUT", path, []byte(`{"tags":[`))
	case 1:
		ans = c.send(ctx, rec, "PUT", path, []byte(`{"label":null}`))
	case 2:
		ans = c.send(ctx, rec, "POST", path+"/boot", []byte(`{"config_id":"x"}`))
	default:
		ans = c.send(ctx, rec, "PUT", path, []byte(`{"tags":[]}`), "Content-Type", "text/plain")
	}
	if ans.status >= 200 && ans.status < 300 {
		c.h.flag(invariant.Violation{Kind: invariant.KindAnswer,
			Detail: fmt.Sprintf("a hostile request to %s was answered %d", path, ans.status)})
	}
}
