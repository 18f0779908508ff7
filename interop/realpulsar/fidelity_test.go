package realpulsar

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulsarconn/pulsarconn/internal/fidelity"
)

// recordDir is where the real broker's transcripts live, in the root
// module, for the test of internal/fidelity to replay without a JVM.
var recordDir = filepath.Join("..", "..", "internal", "fidelity", "testdata", "realbroker")

// realTarget is the real broker as a fidelity.Target: raw TCP to its
// binary port, partitioned topics made with the admin REST API.
func realTarget(t *testing.T, rb realBroker) fidelity.Target {
	t.Helper()
	u, err := url.Parse(rb.ServiceURL)
	if err != nil {
		t.Fatalf("PULSAR_SERVICE_URL: %v", err)
	}
	return fidelity.Target{
		Name: "real broker",
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", u.Host)
		},
		ServiceURL:    rb.ServiceURL,
		ServiceURLTLS: rb.ServiceURLTLS,
		CreatePartitioned: func(_ context.Context, topic string, n int) error {
			path := "/" + strings.Replace(topic, "://", "/", 1) + "/partitions"
			out, status, err := adminCall(rb, http.MethodPut, path, n)
			if err != nil {
				return err
			}
			if status/100 != 2 {
				return fmt.Errorf("admin PUT %s: HTTP %d: %s", path, status, out)
			}
			return nil
		},
	}
}

// TestFidelity runs every scenario of internal/fidelity against the real
// broker and against pulsartest, and compares the transcripts, forgiving
// only fidelity.KnownDifferences (and failing on one no longer observed).
// With PULSARCONN_RECORD=1 it also runs each scenario a second time on the
// real broker, requires the two transcripts to agree (so that nothing
// nondeterministic is recorded), and writes the first to
// internal/fidelity/testdata/realbroker.
func TestFidelity(t *testing.T) {
	rb := env(t)
	real := realTarget(t, rb)
	fake, _ := fidelity.Pulsartest(t)
	record := os.Getenv("PULSARCONN_RECORD") == "1"
	for _, sc := range fidelity.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			ctx := bounded(t)
			rt, err := fidelity.Run(ctx, real, sc)
			if err != nil {
				t.Fatalf("real broker: %v", err)
			}
			ft, err := fidelity.Run(ctx, fake, sc)
			if err != nil {
				t.Fatalf("pulsartest: %v", err)
			}
			if record {
				again, err := fidelity.Run(ctx, real, sc)
				if err != nil {
					t.Fatalf("real broker, second run: %v", err)
				}
				if c := fidelity.Compare(rt, again, nil); len(c.Differences) > 0 {
					t.Fatalf("two runs on the real broker differ, not recorded:\n%s", strings.Join(c.Differences, "\n"))
				}
				if err := fidelity.Save(recordDir, rt); err != nil {
					t.Fatalf("record: %v", err)
				}
			}
			c := fidelity.Compare(rt, ft, fidelity.KnownDifferences)
			for _, d := range c.Differences {
				t.Errorf("%s: %s", sc.Name, d)
			}
			for _, k := range fidelity.Stale(sc.Name, fidelity.KnownDifferences, c) {
				t.Errorf("known difference %v is no longer observed: remove it from fidelity.KnownDifferences and docs/pulsartest.md", k)
			}
			if t.Failed() {
				t.Logf("real broker:\n%s\npulsartest:\n%s", fidelity.Describe(rt), fidelity.Describe(ft))
			}
		})
	}
}
