package realpulsar

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getenv("PULSAR_SERVICE_URL") == "" {
		if os.Getenv("PULSARCONN_REQUIRE_REAL_BROKER") == "1" {
			fmt.Fprintln(os.Stderr, "realpulsar: PULSAR_SERVICE_URL is not set but PULSARCONN_REQUIRE_REAL_BROKER=1; start the broker with scripts/pulsar.sh start")
			os.Exit(1)
		}
		fmt.Println("realpulsar: PULSAR_SERVICE_URL is not set, so no real broker to test against: run `bash scripts/pulsar.sh start` and `eval \"$(bash scripts/pulsar.sh env)\"` first (docs/realbroker.md)")
		os.Exit(0)
	}
	os.Exit(m.Run())
}
