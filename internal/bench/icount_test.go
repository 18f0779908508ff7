package bench

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// Every counted path does its n operations, raw and through the library,
// against the servers the driver runs; the sink path's frames all arrive
// before Hold returns, and only then does it close its connection.
func TestCountSides(t *testing.T) {
	ctx := testenv.Context(t)
	rr, err := NewServer(ServerConfig{Partitions: 4})
	require.NoError(t, err)
	defer rr.Close()
	pt := startPulsartest(t)
	for _, p := range CountPaths() {
		for _, side := range []string{string(SideRaw), string(SideLibrary)} {
			t.Run(p.Name+"/"+side, func(t *testing.T) {
				sink, err := NewServer(ServerConfig{Sink: true})
				require.NoError(t, err)
				defer sink.Close()
				const n = 130 // more than the receipts window
				held := false
				tg := Targets{Addr: rr.Addr(), SinkAddr: sink.Addr(), Hold: func() {
					held = true
					require.NoError(t, sink.WaitSunk(ctx, int64(n*SinkFrameLen())))
				}}
				require.NoError(t, CountSide(ctx, p.Name, side, tg, n))
				assert.Equal(t, p.Sink, held, "Hold is called by the sink path only")
				if !p.Sink {
					assert.Zero(t, sink.Sunk())
				}
				if !p.LeanOnly {
					require.NoError(t, CountSide(ctx, p.Name, side, Targets{Addr: pt}, n), "against pulsartest")
				}
			})
		}
	}
	assert.ErrorContains(t, CountSide(ctx, "nope", string(SideRaw), Targets{}, 1), `unknown counted path "nope"`)
	assert.ErrorContains(t, CountSide(ctx, "rr1", "both", Targets{}, 1), `unknown side "both"`)
}

// A callgrind output file, compressed names and relative positions as
// callgrind writes them: the cost line after a calls= line is the
// callee's, not the caller's.
const callgrindSample = `# callgrind format
version: 1
creator: callgrind-3.19.0
positions: line
events: Ir
summary: 1111

ob=(1) /tmp/x
fl=(1) /src/a.go
fn=(1) main.work
16 100
+2 10
cfl=(1)
cfn=(2) runtime.findRunnable
calls=1 0
* 900
fn=(2)
5 40
-1 60
fn=(3) main.other
* 1
`

func TestParseSelfCosts(t *testing.T) {
	self, err := parseSelfCosts(strings.NewReader(callgrindSample))
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"main.work": 110, "runtime.findRunnable": 100, "main.other": 1}, self)

	_, err = parseSelfCosts(strings.NewReader("fn=(1) f\n12 x\n"))
	assert.ErrorContains(t, err, "cost line")
}

func TestCountedInstructions(t *testing.T) {
	threads := []map[string]int64{
		{"main.work": 110, "runtime.findRunnable": 100, "runtime.netpoll": 7, "runtime.mallocgc": 5},
		{"runtime.sysmon": 50, "runtime.nanotime1.abi0": 9, "runtime.retake": 4}, // the monitor's thread
		{"runtime.gopark": 3},
	}
	assert.Equal(t, int64(110+5+3), CountedInstructions(threads))
}

func TestCountReportCheck(t *testing.T) {
	r := &CountReport{Rows: []CountRow{
		{Path: "a", Title: "path a", N1: 1, N2: 2, Raw: []float64{100, 101, 99}, Library: []float64{114, 200, 113}},
		{Path: "b", Title: "path b", N1: 1, N2: 2, Raw: []float64{10}, Library: []float64{11.6}},
		{Path: "c", Title: "path c", N1: 1, N2: 2, Raw: []float64{10}, Library: []float64{10}},
	}}
	assert.InDelta(t, 114, r.Rows[0].LibraryPerOp(), 0) // the median, not the mean
	assert.InDelta(t, 1.14, r.Rows[0].Ratio(), 1e-9)
	assert.InDelta(t, 0.02, spread(r.Rows[0].Raw), 1e-9)

	base := CountBaseline{Library: map[string]float64{"a": 100, "b": 10}}
	var out bytes.Buffer
	err := r.Check(base, 0.15, &out)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "a:", "14% over is within 15%")
	assert.Contains(t, err.Error(), "b: 12 instructions per operation, +16.0% over the baseline's 10")
	assert.Contains(t, err.Error(), "c: not in the baseline")
	assert.Contains(t, out.String(), "FAIL")

	base.Library["b"], base.Library["c"] = 11, 10
	assert.NoError(t, r.Check(base, 0.15, &out))

	var table bytes.Buffer
	require.NoError(t, r.WriteTable(&table))
	assert.Contains(t, table.String(), "path a")
	assert.Contains(t, table.String(), "1.14x")
	assert.Contains(t, table.String(), "2.00%", "the spread of path a's raw figures")
	assert.Contains(t, table.String(), "  -  ", "no spread for one run")
}

// The committed baseline has a figure for every counted path, so that CI
// checks them all.
func TestCommittedBaselineCoversEveryPath(t *testing.T) {
	b, err := ReadCountBaseline("testdata/icount-baseline.json")
	require.NoError(t, err)
	for _, p := range CountPaths() {
		assert.Positive(t, b.Library[p.Name], p.Name)
		assert.Positive(t, b.Raw[p.Name], p.Name)
	}
	assert.Len(t, b.Library, len(CountPaths()))
}

// startPulsartest serves pulsartest, with the bench's topic partitioned,
// on 127.0.0.1 for the test, and returns its host:port.
func startPulsartest(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := pulsartest.NewServer(pulsartest.WithPartitionedTopic(Topic, 4))
	require.NoError(t, srv.Start(ln))
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// fakeValgrind is a stand-in for valgrind: it writes one thread's
// callgrind file whose work is N times a cost per operation that tells
// the side and server apart (raw 10, library 30; plus 1 against the
// address in PT_ADDR), and the monitor thread's, as callgrind would.
const fakeValgrind = `#!/bin/sh
for a in "$@"; do
  case "$a" in --callgrind-out-file=*) out="${a#--callgrind-out-file=}";; esac
done
# The worker's arguments end with PATH SIDE ADDR SINKADDR N.
eval "n=\${$#}"
eval "addr=\${$(($# - 2))}"
eval "side=\${$(($# - 3))}"
per=10
[ "$side" = library ] && per=30
[ "$addr" = "$PT_ADDR" ] && per=$((per + 1))
printf 'events: Ir\nfn=(1) runtime.sysmon\n1 5\n' > "$out-01"
printf 'events: Ir\nfn=(1) main.work\n1 %d\n' $((n * per)) > "$out-02"
`

// CountInstructions counts each path on each side against the lean
// server and, when given, pulsartest (but for the paths it cannot
// serve), and takes the difference per operation of the two runs: with a
// stand-in for valgrind whose counts are known.
func TestCountInstructionsAgainstBothServers(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "valgrind")
	require.NoError(t, os.WriteFile(fake, []byte(fakeValgrind), 0o755))
	t.Setenv("PT_ADDR", "127.0.0.1:1")
	r, err := CountInstructions(testenv.Context(t), CountConfig{
		Worker: []string{"worker"}, Valgrind: fake, Runs: 2,
		Paths: []string{"rr1", "delivery"}, Pulsartest: "127.0.0.1:1",
	})
	require.NoError(t, err)
	require.Len(t, r.Rows, 2)
	rr1, delivery := r.Rows[0], r.Rows[1]
	assert.Equal(t, []float64{10, 10}, rr1.Raw)
	assert.Equal(t, []float64{30, 30}, rr1.Library)
	assert.Equal(t, []float64{11, 11}, rr1.RawPulsartest)
	assert.Equal(t, []float64{31, 31}, rr1.LibraryPulsartest)
	assert.InDelta(t, 3.0, rr1.Ratio(), 1e-9)
	assert.InDelta(t, 31.0/11, rr1.RatioPulsartest(), 1e-9)
	assert.Equal(t, []float64{30, 30}, delivery.Library)
	assert.Nil(t, delivery.LibraryPulsartest, "pulsartest has no backlog to deliver")
	assert.Zero(t, delivery.RatioPulsartest())
}

// Without valgrind, counting fails at once and says what to install.
func TestCountInstructionsNeedsValgrind(t *testing.T) {
	_, err := CountInstructions(context.Background(), CountConfig{Worker: []string{"x"}, Valgrind: "/nonexistent/valgrind"})
	assert.ErrorContains(t, err, "Debian package valgrind")
}
