package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
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
	duration := fs.Duration("duration", 0, "length of each measured loop (default 2s; 150ms with --quick)")
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
	o.Network = memory.NewNetwork()
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
