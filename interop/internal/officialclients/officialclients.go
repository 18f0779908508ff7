// Package officialclients runs the official Java and Python Pulsar clients'
// interop programs (interop/java, interop/python) and checks what they
// report. The programs run six scenarios (exclusive, batched, partitioned,
// shared, key_shared, reader), check what they received themselves and
// print one JSON line per scenario; the tests in interop/ run them against
// pulsartest, those in interop/realpulsar against a real broker, and each
// then checks its broker's side.
//
// `bash interop/setup-clients.sh` builds the Java program and installs the
// Python client; without them the tests fail and say so.
package officialclients

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// SetupHint says how to make the programs the tests run.
const SetupHint = "run `bash interop/setup-clients.sh` from the repository root (it needs Java 17 with Maven, and Python 3 with venv and pip)"

const (
	// Partitions is how many partitions the harness gives
	// PREFIX-partitioned before the run.
	Partitions = 3
	// Budget is the --timeout a program gets: it stops itself
	// (exit 3) when the run outlives it.
	Budget = 90 * time.Second
	// Deadline bounds a run from the outside, for a program that
	// hangs before its own timer runs.
	Deadline = 120 * time.Second
)

// Result is one JSON line of a program: the result of one
// scenario.
type Result struct {
	Client                   string `json:"client"`
	Scenario                 string `json:"scenario"`
	OK                       bool   `json:"ok"`
	Topic                    string `json:"topic"`
	Error                    string `json:"error"`
	Produced                 int    `json:"produced"`
	Received                 int    `json:"received"`
	Acked                    int    `json:"acked"`
	Entries                  int    `json:"entries"`
	Partitions               int    `json:"partitions"`
	PerPartition             []int  `json:"perPartition"`
	PerConsumer              []int  `json:"perConsumer"`
	Keys                     int    `json:"keys"`
	KeysPerConsumer          []int  `json:"keysPerConsumer"`
	AckChecked               bool   `json:"ackChecked"`
	HasMessageAvailableAfter *bool  `json:"hasMessageAvailableAfter"`
	ElapsedMs                int64  `json:"elapsedMs"`

	Line string `json:"-"` // the line as printed
}

// Scenario is what a scenario must report.
type Scenario struct {
	Name              string
	Sub               string // its subscription; "" for the reader
	Produced, Entries int    // entries: 0 when not checked
	PerPartition      []int  // for the partitioned topic
	Keys              int    // for Key_Shared
	TwoConsumers      bool   // Shared and Key_Shared: both consumers got some
	NoMoreAfterAll    bool   // the reader: hasMessageAvailable false at the end
}

// Scenarios are the scenarios of both programs, in the order they
// run, with the counts they produce (the constants of PulsarInterop.java
// and pulsar_interop.py).
var Scenarios = []Scenario{
	{Name: "exclusive", Sub: "sub-exclusive", Produced: 100, Entries: 100},
	{Name: "batched", Sub: "sub-batched", Produced: 100, Entries: 10},
	{Name: "partitioned", Sub: "sub-partitioned", Produced: 30, PerPartition: []int{10, 10, 10}},
	{Name: "shared", Sub: "sub-shared", Produced: 100, TwoConsumers: true},
	{Name: "key_shared", Sub: "sub-key-shared", Produced: 100, Keys: 20, TwoConsumers: true},
	{Name: "reader", Produced: 20, NoMoreAfterAll: true},
}

// Short is the short topic name (in public/default) a program uses for a
// scenario.
func Short(prefix, scenario string) string {
	return prefix + "-" + strings.ReplaceAll(scenario, "_", "-")
}

// Topic is the full name of the topic a program uses for a scenario.
func Topic(prefix, scenario string) string {
	return "persistent://public/default/" + Short(prefix, scenario)
}

// JavaCommand returns the command line that runs the Java program, and
// fails the test (never skips it) when java or the build is missing or
// older than its sources.
func JavaCommand(t testing.TB, dir string) []string {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatalf("java is not on PATH (%v): the Java interop test needs Java 17; %s", err, SetupHint)
	}
	jar := filepath.Join(dir, "target", "pulsar-interop.jar")
	lib := filepath.Join(dir, "target", "lib")
	st, err := os.Stat(jar)
	if err != nil {
		t.Fatalf("the Java interop program is not built (%v); %s", err, SetupHint)
	}
	if _, err := os.Stat(filepath.Join(lib, "pulsar-client-4.2.4.jar")); err != nil {
		t.Fatalf("the Java client's jars are not in %s (%v); %s", lib, err, SetupHint)
	}
	var newer []string
	for _, src := range []string{filepath.Join(dir, "pom.xml"), filepath.Join(dir, "src")} {
		_ = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if info, err := d.Info(); err == nil && info.ModTime().After(st.ModTime()) {
				newer = append(newer, p)
			}
			return nil
		})
	}
	if len(newer) > 0 {
		t.Fatalf("%s is older than %q: the build is stale; %s", jar, newer, SetupHint)
	}
	return []string{java, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", jar + string(os.PathListSeparator) + filepath.Join(lib, "*"),
		"org.pulsarconn.interop.PulsarInterop"}
}

// PythonCommand returns the command line that runs the Python program
// with the venv that setup-clients.sh made, and fails the test (never
// skips it) when the venv or the pinned client is missing.
func PythonCommand(t testing.TB, dir string) []string {
	t.Helper()
	python := filepath.Join(dir, ".venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("the Python venv is missing (%v); %s", err, SetupHint)
	}
	req, err := os.ReadFile(filepath.Join(dir, "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var version string
	for _, l := range strings.Split(string(req), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "pulsar-client=="); ok {
			version = v
		}
	}
	if version == "" {
		t.Fatalf("%s pins no pulsar-client version", filepath.Join(dir, "requirements.txt"))
	}
	dist, _ := filepath.Glob(filepath.Join(dir, ".venv", "lib", "python3*", "site-packages", "pulsar_client-"+version+".dist-info"))
	if len(dist) == 0 {
		t.Fatalf("pulsar-client %s is not installed in %s; %s", version, filepath.Join(dir, ".venv"), SetupHint)
	}
	return []string{python, filepath.Join(dir, "pulsar_interop.py")}
}

// Run runs argv against url with the topic prefix, checks that it
// exits 0 within Deadline, and returns its lines.
func Run(t testing.TB, argv []string, url, prefix string) []Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Deadline)
	defer cancel()
	args := append(slices.Clone(argv[1:]), "--url", url, "--prefix", prefix,
		"--partitions", fmt.Sprint(Partitions), "--timeout", fmt.Sprint(Budget.Seconds()))
	cmd := exec.CommandContext(ctx, argv[0], args...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	if stderr.Len() > 0 {
		t.Logf("%s stderr:\n%s", filepath.Base(argv[len(argv)-1]), stderr.Bytes())
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("%s did not end within %v; stdout:\n%s", argv[len(argv)-1], Deadline, stdout.Bytes())
		}
		t.Fatalf("%s against %s: %v after %v (want exit 0); stdout:\n%s", argv[len(argv)-1], url, err, elapsed.Round(time.Millisecond), stdout.Bytes())
	}
	t.Logf("%s ran in %v", argv[len(argv)-1], elapsed.Round(time.Millisecond))
	var out []Result
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("a line of stdout is not JSON: %q: %v", sc.Text(), err)
		}
		r.Line = sc.Text()
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Check checks that the program reported every scenario, in
// order, as passed, with the counts it must have.
func Check(t testing.TB, client, prefix string, got []Result) {
	t.Helper()
	if len(got) != len(Scenarios) {
		t.Fatalf("%d result lines, want %d: %+v", len(got), len(Scenarios), got)
	}
	for i, sc := range Scenarios {
		r := got[i]
		t.Logf("%s", r.Line)
		if r.Client != client || r.Scenario != sc.Name {
			t.Errorf("line %d is %s/%s, want %s/%s", i, r.Client, r.Scenario, client, sc.Name)
			continue
		}
		if !r.OK {
			t.Errorf("%s %s failed: %s", client, sc.Name, r.Error)
			continue
		}
		if want := Topic(prefix, sc.Name); r.Topic != want {
			t.Errorf("%s: topic %q, want %q", sc.Name, r.Topic, want)
		}
		if r.Produced != sc.Produced || r.Received != sc.Produced {
			t.Errorf("%s: produced %d, received %d, want %d each", sc.Name, r.Produced, r.Received, sc.Produced)
		}
		if sc.Sub != "" && (r.Acked != sc.Produced || !r.AckChecked) {
			t.Errorf("%s: acked %d (want %d), ack check %v (want true)", sc.Name, r.Acked, sc.Produced, r.AckChecked)
		}
		if sc.Entries != 0 && r.Entries != sc.Entries {
			t.Errorf("%s: the receipts name %d entries, want %d", sc.Name, r.Entries, sc.Entries)
		}
		if sc.PerPartition != nil && (r.Partitions != len(sc.PerPartition) || !slices.Equal(r.PerPartition, sc.PerPartition)) {
			t.Errorf("%s: %d partitions holding %v, want %d holding %v", sc.Name, r.Partitions, r.PerPartition, len(sc.PerPartition), sc.PerPartition)
		}
		if sc.TwoConsumers {
			if len(r.PerConsumer) != 2 || r.PerConsumer[0] == 0 || r.PerConsumer[1] == 0 || r.PerConsumer[0]+r.PerConsumer[1] != sc.Produced {
				t.Errorf("%s: the consumers got %v messages, want two shares of %d", sc.Name, r.PerConsumer, sc.Produced)
			}
		}
		if sc.Keys != 0 {
			if r.Keys != sc.Keys || len(r.KeysPerConsumer) != 2 || r.KeysPerConsumer[0]+r.KeysPerConsumer[1] != sc.Keys {
				t.Errorf("%s: %d keys split %v, want %d keys, each with one consumer", sc.Name, r.Keys, r.KeysPerConsumer, sc.Keys)
			}
		}
		if sc.NoMoreAfterAll && (r.HasMessageAvailableAfter == nil || *r.HasMessageAvailableAfter) {
			t.Errorf("%s: hasMessageAvailable after reading everything: %v, want false", sc.Name, r.HasMessageAvailableAfter)
		}
	}
}
