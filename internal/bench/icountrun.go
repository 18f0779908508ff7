package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// CountConfig configures CountInstructions.
type CountConfig struct {
	// Worker is the command line of a counted run, to which the driver
	// appends PATH SIDE ADDR SINKADDR N; the program must call CountSide
	// with them (cmd/pulsarconn: itself and its hidden icount-run).
	Worker []string
	// Valgrind is the valgrind program (default "valgrind" on PATH).
	Valgrind string
	// Runs is how many times each path is counted (default 3).
	Runs int
	// Paths are the names of the paths to count (default all).
	Paths []string
	// Parallel is how many counted runs go at once (default 2).
	Parallel int
	// Pulsartest, when set, is the host:port of a second server
	// (pulsartest, in another process): every path but the LeanOnly
	// ones is counted against it too.
	Pulsartest string
	// Progress, when set, gets a line as each counted run ends.
	Progress io.Writer
}

// WorkerEnv is the environment a counted run gets on top of the
// driver's: one P (no work stealing between Ps), no garbage collection
// (the cost of an allocation is counted, not the collector's timing), and
// no asynchronous preemption (its signals crash callgrind).
var WorkerEnv = []string{"GOMAXPROCS=1", "GOGC=off", "GODEBUG=asyncpreemptoff=1"}

// CountRow is the instructions per operation of one path, per run.
type CountRow struct {
	Path  string `json:"path"`
	Title string `json:"title"`
	// N1 and N2 are the operation counts of the two counted runs.
	N1 int `json:"n1"`
	N2 int `json:"n2"`
	// Raw and Library hold one figure per run: (I(N2) − I(N1)) / (N2 − N1).
	Raw     []float64 `json:"raw"`
	Library []float64 `json:"library"`
	// RawPulsartest and LibraryPulsartest are the same against the
	// second server (CountConfig.Pulsartest), when counted.
	RawPulsartest     []float64 `json:"raw_pulsartest,omitempty"`
	LibraryPulsartest []float64 `json:"library_pulsartest,omitempty"`
}

// RawPerOp is the median of Raw.
func (r CountRow) RawPerOp() float64 { return median(r.Raw) }

// LibraryPerOp is the median of Library.
func (r CountRow) LibraryPerOp() float64 { return median(r.Library) }

// Ratio is the library's instructions per operation over the raw loop's.
func (r CountRow) Ratio() float64 { return ratioOf(r.Library, r.Raw) }

// RatioPulsartest is Ratio against the second server; 0 if not counted.
func (r CountRow) RatioPulsartest() float64 { return ratioOf(r.LibraryPulsartest, r.RawPulsartest) }

// ratioOf is the median of lib over the median of raw, or 0.
func ratioOf(lib, raw []float64) float64 {
	if m := median(raw); len(raw) > 0 && m > 0 {
		return median(lib) / m
	}
	return 0
}

// The servers a path is counted against.
const (
	serverLean       = "lean"
	serverPulsartest = "pulsartest"
)

// CountReport is what CountInstructions measured.
type CountReport struct {
	Rows    []CountRow    `json:"rows"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// CountInstructions counts, for each path, the instructions the raw loop
// and the library execute per operation, under valgrind's callgrind, with
// the servers in this process (they are not counted).
func CountInstructions(ctx context.Context, cfg CountConfig) (*CountReport, error) {
	if len(cfg.Worker) == 0 {
		return nil, errors.New("bench: CountConfig.Worker is empty")
	}
	if cfg.Valgrind == "" {
		cfg.Valgrind = "valgrind"
	}
	if _, err := exec.LookPath(cfg.Valgrind); err != nil {
		return nil, fmt.Errorf("bench: instruction counts need valgrind (Debian package valgrind): %w", err)
	}
	cfg.Runs = max(cfg.Runs, 1)
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	var paths []CountPath
	for _, p := range CountPaths() {
		if len(cfg.Paths) == 0 || slices.Contains(cfg.Paths, p.Name) {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 || len(cfg.Paths) > 0 && len(paths) != len(cfg.Paths) {
		return nil, fmt.Errorf("bench: unknown path in %q", cfg.Paths)
	}
	rr, err := NewServer(ServerConfig{Partitions: 4})
	if err != nil {
		return nil, err
	}
	defer rr.Close()
	servers := map[string]Targets{serverLean: {Addr: rr.Addr()}}
	if cfg.Pulsartest != "" {
		servers[serverPulsartest] = Targets{Addr: cfg.Pulsartest}
	}
	dir, err := os.MkdirTemp("", "pulsarconn-icount-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	// One job per counted run; each writes its total into counts.
	type job struct {
		path   CountPath
		server string
		side   string
		run, n int
		out    string
		count  int64
		err    error
	}
	var jobs []*job
	for run := range cfg.Runs {
		for _, p := range paths {
			for _, server := range []string{serverLean, serverPulsartest} {
				if _, ok := servers[server]; !ok || server == serverPulsartest && p.LeanOnly {
					continue
				}
				for _, side := range []string{string(SideRaw), string(SideLibrary)} {
					for _, n := range []int{p.N1, p.N2} {
						j := &job{path: p, server: server, side: side, run: run, n: n}
						j.out = filepath.Join(dir, fmt.Sprintf("%s-%s-%s-%d-%d", p.Name, server, side, n, run))
						jobs = append(jobs, j)
					}
				}
			}
		}
	}
	start := time.Now()
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	var progressMu sync.Mutex
	for _, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				j.err = ctx.Err()
				return
			}
			j.count, j.err = countRun(ctx, cfg, j.out, j.path, j.side, servers[j.server], j.n)
			if cfg.Progress != nil {
				progressMu.Lock()
				fmt.Fprintf(cfg.Progress, "%s %s (%s) n=%d run %d: %d instructions (%v)\n", j.path.Name, j.side, j.server, j.n, j.run+1, j.count, j.err)
				progressMu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, j := range jobs {
		if j.err != nil {
			return nil, fmt.Errorf("bench: counting %s %s (%s) n=%d: %w", j.path.Name, j.side, j.server, j.n, j.err)
		}
	}

	r := &CountReport{Elapsed: time.Since(start)}
	for _, p := range paths {
		row := CountRow{Path: p.Name, Title: p.Title, N1: p.N1, N2: p.N2}
		figures := map[string]map[string]*[]float64{
			serverLean:       {string(SideRaw): &row.Raw, string(SideLibrary): &row.Library},
			serverPulsartest: {string(SideRaw): &row.RawPulsartest, string(SideLibrary): &row.LibraryPulsartest},
		}
		for run := range cfg.Runs {
			for server, sides := range figures {
				for side, into := range sides {
					var i1, i2 int64
					found := false
					for _, j := range jobs {
						if j.path.Name == p.Name && j.server == server && j.side == side && j.run == run {
							found = true
							if j.n == p.N1 {
								i1 = j.count
							} else {
								i2 = j.count
							}
						}
					}
					if found {
						*into = append(*into, float64(i2-i1)/float64(p.N2-p.N1))
					}
				}
			}
		}
		r.Rows = append(r.Rows, row)
	}
	return r, nil
}

// countRun runs one counted run under callgrind and returns the
// instructions it counted (see CountedInstructions). A run of the sink
// path gets a sink of its own, and its standard input is closed (which
// ends its Targets.Hold) once that sink has read its n frames.
func countRun(ctx context.Context, cfg CountConfig, out string, p CountPath, side string, t Targets, n int) (int64, error) {
	var sink *Server
	if p.Sink {
		var err error
		if sink, err = NewServer(ServerConfig{Sink: true}); err != nil {
			return 0, err
		}
		defer sink.Close()
		t.SinkAddr = sink.Addr()
	}
	args := []string{"--tool=callgrind", "--separate-threads=yes", "--callgrind-out-file=" + out}
	args = append(args, cfg.Worker...)
	args = append(args, p.Name, side, t.Addr, cmp.Or(t.SinkAddr, "-"), strconv.Itoa(n))
	cmd := exec.CommandContext(ctx, cfg.Valgrind, args...)
	cmd.Env = append(os.Environ(), WorkerEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	var sinkErr error
	if sink != nil {
		waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		want := int64(n) * int64(SinkFrameLen())
		if err := sink.WaitSunk(waitCtx, want); err != nil {
			sinkErr = fmt.Errorf("the sink read %d of the %d bytes published: %w", sink.Sunk(), want, err)
		}
		cancel()
	}
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("%w: %s", err, lastLines(stderr.String(), 5))
	}
	if sinkErr != nil {
		return 0, sinkErr
	}
	files, err := filepath.Glob(out + "-*")
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return 0, fmt.Errorf("callgrind wrote no %s-* file: %s", out, lastLines(stderr.String(), 5))
	}
	var threads []map[string]int64
	named := false
	for _, f := range files {
		self, err := readSelfCosts(f)
		if err != nil {
			return 0, err
		}
		_, ok := self["runtime.sysmon"]
		named = named || ok
		threads = append(threads, self)
		_ = os.Remove(f)
	}
	if !named {
		// Without names nothing can be left out, and the counts are
		// those of the idle loops too: higher, and as noisy as times.
		return 0, fmt.Errorf("callgrind found no runtime.sysmon: %s has no symbol table (go run strips it; build the program with go build)", cfg.Worker[0])
	}
	return CountedInstructions(threads), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "; ")
}

// idleFunctions are the Go runtime's search for work and its waiting: how
// often a thread goes round them depends on when the server's answer
// arrives, not on the work done, and they made the counts of identical
// runs differ by 10%. CountedInstructions leaves them out, with the
// monitor thread (runtime.sysmon), which wakes on a timer.
var idleFunctions = map[string]bool{
	"runtime.findRunnable": true, "runtime.stealWork": true, "runtime.runqgrab": true,
	"runtime.runqsteal": true, "runtime.netpoll": true, "runtime.checkTimersNoP": true,
	"runtime.checkRunqsNoP": true, "runtime.checkIdleGCNoP": true, "runtime.pidleput": true,
	"runtime.pidleget": true, "runtime.stopm": true, "runtime.notesleep": true,
	"runtime.futexsleep": true, "runtime.usleep.abi0": true, "runtime.osyield.abi0": true,
	"runtime.procyieldAsm.abi0": true, "runtime.nanotime1.abi0": true, "runtime.lock2": true,
	"runtime.unlock2": true, "runtime.incidlelocked": true, "runtime.setBlockOnExitSyscall": true,
	"runtime.checkdead": true, "runtime.futex.abi0": true, "runtime.futexwakeup": true,
	"runtime.notewakeup": true, "runtime.startm": true, "runtime.wakep": true,
	"runtime.handoffp": true, "runtime.mPark": true, "runtime.timeSleepUntil": true,
	"runtime.releasepNoTrace": true, "runtime.acquirepNoTrace": true,
	// Taking and giving up a P as a thread goes idle or leaves a system
	// call: a thread that blocks in a read hands its P to another, or
	// not, depending on how long it blocks.
	"runtime.acquirep": true, "runtime.releasep": true, "runtime.wirep": true,
	"runtime.(*limiterEvent).stop": true, "runtime.(*m).snapshotAllp": true,
	"runtime.(*mcache).prepareForSweep": true, "runtime.exitsyscallTryGetP": true,
	"runtime.exitsyscallNoP": true,
}

// CountedInstructions is the figure of one counted run, from the self
// cost of each function on each thread (one map per thread): every
// instruction, except those of the thread that runs runtime.sysmon and
// those of idleFunctions.
func CountedInstructions(threads []map[string]int64) int64 {
	var total int64
	for _, self := range threads {
		if _, ok := self["runtime.sysmon"]; ok {
			continue
		}
		for fn, n := range self {
			if !idleFunctions[fn] {
				total += n
			}
		}
	}
	return total
}

// readSelfCosts reads a callgrind output file (one thread's) and returns
// the instructions executed in each function itself (not in its callees).
func readSelfCosts(path string) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseSelfCosts(f)
}

// parseSelfCosts parses callgrind's output format: "fn=" names the
// function the cost lines that follow belong to, with "(id) name" the
// first time a compressed name appears and "(id)" after; a "calls=" line
// is followed by the inclusive cost of that call, which is the callee's,
// not this function's. A cost line's last field is its Ir count (the one
// event collected).
func parseSelfCosts(r io.Reader) (map[string]int64, error) {
	names := map[string]string{}
	self := map[string]int64{}
	fn := ""
	afterCall := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	name := func(v string) string {
		if !strings.HasPrefix(v, "(") {
			return v
		}
		id, rest, _ := strings.Cut(v, ")")
		if rest = strings.TrimSpace(rest); rest != "" {
			names[id] = rest
			return rest
		}
		return names[id]
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
		case strings.HasPrefix(line, "fn="):
			fn = name(line[3:])
		case strings.HasPrefix(line, "cfn="):
			name(line[4:]) // may define a compressed name
		case strings.HasPrefix(line, "calls="):
			afterCall = true
		case line[0] >= '0' && line[0] <= '9' || line[0] == '+' || line[0] == '-' || line[0] == '*':
			if afterCall {
				afterCall = false
				continue
			}
			fields := strings.Fields(line)
			n, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
			if err != nil || len(fields) < 2 {
				return nil, fmt.Errorf("bench: callgrind cost line %q", line)
			}
			self[fn] += n
		}
	}
	return self, sc.Err()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread is (max − min) / median of v, as a fraction.
func spread(v []float64) float64 {
	m := median(v)
	if m == 0 {
		return 0
	}
	return (slices.Max(v) - slices.Min(v)) / m
}

// WriteTable writes one line per path: instructions per operation, raw
// and library (medians over the runs), their ratio, and the spread of
// each over the runs.
func (r *CountReport) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "path\traw instr/op\tlibrary instr/op\tlibrary/raw\traw spread\tlibrary spread\truns\t")
	pct := func(v []float64) string {
		if len(v) < 2 {
			return "-"
		}
		return fmt.Sprintf("%.2f%%", 100*spread(v))
	}
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2fx\t%s\t%s\t%d\t\n", row.Title,
			row.RawPerOp(), row.LibraryPerOp(), row.Ratio(), pct(row.Raw), pct(row.Library), len(row.Raw))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "counted in %v\n", r.Elapsed.Round(time.Second))
	return err
}

// WriteJSON writes the report as JSON.
func (r *CountReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// CountBaseline is the committed instructions per operation of each path
// (medians), which CI checks the library against.
type CountBaseline struct {
	// Note says how the file was made.
	Note    string             `json:"note"`
	Raw     map[string]float64 `json:"raw"`
	Library map[string]float64 `json:"library"`
}

// Baseline returns the report's medians as a baseline.
func (r *CountReport) Baseline() CountBaseline {
	b := CountBaseline{
		Note:    "instructions per operation (medians); regenerate with: go build -o /tmp/pulsarconn ./cmd/pulsarconn && /tmp/pulsarconn icount --write-baseline internal/bench/testdata/icount-baseline.json",
		Raw:     map[string]float64{},
		Library: map[string]float64{},
	}
	for _, row := range r.Rows {
		b.Raw[row.Path] = float64(int64(row.RawPerOp()))
		b.Library[row.Path] = float64(int64(row.LibraryPerOp()))
	}
	return b
}

// Check returns an error naming every path whose library instructions
// per operation exceed the baseline's by more than tolerance (0.15:
// 15%), and every path the baseline lacks.
func (r *CountReport) Check(b CountBaseline, tolerance float64, w io.Writer) error {
	var errs []error
	for _, row := range r.Rows {
		base, ok := b.Library[row.Path]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: not in the baseline", row.Path))
			continue
		}
		got := row.LibraryPerOp()
		change := got/base - 1
		verdict := "ok"
		if change > tolerance {
			verdict = "FAIL"
			errs = append(errs, fmt.Errorf("%s: %.0f instructions per operation, %+.1f%% over the baseline's %.0f (limit %+.0f%%)",
				row.Path, got, 100*change, base, 100*tolerance))
		}
		fmt.Fprintf(w, "%-10s library %8.0f instr/op, baseline %8.0f: %+6.1f%% %s\n", row.Path, got, base, 100*change, verdict)
	}
	return errors.Join(errs...)
}

// ReadCountBaseline reads a baseline written by WriteCountBaseline.
func ReadCountBaseline(path string) (CountBaseline, error) {
	var b CountBaseline
	data, err := os.ReadFile(path)
	if err != nil {
		return b, err
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return b, fmt.Errorf("bench: %s: %w", path, err)
	}
	return b, nil
}

// WriteCountBaseline writes b as indented JSON to path.
func WriteCountBaseline(path string, b CountBaseline) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the note's "&&" as it is typed
	enc.SetIndent("", "  ")
	if err := enc.Encode(b); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
