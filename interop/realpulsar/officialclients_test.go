package realpulsar

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/pulsarconn/pulsarconn/interop/internal/officialclients"
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
	for _, sc := range officialclients.Scenarios {
		if sc.Sub == "" {
			continue
		}
		path := "/persistent/public/default/" + url.PathEscape(officialclients.Short(prefix, sc.Name)) + "/stats"
		if sc.PerPartition != nil {
			path = "/persistent/public/default/" + url.PathEscape(officialclients.Short(prefix, sc.Name)) + "/partitioned-stats"
		}
		var st subscriptionStats
		if err := json.Unmarshal(admin(t, rb, http.MethodGet, path, nil), &st); err != nil {
			t.Fatalf("%s: stats: %v", sc.Name, err)
		}
		s, ok := st.Subscriptions[sc.Sub]
		switch {
		case !ok:
			t.Errorf("%s: the broker has no subscription %q", sc.Name, sc.Sub)
		case s.MsgBacklog != 0:
			t.Errorf("%s: subscription %q has a backlog of %d after every message was acknowledged", sc.Name, sc.Sub, s.MsgBacklog)
		case len(s.Consumers) != 0:
			t.Errorf("%s: subscription %q still has %d consumers after the program ended", sc.Name, sc.Sub, len(s.Consumers))
		}
	}
}

// runOfficialOnBroker runs a program against the real broker, with
// PREFIX-partitioned made beforehand through the admin API.
func runOfficialOnBroker(t *testing.T, client string, argv []string) {
	rb := env(t)
	prefix := topicName(t)
	createPartitioned(t, rb, officialclients.Short(prefix, "partitioned"), officialclients.Partitions)
	got := officialclients.Run(t, argv, rb.ServiceURL, prefix)
	officialclients.Check(t, client, prefix, got)
	checkOfficialOnBroker(t, rb, prefix)
}

// TestOfficialJavaClient runs interop/java's PulsarInterop (pulsar-client
// 4.2.4) against the real broker.
func TestOfficialJavaClient(t *testing.T) {
	runOfficialOnBroker(t, "java", officialclients.JavaCommand(t, clientDir(t, "java")))
}

// TestOfficialPythonClient runs interop/python/pulsar_interop.py
// (pulsar-client 3.13.0) against the real broker.
func TestOfficialPythonClient(t *testing.T) {
	runOfficialOnBroker(t, "python", officialclients.PythonCommand(t, clientDir(t, "python")))
}

// clientDir is the absolute path of interop/<name>.
func clientDir(t *testing.T, name string) string {
	dir, err := filepath.Abs(filepath.Join("..", name))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
