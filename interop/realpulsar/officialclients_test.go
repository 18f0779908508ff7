package realpulsar

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The tests in this file run the programs of interop/java (the official
// Java client, pulsar-client 4.2.4) and interop/python (the official
// Python client, pulsar-client 3.13.0) against the real broker, as
// interop/officialclients_test.go runs them against pulsartest: the same
// six scenarios, the same JSON lines, the same counts, so that a
// difference between the fake and the broker that these clients can see
// shows up as a test that passes in one place and fails in the other.
// `bash interop/setup-clients.sh` builds and installs them; without them
// the tests fail and say so.

// officialSetupHint says how to make the programs the tests run.
const officialSetupHint = "run `bash interop/setup-clients.sh` from the repository root (it needs Java 17 with Maven, and Python 3 with venv and pip)"

const (
	// officialPartitions is how many partitions the harness gives
	// PREFIX-partitioned before the run, through the admin API.
	officialPartitions = 3
	// officialBudget is the --timeout a program gets: it stops itself
	// (exit 3) when the run outlives it.
	officialBudget = 90 * time.Second
	// officialDeadline bounds a run from the outside, for a program that
	// hangs before its own timer runs.
	officialDeadline = 120 * time.Second
)

// officialResult is one JSON line of a program: the result of one
// scenario.
type officialResult struct {
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

	line string // the line as printed
}

// officialScenario is what a scenario must report.
type officialScenario struct {
	name              string
	sub               string // its subscription; "" for the reader
	produced, entries int    // entries: 0 when not checked
	perPartition      []int  // for the partitioned topic
	keys              int    // for Key_Shared
	twoConsumers      bool   // Shared and Key_Shared: both consumers got some
	noMoreAfterAll    bool   // the reader: hasMessageAvailable false at the end
}

// officialScenarios are the scenarios of both programs, in the order they
// run, with the counts they produce (the constants of PulsarInterop.java
// and pulsar_interop.py).
var officialScenarios = []officialScenario{
	{name: "exclusive", sub: "sub-exclusive", produced: 100, entries: 100},
	{name: "batched", sub: "sub-batched", produced: 100, entries: 10},
	{name: "partitioned", sub: "sub-partitioned", produced: 30, perPartition: []int{10, 10, 10}},
	{name: "shared", sub: "sub-shared", produced: 100, twoConsumers: true},
	{name: "key_shared", sub: "sub-key-shared", produced: 100, keys: 20, twoConsumers: true},
	{name: "reader", produced: 20, noMoreAfterAll: true},
}

// officialShort is the short name of the topic a program uses for a
// scenario.
func officialShort(prefix, scenario string) string {
	return prefix + "-" + strings.ReplaceAll(scenario, "_", "-")
}

// javaCommand returns the command line that runs interop/java's program,
// and fails the test (never skips it) when java or the build is missing
// or older than its sources.
func javaCommand(t *testing.T) []string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "java"))
	if err != nil {
		t.Fatal(err)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatalf("java is not on PATH (%v): the Java interop test needs Java 17; %s", err, officialSetupHint)
	}
	jar := filepath.Join(dir, "target", "pulsar-interop.jar")
	lib := filepath.Join(dir, "target", "lib")
	st, err := os.Stat(jar)
	if err != nil {
		t.Fatalf("the Java interop program is not built (%v); %s", err, officialSetupHint)
	}
	if _, err := os.Stat(filepath.Join(lib, "pulsar-client-4.2.4.jar")); err != nil {
		t.Fatalf("the Java client's jars are not in %s (%v); %s", lib, err, officialSetupHint)
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
		t.Fatalf("%s is older than %q: the build is stale; %s", jar, newer, officialSetupHint)
	}
	return []string{java, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", jar + string(os.PathListSeparator) + filepath.Join(lib, "*"),
		"org.pulsarconn.interop.PulsarInterop"}
}

// pythonCommand returns the command line that runs interop/python's
// program with the venv setup-clients.sh made, and fails the test (never
// skips it) when the venv or the pinned client is missing.
func pythonCommand(t *testing.T) []string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "python"))
	if err != nil {
		t.Fatal(err)
	}
	python := filepath.Join(dir, ".venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("the Python venv is missing (%v); %s", err, officialSetupHint)
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
		t.Fatalf("pulsar-client %s is not installed in %s; %s", version, filepath.Join(dir, ".venv"), officialSetupHint)
	}
	return []string{python, filepath.Join(dir, "pulsar_interop.py")}
}

// runOfficial runs argv against serviceURL with the topic prefix, checks
// that it exits 0 within officialDeadline, and returns its lines.
func runOfficial(t *testing.T, argv []string, serviceURL, prefix string) []officialResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), officialDeadline)
	defer cancel()
	name := filepath.Base(argv[len(argv)-1])
	args := append(slices.Clone(argv[1:]), "--url", serviceURL, "--prefix", prefix,
		"--partitions", fmt.Sprint(officialPartitions), "--timeout", fmt.Sprint(officialBudget.Seconds()))
	cmd := exec.CommandContext(ctx, argv[0], args...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	if stderr.Len() > 0 {
		t.Logf("%s stderr:\n%s", name, stderr.Bytes())
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("%s did not end within %v; stdout:\n%s", name, officialDeadline, stdout.Bytes())
		}
		t.Fatalf("%s against %s: %v after %v (want exit 0; if it could not connect, see `bash scripts/pulsar.sh status`); stdout:\n%s",
			name, serviceURL, err, elapsed.Round(time.Millisecond), stdout.Bytes())
	}
	t.Logf("%s ran in %v", name, elapsed.Round(time.Millisecond))
	var out []officialResult
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r officialResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("a line of stdout is not JSON: %q: %v", sc.Text(), err)
		}
		r.line = sc.Text()
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkOfficial checks that the program reported every scenario, in
// order, as passed, with the counts it must have.
func checkOfficial(t *testing.T, client, prefix string, got []officialResult) {
	t.Helper()
	if len(got) != len(officialScenarios) {
		t.Fatalf("%d result lines, want %d: %+v", len(got), len(officialScenarios), got)
	}
	for i, sc := range officialScenarios {
		r := got[i]
		t.Logf("%s", r.line)
		if r.Client != client || r.Scenario != sc.name {
			t.Errorf("line %d is %s/%s, want %s/%s", i, r.Client, r.Scenario, client, sc.name)
			continue
		}
		if !r.OK {
			t.Errorf("%s %s failed on the real broker: %s", client, sc.name, r.Error)
			continue
		}
		if want := fullName(officialShort(prefix, sc.name)); r.Topic != want {
			t.Errorf("%s: topic %q, want %q", sc.name, r.Topic, want)
		}
		if r.Produced != sc.produced || r.Received != sc.produced {
			t.Errorf("%s: produced %d, received %d, want %d each", sc.name, r.Produced, r.Received, sc.produced)
		}
		if sc.sub != "" && (r.Acked != sc.produced || !r.AckChecked) {
			t.Errorf("%s: acked %d (want %d), ack check %v (want true)", sc.name, r.Acked, sc.produced, r.AckChecked)
		}
		if sc.entries != 0 && r.Entries != sc.entries {
			t.Errorf("%s: the receipts name %d entries, want %d", sc.name, r.Entries, sc.entries)
		}
		if sc.perPartition != nil && (r.Partitions != len(sc.perPartition) || !slices.Equal(r.PerPartition, sc.perPartition)) {
			t.Errorf("%s: %d partitions holding %v, want %d holding %v", sc.name, r.Partitions, r.PerPartition, len(sc.perPartition), sc.perPartition)
		}
		if sc.twoConsumers {
			if len(r.PerConsumer) != 2 || r.PerConsumer[0] == 0 || r.PerConsumer[1] == 0 || r.PerConsumer[0]+r.PerConsumer[1] != sc.produced {
				t.Errorf("%s: the consumers got %v messages, want two shares of %d", sc.name, r.PerConsumer, sc.produced)
			}
		}
		if sc.keys != 0 {
			if r.Keys != sc.keys || len(r.KeysPerConsumer) != 2 || r.KeysPerConsumer[0]+r.KeysPerConsumer[1] != sc.keys {
				t.Errorf("%s: %d keys split %v, want %d keys, each with one consumer", sc.name, r.Keys, r.KeysPerConsumer, sc.keys)
			}
		}
		if sc.noMoreAfterAll && (r.HasMessageAvailableAfter == nil || *r.HasMessageAvailableAfter) {
			t.Errorf("%s: hasMessageAvailable after reading everything: %v, want false", sc.name, r.HasMessageAvailableAfter)
		}
	}
}

// subscriptionStats is the part of the admin API's topic stats the tests
// read.
type subscriptionStats struct {
	Subscriptions map[string]struct {
		MsgBacklog int64 `json:"msgBacklog"`
		Consumers  []any `json:"consumers"`
	} `json:"subscriptions"`
}

// checkOfficialOnBroker checks the broker's side through the admin API:
// each subscription the program made is there, has no consumer left, and
// has acknowledged everything (msgBacklog 0).
func checkOfficialOnBroker(t *testing.T, rb realBroker, prefix string) {
	t.Helper()
	for _, sc := range officialScenarios {
		if sc.sub == "" {
			continue
		}
		path := "/persistent/public/default/" + url.PathEscape(officialShort(prefix, sc.name)) + "/stats"
		if sc.perPartition != nil {
			path = "/persistent/public/default/" + url.PathEscape(officialShort(prefix, sc.name)) + "/partitioned-stats"
		}
		var st subscriptionStats
		if err := json.Unmarshal(admin(t, rb, http.MethodGet, path, nil), &st); err != nil {
			t.Fatalf("%s: stats: %v", sc.name, err)
		}
		s, ok := st.Subscriptions[sc.sub]
		switch {
		case !ok:
			t.Errorf("%s: the broker has no subscription %q", sc.name, sc.sub)
		case s.MsgBacklog != 0:
			t.Errorf("%s: subscription %q has a backlog of %d after every message was acknowledged", sc.name, sc.sub, s.MsgBacklog)
		case len(s.Consumers) != 0:
			t.Errorf("%s: subscription %q still has %d consumers after the program ended", sc.name, sc.sub, len(s.Consumers))
		}
	}
}

// runOfficialOnBroker runs a program against the real broker, with
// PREFIX-partitioned made beforehand through the admin API.
func runOfficialOnBroker(t *testing.T, client string, argv []string) {
	rb := env(t)
	prefix := topicName(t)
	createPartitioned(t, rb, officialShort(prefix, "partitioned"), officialPartitions)
	got := runOfficial(t, argv, rb.ServiceURL, prefix)
	checkOfficial(t, client, prefix, got)
	checkOfficialOnBroker(t, rb, prefix)
}

// TestOfficialJavaClient runs interop/java's PulsarInterop (pulsar-client
// 4.2.4) against the real broker.
func TestOfficialJavaClient(t *testing.T) {
	runOfficialOnBroker(t, "java", javaCommand(t))
}

// TestOfficialPythonClient runs interop/python/pulsar_interop.py
// (pulsar-client 3.13.0) against the real broker.
func TestOfficialPythonClient(t *testing.T) {
	runOfficialOnBroker(t, "python", pythonCommand(t))
}
