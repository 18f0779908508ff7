package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

func TestRunQuick(t *testing.T) {
	o := Quick()
	o.Network = func() Network { return memory.NewNetwork() }
	o.IdleConns = 200
	// The second server in this process: the command runs it in another
	// (cmd/pulsarconn's TestBenchQuick).
	o.SecondServer = func(context.Context) (string, func() error, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		srv := pulsartest.NewServer(pulsartest.WithPartitionedTopic(Topic, 4))
		if err := srv.Start(ln); err != nil {
			return "", nil, err
		}
		return srv.URL(), srv.Close, nil
	}
	r, err := Run(testenv.Context(t), o)
	require.NoError(t, err)
	for _, id := range []string{
		"rr1.rate", "rr1.p50", "rr1.p90", "rr1.p99", "rr1.allocs",
		"rr64.rate", "rr64.p50", "rr64.p90", "rr64.p99", "rr64.allocs",
		"rr64async.rate", "rr64async.p50", "rr64async.p90", "rr64async.p99", "rr64async.allocs",
		"publish.rate", "publish.mbps", "publish.allocs",
		"receipts.rate", "receipts.allocs", "delivery.rate", "delivery.allocs",
		"idle.total", "idle.client", "reconnect.time",
	} {
		row := r.Row(id)
		if assert.NotNil(t, row, id) {
			assert.NotNil(t, row.Library, id)
			if row.Raw != nil && row.HigherIsBetter {
				assert.Positive(t, *row.Raw, id)
				assert.Positive(t, *row.Library, id)
			}
		}
	}
	// Against the second server: every scenario but publish into the
	// sink and delivery.
	for _, id := range []string{"rr1.rate", "rr64.rate", "rr64async.rate", "receipts.rate", "rr1.p50", "rr1.allocs"} {
		row := r.Row(id)
		require.NotNil(t, row, id)
		if assert.NotNil(t, row.RawPulsartest, id) && assert.NotNil(t, row.LibraryPulsartest, id) {
			assert.Positive(t, *row.RawPulsartest, id)
			assert.Positive(t, *row.LibraryPulsartest, id)
		}
	}
	assert.Nil(t, r.Row("publish.rate").RawPulsartest)
	goals := r.Goals()
	require.NotEmpty(t, goals)
	assert.NotNil(t, goals[0].Met, "the 1-in-flight goal is judged")
	assert.Contains(t, goals[0].Figure, " / ", "on both servers")
	var out bytes.Buffer
	require.NoError(t, r.WriteTable(&out))
	r.WriteGoals(&out)
	t.Log("\n" + out.String())
	out.Reset()
	require.NoError(t, r.WriteJSON(&out))
	var back Report
	require.NoError(t, json.Unmarshal(out.Bytes(), &back))
	assert.Equal(t, len(r.Rows), len(back.Rows))
}
