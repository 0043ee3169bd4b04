package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// conformanceConfig is the configuration of apiv4 conformance.
type conformanceConfig struct {
	BaseURL, Token, Token2, TokenPeer, TokenReader string
	Source, Run                                    string
	envErrs                                        []error
}

// conformanceFlags binds the flags of apiv4 conformance.
func conformanceFlags(c *conformanceConfig, getenv func(string) string, stderr io.Writer) *flag.FlagSet {
	fs := flagSet("apiv4 conformance", stderr)
	e := envFlags{fs, getenv, &c.envErrs}
	e.string(&c.BaseURL, "base-url", "APIV4_URL", "", "the deployment, without /v4 (required)")
	e.string(&c.Token, "token", "APIV4_TOKEN", "", "a token with every scope (required)")
	e.string(&c.Token2, "token2", "APIV4_TOKEN2", "", "a token of a user of another account (optional)")
	e.string(&c.TokenPeer, "token-peer", "APIV4_TOKEN_PEER", "",
		"a token of another user of --token's account (optional)")
	e.string(&c.TokenReader, "token-read-only", "APIV4_TOKEN_READ_ONLY", "",
		"a token of --token's account with scopes 'events:read_only linodes:read_only' (optional)")
	e.string(&c.Source, "source", "APIV4_SOURCE", ".",
		"the apiv4 source tree, used with go test when no apiv4-conformance binary is beside apiv4")
	e.string(&c.Run, "run", "APIV4_CONFORMANCE_RUN", "", "run only the checks matching this regexp")
	return fs
}

// runConformance runs the conformance suite against a deployment and
// prints its coverage table. It runs the compiled suite, apiv4-conformance,
// when it is beside this executable (make build puts it there); otherwise
// it runs go test in the source tree.
func runConformance(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) error {
	var c conformanceConfig
	fs := conformanceFlags(&c, getenv, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(c.envErrs) > 0 {
		return errors.Join(c.envErrs...)
	}
	if c.BaseURL == "" || c.Token == "" {
		return fmt.Errorf("--base-url and --token are required")
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") ||
		u.Host == "" {
		return fmt.Errorf("--base-url %q must be an http or https URL such as http://127.0.0.1:8080",
			c.BaseURL)
	}

	suite := []string{"-base-url=" + c.BaseURL, "-token=" + c.Token}
	for flag, v := range map[string]string{"token2": c.Token2, "token-peer": c.TokenPeer,
		"token-read-only": c.TokenReader} {
		if v != "" {
			suite = append(suite, "-"+flag+"="+v)
		}
	}
	tmp, err := os.MkdirTemp("", "apiv4-conformance-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	coverage := filepath.Join(tmp, "coverage.txt")

	var cmd *exec.Cmd
	bin := besideSelf("apiv4-conformance")
	if bin != "" {
		testArgs := []string{"-test.count=1", "-test.timeout=30m"}
		if c.Run != "" {
			testArgs = append(testArgs, "-test.run="+c.Run)
		}
		cmd = exec.CommandContext(ctx, bin, append(testArgs, suite...)...)
	} else {
		goArgs := []string{"test", "-count=1", "-timeout=30m", "./conformance"}
		if c.Run != "" {
			goArgs = append(goArgs, "-run="+c.Run)
		}
		cmd = exec.CommandContext(ctx, "go", append(append(goArgs, "-args"), suite...)...)
		cmd.Dir = c.Source
	}
	cmd.Env = append(os.Environ(), "APIV4_COVERAGE_OUT="+coverage)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// NOTE: the whole suite took 3m41s against a local server on a
	// shared 2-core machine; a remote deployment adds its round trips.
	fmt.Fprintf(stderr, "apiv4 conformance: running %s against %s "+
		"(several minutes: about 4 on a 2-core machine)\n", filepath.Base(cmd.Path), c.BaseURL)
	start := time.Now()
	runErr := cmd.Run()
	fmt.Fprintf(stderr, "apiv4 conformance: done in %v\n", time.Since(start).Round(time.Second))

	// The compiled suite prints failures and the table itself; go test
	// shows a passing package's output only with -v, so the table is
	// printed from the file the suite wrote.
	if table, err := os.ReadFile(coverage); err == nil && bin == "" {
		_, _ = stdout.Write(table)
	} else if err != nil && c.Run == "" && runErr == nil {
		fmt.Fprintln(stderr, "apiv4 conformance: the suite wrote no coverage table")
	}
	if runErr != nil {
		return fmt.Errorf("conformance suite failed: %w", runErr)
	}
	return nil
}

// besideSelf returns the path of an executable called name in the
// directory of the running executable, or "".
func besideSelf(name string) string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(self), name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return p
	}
	return ""
}
