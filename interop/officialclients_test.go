package interop

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

	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// The tests in this file run the official Java client (java/, a Maven
// project on org.apache.pulsar:pulsar-client 4.2.4) and the official
// Python client (python/pulsar_interop.py on pulsar-client 3.13.0 from
// PyPI, the C++ client underneath) against pulsartest over TCP loopback.
// Each program runs six scenarios (exclusive, batched, partitioned,
// shared, key_shared, reader), checks what it received itself and prints
// one JSON line per scenario; the test checks the lines, the exit status
// and what the fake stored and has left unacknowledged. The same programs
// run against a real broker in realpulsar/officialclients_test.go.
//
// `bash interop/setup-clients.sh` builds the Java program and installs the
// Python client; without them the tests fail and say so.

// officialSetupHint says how to make the programs the tests run.
const officialSetupHint = "run `bash interop/setup-clients.sh` from the repository root (it needs Java 17 with Maven, and Python 3 with venv and pip)"

const (
	// officialPartitions is how many partitions the harness gives
	// PREFIX-partitioned before the run.
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
	name               string
	sub                string // its subscription; "" for the reader
	produced, entries  int    // entries: 0 when not checked
	perPartition       []int  // for the partitioned topic
	keys               int    // for Key_Shared
	twoConsumers       bool   // Shared and Key_Shared: both consumers got some
	wantNoMoreAfterAll bool   // the reader: hasMessageAvailable false at the end
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
	{name: "reader", produced: 20, wantNoMoreAfterAll: true},
}

// officialTopic is the topic a program uses for a scenario.
func officialTopic(prefix, scenario string) string {
	return fullName(prefix + "-" + strings.ReplaceAll(scenario, "_", "-"))
}

// javaCommand returns the command line that runs the Java program, and
// fails the test (never skips it) when java or the build is missing or
// older than its sources.
func javaCommand(t *testing.T, dir string) []string {
	t.Helper()
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

// pythonCommand returns the command line that runs the Python program
// with the venv that setup-clients.sh made, and fails the test (never
// skips it) when the venv or the pinned client is missing.
func pythonCommand(t *testing.T, dir string) []string {
	t.Helper()
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

// runOfficial runs argv against url with the topic prefix, checks that it
// exits 0 within officialDeadline, and returns its lines.
func runOfficial(t *testing.T, argv []string, url, prefix string) []officialResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), officialDeadline)
	defer cancel()
	args := append(slices.Clone(argv[1:]), "--url", url, "--prefix", prefix,
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
		t.Logf("%s stderr:\n%s", filepath.Base(argv[len(argv)-1]), stderr.Bytes())
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("%s did not end within %v; stdout:\n%s", argv[len(argv)-1], officialDeadline, stdout.Bytes())
		}
		t.Fatalf("%s against %s: %v after %v (want exit 0); stdout:\n%s", argv[len(argv)-1], url, err, elapsed.Round(time.Millisecond), stdout.Bytes())
	}
	t.Logf("%s ran in %v", argv[len(argv)-1], elapsed.Round(time.Millisecond))
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
			t.Errorf("%s %s failed: %s", client, sc.name, r.Error)
			continue
		}
		if want := officialTopic(prefix, sc.name); r.Topic != want {
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
		if sc.wantNoMoreAfterAll && (r.HasMessageAvailableAfter == nil || *r.HasMessageAvailableAfter) {
			t.Errorf("%s: hasMessageAvailable after reading everything: %v, want false", sc.name, r.HasMessageAvailableAfter)
		}
	}
}

// checkOfficialOnFake checks the fake's side: every message the programs
// sent is stored (a batch as one entry, plus the ack check's message on
// each subscribed topic), and every subscription has acknowledged
// everything.
func checkOfficialOnFake(t *testing.T, srv *pulsartest.Server, prefix string) {
	t.Helper()
	for _, sc := range officialScenarios {
		topics := []string{officialTopic(prefix, sc.name)}
		if sc.perPartition != nil {
			topics = topics[:0]
			for i := range sc.perPartition {
				topics = append(topics, fmt.Sprintf("%s-partition-%d", officialTopic(prefix, sc.name), i))
			}
		}
		stored := 0
		for _, topic := range topics {
			stored += len(srv.Stored(topic))
			if sc.sub == "" {
				continue
			}
			backlog, ok := srv.Backlog(topic, sc.sub)
			if !ok {
				t.Errorf("%s: no subscription %q on %s", sc.name, sc.sub, topic)
			} else if backlog != 0 {
				t.Errorf("%s: subscription %q on %s has a backlog of %d after every message was acknowledged", sc.name, sc.sub, topic, backlog)
			}
		}
		want := sc.produced
		if sc.entries != 0 {
			want = sc.entries
		}
		if sc.sub != "" {
			want++ // the ack check's message
		}
		if stored != want {
			t.Errorf("%s: the fake stored %d entries, want %d", sc.name, stored, want)
		}
	}
}

// runOfficialOnFake runs a program against a pulsartest server of its
// own, with PREFIX-partitioned made beforehand.
func runOfficialOnFake(t *testing.T, client string, argv []string) {
	srv := pulsartest.NewTCP(t)
	prefix := topicName(t)
	srv.SetPartitions(officialTopic(prefix, "partitioned"), officialPartitions)
	got := runOfficial(t, argv, srv.URL(), prefix)
	checkOfficial(t, client, prefix, got)
	checkOfficialOnFake(t, srv, prefix)
}

// TestOfficialJavaClient runs java/'s PulsarInterop (pulsar-client 4.2.4)
// against pulsartest.
func TestOfficialJavaClient(t *testing.T) {
	dir, err := filepath.Abs("java")
	if err != nil {
		t.Fatal(err)
	}
	runOfficialOnFake(t, "java", javaCommand(t, dir))
}

// TestOfficialPythonClient runs python/pulsar_interop.py (pulsar-client
// 3.13.0) against pulsartest.
func TestOfficialPythonClient(t *testing.T) {
	dir, err := filepath.Abs("python")
	if err != nil {
		t.Fatal(err)
	}
	runOfficialOnFake(t, "python", pythonCommand(t, dir))
}
