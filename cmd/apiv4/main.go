// Command apiv4 serves the apiv4 API and holds its operator commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"apiv4/bench"
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

// A command is one subcommand: its name as typed, what it does, the
// synopsis of its arguments, its flags (for help) and how it runs.
type command struct {
	name, summary, args string
	flags               func(getenv func(string) string) *flag.FlagSet
	run                 func(ctx context.Context, args []string, getenv func(string) string,
		stdout, stderr io.Writer) error
}

// commands are apiv4's subcommands, in the order help lists them.
var commands = []command{
	{"serve", "serve the API, the docs portal and /metrics", "[flags]",
		func(getenv func(string) string) *flag.FlagSet {
			fs := flagSet("apiv4 serve", io.Discard)
			new(config).flags(fs, getenv)
			return fs
		},
		func(ctx context.Context, args []string, getenv func(string) string, _, stderr io.Writer) error {
			return serve(ctx, args, getenv, stderr)
		}},
	{"token create", "create a user if needed and print a new token", "--username NAME [flags]",
		func(getenv func(string) string) *flag.FlagSet {
			var s string
			var d time.Duration
			return tokenFlags(new(config), &s, &s, &s, &d, getenv, io.Discard)
		},
		createToken},
	{"watch", "follow a token's events live, for i3bar or i3blocks", "--token TOKEN [flags]",
		func(getenv func(string) string) *flag.FlagSet {
			return watchFlags(new(watchConfig), getenv, io.Discard)
		},
		watch},
	{"export events", "write an account's events as JSON Lines, with progress", "--username NAME [flags]",
		func(getenv func(string) string) *flag.FlagSet {
			return exportFlags(new(exportConfig), getenv, io.Discard)
		},
		exportEvents},
	{"bench", "measure the server against the database's ceiling", "[flags]",
		func(getenv func(string) string) *flag.FlagSet {
			return benchFlags(new(bench.Config), new([]error), getenv, io.Discard)
		},
		runBench},
	{"conformance", "run the contract suite against a deployment", "--base-url URL --token TOKEN [flags]",
		func(getenv func(string) string) *flag.FlagSet {
			return conformanceFlags(new(conformanceConfig), getenv, io.Discard)
		},
		runConformance},
	{"chaos", "run servers under SIGKILLs and a private PostgreSQL's restarts, check every promise",
		"[flags]",
		func(getenv func(string) string) *flag.FlagSet {
			return chaosFlags(new(chaosConfig), getenv, io.Discard)
		},
		runChaos},
	{"ticket reply", "answer a support ticket as support",
		"--ticket ID --message TEXT [flags]",
		func(getenv func(string) string) *flag.FlagSet {
			return ticketReplyFlags(new(ticketReplyConfig), getenv, io.Discard)
		},
		ticketReply},
	{"notice post", "post a notice to every user of some accounts",
		"--message TEXT (--account NAME ... | --all) [flags]",
		func(getenv func(string) string) *flag.FlagSet {
			return noticeFlags(new(noticeConfig), getenv, io.Discard)
		},
		noticePost},
	{"maintenance schedule", "schedule maintenance of a Linode for a later time",
		"--linode ID --at TIME [flags]",
		func(getenv func(string) string) *flag.FlagSet {
			return maintenanceFlags(new(maintenanceConfig), getenv, io.Discard)
		},
		maintenanceSchedule},
	{"feedback list", "print the feedback users sent", "[flags]",
		func(getenv func(string) string) *flag.FlagSet {
			return feedbackFlags(new(feedbackConfig), getenv, io.Discard)
		},
		feedbackList},
}

// usage writes the help of every command with every flag and the
// environment variable that also sets it.
func usage(w io.Writer) {
	fmt.Fprint(w, "apiv4: a Linode-style cloud API v4 server, built around Events.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  apiv4 %-20s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nEvery flag can also be set by the APIV4_* variable named in its help;\n"+
		"a flag given on the command line wins. apiv4 COMMAND --help shows one command.\n")
	for _, c := range commands {
		fmt.Fprintf(w, "\napiv4 %s %s\n", c.name, c.args)
		fs := c.flags(noEnv) // help shows the built-in defaults, never a secret
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// run is the whole program: main only gives it the process's arguments,
// environment and streams, so that tests run the real thing.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	}
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) < len(words) || strings.Join(args[:len(words)], " ") != c.name {
			continue
		}
		rest := args[len(words):]
		if len(rest) > 0 && isHelp(rest[0]) {
			fmt.Fprintf(stdout, "apiv4 %s: %s\n\nUsage: apiv4 %s %s\n\n", c.name, c.summary, c.name, c.args)
			fs := c.flags(noEnv)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil
		}
		err := c.run(ctx, rest, getenv, stdout, stderr)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if args[0] == "token" {
		return fmt.Errorf("usage: apiv4 token create --username NAME [--account NAME]")
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func noEnv(string) string { return "" }

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}
