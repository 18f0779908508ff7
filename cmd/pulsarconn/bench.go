package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/internal/bench"
)

// benchCommand runs "pulsarconn bench": every scenario of internal/bench,
// raw and through the library, in one run, printed as one table.
func benchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "a run of a few seconds (short loops, 500 idle connections): noisy figures, for smoke tests")
	duration := fs.Duration("duration", 0, "length of each measured loop, over all its rounds (default 2s; 150ms with --quick)")
	rounds := fs.Int("rounds", 0, "turns raw and library loops take in each scenario, alternating (default 4; 1 with --quick)")
	window := fs.Int("window", 0, "sends awaiting their receipt in the receipts scenario (default 1000)")
	idle := fs.Int("idle", 0, "idle connections measured (default 10000; 500 with --quick)")
	reconnect := fs.Int("reconnect", 0, "clients of the reconnect scenario (default 100; 20 with --quick)")
	jsonFile := fs.String("json", "", "also write the report as JSON to this file")
	svgFile := fs.String("svg", "", "also write a bar chart (SVG) of raw, pulsarconn and the compared client to this file")
	compare := fs.String("compare", "", "merge another client's figures from this JSON file (interop/cmd/clientbench)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: bench takes flags only", errUsage)
	}
	var o bench.Options
	if *quick {
		o = bench.Quick()
	}
	if *duration > 0 {
		o.Duration = *duration
	}
	if *rounds > 0 {
		o.Rounds = *rounds
	}
	if *window > 0 {
		o.Window = *window
	}
	if *idle > 0 {
		o.IdleConns = *idle
	}
	if *reconnect > 0 {
		o.ReconnectConns = *reconnect
	}
	var other *bench.Report
	if *compare != "" {
		var err error
		if other, err = bench.ReadReport(*compare); err != nil {
			return err
		}
	}
	o.Network = func() bench.Network { return memory.NewNetwork() }
	o.IdlePhase = idlePhaseInChild
	o.Progress = stderr
	start := time.Now()
	r, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	if other != nil {
		r.Merge(other)
	}
	if err := r.WriteTable(stdout); err != nil {
		return err
	}
	r.WriteGoals(stdout)
	fmt.Fprintf(stdout, "\nrun took %v\n", time.Since(start).Round(time.Millisecond))
	if *jsonFile != "" {
		if err := writeFile(*jsonFile, r.WriteJSON); err != nil {
			return err
		}
	}
	if *svgFile != "" {
		if err := writeFile(*svgFile, r.WriteSVG); err != nil {
			return err
		}
	}
	return nil
}

// idlePhaseCommand is the hidden command that measures one phase of the
// idle-connection scenario and prints bytes per connection.
const idlePhaseCommand = "bench-idle-phase"

// selfCommand returns a command that runs this program with args; tests
// replace it, as their binary is not this program.
var selfCommand = func(ctx context.Context, args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, exe, args...), nil
}

// idlePhaseInChild measures one phase of the idle-connection scenario in
// a fresh process: the memory a connection costs is a difference of two
// measurements of a few KB per connection, which the heap and stack spans
// left behind by earlier scenarios (and by the other phase) blur by as
// much again in one process.
func idlePhaseInChild(ctx context.Context, phase string, n int) (float64, error) {
	cmd, err := selfCommand(ctx, idlePhaseCommand, phase, strconv.Itoa(n))
	if err != nil {
		return 0, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("bench: idle phase %s: %w: %s", phase, err, bytes.TrimSpace(stderr.Bytes()))
	}
	v, err := strconv.ParseFloat(string(bytes.TrimSpace(out)), 64)
	if err != nil {
		return 0, fmt.Errorf("bench: idle phase %s printed %q: %w", phase, out, err)
	}
	return v, nil
}

// idlePhase runs the hidden command: PHASE N.
func idlePhase(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return fmt.Errorf("%w: %s PHASE N", errUsage, idlePhaseCommand)
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n <= 0 {
		return fmt.Errorf("%w: %s: N must be a positive number, not %q", errUsage, idlePhaseCommand, args[1])
	}
	v, err := bench.MeasureIdlePhase(ctx, memory.NewNetwork(), n, args[0])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%.1f\n", v)
	return err
}

// writeFile creates path and writes it with write.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
