package conformance

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
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
	// arrange turns the request built from the valid examples into the
	// one that provokes the status.
	arrange func(o specOp, req *exampleRequest)
}

// linodeKind is the Linode a provocation acts on.
type linodeKind int

const (
	freshLinode   linodeKind = iota // idle, offline, for this request alone
	sharedLinode                    // idle, offline, shared by requests that change nothing
	busyLinode                      // with a job running, for this request alone
	unknownLinode                   // an id no Linode has
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
					r.pathParams[name] = 0
				}
			}},
		{example: "busy", applies: hasParam("path", "linodeId"), linode: busyLinode,
			arrange: func(specOp, *exampleRequest) {}},
	},
	http.StatusUnauthorized: {
		{example: "invalidToken", applies: always, linode: sharedLinode,
			arrange: func(_ specOp, r *exampleRequest) { r.token = "" }},
	},
	http.StatusNotFound: {
		{example: "notFound", applies: hasPathParams, linode: unknownLinode,
			arrange: func(_ specOp, r *exampleRequest) {
				for name := range r.pathParams {
					r.pathParams[name] = unknownID
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
// configuration profile has the Linode's id.
var bodyIDs = map[string]string{"config_id": "linodeId"}

// An exampleRequest is one request of the replay.
type exampleRequest struct {
	method, path string
	pathParams   map[string]int
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

// build makes the request of the operation's valid examples, with real
// ids, as the owner.
func (x *replay) build(t *testing.T, o specOp, kind linodeKind) *exampleRequest {
	t.Helper()
	r := &exampleRequest{
		method: o.method, path: o.path, pathParams: map[string]int{},
		query: url.Values{}, header: http.Header{}, token: x.tg.owner,
	}
	for _, p := range params(o) {
		switch {
		case p.In == "path" && p.Name == "linodeId":
			r.pathParams[p.Name] = x.linode(t, kind)
		case p.In == "path" && p.Name == "eventId":
			r.pathParams[p.Name] = x.event
		case p.In == "path":
			t.Fatalf("no id for path parameter %s: add one to replay.build", p.Name)
		case p.Example == nil:
		case p.In == "query":
			r.query.Set(p.Name, paramExample(p))
		case p.In == "header":
			r.header.Set(p.Name, paramExample(p))
		}
	}
	if o.op.RequestBody != nil {
		valid := bodyExample(o, "valid")
		if valid == nil && o.op.RequestBody.Value.Required {
			t.Fatalf("the request body has no example named valid")
		}
		r.body = withIDs(valid, r.pathParams)
	}
	return r
}

// paramExample returns the example of a parameter, as sent.
func paramExample(p *openapi3.Parameter) string { return fmt.Sprint(p.Example) }

// withIDs returns a copy of a body example whose resource ids are those
// of the request's path.
func withIDs(body any, pathParams map[string]int) any {
	obj, ok := body.(map[string]any)
	if !ok {
		return body
	}
	out := maps.Clone(obj)
	for field, param := range bodyIDs {
		if _, ok := out[field]; ok {
			out[field] = pathParams[param]
		}
	}
	return out
}

// send sends the request.
func (x *replay) send(t *testing.T, r *exampleRequest) *reply {
	t.Helper()
	path := r.path
	for name, id := range r.pathParams {
		path = strings.ReplaceAll(path, "{"+name+"}", fmt.Sprint(id))
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
		req := x.build(t, o, p.linode)
		p.arrange(o, req)
		if r = x.send(t, req); r.Status == status || p.linode != busyLinode {
			break
		}
		t.Logf("try %d: got %d, the create job may have ended first", try, r.Status)
	}
	if r.Status != status {
		t.Fatalf("got status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	x.forget(t, o, r)

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
