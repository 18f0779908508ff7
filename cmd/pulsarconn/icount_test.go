package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/internal/bench"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
)

// The hidden command that valgrind runs does the path's operations
// against the given server.
func TestIcountRun(t *testing.T) {
	srv, err := bench.NewServer(bench.ServerConfig{Partitions: 4})
	require.NoError(t, err)
	defer srv.Close()
	ctx := testenv.Context(t)
	var out, errOut bytes.Buffer
	for _, side := range []string{string(bench.SideRaw), string(bench.SideLibrary)} {
		require.NoError(t, run(ctx, []string{icountRunCommand, "rr64async", side, srv.Addr(), "-", "100"}, &out, &errOut))
	}
	err = run(ctx, []string{icountRunCommand, "rr1", string(bench.SideRaw), srv.Addr(), "-", "0"}, &out, &errOut)
	assert.ErrorIs(t, err, errUsage)
	assert.ErrorContains(t, run(ctx, []string{icountRunCommand, "rr2", string(bench.SideRaw), srv.Addr(), "-", "1"}, &out, &errOut), `unknown counted path "rr2"`)
}

func TestIcountFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(testenv.Context(t), []string{"icount", "--runs", "0"}, &out, &errOut)
	assert.ErrorIs(t, err, errUsage)
	require.NoError(t, run(testenv.Context(t), []string{"help", "icount"}, &out, &errOut))
	assert.Contains(t, out.String(), "--check")
	assert.Contains(t, out.String(), "callgrind")
}
