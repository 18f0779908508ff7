package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	assert.Contains(t, s, "deliveries: 1000 of 1000 (checksum or decoding failures: 0)")
	assert.Contains(t, s, "publish-to-receipt latency: p50")
	assert.True(t, strings.HasSuffix(s, demoNext), "ends saying where its code is and what to read next")
}

// The demo's last words name files and Examples that exist.
func TestDemoNamesWhatExists(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, path := range []string{"cmd/pulsarconn/demo.go", "README.md", "docs/architecture.md", "docs/pulsartest.md"} {
		assert.Contains(t, demoNext, path)
		_, err := os.Stat(filepath.Join(root, path))
		assert.NoError(t, err, path)
	}
	for dir, examples := range map[string][]string{
		".":               {"ExampleStart", "ExampleBroker_RegisterProducer"},
		"pulsartest":      {"Example", "ExampleCluster"},
		"adapters/memory": {"ExampleNetwork", "ExampleClock"},
		"refclient":       {"Example_producerConsumer"},
	} {
		files, err := filepath.Glob(filepath.Join(root, dir, "*_test.go"))
		require.NoError(t, err)
		var src strings.Builder
		for _, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			src.Write(b)
		}
		for _, name := range examples {
			assert.Regexp(t, `\b`+name+`\b`, demoNext)
			assert.Contains(t, src.String(), "\nfunc "+name+"() {", "%s in %s", name, dir)
		}
	}
}

func TestLookupAndPartitionsAgainstTCPBroker(t *testing.T) {
	srv := pulsartest.NewTCP(t)
	srv.SetPartitions("persistent://public/default/t", 6)
	var out bytes.Buffer
	require.NoError(t, run(testenv.Context(t), []string{"lookup", "--url", srv.URL(), "persistent://public/default/t"}, &out, &out))
	assert.Equal(t, "lookup persistent://public/default/t: connect to "+srv.URL()+"\n", out.String())
	out.Reset()
	require.NoError(t, run(testenv.Context(t), []string{"partitions", "--url", srv.URL(), "persistent://public/default/t"}, &out, &out))
	assert.Equal(t, "partitions persistent://public/default/t: 6\n", out.String())
}

// Flags may follow the positional arguments, or surround them; after
// "--" everything is an argument.
func TestFlagsAfterArguments(t *testing.T) {
	srv := pulsartest.NewTCP(t)
	srv.SetPartitions("persistent://public/default/t", 3)
	var out bytes.Buffer
	require.NoError(t, run(testenv.Context(t), []string{"lookup", "persistent://public/default/t", "--url", srv.URL()}, &out, &out))
	assert.Equal(t, "lookup persistent://public/default/t: connect to "+srv.URL()+"\n", out.String())
	out.Reset()
	require.NoError(t, run(testenv.Context(t), []string{"partitions", "--timeout", "20s", "persistent://public/default/t", "--url=" + srv.URL()}, &out, &out))
	assert.Equal(t, "partitions persistent://public/default/t: 3\n", out.String())

	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	v := fs.Bool("v", false, "")
	pos, err := parseArgs(fs, []string{"a", "-v", "b", "--", "-c", "d"})
	require.NoError(t, err)
	assert.True(t, *v)
	assert.Equal(t, []string{"a", "b", "-c", "d"}, pos)
}

// runMain runs the command line as main does, returning its exit status,
// stdout and stderr.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := exitCode(run(testenv.Context(t), args, &stdout, &stderr), &stderr)
	return code, stdout.String(), stderr.String()
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"help", "help"}} {
		code, out, errOut := runMain(t, args...)
		assert.Equal(t, 0, code, args)
		assert.Empty(t, errOut, args)
		for _, c := range commands {
			if c.hidden {
				assert.NotContains(t, out, c.name)
				continue
			}
			assert.Regexp(t, `(?m)^  `+c.name+` +`+regexp.QuoteMeta(c.summary)+`$`, out, args)
		}
	}
	for _, c := range commands {
		if c.hidden || c.name == "help" {
			continue
		}
		for _, args := range [][]string{{"help", c.name}, {c.name, "-h"}, {c.name, "--help"}} {
			code, out, errOut := runMain(t, args...)
			assert.Equal(t, 0, code, args)
			assert.Empty(t, errOut, args)
			assert.True(t, strings.HasPrefix(out, "pulsarconn "+c.name+": "+c.summary+"\n\nusage: pulsarconn "+c.name), out)
		}
	}
	_, out, _ := runMain(t, "help", "lookup")
	assert.Contains(t, out, "usage: pulsarconn lookup [--timeout DURATION] [--tls-ca FILE]\n      [--token-file FILE] [--url URL] TOPIC\n")
	assert.Contains(t, out, "  -tls-ca FILE\n")
	_, out, _ = runMain(t, "serve", "--help")
	assert.Contains(t, out, "[--partitions TOPIC=N]...")
	assert.Contains(t, out, "[--verbose]")
}

// Every command has a one-line summary, and a usage line that names each
// of its flags and its arguments.
func TestEveryCommandHasSummaryAndUsage(t *testing.T) {
	for _, c := range commands {
		if c.hidden {
			continue
		}
		assert.NotEmpty(t, c.summary, c.name)
		assert.NotContains(t, c.summary, "\n", c.name)
		assert.LessOrEqual(t, len(c.summary), 80-14, "%s: a summary fits the list's line", c.name)
		_, fs := c.parser()
		line := usageLine(c, fs)
		fs.VisitAll(func(f *flag.Flag) { assert.Contains(t, line, "[--"+f.Name, c.name) })
		assert.Contains(t, line, c.args, c.name)
		for _, l := range strings.Split(line, "\n") {
			assert.LessOrEqual(t, len(l), 80, "%s: %q", c.name, l)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	code, out, errOut := runMain(t, "nope")
	assert.Equal(t, 2, code)
	assert.Empty(t, out)
	assert.Equal(t, "pulsarconn: unknown command \"nope\"; run \"pulsarconn help\" for the list\n", errOut)

	code, _, errOut = runMain(t, "help", "nope")
	assert.Equal(t, 2, code)
	assert.Equal(t, "pulsarconn: help: unknown command \"nope\"; run \"pulsarconn help\" for the list\n", errOut)

	code, _, errOut = runMain(t)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "commands:", "no command: the list, on stderr")
	assert.True(t, strings.HasSuffix(errOut, "\npulsarconn: no command given\n"), errOut)
}

func TestUsageErrors(t *testing.T) {
	for args, want := range map[string]string{
		"demo extra":          `pulsarconn: demo: want no arguments, got 1 argument(s); see "pulsarconn help demo"`,
		"lookup":              `pulsarconn: lookup: want TOPIC, got 0 argument(s); see "pulsarconn help lookup"`,
		"partitions a b":      `pulsarconn: partitions: want TOPIC, got 2 argument(s); see "pulsarconn help partitions"`,
		"lookup --bogus t":    `pulsarconn: lookup: flag provided but not defined: -bogus; see "pulsarconn help lookup"`,
		"lookup t --tls-ca x": `pulsarconn: lookup: --tls-ca needs a pulsar+ssl:// --url; see "pulsarconn help lookup"`,
		"serve --brokers 0":   `pulsarconn: serve: --brokers must be at least 1; see "pulsarconn help serve"`,
	} {
		code, out, errOut := runMain(t, strings.Fields(args)...)
		assert.Equal(t, 2, code, args)
		assert.Empty(t, out, args)
		assert.Equal(t, want+"\n", errOut, args)
	}
}

// An error is one line, with one "pulsarconn:" prefix although the
// library's errors carry their own.
func TestErrorsAreOneLine(t *testing.T) {
	code, _, errOut := runMain(t, "lookup", "--url", "http://x", "t")
	assert.Equal(t, 1, code)
	assert.Equal(t, "pulsarconn: invalid URL \"http://x\": scheme must be pulsar:// or pulsar+ssl://\n", errOut)
	assert.Equal(t, "pulsarconn: a; b", errorLine(errors.Join(errors.New("pulsarconn: a"), errors.New("b"))))
}
