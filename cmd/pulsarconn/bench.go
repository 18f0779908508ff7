package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/internal/bench"
)

const benchAbout = `
Runs every scenario of internal/bench, raw loops and through the library,
against the lean benchmark server and against pulsartest ("pulsarconn
serve", started in a child process on a free port), in one run of about a
minute (a few seconds with --quick), and prints one table and the goals
met. The output files (--json, --svg) are checked
before the run starts, and written whole at its end. See docs/benchmarks.md.`

// benchFlags defines the flags of "pulsarconn bench", which runs every
// scenario of internal/bench, raw and through the library, in one run,
// printed as one table.
func benchFlags(fs *flag.FlagSet) runFunc {
	var f benchSettings
	fs.BoolVar(&f.quick, "quick", false, "a run of a few seconds (short loops, 500 idle connections): noisy figures, for smoke tests")
	fs.DurationVar(&f.duration, "duration", 0, "length of each measured loop, over all its rounds (default 2s; 150ms with --quick)")
	fs.IntVar(&f.rounds, "rounds", 0, "turns raw and library loops take in each scenario, alternating (default 4; 1 with --quick)")
	fs.IntVar(&f.window, "window", 0, "sends awaiting their receipt in the receipts scenario (default 1000)")
	fs.IntVar(&f.idle, "idle", 0, "idle connections measured (default 10000; 500 with --quick)")
	fs.IntVar(&f.reconnect, "reconnect", 0, "clients of the reconnect scenario (default 100; 20 with --quick)")
	fs.StringVar(&f.jsonFile, "json", "", "also write the report as JSON to this `FILE`")
	fs.StringVar(&f.svgFile, "svg", "", "also write a bar chart (SVG) of raw, pulsarconn and the compared client to this `FILE`")
	fs.StringVar(&f.compare, "compare", "", "merge another client's figures from this JSON `FILE` (interop/cmd/clientbench)")
	fs.BoolVar(&f.icount, "icount", false, "also count instructions per operation under valgrind (as pulsarconn icount --runs 1) and print their ratio to raw in each row")
	return func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
		return benchCommand(ctx, f, stdout, stderr)
	}
}

// benchSettings are the flags of bench.
type benchSettings struct {
	quick, icount                   bool
	duration                        time.Duration
	rounds, window, idle, reconnect int
	jsonFile, svgFile, compare      string
}

// benchCommand runs "pulsarconn bench".
func benchCommand(ctx context.Context, f benchSettings, stdout, stderr io.Writer) error {
	var o bench.Options
	if f.quick {
		o = bench.Quick()
	}
	if f.duration > 0 {
		o.Duration = f.duration
	}
	if f.rounds > 0 {
		o.Rounds = f.rounds
	}
	if f.window > 0 {
		o.Window = f.window
	}
	if f.idle > 0 {
		o.IdleConns = f.idle
	}
	if f.reconnect > 0 {
		o.ReconnectConns = f.reconnect
	}
	var other *bench.Report
	if f.compare != "" {
		var err error
		if other, err = bench.ReadReport(f.compare); err != nil {
			return err
		}
	}
	// The output files are made now, so that a bad path fails before the
	// run rather than after it.
	var outputs []*outputFile
	defer func() {
		for _, out := range outputs {
			out.discard()
		}
	}()
	for _, path := range []string{f.jsonFile, f.svgFile} {
		out, err := createOutput(path)
		if err != nil {
			return err
		}
		outputs = append(outputs, out)
	}
	o.Network = func() bench.Network { return memory.NewNetwork() }
	o.IdlePhase = idlePhaseInChild
	o.SecondServer = pulsartestInChild
	o.Progress = stderr
	start := time.Now()
	r, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	if other != nil {
		r.Merge(other)
	}
	if f.icount {
		if err := addInstructions(ctx, r, stderr); err != nil {
			return err
		}
	}
	if err := r.WriteTable(stdout); err != nil {
		return err
	}
	r.WriteGoals(stdout)
	fmt.Fprintf(stdout, "\nrun took %v\n", time.Since(start).Round(time.Millisecond))
	if err := outputs[0].commit(r.WriteJSON); err != nil {
		return err
	}
	return outputs[1].commit(r.WriteSVG)
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

// pulsartestInChild starts "pulsarconn serve" in a child process on a
// free port of 127.0.0.1, with the benchmark's topic partitioned in 4, and
// returns the URL it prints: the bench's second, independent server. stop
// interrupts it and waits for it to end.
func pulsartestInChild(ctx context.Context) (string, func() error, error) {
	cmd, err := selfCommand(ctx, "serve", "--listen", "pulsar://127.0.0.1:0", "--partitions", bench.Topic+"=4")
	if err != nil {
		return "", nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() error {
		_ = cmd.Process.Signal(os.Interrupt)
		_, _ = io.Copy(io.Discard, out)
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("bench: pulsartest: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
		}
		return nil
	}
	// serve prints "broker-0: URL" for each member, then "serving URL
	// (Ctrl-C stops)" once it accepts connections.
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if url, ok := strings.CutPrefix(sc.Text(), "serving "); ok {
			url, _, _ = strings.Cut(url, " ")
			// The rest of its output is drained by stop.
			return url, stop, nil
		}
	}
	err = stop()
	return "", nil, fmt.Errorf("bench: pulsartest printed no address: %v", err)
}

// idlePhase runs the hidden command: PHASE N.
func idlePhase(ctx context.Context, args []string, stdout, _ io.Writer) error {
	n, err := strconv.Atoi(args[1])
	if err != nil || n <= 0 {
		return usagef("%s: N must be a positive number, not %q", idlePhaseCommand, args[1])
	}
	v, err := bench.MeasureIdlePhase(ctx, memory.NewNetwork(), n, args[0])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%.1f\n", v)
	return err
}

// outputFile is an output file made before a long run: a temporary file
// in the same directory, renamed to its path once written whole.
type outputFile struct {
	path string   // "": no output
	tmp  *os.File // nil once committed or discarded
}

// createOutput makes the temporary file of path ("" for none).
func createOutput(path string) (*outputFile, error) {
	out := &outputFile{path: path}
	if path == "" {
		return out, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", path, err)
	}
	out.tmp = tmp
	return out, nil
}

// commit writes the file with write and puts it in place.
func (o *outputFile) commit(write func(io.Writer) error) error {
	if o.tmp == nil {
		return nil
	}
	tmp := o.tmp
	o.tmp = nil
	err := write(tmp)
	if err == nil {
		err = tmp.Chmod(0o644) // as os.Create would make it, under a usual umask
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), o.path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	return nil
}

// discard removes the file if it was not committed.
func (o *outputFile) discard() {
	if o.tmp != nil {
		_ = o.tmp.Close()
		_ = os.Remove(o.tmp.Name())
		o.tmp = nil
	}
}

// instructionRows maps each counted path (pulsarconn icount) to the row
// of bench's report whose instruction ratio it gives.
var instructionRows = map[string]string{
	"rr1": "rr1.rate", "rr64": "rr64.rate", "rr64async": "rr64async.rate",
	"receipts": "receipts.rate", "sink": "publish.rate", "delivery": "delivery.rate",
}

// addInstructions counts every path once under valgrind, as icount does,
// against the lean server and (but for the paths it cannot serve) a
// pulsartest in a child process, and records the library's instructions
// over the raw loop's in r's rows.
func addInstructions(ctx context.Context, r *bench.Report, progress io.Writer) (err error) {
	cmd, err := selfCommand(ctx, icountRunCommand)
	if err != nil {
		return err
	}
	url, stop, err := pulsartestInChild(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if serr := stop(); err == nil {
			err = serr
		}
	}()
	addr, err := pulsarconn.ParseURL(url)
	if err != nil {
		return err
	}
	fmt.Fprintln(progress, "counting instructions under valgrind (about two minutes)")
	counts, err := bench.CountInstructions(ctx, bench.CountConfig{Worker: cmd.Args, Runs: 1, Pulsartest: addr.HostPort})
	if err != nil {
		return err
	}
	for _, row := range counts.Rows {
		if id, ok := instructionRows[row.Path]; ok && row.RawPerOp() > 0 {
			r.SetInstructions(id, row.Ratio(), row.RatioPulsartest())
		}
	}
	return nil
}
