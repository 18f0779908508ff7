package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/internal/bench"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
)

func TestBenchQuick(t *testing.T) {
	dir := t.TempDir()
	jsonFile, svgFile, compare := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.svg"), filepath.Join(dir, "other.json")
	// A compared client's figures, as interop/cmd/clientbench writes them.
	other := bench.NewReport(0)
	other.OtherClient = "pulsar-client-go"
	other.AddOther(bench.Row{ID: "rr64.rate", Scenario: "request/response, 64 in flight", Unit: "requests/s", HigherIsBetter: true}, 1000)
	var ob bytes.Buffer
	require.NoError(t, other.WriteJSON(&ob))
	require.NoError(t, os.WriteFile(compare, ob.Bytes(), 0o600))

	var out, errOut bytes.Buffer
	require.NoError(t, run(testenv.Context(t), []string{"bench", "--quick", "--idle", "200", "--json", jsonFile, "--svg", svgFile, "--compare", compare}, &out, &errOut))
	table := out.String()
	t.Log("\n" + table)
	for _, want := range []string{
		"request/response, 1 in flight", "request/response, 64 in flight",
		"p50 latency", "p90 latency", "p99 latency",
		"publish of pre-encoded 1 KiB SEND frames into the sink", "MB/s",
		"publish with receipts", "delivery to a consumer Handler",
		"memory per idle connection", "reconnect after the server drops",
		"allocs/op", "pulsar-client-go", "goals:",
		"raw (pulsartest)", "pulsarconn (pulsartest)", "instructions vs raw", "instructions vs raw (pulsartest)",
	} {
		assert.Contains(t, table, want)
	}
	b, err := os.ReadFile(jsonFile)
	require.NoError(t, err)
	var r bench.Report
	require.NoError(t, json.Unmarshal(b, &r))
	require.NotNil(t, r.Row("rr64.rate"))
	require.NotNil(t, r.Row("rr64.rate").Other)
	assert.Equal(t, 1000.0, *r.Row("rr64.rate").Other)
	assert.NotNil(t, r.Row("rr64.rate").LibraryVsOther)
	// The second server ran, in a child process.
	for _, id := range []string{"rr1.rate", "rr64.rate", "rr64async.rate", "receipts.rate"} {
		row := r.Row(id)
		require.NotNil(t, row, id)
		assert.NotNil(t, row.LibraryVsRawPulsartest, id)
	}
	assert.NotNil(t, r.Row("idle.client"))
	assert.NotNil(t, r.Row("reconnect.time"))
	// --icount gives every counted path's ratio to a row of the table.
	for _, p := range bench.CountPaths() {
		id, ok := instructionRows[p.Name]
		if assert.True(t, ok, "counted path %s has no row", p.Name) {
			pt := map[bool]float64{false: 1.7, true: 0}[p.LeanOnly]
			assert.True(t, r.SetInstructions(id, 1.5, pt), "no row %s", id)
			assert.Equal(t, 1.5, *r.Row(id).InstructionsVsRaw)
			if p.LeanOnly {
				assert.Nil(t, r.Row(id).InstructionsVsRawPulsartest)
			} else {
				assert.Equal(t, 1.7, *r.Row(id).InstructionsVsRawPulsartest)
			}
		}
	}
	svg, err := os.ReadFile(svgFile)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(svg), "<svg "), "an SVG document")
	assert.Contains(t, string(svg), "pulsar-client-go")
}

func TestBenchUsage(t *testing.T) {
	var out bytes.Buffer
	assert.ErrorIs(t, run(testenv.Context(t), []string{"bench", "extra"}, &out, &out), errUsage)
	assert.ErrorIs(t, run(testenv.Context(t), []string{"bench", "--bogus"}, &out, &out), errUsage)
}

// An output path that cannot be written fails before the run, not after
// it; a run that fails leaves no file behind.
func TestBenchChecksOutputPathsFirst(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"bench", "--json", filepath.Join(dir, "missing", "r.json")},
		{"bench", "--json", filepath.Join(dir, "r.json"), "--svg", filepath.Join(dir, "missing", "r.svg")},
	} {
		code, out, errOut := runMain(t, args...)
		assert.Equal(t, 1, code, args)
		assert.Empty(t, out, "no table: the run did not start")
		assert.Regexp(t, `^pulsarconn: cannot write .*missing/r\.(json|svg): .*no such file or directory\n$`, errOut, "no progress: the run did not start")
	}
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, left, "the output files made before the failure are removed")
}
