package pulsartest_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// safety bounds every blocking read and wait of a test, so that a broken
// server fails the test instead of hanging it. Tests never sleep: they
// synchronise on the frames they read.
const safety = 10 * time.Second

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), safety)
	t.Cleanup(cancel)
	return c
}

// client is a deliberately tiny Pulsar client: it writes the commands a
// test gives it and reads frames one by one, with nothing of the
// project's client logic.
type client struct {
	t    *testing.T
	nc   net.Conn
	r    *frame.Reader
	body []byte // of the last frame read
}

func deadline() time.Time { return time.Now().Add(safety) }

// dial connects to s over TCP.
func dial(t *testing.T, s *pulsartest.Server) *client {
	t.Helper()
	return dialAddr(t, strings.TrimPrefix(s.URL(), "pulsar://"))
}

func dialAddr(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	return &client{t: t, nc: nc, r: frame.NewReader(nc, 0)}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return l
}

// pipe connects to s over net.Pipe, served by ServeConn.
func pipe(t *testing.T, s *pulsartest.Server) *client {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- s.ServeConn(b) }()
	t.Cleanup(func() {
		_ = a.Close()
		<-done
	})
	return &client{t: t, nc: a, r: frame.NewReader(a, 0)}
}

func (c *client) send(cmd *pulsarpb.BaseCommand) {
	c.t.Helper()
	b, err := frame.AppendCommand(nil, cmd)
	require.NoError(c.t, err)
	c.raw(b)
}

func (c *client) raw(b []byte) {
	c.t.Helper()
	require.NoError(c.t, c.nc.SetWriteDeadline(deadline()))
	_, err := c.nc.Write(b)
	require.NoError(c.t, err)
}

// next reads one frame.
func (c *client) next() *frame.Frame {
	c.t.Helper()
	require.NoError(c.t, c.nc.SetReadDeadline(deadline()))
	body, err := c.r.NextBody()
	require.NoError(c.t, err)
	f, err := frame.Parse(body)
	require.NoError(c.t, err)
	c.body = body
	return f
}

// expect reads one frame and checks its type.
func (c *client) expect(t pulsarpb.BaseCommand_Type) *pulsarpb.BaseCommand {
	c.t.Helper()
	f := c.next()
	require.Equal(c.t, t, f.Command.GetType(), "got %v", f.Command)
	return f.Command
}

// expectClosed checks that the server closed the connection with no
// further frame.
func (c *client) expectClosed() {
	c.t.Helper()
	// net.Pipe refuses deadlines once the other end is closed; then the
	// read below fails at once, as wanted.
	_ = c.nc.SetReadDeadline(deadline())
	body, err := c.r.NextBody()
	if err == nil {
		f, _ := frame.Parse(body)
		c.t.Fatalf("want the connection closed, got a frame: %v", f.Command)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("want the connection closed, it is still open: %v", err)
	}
}

func connectCmd(mod ...func(*pulsarpb.CommandConnect)) *pulsarpb.BaseCommand {
	cc := &pulsarpb.CommandConnect{
		ClientVersion:   proto.String("pulsartest-test-client"),
		ProtocolVersion: proto.Int32(21),
		FeatureFlags:    &pulsarpb.FeatureFlags{SupportsAuthRefresh: proto.Bool(true)},
	}
	for _, m := range mod {
		m(cc)
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CONNECT.Enum(), Connect: cc}
}

// handshake connects and returns CONNECTED.
func (c *client) handshake(mod ...func(*pulsarpb.CommandConnect)) *pulsarpb.CommandConnected {
	c.t.Helper()
	c.send(connectCmd(mod...))
	return c.expect(pulsarpb.BaseCommand_CONNECTED).GetConnected()
}

func withToken(tok string) func(*pulsarpb.CommandConnect) {
	return func(cc *pulsarpb.CommandConnect) {
		cc.AuthMethodName = proto.String("token")
		cc.AuthData = []byte(tok)
	}
}

func lookup(rid uint64, topic string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_LOOKUP.Enum(),
		LookupTopic: &pulsarpb.CommandLookupTopic{
			Topic:     proto.String(topic),
			RequestId: proto.Uint64(rid),
		},
	}
}

func ping() *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PING.Enum(), Ping: &pulsarpb.CommandPing{}}
}

func authResponse(method, data string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_AUTH_RESPONSE.Enum(),
		AuthResponse: &pulsarpb.CommandAuthResponse{
			ClientVersion:   proto.String("pulsartest-test-client"),
			ProtocolVersion: proto.Int32(21),
			Response: &pulsarpb.AuthData{
				AuthMethodName: proto.String(method),
				AuthData:       []byte(data),
			},
		},
	}
}

func producerCmd(rid, id uint64, topic, name string, mode pulsarpb.ProducerAccessMode) *pulsarpb.BaseCommand {
	p := &pulsarpb.CommandProducer{
		Topic:              proto.String(topic),
		ProducerId:         proto.Uint64(id),
		RequestId:          proto.Uint64(rid),
		ProducerAccessMode: mode.Enum(),
	}
	if name != "" {
		p.ProducerName = proto.String(name)
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PRODUCER.Enum(), Producer: p}
}

// sendFrame encodes SEND of payload by producer id with sequence id seq.
func sendFrame(t *testing.T, id, seq uint64, payload string) (frameBytes, metadata []byte) {
	t.Helper()
	md, err := proto.Marshal(&pulsarpb.MessageMetadata{
		ProducerName: proto.String("p"),
		SequenceId:   proto.Uint64(seq),
		PublishTime:  proto.Uint64(1_700_000_000_000 + seq),
	})
	require.NoError(t, err)
	b, err := frame.AppendPayload(nil, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SEND.Enum(),
		Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(id), SequenceId: proto.Uint64(seq)},
	}, md, []byte(payload))
	require.NoError(t, err)
	return b, md
}

func subscribeCmd(rid, id uint64, topic, sub string, typ pulsarpb.CommandSubscribe_SubType, pos pulsarpb.CommandSubscribe_InitialPosition) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SUBSCRIBE.Enum(),
		Subscribe: &pulsarpb.CommandSubscribe{
			Topic:           proto.String(topic),
			Subscription:    proto.String(sub),
			SubType:         typ.Enum(),
			ConsumerId:      proto.Uint64(id),
			RequestId:       proto.Uint64(rid),
			InitialPosition: pos.Enum(),
		},
	}
}

func flow(id uint64, permits uint32) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_FLOW.Enum(),
		Flow: &pulsarpb.CommandFlow{ConsumerId: proto.Uint64(id), MessagePermits: proto.Uint32(permits)},
	}
}

func ackCmd(id uint64, typ pulsarpb.CommandAck_AckType, rid *uint64, entries ...uint64) *pulsarpb.BaseCommand {
	a := &pulsarpb.CommandAck{ConsumerId: proto.Uint64(id), AckType: typ.Enum(), RequestId: rid}
	for _, e := range entries {
		a.MessageId = append(a.MessageId, &pulsarpb.MessageIdData{LedgerId: proto.Uint64(1), EntryId: proto.Uint64(e)})
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_ACK.Enum(), Ack: a}
}

// publish stores payloads on topic through the server's back door.
func publish(s *pulsartest.Server, topic string, payloads ...string) {
	for i, p := range payloads {
		md, _ := proto.Marshal(&pulsarpb.MessageMetadata{
			ProducerName: proto.String("back-door"),
			SequenceId:   proto.Uint64(uint64(i)),
			PublishTime:  proto.Uint64(1_700_000_000_000 + uint64(i)),
		})
		s.Publish(topic, md, []byte(p))
	}
}
