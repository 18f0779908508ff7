// Command pulsarconn is the command-line tool of the pulsarconn library.
//
// Usage:
//
//	pulsarconn COMMAND [arguments and flags, in any order]
//	pulsarconn help [COMMAND]
//
// The commands:
//
//	demo        run the library on a fake broker in memory: no network, no flags
//	lookup      find the broker that owns a topic, printing each redirect
//	partitions  print a topic's number of partitions (0: not partitioned)
//	serve       run the fake broker, or a cluster of them, until interrupted
//	bridge      forward Pulsar over QUIC to a TCP broker (experimental)
//	bench       measure raw loops, this library (and another client) on loopback
//	icount      instructions per operation, raw loops and this library (valgrind)
//	help        list the commands, or describe one with its flags
//
// "pulsarconn help COMMAND" (or "pulsarconn COMMAND -h") prints a command's
// usage line, what it does and its flags. A usage error exits with status
// 2, any other error with status 1; either is one line on stderr.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(exitCode(run(ctx, os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// exitCode prints err as one line to w and returns the exit status for it:
// 0 for nil, 2 for a usage error, 1 otherwise.
func exitCode(err error, w io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(w, errorLine(err))
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// errorLine is err as one line starting "pulsarconn: ": the library's
// errors start with that prefix already, and a joined error's lines are
// put on one.
func errorLine(err error) string {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	for strings.HasPrefix(msg, "pulsarconn: ") {
		msg = strings.TrimPrefix(msg, "pulsarconn: ")
	}
	return "pulsarconn: " + msg
}

// errUsage is matched by every usage error (exit status 2).
var errUsage = errors.New("usage error")

// usageError is a usage error: its text is only what went wrong.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

// usagef returns a usage error.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// runFunc runs a command with its positional arguments, once its flags are
// parsed.
type runFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// command is one subcommand.
type command struct {
	name    string
	args    string // the positional arguments of its usage line, e.g. "TOPIC"
	nargs   int    // how many it takes
	summary string // one line, listed by help
	about   string // what "help NAME" prints after the usage line
	// flags defines the command's flags on fs and returns what runs it.
	flags  func(fs *flag.FlagSet) runFunc
	hidden bool // not listed by help
}

// commands are the subcommands, in the order help lists them. (Set by
// init: help's own entry refers to the list.)
var commands []command

func init() {
	commands = []command{
		{name: "demo", summary: "run the library on a fake broker in memory: no network, no flags",
			about: demoAbout, flags: func(*flag.FlagSet) runFunc { return demoCommand }},
		{name: "lookup", args: "TOPIC", nargs: 1,
			summary: "find the broker that owns a topic, printing each redirect",
			about:   lookupAbout, flags: queryFlags("lookup")},
		{name: "partitions", args: "TOPIC", nargs: 1,
			summary: "print a topic's number of partitions (0: not partitioned)",
			about:   partitionsAbout, flags: queryFlags("partitions")},
		{name: "serve", summary: "run the fake broker, or a cluster of them, until interrupted",
			about: serveAbout, flags: serveFlags},
		{name: "bridge", summary: "forward Pulsar over QUIC to a TCP broker (experimental)",
			about: bridgeAbout, flags: bridgeFlags},
		{name: "bench", summary: "measure raw loops, this library (and another client) on loopback",
			about: benchAbout, flags: benchFlags},
		{name: "icount", summary: "instructions per operation, raw loops and this library (valgrind)",
			about: icountAbout, flags: icountFlags},
		{name: "help", args: "[COMMAND]", summary: "list the commands, or describe one with its flags",
			flags: func(*flag.FlagSet) runFunc { return nil }},
		{name: idlePhaseCommand, args: "PHASE N", nargs: 2, hidden: true,
			flags: func(*flag.FlagSet) runFunc { return idlePhase }},
		{name: icountRunCommand, args: "PATH SIDE ADDR SINKADDR N", nargs: 5, hidden: true,
			flags: func(*flag.FlagSet) runFunc { return icountRun }},
	}
}

// find returns the command called name.
func find(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// run runs the command line args (without the program name).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		writeOverview(stderr)
		return usagef("no command given")
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) == 1 || name != "help" {
			writeOverview(stdout)
			return nil
		}
		if len(args) > 2 {
			return usagef("help takes one COMMAND at most; run \"pulsarconn help\"")
		}
		c, ok := find(args[1])
		if !ok {
			return usagef("help: unknown command %q; run \"pulsarconn help\" for the list", args[1])
		}
		if c.name == "help" {
			writeOverview(stdout)
			return nil
		}
		_, fs := c.parser()
		writeHelp(stdout, c, fs)
		return nil
	}
	c, ok := find(name)
	if !ok {
		return usagef("unknown command %q; run \"pulsarconn help\" for the list", name)
	}
	runCmd, fs := c.parser()
	pos, err := parseArgs(fs, args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		writeHelp(stdout, c, fs)
		return nil
	case err != nil:
		return c.usageErr(err)
	case len(pos) != c.nargs:
		return c.usageErr(usagef("want %s, got %d argument(s)", cmp.Or(c.args, "no arguments"), len(pos)))
	}
	if err := runCmd(ctx, pos, stdout, stderr); err != nil {
		if errors.Is(err, errUsage) {
			return c.usageErr(err)
		}
		return err
	}
	return nil
}

// parser returns the command's flag set and what runs it.
func (c command) parser() (runFunc, *flag.FlagSet) {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; help goes to stdout
	fs.Usage = func() {}
	return c.flags(fs), fs
}

// usageErr says which command err is about and where its usage is.
func (c command) usageErr(err error) error {
	return usagef("%s: %v; see \"pulsarconn help %s\"", c.name, err, c.name)
}

// parseArgs parses args with fs, flags before, between or after the
// positional arguments, which it returns; after "--" everything is
// positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// writeOverview writes the list of commands.
func writeOverview(w io.Writer) {
	fmt.Fprintf(w, "pulsarconn is the command-line tool of the pulsarconn library.\n\n")
	fmt.Fprintf(w, "usage: pulsarconn COMMAND [arguments and flags, in any order]\n\ncommands:\n")
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, "\n\"pulsarconn help COMMAND\" (or \"pulsarconn COMMAND -h\") prints a command's usage and flags.\n")
}

// writeHelp writes a command's summary, usage line, description and flags.
func writeHelp(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "pulsarconn %s: %s\n\n%s\n", c.name, c.summary, usageLine(c, fs))
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.about))
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintf(w, "\nflags (-flag or --flag):\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// usageLine is "usage: pulsarconn NAME [--flag VALUE]... ARGS", wrapped
// at 80 columns.
func usageLine(c command, fs *flag.FlagSet) string {
	words := []string{"usage:", "pulsarconn", c.name}
	fs.VisitAll(func(f *flag.Flag) {
		word := "[--" + f.Name
		if value, _ := flag.UnquoteUsage(f); value != "" {
			word += " " + value
		}
		word += "]"
		if _, repeatable := f.Value.(*listFlag); repeatable {
			word += "..."
		}
		words = append(words, word)
	})
	if c.args != "" {
		words = append(words, c.args)
	}
	var b strings.Builder
	col := 0
	for i, word := range words {
		if i > 0 && col+1+len(word) > 80 {
			b.WriteString("\n      ")
			col = 6
		} else if i > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(word)
		col += len(word)
	}
	return b.String()
}
