package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/pulsarconn/pulsarconn/internal/bench"
)

const icountAbout = `
Counts the instructions per operation of each path of the bench, raw loop
and library, under valgrind's callgrind (Debian package valgrind): each
path runs twice in a child process, with N1 and N2 operations, against
servers in this process, and (I(N2) - I(N1)) / (N2 - N1) is the figure,
without start-up and set-up. Unlike times, the counts repeat within 2%,
so --check can guard against regressions in CI. Takes a few minutes
with --runs 3. See docs/benchmarks.md.`

// icountSettings are the flags of icount.
type icountSettings struct {
	runs, parallel             int
	paths                      string
	check, writeBase, jsonFile string
	tolerance                  float64
	verbose                    bool
}

// icountFlags defines the flags of "pulsarconn icount".
func icountFlags(fs *flag.FlagSet) runFunc {
	var f icountSettings
	fs.IntVar(&f.runs, "runs", 3, "times each path is counted; the figures are the medians, the spread is over the runs")
	fs.IntVar(&f.parallel, "parallel", 2, "counted runs at once")
	fs.StringVar(&f.paths, "paths", "", "comma-separated paths to count (default all: rr1, rr64, rr64async, receipts, sink, delivery)")
	fs.StringVar(&f.check, "check", "", "fail if a path's library instructions per operation exceed this baseline `FILE`'s by more than --tolerance")
	fs.Float64Var(&f.tolerance, "tolerance", 0.15, "the growth over the baseline --check allows (0.15: 15%)")
	fs.StringVar(&f.writeBase, "write-baseline", "", "write the medians as the new baseline to this `FILE`")
	fs.StringVar(&f.jsonFile, "json", "", "also write every run's figures as JSON to this `FILE`")
	fs.BoolVar(&f.verbose, "v", false, "print each counted run as it ends")
	return func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		return icountCommand(ctx, f, stdout, stderr)
	}
}

// icountCommand runs "pulsarconn icount".
func icountCommand(ctx context.Context, f icountSettings, stdout, stderr io.Writer) error {
	if f.runs <= 0 || f.parallel <= 0 {
		return usagef("--runs and --parallel must be positive")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg := bench.CountConfig{Worker: []string{exe, icountRunCommand}, Runs: f.runs, Parallel: f.parallel}
	if f.paths != "" {
		cfg.Paths = strings.Split(f.paths, ",")
	}
	if f.verbose {
		cfg.Progress = stderr
	}
	var base bench.CountBaseline
	if f.check != "" {
		if base, err = bench.ReadCountBaseline(f.check); err != nil {
			return err
		}
	}
	r, err := bench.CountInstructions(ctx, cfg)
	if err != nil {
		return err
	}
	if err := r.WriteTable(stdout); err != nil {
		return err
	}
	if f.jsonFile != "" {
		out, err := os.Create(f.jsonFile)
		if err != nil {
			return err
		}
		err = r.WriteJSON(out)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if f.writeBase != "" {
		if err := bench.WriteCountBaseline(f.writeBase, r.Baseline()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", f.writeBase)
	}
	if f.check != "" {
		if err := r.Check(base, f.tolerance, stdout); err != nil {
			return fmt.Errorf("instruction counts over the baseline %s: %w", f.check, err)
		}
		fmt.Fprintf(stdout, "within %.0f%% of %s\n", 100*f.tolerance, f.check)
	}
	return nil
}

// icountRunCommand is the hidden command that does one counted run (under
// valgrind, started by icount): PATH SIDE ADDR SINKADDR N.
const icountRunCommand = "icount-run"

// icountRun runs the hidden command.
func icountRun(ctx context.Context, args []string, _, _ io.Writer) error {
	n, err := strconv.Atoi(args[4])
	if err != nil || n <= 0 {
		return usagef("%s: N must be a positive number, not %q", icountRunCommand, args[4])
	}
	// The driver closes standard input once the sink has read every
	// frame of a sink run.
	hold := func() { _, _ = io.Copy(io.Discard, os.Stdin) }
	return bench.CountSide(ctx, args[0], args[1], bench.Targets{Addr: args[2], SinkAddr: args[3], Hold: hold}, n)
}
