package chaos_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/internal/chaos"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// world is a scenario's set-up: a Broker → the chaos proxy → pulsartest,
// all on 127.0.0.1.
type world struct {
	srv   *pulsartest.Server
	proxy *chaos.Proxy
}

// newWorld starts pulsartest on TCP and a proxy in front of it; both are
// closed when the test ends (after the Brokers started by start).
func newWorld(t *testing.T, opts ...pulsartest.Option) *world {
	t.Helper()
	srv := pulsartest.NewTCP(t, opts...)
	p, err := chaos.Listen(strings.TrimPrefix(srv.URL(), "pulsar://"))
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return &world{srv: srv, proxy: p}
}

// start starts a Broker that dials the proxy, stopped when the test ends.
func (w *world) start(t *testing.T, opts ...pulsarconn.BrokerOption) *pulsarconn.Broker {
	t.Helper()
	b, err := pulsarconn.Start("pulsar://"+w.proxy.Addr(), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { b.Stop(context.Background()) })
	return b
}

func producerCmd(topic string, id uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type:     pulsarpb.BaseCommand_PRODUCER.Enum(),
		Producer: &pulsarpb.CommandProducer{Topic: proto.String(topic), ProducerId: proto.Uint64(id)},
	}
}

// sender encodes SEND frames into one reused buffer.
type sender struct {
	cmd *pulsarpb.BaseCommand
	md  *pulsarpb.MessageMetadata
	buf []byte
}

func newSender(producerID uint64) *sender {
	return &sender{
		cmd: &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND.Enum(),
			Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(producerID), SequenceId: proto.Uint64(0)}},
		md: &pulsarpb.MessageMetadata{ProducerName: proto.String("chaos"), SequenceId: proto.Uint64(0), PublishTime: proto.Uint64(1)},
	}
}

// frame returns the SEND frame of message seq; it is valid until the next
// call (PublishMessage copies it).
func (s *sender) frame(t *testing.T, seq uint64, payload []byte) []byte {
	*s.cmd.Send.SequenceId = seq
	*s.md.SequenceId = seq
	var err error
	s.buf, err = frame.AppendMessage(s.buf[:0], s.cmd, s.md, payload)
	require.NoError(t, err)
	return s.buf
}
