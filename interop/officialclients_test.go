package interop

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/pulsarconn/pulsarconn/interop/internal/officialclients"
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

// checkOfficialOnFake checks the fake's side: every message the programs
// sent is stored (a batch as one entry, plus the ack check's message on
// each subscribed topic), and every subscription has acknowledged
// everything.
func checkOfficialOnFake(t *testing.T, srv *pulsartest.Server, prefix string) {
	t.Helper()
	for _, sc := range officialclients.Scenarios {
		topics := []string{officialclients.Topic(prefix, sc.Name)}
		if sc.PerPartition != nil {
			topics = topics[:0]
			for i := range sc.PerPartition {
				topics = append(topics, fmt.Sprintf("%s-partition-%d", officialclients.Topic(prefix, sc.Name), i))
			}
		}
		stored := 0
		for _, topic := range topics {
			stored += len(srv.Stored(topic))
			if sc.Sub == "" {
				continue
			}
			backlog, ok := srv.Backlog(topic, sc.Sub)
			if !ok {
				t.Errorf("%s: no subscription %q on %s", sc.Name, sc.Sub, topic)
			} else if backlog != 0 {
				t.Errorf("%s: subscription %q on %s has a backlog of %d after every message was acknowledged", sc.Name, sc.Sub, topic, backlog)
			}
		}
		want := sc.Produced
		if sc.Entries != 0 {
			want = sc.Entries
		}
		if sc.Sub != "" {
			want++ // the ack check's message
		}
		if stored != want {
			t.Errorf("%s: the fake stored %d entries, want %d", sc.Name, stored, want)
		}
	}
}

// runOfficialOnFake runs a program against a pulsartest server of its
// own, with PREFIX-partitioned made beforehand.
func runOfficialOnFake(t *testing.T, client string, argv []string) {
	srv := pulsartest.NewTCP(t)
	prefix := topicName(t)
	srv.SetPartitions(officialclients.Topic(prefix, "partitioned"), officialclients.Partitions)
	got := officialclients.Run(t, argv, srv.URL(), prefix)
	officialclients.Check(t, client, prefix, got)
	checkOfficialOnFake(t, srv, prefix)
}

// TestOfficialJavaClient runs java/'s PulsarInterop (pulsar-client 4.2.4)
// against pulsartest.
func TestOfficialJavaClient(t *testing.T) {
	dir, err := filepath.Abs("java")
	if err != nil {
		t.Fatal(err)
	}
	runOfficialOnFake(t, "java", officialclients.JavaCommand(t, dir))
}

// TestOfficialPythonClient runs python/pulsar_interop.py (pulsar-client
// 3.13.0) against pulsartest.
func TestOfficialPythonClient(t *testing.T) {
	dir, err := filepath.Abs("python")
	if err != nil {
		t.Fatal(err)
	}
	runOfficialOnFake(t, "python", officialclients.PythonCommand(t, dir))
}
