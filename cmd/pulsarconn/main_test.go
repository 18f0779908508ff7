package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// asMainEnv makes the test binary act as the program: the bench command
// runs itself (selfCommand) for the idle-connection scenario.
const asMainEnv = "PULSARCONN_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	selfCommand = func(ctx context.Context, args ...string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, os.Args[0], args...)
		cmd.Env = append(os.Environ(), asMainEnv+"=1")
		return cmd, nil
	}
	goleak.VerifyTestMain(m)
}

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(testenv.Context(t), []string{"demo"}, &out, &out))
	s := out.String()
	assert.Contains(t, s, "lookup persistent://public/default/demo: connect to pulsar://demo-broker:6650")
	assert.Contains(t, s, "partitions persistent://public/default/demo: 4")
	assert.Contains(t, s, "receipts: 1000 of 1000")
	assert.Contains(t, s, "deliveries: 1000 of 1000 (checksum failures: 0)")
	assert.Contains(t, s, "publish-to-receipt latency: p50")
}

func TestLookupAndPartitionsAgainstTCPBroker(t *testing.T) {
	srv := pulsartest.NewTCP(t)
	srv.SetPartitions("persistent://public/default/t", 6)
	var out bytes.Buffer
	require.NoError(t, run(testenv.Context(t), []string{"lookup", "--url", srv.URL(), "persistent://public/default/t"}, &out, &out))
	assert.Equal(t, "lookup persistent://public/default/t: connect to "+srv.URL()+" authoritative=true proxy=false\n", out.String())
	out.Reset()
	require.NoError(t, run(testenv.Context(t), []string{"partitions", "--url", srv.URL(), "persistent://public/default/t"}, &out, &out))
	assert.Equal(t, "partitions persistent://public/default/t: 6\n", out.String())
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"nope"},
		{"demo", "extra"},
		{"lookup"},
		{"partitions", "a", "b"},
		{"lookup", "--bogus", "t"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), args, &out, &out)
		assert.ErrorIs(t, err, errUsage, strings.Join(args, " "))
	}
}

func TestLookupBadURL(t *testing.T) {
	var out bytes.Buffer
	err := run(testenv.Context(t), []string{"lookup", "--url", "http://x", "t"}, &out, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "invalid URL")
}
