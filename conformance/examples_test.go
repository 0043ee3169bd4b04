package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"apiv4/gen"
)

// TestExamples replays every documented response of every operation of
// the spec: it builds the request from the spec's own examples (the
// `valid` and `invalid` body examples, each parameter's `example`), puts
// real ids in the path, arranges the state that yields the status, and
// checks that the answer has that status and the top-level keys of the
// spec's examples for it. An error answer must also equal the response
// example its provocation is named after.
//
// It is driven by the spec alone: a new operation is replayed as soon as
// it has examples, and a status, path parameter or body without a way to
// replay it fails the test, naming what to add.
func TestExamples(t *testing.T) {
	spec := mustSpec(t).spec
	forEachTarget(t, func(t *testing.T, tg *target) {
		x := newReplay(t, tg, spec)
		for _, o := range specOps(spec) {
			for _, status := range documentedStatuses(o.op) {
				t.Run(fmt.Sprintf("%s %d", operationID(o.op), status), func(t *testing.T) {
					x.replay(t, o, status)
				})
			}
		}
	})
}

// A provocation is one way to make an operation answer a status.
type provocation struct {
	// example names the response example the answer must equal; empty
	// for success, whose answer only needs the examples' keys.
	example string
	// applies reports whether this way works for the operation.
	applies func(o specOp) bool
	// linode says which Linode a linodeId path parameter names.
	linode linodeKind
	// ticket says which ticket a ticketId path parameter names.
	ticket ticketKind
	// arrange turns the request built from the valid examples into the
	// one that provokes the status.
	arrange func(o specOp, req *exampleRequest)
	// prepare, when set, runs after arrange and may send requests first.
	// The status depends on what happens meanwhile, so it is tried again
	// when missed.
	prepare func(t *testing.T, x *replay, o specOp, req *exampleRequest)
}

// linodeKind is the Linode a provocation acts on.
type linodeKind int

const (
	freshLinode   linodeKind = iota // idle, offline, for this request alone
	sharedLinode                    // idle, offline, shared by requests that change nothing
	busyLinode                      // with a job running, for this request alone
	unknownLinode                   // an id no Linode has
)

// ticketKind is the ticket a provocation acts on: every request with a
// ticketId gets a ticket of its own, since replies and closing change it.
type ticketKind int

const (
	openTicket   ticketKind = iota // new, for this request alone
	closedTicket                   // closed, for this request alone
)

// provocations says how to provoke each documented status, in the order
// the ways are tried; the first that applies to an operation is used.
var provocations = map[int][]provocation{
	http.StatusOK: {
		{applies: always, linode: freshLinode, arrange: func(specOp, *exampleRequest) {}},
	},
	http.StatusBadRequest: {
		{example: "invalid", applies: hasInvalidBody, linode: freshLinode, arrange: useInvalidBody},
		{example: "badFilter", applies: hasParam("header", "X-Filter"), linode: sharedLinode,
			arrange: func(_ specOp, r *exampleRequest) { r.header.Set("X-Filter", `{"foo":"bar"}`) }},
		{example: "badId", applies: hasBadIDExample, linode: sharedLinode,
			arrange: func(_ specOp, r *exampleRequest) {
				for name := range r.pathParams {
					if strings.HasSuffix(name, "Id") {
						r.pathParams[name] = "0"
					}
				}
			}},
		{example: "busy", applies: hasParam("path", "linodeId"), linode: busyLinode,
			arrange: func(specOp, *exampleRequest) {}},
		{example: "pageSize", applies: hasParam("query", "page_size"), linode: sharedLinode,
			arrange: func(_ specOp, r *exampleRequest) { r.query.Set("page_size", "1000") }},
		{example: "closed", applies: changesTicket, ticket: closedTicket,
			arrange: func(specOp, *exampleRequest) {}},
		{example: "missing", applies: hasRequiredFields, linode: sharedLinode,
			arrange: func(_ specOp, r *exampleRequest) { r.body = map[string]any{} }},
	},
	http.StatusNotModified: {
		{applies: hasParam("header", "If-None-Match"), linode: sharedLinode,
			arrange: func(specOp, *exampleRequest) {}, prepare: sendETag},
	},
	http.StatusUnauthorized: {
		{example: "invalidToken", applies: always, linode: sharedLinode,
			arrange: func(_ specOp, r *exampleRequest) { r.token = "" }},
	},
	http.StatusNotFound: {
		{example: "notFound", applies: hasPathParams, linode: unknownLinode,
			arrange: func(_ specOp, r *exampleRequest) {
				for name := range r.pathParams {
					r.pathParams[name] = fmt.Sprint(unknownID)
				}
			}},
	},
}

// unknownID is an id no resource has.
const unknownID = 2147483000

// always, hasParam and hasPathParams tell which operations a
// provocation applies to.
func always(specOp) bool { return true }

func hasParam(in, name string) func(specOp) bool {
	return func(o specOp) bool {
		return slices.ContainsFunc(params(o), func(p *openapi3.Parameter) bool {
			return p.In == in && p.Name == name
		})
	}
}

func hasPathParams(o specOp) bool {
	return slices.ContainsFunc(params(o), func(p *openapi3.Parameter) bool { return p.In == "path" })
}

// hasBadIDExample reports whether the operation's 400 answer has an
// example of an id in the path that is no id.
func hasBadIDExample(o specOp) bool {
	_, ok := responseExamples(o, http.StatusBadRequest)["badId"]
	return ok && hasPathParams(o)
}

// hasInvalidBody reports whether the operation's `invalid` body example
// differs from its `valid` one: an identical one is refused only for
// another reason (a busy Linode), which another provocation arranges.
func hasInvalidBody(o specOp) bool {
	invalid, valid := bodyExample(o, "invalid"), bodyExample(o, "valid")
	return invalid != nil && !reflect.DeepEqual(invalid, valid)
}

func useInvalidBody(o specOp, r *exampleRequest) { r.body = bodyExample(o, "invalid") }

// changesTicket reports whether the operation acts on one ticket, which
// a closed ticket refuses.
func changesTicket(o specOp) bool {
	return o.method == http.MethodPost && hasParam("path", "ticketId")(o)
}

// hasRequiredFields reports whether the operation's request body is
// required and names required fields, so that {} is refused.
func hasRequiredFields(o specOp) bool {
	if o.op.RequestBody == nil || !o.op.RequestBody.Value.Required {
		return false
	}
	mt := o.op.RequestBody.Value.Content.Get("application/json")
	return mt != nil && mt.Schema != nil && len(mt.Schema.Value.Required) > 0
}

// params returns the parameters of an operation and of its path.
func params(o specOp) []*openapi3.Parameter {
	var out []*openapi3.Parameter
	for _, refs := range []openapi3.Parameters{o.item.Parameters, o.op.Parameters} {
		for _, p := range refs {
			out = append(out, p.Value)
		}
	}
	return out
}

// bodyExample returns the value of a named JSON request body example, or
// nil.
func bodyExample(o specOp, name string) any {
	if o.op.RequestBody == nil {
		return nil
	}
	mt := o.op.RequestBody.Value.Content.Get("application/json")
	if mt == nil || mt.Examples[name] == nil {
		return nil
	}
	return mt.Examples[name].Value.Value
}

// bodyIDs are the body fields of the valid examples that name a
// resource, and the path parameter whose id they take: a Linode's only
// configuration profile has the Linode's id, a backup is restored onto
// the Linode it was taken of, and a body naming a Linode of an operation
// without one in its path (a ticket about a Linode) takes the shared one.
var bodyIDs = map[string]string{"config_id": "linodeId", "linode_id": "linodeId"}

// An exampleRequest is one request of the replay.
type exampleRequest struct {
	method, path string
	pathParams   map[string]string
	query        url.Values
	header       http.Header
	body         any // nil: none
	token        string
}

// replay holds what the replay of one target shares: the owner's client,
// a Linode and an event that requests changing nothing may use, and idle
// Linodes made ahead, since making one takes a job.
type replay struct {
	tg     *target
	a      *api
	shared int
	event  int
	fresh  []int
}

// newReplay makes the Linodes the replay of the spec needs on a target.
func newReplay(t *testing.T, tg *target, spec *openapi3.T) *replay {
	t.Helper()
	x := &replay{tg: tg, a: tg.api(t, tg.owner)}
	ids := make([]int, 1+freshNeeded(spec))
	for i := range ids {
		ids[i] = newLinode(t, x.a, tg, false).Id
	}
	for _, id := range ids {
		waitIdle(t, x.a, id)
	}
	x.shared, x.fresh = ids[0], ids[1:]
	x.event = linodeEvents(t, x.a, x.shared, map[string]any{"action": "linode_create"})[0].Id
	return x
}

// freshNeeded counts the requests of the replay that each need a Linode
// of their own.
func freshNeeded(spec *openapi3.T) int {
	n := 0
	for _, o := range specOps(spec) {
		if !hasParam("path", "linodeId")(o) {
			continue
		}
		for _, status := range documentedStatuses(o.op) {
			i := slices.IndexFunc(provocations[status], func(p provocation) bool { return p.applies(o) })
			if i >= 0 && provocations[status][i].linode == freshLinode {
				n++
			}
		}
	}
	return n
}

// linode returns the id of a Linode of the kind.
func (x *replay) linode(t *testing.T, kind linodeKind) int {
	t.Helper()
	switch kind {
	case sharedLinode:
		return x.shared
	case busyLinode:
		return newLinode(t, x.a.in(t), x.tg, false).Id // its create job runs
	case unknownLinode:
		return unknownID
	}
	if len(x.fresh) == 0 {
		return newIdleLinode(t, x.a.in(t), x.tg, false).Id
	}
	id := x.fresh[0]
	x.fresh = x.fresh[1:]
	return id
}

// ticket returns the id of a new ticket of the owner, closed if asked.
func (x *replay) ticket(t *testing.T, kind ticketKind) int {
	t.Helper()
	a := x.a.in(t)
	var tk gen.Ticket
	body := map[string]any{"summary": "Replayed ticket", "description": "Opened by the replay."}
	a.must(http.StatusOK, "POST", "/support/tickets", body).decode(t, &tk)
	if kind == closedTicket {
		a.must(http.StatusOK, "POST", fmt.Sprint("/support/tickets/", tk.Id, "/close"), nil)
	}
	return tk.Id
}

// token returns the id of a new token of the owner, which the request
// may rename or revoke.
func (x *replay) token(t *testing.T) int {
	t.Helper()
	var tok gen.Token
	body := map[string]any{"label": "replayed", "scopes": "events:read_only"}
	x.a.in(t).must(http.StatusOK, "POST", "/profile/tokens", body).decode(t, &tok)
	return tok.Id
}

// build makes the request of the operation's valid examples, with real
// ids, as the owner.
func (x *replay) build(t *testing.T, o specOp, p provocation) *exampleRequest {
	t.Helper()
	r := &exampleRequest{
		method: o.method, path: o.path, pathParams: map[string]string{},
		query: url.Values{}, header: http.Header{}, token: x.tg.owner,
	}
	linode := unknownID
	for _, param := range params(o) {
		switch {
		case param.In == "path" && param.Name == "linodeId":
			linode = x.linode(t, p.linode)
			r.pathParams[param.Name] = fmt.Sprint(linode)
			if strings.Contains(o.path, "/backups") && linode != unknownID {
				x.a.in(t).must(http.StatusOK, "POST", fmt.Sprint("/linode/instances/", linode,
					"/backups/enable"), map[string]any{})
			}
		case param.In == "path" && param.Name == "eventId":
			r.pathParams[param.Name] = fmt.Sprint(x.event)
		case param.In == "path" && param.Name == "ticketId":
			r.pathParams[param.Name] = fmt.Sprint(x.ticket(t, p.ticket))
		case param.In == "path" && param.Name == "tokenId":
			r.pathParams[param.Name] = fmt.Sprint(x.token(t))
		case param.In == "path" && param.Name == "address":
			r.pathParams[param.Name] = x.address(t, linode)
		case param.In == "path" && param.Name == "backupId":
			r.pathParams[param.Name] = fmt.Sprint(x.backup(t, linode))
		case param.In == "path":
			t.Fatalf("no id for path parameter %s: add one to replay.build", param.Name)
		case param.Example == nil:
		case param.In == "query":
			r.query.Set(param.Name, paramExample(param))
		case param.In == "header":
			r.header.Set(param.Name, paramExample(param))
		}
	}
	if o.op.RequestBody != nil {
		valid := bodyExample(o, "valid")
		if valid == nil && o.op.RequestBody.Value.Required {
			t.Fatalf("the request body has no example named valid")
		}
		ids := maps.Clone(r.pathParams)
		if _, ok := ids["linodeId"]; !ok {
			ids["linodeId"] = fmt.Sprint(x.shared)
		}
		r.body = withIDs(valid, ids)
	}
	return r
}

// paramExample returns the example of a parameter, as sent.
func paramExample(p *openapi3.Parameter) string { return fmt.Sprint(p.Example) }

// address returns the public IPv4 address of a Linode, or an id no
// address has when the Linode is unknown.
func (x *replay) address(t *testing.T, linode int) string {
	t.Helper()
	if linode == unknownID {
		return fmt.Sprint(unknownID)
	}
	var l gen.Linode
	x.a.in(t).must(http.StatusOK, "GET", fmt.Sprint("/linode/instances/", linode), nil).decode(t, &l)
	return l.Ipv4[0]
}

// backup returns the id of a snapshot of a Linode that can be restored,
// taking one and waiting for it when the Linode has none. Backups are
// enabled on every Linode of a request to a /backups path.
func (x *replay) backup(t *testing.T, linode int) int {
	t.Helper()
	if linode == unknownID {
		return unknownID
	}
	a := x.a.in(t)
	path := fmt.Sprint("/linode/instances/", linode, "/backups")
	var list gen.LinodeBackupList
	a.must(http.StatusOK, "GET", path, nil).decode(t, &list)
	if b, err := list.Snapshot.Current.Get(); err == nil && b.Available {
		return b.Id
	}
	var b gen.Backup
	a.must(http.StatusOK, "POST", path, map[string]any{"label": "replay"}).decode(t, &b)
	waitIdle(t, a, linode)
	return b.Id
}

// withIDs returns a copy of a body example whose resource ids are those
// of the request's path.
func withIDs(body any, pathParams map[string]string) any {
	obj, ok := body.(map[string]any)
	if !ok {
		return body
	}
	out := maps.Clone(obj)
	for field, param := range bodyIDs {
		if _, ok := out[field]; ok {
			out[field], _ = strconv.Atoi(pathParams[param])
		}
	}
	return out
}

// send sends the request.
func (x *replay) send(t *testing.T, r *exampleRequest) *reply {
	t.Helper()
	path := r.path
	for name, value := range r.pathParams {
		path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(value))
	}
	if len(r.query) > 0 {
		path += "?" + r.query.Encode()
	}
	var header []string
	for name := range r.header {
		header = append(header, name, r.header.Get(name))
	}
	var body any
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			t.Fatal(err)
		}
		body = b
	}
	return x.a.in(t).as(r.token).do(r.method, path, body, header...)
}

// replay provokes one status of one operation and checks the answer.
func (x *replay) replay(t *testing.T, o specOp, status int) {
	i := slices.IndexFunc(provocations[status], func(p provocation) bool { return p.applies(o) })
	if i < 0 {
		t.Fatalf("nothing provokes %d from %s %s: add a way to provocations", status, o.method, o.path)
	}
	p := provocations[status][i]

	var r *reply
	for try := 1; try <= attempts; try++ {
		req := x.build(t, o, p)
		p.arrange(o, req)
		if p.prepare != nil {
			p.prepare(t, x, o, req)
		}
		if r = x.send(t, req); r.Status == status || (p.linode != busyLinode && p.prepare == nil) {
			break
		}
		t.Logf("try %d: got %d, the state changed meanwhile", try, r.Status)
	}
	if r.Status != status {
		t.Fatalf("got status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	x.forget(t, o, r)
	if done := checkBodyless(t, o, status, r); done {
		return
	}

	examples := responseExamples(o, status)
	if len(examples) == 0 {
		t.Fatalf("the spec has no example of a %d answer", status)
	}
	var got map[string]any
	r.decode(t, &got)
	for name, ex := range examples {
		want, ok := ex.(map[string]any)
		if !ok {
			t.Errorf("example %s is not an object", name)
			continue
		}
		if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
			t.Errorf("got top-level keys %v, want %v as in example %s", g, w, name)
		}
	}
	if p.example == "" {
		return
	}
	want, ok := examples[p.example]
	if !ok {
		t.Fatalf("the %d answer has no example named %s", status, p.example)
	}
	if !reflect.DeepEqual(normalize(t, got), normalize(t, want)) {
		t.Errorf("got %s, want it as example %s: %s", r.Body, p.example, mustJSON(t, want))
	}
}

// forget deletes a Linode that a create answered with, at once: the
// valid examples give every Linode one label, which must be free again
// for the next request that sets it.
func (x *replay) forget(t *testing.T, o specOp, r *reply) {
	t.Helper()
	create := o.method == http.MethodPost && strings.HasSuffix(o.path, "/instances")
	if !create || r.Status != http.StatusOK {
		return
	}
	var created struct{ ID int }
	r.decode(t, &created)
	waitIdle(t, x.a.in(t), created.ID)
	x.a.in(t).must(http.StatusOK, "DELETE", fmt.Sprint("/linode/instances/", created.ID), nil)
}

// responseExamples returns the JSON examples of one documented status of
// an operation, by name.
func responseExamples(o specOp, status int) map[string]any {
	out := map[string]any{}
	resp := o.op.Responses.Status(status)
	if resp == nil || resp.Value == nil {
		return out
	}
	mt := resp.Value.Content.Get("application/json")
	if mt == nil {
		return out
	}
	if mt.Example != nil {
		out["example"] = mt.Example
	}
	for name, ex := range mt.Examples {
		out[name] = ex.Value.Value
	}
	return out
}

// normalize makes decoded JSON and a YAML example comparable.
func normalize(t *testing.T, v any) any {
	t.Helper()
	var out any
	if err := json.Unmarshal(mustJSON(t, v), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sendETag pins a list to one item that no other check changes, sends
// the request once and makes the replay send its ETag back.
func sendETag(t *testing.T, x *replay, o specOp, r *exampleRequest) {
	t.Helper()
	id := x.shared
	if strings.Contains(o.path, "/events") {
		id = x.event
	}
	r.header.Set("X-Filter", fmt.Sprintf(`{"id":%d}`, id))
	r.header.Del("If-None-Match")
	first := x.send(t, r)
	tag := first.Header.Get("ETag")
	if first.Status != http.StatusOK || tag == "" {
		t.Fatalf("got %d with ETag %q, want 200 with an ETag", first.Status, tag)
	}
	r.header.Set("If-None-Match", tag)
}

// checkBodyless checks the answers whose documented response has no JSON
// body: none at all (304) or an event stream, of which the opening frame
// was read. It reports whether it handled the status.
func checkBodyless(t *testing.T, o specOp, status int, r *reply) bool {
	t.Helper()
	resp := o.op.Responses.Status(status)
	if resp == nil || resp.Value == nil {
		return false
	}
	switch content := resp.Value.Content; {
	case len(content) == 0:
		if len(r.Body) != 0 {
			t.Errorf("got a body with %d: %s", status, r.Body)
		}
		return true
	case content.Get("text/event-stream") != nil:
		f, err := newSSEReader(bytes.NewReader(r.Body)).next()
		if err != nil || f.Retry <= 0 || f.ID < 0 || f.Data != "" {
			t.Errorf("opening frame %q (%v): want retry and id and no data", r.Body, err)
		}
		return true
	}
	return false
}
