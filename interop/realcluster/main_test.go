package realcluster

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

// TestMain leaves out the TestReal tests when no real cluster is
// described in the environment (see the package documentation): they are
// not run, rather than run and skipped, and the package says so.
func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv("PULSAR_CLUSTER_BROKERS") == "" {
		if os.Getenv("PULSARCONN_REQUIRE_REAL_CLUSTER") == "1" {
			fmt.Fprintln(os.Stderr, "realcluster: PULSAR_CLUSTER_BROKERS is not set but PULSARCONN_REQUIRE_REAL_CLUSTER=1; start the cluster with scripts/pulsar-cluster.sh start")
			os.Exit(1)
		}
		fmt.Println("realcluster: PULSAR_CLUSTER_BROKERS is not set, so no real cluster to test against: only the TestFake tests run (pulsartest's cluster mode); for the TestReal ones run `bash scripts/pulsar-cluster.sh start` and `eval \"$(bash scripts/pulsar-cluster.sh env)\"` first")
		skip := "^TestReal"
		if s := flag.Lookup("test.skip").Value.String(); s != "" {
			skip = s + "|" + skip
		}
		if err := flag.Set("test.skip", skip); err != nil {
			fmt.Fprintln(os.Stderr, "realcluster:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}
