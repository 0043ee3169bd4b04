package conformance

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/getkin/kin-openapi/openapi3"
)

// coverage counts the responses seen per operation and status, over
// every client and target of the run.
var coverage = struct {
	sync.Mutex
	seen map[coverageKey]int
}{seen: map[coverageKey]int{}}

type coverageKey struct {
	op     string
	status int
}

// recordCoverage counts one response of an operation.
func recordCoverage(op string, status int) {
	coverage.Lock()
	defer coverage.Unlock()
	coverage.seen[coverageKey{op, status}]++
}

// specOp is one operation of the spec with its place in it.
type specOp struct {
	method, path string
	item         *openapi3.PathItem
	op           *openapi3.Operation
}

// specOps returns every operation of the spec, by path then method.
func specOps(spec *openapi3.T) []specOp {
	var ops []specOp
	for _, path := range spec.Paths.InMatchingOrder() {
		item := spec.Paths.Value(path)
		for method, op := range item.Operations() {
			ops = append(ops, specOp{method, path, item, op})
		}
	}
	slices.SortFunc(ops, func(a, b specOp) int {
		return strings.Compare(a.path+" "+a.method, b.path+" "+b.method)
	})
	return ops
}

// documentedStatuses returns the numeric statuses an operation documents,
// in order. A "default" response documents no status of its own.
func documentedStatuses(op *openapi3.Operation) []int {
	var out []int
	for code := range op.Responses.Map() {
		if n, err := strconv.Atoi(code); err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// ownServerOnly are the answers any operation may give that only a server
// the suite starts itself can be brought to (a tiny rate limit, its
// database stopped); against a deployment (-base-url) they may go unseen.
var ownServerOnly = map[int]bool{http.StatusTooManyRequests: true, http.StatusServiceUnavailable: true}

// reportCoverage writes a table of every documented (operation, status)
// pair with the number of responses seen, and returns how many pairs got
// none.
func reportCoverage(w io.Writer) int {
	s, err := loadSpec()
	if err != nil {
		fmt.Fprintln(w, "coverage:", err)
		return 1
	}
	coverage.Lock()
	defer coverage.Unlock()

	missing := 0
	fmt.Fprintln(w, "\nResponses seen per documented operation and status:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OPERATION\tMETHOD PATH\tSTATUS\tSEEN\t")
	for _, o := range specOps(s.spec) {
		for _, status := range documentedStatuses(o.op) {
			n := coverage.seen[coverageKey{operationID(o.op), status}]
			mark := ""
			if n == 0 {
				mark, missing = "MISSING", missing+1
			}
			fmt.Fprintf(tw, "%s\t%s %s\t%d\t%d\t%s\n",
				operationID(o.op), o.method, o.path, status, n, mark)
		}
	}
	// The answers any operation may give are documented once, as
	// components; each must have been seen from some operation.
	for _, status := range slices.Sorted(maps.Keys(anyOperation)) {
		n := coverage.seen[coverageKey{anyOperationKey, status}]
		mark := ""
		switch {
		case n == 0 && *flagBaseURL != "" && ownServerOnly[status]:
			mark = "needs servers of the suite's own"
		case n == 0:
			mark, missing = "MISSING", missing+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", anyOperationKey, "components/responses/"+anyOperation[status],
			status, n, mark)
	}
	tw.Flush()
	return missing
}
