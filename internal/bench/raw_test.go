package bench

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Every scenario runs exactly the operations asked for, on every side,
// checking every answer.
func TestRunOps(t *testing.T) {
	ctx := testenv.Context(t)
	rr, err := NewServer(ServerConfig{Partitions: 4})
	require.NoError(t, err)
	defer rr.Close()
	sink, err := NewServer(ServerConfig{Sink: true})
	require.NoError(t, err)
	defer sink.Close()
	const n = 1500 // more than a receipts window
	for _, sc := range []Scenario{ScenarioRR1, ScenarioRR64, ScenarioRR64Async, ScenarioPublish, ScenarioReceipts, ScenarioDelivery} {
		srv := rr
		if sc == ScenarioPublish {
			srv = sink
		}
		for _, side := range []Side{SideRaw, SideRawPipelined, SideLibrary} {
			got, err := RunOps(ctx, sc, side, srv, n)
			require.NoError(t, err, "%s %s", sc, side)
			assert.Equal(t, n, got.Ops, "%s %s", sc, side)
			if got.Latency != nil {
				assert.Equal(t, uint64(n), got.Latency.Count(), "%s %s", sc, side)
			}
		}
	}
	_, err = RunOps(ctx, ScenarioPublish, SideRaw, rr, n)
	assert.Error(t, err, "publish needs a sink")
}

// The raw loops check what they read: an answer to a request that is not
// the oldest in flight fails the loop, in both shapes.
func TestRawRequestsRejectsAWrongAnswer(t *testing.T) {
	ctx := testenv.Context(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	connected := mustEncode(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CONNECTED.Enum(), Connected: &pulsarpb.CommandConnected{ServerVersion: ptr("fake")}})
	wrong := mustEncode(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE.Enum(),
		PartitionMetadataResponse: &pulsarpb.CommandPartitionedTopicMetadataResponse{Partitions: ptr(uint32(4)), RequestId: ptr(uint64(7))}})
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				fr := frame.NewReader(nc, 0)
				if _, err := fr.NextBody(); err != nil {
					return
				}
				if _, err := nc.Write(connected); err != nil {
					return
				}
				for {
					if _, err := fr.NextBody(); err != nil {
						return
					}
					if _, err := nc.Write(wrong); err != nil {
						return
					}
				}
			}()
		}
	}()
	for _, shape := range []Shape{Lockstep, Pipelined} {
		_, err := RawRequests(ctx, ln.Addr().String(), 4, shape, Count(10))
		assert.ErrorIs(t, err, errUnexpected, "shape %d", shape)
	}
}

// A window larger than the socket buffers hold receipts for does not
// leave client and server both blocked writing: Lockstep reads after
// every rawBatch bytes it writes.
func TestRawReceiptsLargeWindow(t *testing.T) {
	ctx := testenv.Context(t)
	rr, err := NewServer(ServerConfig{})
	require.NoError(t, err)
	defer rr.Close()
	for _, shape := range []Shape{Lockstep, Pipelined} {
		got, err := RawReceipts(ctx, rr.Addr(), 100_000, PayloadSize, shape, Count(100_000))
		require.NoError(t, err, "shape %d", shape)
		assert.Equal(t, 100_000, got.Ops)
	}
}
