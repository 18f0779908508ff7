package core_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pulsarconn/pulsarconn/core"
)

var (
	simSeed      = flag.Int64("seed", -1, "TestSimulation: run only this seed, and print its step log")
	simSeeds     = flag.Int("seeds", 1_000, "TestSimulation: how many seeds to run (.ci/run runs 10,000)")
	simSeedStart = flag.Uint64("seedstart", 1, "TestSimulation: the first seed")
	simActions   = flag.Int("simsteps", 150, "TestSimulation: random actions per seed, before the faults stop")
)

// regressionsFile lists seeds that once failed; they run first, always.
const regressionsFile = "testdata/sim/regressions.txt"

// maxSimFailures is how many failing seeds a run reports before it stops.
const maxSimFailures = 3

// traceTail is how many steps of a failing seed's log are printed.
const traceTail = 60

// TestSimulation drives a core.Conn through thousands of seeded random
// runs — API calls, broker frames read in arbitrary pieces, disconnects,
// failed and late dials, late events of old generations, timers, auth
// challenges — each with its own subset of faults, and checks the Conn's
// every step against a model (see simulation_test.go). Each run then stops
// the faults and checks that the Conn converges to connected, resolves
// everything in flight, and stops gracefully.
//
// A failure prints `seed=N faults=[...]` and the tail of the step log;
// replay it alone with
//
//	go test ./core -run TestSimulation -seed N
//
// and add it to testdata/sim/regressions.txt once fixed.
func TestSimulation(t *testing.T) {
	if *simSeed >= 0 {
		seed := uint64(*simSeed)
		s, failure := runSeed(seed, *simActions, true)
		tail := s.trace
		if len(tail) > 400 {
			tail = tail[len(tail)-400:]
		}
		t.Logf("seed=%d faults=%v config: %s\n%s", seed, s.faults, describeConfig(s), strings.Join(tail, "\n"))
		if failure != "" {
			t.Fatalf("seed=%d faults=%v: %s", seed, s.faults, failure)
		}
		logStats(t, &s.stats)
		return
	}

	// The runs allocate many small short-lived objects and keep little:
	// collect less often.
	defer debug.SetGCPercent(debug.SetGCPercent(400))

	n := *simSeeds
	if testing.Short() && !flagSet("seeds") {
		n = 100
	}
	seeds := loadRegressions(t)
	nRegressions := len(seeds)
	for i := range n {
		if seed := *simSeedStart + uint64(i); !slices.Contains(seeds[:nRegressions], seed) {
			seeds = append(seeds, seed)
		}
	}

	type failure struct {
		index int
		seed  uint64
		msg   string
	}
	var (
		next     atomic.Int64
		stop     atomic.Bool
		mu       sync.Mutex
		total    simStats
		failures []failure
		wg       sync.WaitGroup
	)
	// Regression seeds first, then the rest, over a pool of workers. Each
	// seed's run is deterministic whichever worker runs it.
	run := func(from, to int) {
		next.Store(int64(from))
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				var st simStats
				for !stop.Load() {
					i := int(next.Add(1) - 1)
					if i >= to {
						break
					}
					s, msg := runSeed(seeds[i], *simActions, false)
					st.add(&s.stats)
					if msg != "" {
						mu.Lock()
						failures = append(failures, failure{i, seeds[i], msg})
						if len(failures) >= maxSimFailures {
							stop.Store(true)
						}
						mu.Unlock()
					}
				}
				mu.Lock()
				total.add(&st)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	run(0, nRegressions)
	run(nRegressions, len(seeds))

	slices.SortFunc(failures, func(a, b failure) int { return a.index - b.index })
	for _, f := range failures {
		// Replay the seed with its step log on: the run is the same.
		s, msg := runSeed(f.seed, *simActions, true)
		tail := s.trace
		if len(tail) > traceTail {
			tail = tail[len(tail)-traceTail:]
		}
		t.Errorf("seed=%d faults=%v: %s\nconfig: %s\nreplay: go test ./core -run TestSimulation -seed %d\nlast steps:\n%s",
			f.seed, faultsForSeed(f.seed), f.msg, describeConfig(s), f.seed, strings.Join(tail, "\n"))
		if msg != f.msg {
			t.Errorf("seed=%d is not deterministic: replay failed with %q", f.seed, msg)
		}
	}
	t.Logf("regression seeds: %d", nRegressions)
	logStats(t, &total)
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// TestSimulationIsDeterministic runs seeds twice with the step log on: a
// seed must replay the same run, step for step.
func TestSimulationIsDeterministic(t *testing.T) {
	for seed := uint64(1); seed <= 16; seed++ {
		a, failA := runSeed(seed, *simActions, true)
		b, failB := runSeed(seed, *simActions, true)
		if failA != failB || !slices.Equal(a.trace, b.trace) || a.stats != b.stats {
			t.Fatalf("seed=%d runs differ (%d and %d log lines)", seed, len(a.trace), len(b.trace))
		}
	}
}

func describeConfig(s *sim) string {
	c := s.cfg
	return fmt.Sprintf("connect-timeout=%v op-timeout=%v keepalive=%v backoff=[%v, %v] auth=%q",
		c.ConnectTimeout, c.OperationTimeout, c.KeepAliveInterval, c.BackoffMin, c.BackoffMax, c.AuthMethod)
}

func logStats(t *testing.T, st *simStats) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "seeds run: %d, steps (Conn inputs): %d\n", st.seeds, st.steps)
	b.WriteString("requests completed by outcome:")
	for o := range numOutcomes {
		fmt.Fprintf(&b, " %s=%d", outcomeNames[o], st.outcomes[o])
	}
	fmt.Fprintf(&b, "; refused at once=%d, cancelled=%d\n", st.rejected, st.cancelled)
	fmt.Fprintf(&b, "pushes delivered: %d, handshakes completed: %d, keepalive drops: %d, rejection drops: %d, refused at the request limit: %d, ended by a refusal of the credentials: %d, slowest settling: %v\n",
		st.pushes, st.connects, st.keepaliveDrops, st.rejectDrops, st.limited, st.refusals, st.settleMax)
	b.WriteString("faults injected by kind:")
	for f := range numFaults {
		fmt.Fprintf(&b, " %s=%d", faultNames[f], st.faults[f])
	}
	t.Log(b.String())
}

// loadRegressions reads the seeds of regressionsFile: the first field of
// each line that is not blank or a # comment.
func loadRegressions(t *testing.T) []uint64 {
	t.Helper()
	f, err := os.Open(regressionsFile)
	if err != nil {
		t.Fatalf("regression seeds: %v", err)
	}
	defer f.Close()
	var seeds []uint64
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		field, _, _ := strings.Cut(line, " ")
		seed, err := strconv.ParseUint(strings.TrimSpace(field), 10, 64)
		if err != nil {
			t.Fatalf("%s:%d: %v", regressionsFile, n, err)
		}
		seeds = append(seeds, seed)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("regression seeds: %v", err)
	}
	return seeds
}

// TestSimulationCatchesPlantedBug checks that the simulation has teeth:
// built with the simbug tag, the Conn keeps a waiting PRODUCER's pending
// entry when the connection is lost (see plantedbug_on.go), and the
// simulation must fail on it within its seed budget.
func TestSimulationCatchesPlantedBug(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the package's tests again")
	}
	if core.PlantedBug {
		t.Skip("this binary has the planted bug built in")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goBin, "test", "-count=1", "-tags", "simbug", "-run", "^TestSimulation$", "-seeds", "2000", ".")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the simulation did not catch the planted bug in 2000 seeds:\n%s", out)
	}
	if _, ok := err.(*exec.ExitError); !ok {
		t.Fatalf("go test: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "invariant violated") || !strings.Contains(string(out), "seed=") {
		t.Fatalf("the simulation failed, but not on an invariant:\n%s", out)
	}
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, "seed=") && strings.Contains(line, "invariant violated") {
			t.Logf("caught: %s", strings.TrimSpace(line))
			break
		}
	}
}
