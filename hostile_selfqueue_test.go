package pulsarconn_test

import (
	"context"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/adapters/auth/token"
	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/ports"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// pipeTransport connects each Dial to serve over a net.Pipe. The pipe has
// no buffer: a write the broker does not read blocks, as on a socket whose
// buffers are full, and nothing the client sends waits in memory outside
// the client.
type pipeTransport struct {
	wg    *sync.WaitGroup
	serve func(c *brokerSide)
}

func (p pipeTransport) Dial(context.Context, string) (ports.Conn, error) {
	client, server := net.Pipe()
	p.wg.Go(func() {
		defer server.Close()
		p.serve(&brokerSide{Conn: server, fr: frame.NewReader(server, 0)})
	})
	return client, nil
}

// TestHostileSelfQueued plays a broker that stops reading right after
// CONNECTED and floods the frames the client answers on its own: PINGs
// (each asks for a PONG) and AUTH_CHALLENGEs (each asks the Authenticator
// for an AUTH_RESPONSE). The client's first answer blocks its writer for
// good; the answers to the rest must not pile up behind it, whatever their
// number. Then an ACTIVE_CONSUMER_CHANGE for a registered consumer marks
// the end of the flood: once delivered, every frame before it has been
// handled.
func TestHostileSelfQueued(t *testing.T) {
	refresh := []byte("PulsarAuthRefresh")
	cases := []struct {
		name  string
		n     int // frames in the flood
		chunk int // frames per write
		frame *pulsarpb.BaseCommand
		opts  []pulsarconn.BrokerOption
	}{
		{
			name: "PINGs", n: 250_000, chunk: 1000,
			frame: &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PING.Enum(), Ping: &pulsarpb.CommandPing{}},
		},
		{
			// Each answer carries a 1 KiB token. One challenge per
			// write: each finds the Authenticator's previous answer
			// given, so that almost every one is answered.
			name: "AUTH_CHALLENGEs", n: 20_000, chunk: 1,
			frame: &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_AUTH_CHALLENGE.Enum(), AuthChallenge: &pulsarpb.CommandAuthChallenge{
				ServerVersion: proto.String("hostile"), ProtocolVersion: proto.Int32(frame.ProtocolVersion),
				Challenge: &pulsarpb.AuthData{AuthMethodName: proto.String("token"), AuthData: refresh},
			}},
			opts: []pulsarconn.BrokerOption{pulsarconn.WithAuthenticator(token.New(strings.Repeat("t", 1024)))},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var chunk []byte
			for range tc.chunk {
				var err error
				chunk, err = frame.AppendCommand(chunk, tc.frame)
				require.NoError(t, err)
			}
			marker, err := frame.AppendCommand(nil, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_ACTIVE_CONSUMER_CHANGE.Enum(),
				ActiveConsumerChange: &pulsarpb.CommandActiveConsumerChange{ConsumerId: proto.Uint64(1), IsActive: proto.Bool(true)}})
			require.NoError(t, err)

			flood := make(chan struct{}) // the consumer is registered: flood
			stop := make(chan struct{})
			var wg sync.WaitGroup
			transport := pipeTransport{wg: &wg, serve: func(c *brokerSide) {
				if c.handshake(0) != nil {
					return
				}
				select {
				case <-flood:
				case <-stop:
					return
				}
				// From here on the broker reads nothing.
				for range tc.n / tc.chunk {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
				if _, err := c.Write(marker); err != nil {
					return
				}
				<-stop
			}}
			t.Cleanup(func() { wg.Wait() })

			// A fake clock that never moves: no keepalive ends the
			// connection, which stays up for as long as the broker
			// floods.
			clk := memory.NewClock(time.Now())
			b, err := pulsarconn.Start("pulsar://hostile:6650",
				append([]pulsarconn.BrokerOption{pulsarconn.WithTransport(transport), pulsarconn.WithClock(clk)}, tc.opts...)...)
			require.NoError(t, err)
			// Cleanups run last first: the broker hangs up, which fails
			// the CLOSE_CONSUMER that Stop would wait for, then the
			// broker's goroutine is waited for.
			t.Cleanup(func() { b.Stop(context.Background()) })
			t.Cleanup(func() { close(stop) })
			ctx := testContext(t)
			require.NoError(t, b.WaitConnected(ctx))
			marked := make(chan struct{}, 1)
			_, err = b.RegisterConsumer(ctx, 1, pulsarconn.HandlerFunc(func(p pulsarconn.Push) {
				if p.Kind == pulsarconn.PushActiveConsumerChange {
					marked <- struct{}{}
				}
			}))
			require.NoError(t, err)

			goroutines := runtime.NumGoroutine()
			probe := startMemProbe()
			close(flood)
			waitFor(t, marked, "the end of the flood")
			peak := probe.finish()
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			held := int64(m.HeapInuse) - int64(probe.base.HeapInuse)
			grown := runtime.NumGoroutine() - goroutines
			t.Logf("%d %s: %v, held after GC %+.2f MiB, goroutines %+d", tc.n, tc.name, peak, float64(held)/mib, grown)

			assert.Equal(t, pulsarconn.StateConnected, b.State(), "the flood keeps the connection alive")
			assert.LessOrEqual(t, held, int64(mib), "heap held once the flood is handled")
			assert.LessOrEqual(t, peak.PeakGrowth, int64(8*mib), "heap growth during the flood")
			// The writer, blocked in its write, and at most one
			// Authenticator call.
			assert.LessOrEqual(t, grown, 2, "goroutines")
		})
	}
}
