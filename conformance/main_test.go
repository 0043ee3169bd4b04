// Package conformance is apiv4's contract test suite: one body of checks
// that speaks to apiv4 only over HTTP, with raw requests, the client
// generated from openapi.yaml and linodego, and validates every response
// it gets against openapi.yaml.
//
// By default (go test ./conformance/) it builds cmd/apiv4 and runs every
// check against two servers of its own: one on a fresh PostgreSQL
// database and one on a fresh SQLite file, each started on 127.0.0.1 the
// first time a test needs it, and stopped at the end. PostgreSQL is found
// as db/dbtest finds it.
//
// To run the same checks against a running deployment instead, give its
// base URL (without /v4) and a token with every scope:
//
//	go test ./conformance -args -base-url=http://127.0.0.1:8080 -token=TOKEN \
//	    [-token2=TOKEN_OF_ANOTHER_ACCOUNT] [-token-peer=TOKEN_OF_ANOTHER_USER] \
//	    [-token-read-only=READ_ONLY_TOKEN]
//
// -token2 (a user of another account), -token-peer (another user of the
// token's account) and -token-read-only (a token of the token's account
// with the scopes events:read_only linodes:read_only) are optional; the
// checks that need them are skipped without them, as is the check that
// needs three server processes. The suite creates and deletes Linodes on
// the token's account, and expects no one else to act on that account
// while it runs. Waits are bounded by one minute per job.
//
// Every response is checked against the spec: its status must be
// documented, its headers and body must validate, and an error must
// carry Content-Type exactly application/json and a non-empty errors
// array. When the whole suite ran (no -run or -skip), it prints how many
// responses it saw for every documented operation and status (go test
// -v shows it), and fails if any documented pair was never seen.
package conformance

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"testing"
)

var (
	flagBaseURL = flag.String("base-url", "",
		"run against this deployment (scheme://host[:port], without /v4) instead of local servers")
	flagToken = flag.String("token", "",
		"with -base-url: a token with every scope")
	flagToken2 = flag.String("token2", "",
		"with -base-url: a token of a user of another account (optional)")
	flagTokenPeer = flag.String("token-peer", "",
		"with -base-url: a token of another user of -token's account (optional)")
	flagTokenReader = flag.String("token-read-only", "",
		"with -base-url: a token of -token's account with scopes "+readerScopes+" (optional)")
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

// run sets the targets up, runs the tests, tears the targets down and
// checks coverage; it returns the exit code.
func run(m *testing.M) int {
	// linodego.NewClient reads LINODE_URL, LINODE_API_VERSION and
	// LINODE_CA; none of the caller's may leak into the suite. (It reads
	// LINODE_DEBUG when loaded, so each client turns debugging off.)
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "LINODE_") {
			os.Unsetenv(name)
		}
	}
	// linodego logs every retry and wait through the standard logger.
	if !testing.Verbose() {
		log.SetOutput(io.Discard)
	}

	code := 1
	err := setUp()
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
	} else {
		code = m.Run()
	}
	if err := tearDown(); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		code = 1
	}

	if err == nil && wholeSuite() { // coverage means nothing when no check ran
		// go test shows a passing package's output only with -v, so the
		// table also goes to the file APIV4_COVERAGE_OUT names, if any.
		var out io.Writer = os.Stdout
		if path := os.Getenv("APIV4_COVERAGE_OUT"); path != "" {
			if f, err := os.Create(path); err == nil {
				defer f.Close()
				out = io.MultiWriter(os.Stdout, f)
			}
		}
		if missing := reportCoverage(out); missing > 0 {
			fmt.Printf("FAIL: %d documented (operation, status) pairs were never exercised\n", missing)
			code = 1
		}
	}
	return code
}

// wholeSuite reports whether every test was asked for, which is when
// coverage means something.
func wholeSuite() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}
