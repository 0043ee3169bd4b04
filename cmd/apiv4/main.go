// Command apiv4 serves the apiv4 API and holds its operator commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "apiv4:", err)
		os.Exit(1)
	}
}

const usage = `apiv4: a Linode-style cloud API v4 server, built around Events.

Usage:
  apiv4 serve [flags]          serve the API (see apiv4 serve --help)
  apiv4 token create [flags]   create a user if needed and print a new token
  apiv4 bench [flags]          measure the server against the database's ceiling

Every flag can also be set by the APIV4_* variable named in its help.
`

// run is the whole program: main only gives it the process's arguments,
// environment and streams, so that tests run the real thing.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, rest, getenv, stderr)
	case "token":
		if len(rest) == 0 || rest[0] != "create" {
			return fmt.Errorf("usage: apiv4 token create --username NAME [--account NAME]")
		}
		return createToken(ctx, rest[1:], getenv, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
