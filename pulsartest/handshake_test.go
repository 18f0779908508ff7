package pulsartest_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

func TestHandshakeNegotiatesProtocolVersion(t *testing.T) {
	tests := []struct {
		name   string
		opts   []pulsartest.Option
		client int32
		want   int32
	}{
		{"same", nil, 21, 21},
		{"newer client", nil, 25, 21},
		{"older client", nil, 15, 15},
		{"older server", []pulsartest.Option{pulsartest.WithProtocolVersion(19)}, 21, 19},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := pulsartest.NewTCP(t, tt.opts...)
			c := dial(t, s)
			connected := c.handshake(func(cc *pulsarpb.CommandConnect) { cc.ProtocolVersion = proto.Int32(tt.client) })
			assert.Equal(t, tt.want, connected.GetProtocolVersion())
			assert.Equal(t, pulsartest.DefaultServerVersion, connected.GetServerVersion())
			assert.EqualValues(t, 5*1024*1024, connected.GetMaxMessageSize())
			assert.NotNil(t, connected.FeatureFlags)
			assert.Equal(t, tt.client, s.LastConnect().GetProtocolVersion())
			assert.Equal(t, "pulsartest-test-client", s.LastConnect().GetClientVersion())
		})
	}
}

func TestTokenAuthentication(t *testing.T) {
	tests := []struct {
		name    string
		connect func(*pulsarpb.CommandConnect)
		ok      bool
	}{
		{"right token", withToken("s3cret"), true},
		{"wrong token", withToken("guess"), false},
		{"no credentials", func(*pulsarpb.CommandConnect) {}, false},
		{"other method", func(cc *pulsarpb.CommandConnect) {
			cc.AuthMethodName = proto.String("basic")
			cc.AuthData = []byte("s3cret")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := pulsartest.NewTCP(t, pulsartest.WithToken("s3cret"))
			c := dial(t, s)
			c.send(connectCmd(tt.connect))
			if tt.ok {
				c.expect(pulsarpb.BaseCommand_CONNECTED)
				return
			}
			// A broker answers ERROR with request id -1 and hangs up.
			e := c.expect(pulsarpb.BaseCommand_ERROR).GetError()
			assert.Equal(t, pulsarpb.ServerError_AuthenticationError, e.GetError())
			assert.Equal(t, uint64(math.MaxUint64), e.GetRequestId())
			assert.NotEmpty(t, e.GetMessage())
			c.expectClosed()
		})
	}
}

func TestAuthChallengeRounds(t *testing.T) {
	s := pulsartest.NewTCP(t, pulsartest.WithToken("tok"), pulsartest.WithAuthChallenge(2))
	c := dial(t, s)
	c.send(connectCmd(withToken("tok")))
	for range 2 {
		ch := c.expect(pulsarpb.BaseCommand_AUTH_CHALLENGE).GetAuthChallenge()
		assert.Equal(t, "token", ch.GetChallenge().GetAuthMethodName())
		assert.NotEmpty(t, ch.GetChallenge().GetAuthData())
		assert.EqualValues(t, 21, ch.GetProtocolVersion())
		c.send(authResponse("token", "tok"))
	}
	c.expect(pulsarpb.BaseCommand_CONNECTED)
	assert.Equal(t, 2, s.Received(pulsarpb.BaseCommand_AUTH_RESPONSE))
}

func TestAuthChallengeWrongResponse(t *testing.T) {
	s := pulsartest.NewTCP(t, pulsartest.WithToken("tok"), pulsartest.WithAuthChallenge(2))
	c := dial(t, s)
	c.send(connectCmd(withToken("tok")))
	c.expect(pulsarpb.BaseCommand_AUTH_CHALLENGE)
	c.send(authResponse("token", "tok"))
	c.expect(pulsarpb.BaseCommand_AUTH_CHALLENGE)
	c.send(authResponse("token", "stale"))
	e := c.expect(pulsarpb.BaseCommand_ERROR).GetError()
	assert.Equal(t, pulsarpb.ServerError_AuthenticationError, e.GetError())
	c.expectClosed()
}

func TestAuthChallengeWithoutToken(t *testing.T) {
	s := pulsartest.NewTCP(t, pulsartest.WithAuthChallenge(1))
	c := dial(t, s)
	c.send(connectCmd())
	assert.Equal(t, "none", c.expect(pulsarpb.BaseCommand_AUTH_CHALLENGE).GetAuthChallenge().GetChallenge().GetAuthMethodName())
	c.send(authResponse("none", ""))
	c.expect(pulsarpb.BaseCommand_CONNECTED)
}

func TestChallengeAllRefreshesCredentials(t *testing.T) {
	s := pulsartest.NewTCP(t, pulsartest.WithToken("tok"))
	good, bad := dial(t, s), dial(t, s)
	good.handshake(withToken("tok"))
	bad.handshake(withToken("tok"))

	require.Equal(t, 2, s.ChallengeAll())
	ch := good.expect(pulsarpb.BaseCommand_AUTH_CHALLENGE).GetAuthChallenge()
	assert.Equal(t, "PulsarAuthRefresh", string(ch.GetChallenge().GetAuthData()))
	good.send(authResponse("token", "tok"))
	good.send(ping())
	good.expect(pulsarpb.BaseCommand_PONG) // still connected
	assert.Equal(t, "tok", string(s.LastAuthResponse().GetResponse().GetAuthData()))

	bad.expect(pulsarpb.BaseCommand_AUTH_CHALLENGE)
	bad.send(authResponse("token", "expired"))
	assert.Equal(t, pulsarpb.ServerError_AuthenticationError, bad.expect(pulsarpb.BaseCommand_ERROR).GetError().GetError())
	bad.expectClosed()
}

func TestChallengeAllClosesClientsWithoutAuthRefresh(t *testing.T) {
	s := pulsartest.NewTCP(t)
	c := dial(t, s)
	c.handshake(func(cc *pulsarpb.CommandConnect) { cc.FeatureFlags = nil })
	assert.Equal(t, 0, s.ChallengeAll())
	c.expectClosed()
}

func TestCommandBeforeConnectClosesConnection(t *testing.T) {
	s := pulsartest.NewTCP(t)
	c := dial(t, s)
	c.send(lookup(1, "t"))
	c.expectClosed()
}

func TestSecondConnectClosesConnection(t *testing.T) {
	s := pulsartest.NewTCP(t)
	c := dial(t, s)
	c.handshake()
	c.send(connectCmd())
	c.expectClosed()
}

// A command whose type names a sub-message it does not carry is malformed:
// a broker's decoder checks for the sub-message first and drops the
// connection. Each type is sent bare on a connection with a producer and
// a consumer of id 0, the id a bare command's getters read.
func TestCommandWithoutItsBodyClosesConnection(t *testing.T) {
	fields := (&pulsarpb.BaseCommand{}).ProtoReflect().Descriptor().Fields()
	types := pulsarpb.BaseCommand_CONNECT.Descriptor().Values()
	tested := 0
	for i := range types.Len() {
		typ := pulsarpb.BaseCommand_Type(types.Get(i).Number())
		if fields.ByNumber(protoreflect.FieldNumber(typ)) == nil {
			continue // no sub-message in the schema: the fake ignores the type
		}
		tested++
		t.Run(typ.String(), func(t *testing.T) {
			s := pulsartest.NewServer()
			t.Cleanup(func() { _ = s.Close() })
			c := pipe(t, s)
			c.handshake()
			c.send(producerCmd(1, 0, "t", "", pulsarpb.ProducerAccessMode_Shared))
			c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
			c.send(subscribeCmd(2, 0, "t", "s", pulsarpb.CommandSubscribe_Exclusive, pulsarpb.CommandSubscribe_Earliest))
			c.expect(pulsarpb.BaseCommand_SUCCESS)
			c.send(&pulsarpb.BaseCommand{Type: typ.Enum()})
			c.expectClosed()
		})
	}
	require.Greater(t, tested, 30)
}

// A command only a broker sends, sent by a client, closes the connection
// as on a broker, which has no handler for it; a PONG does not.
func TestBrokerOnlyCommandClosesConnection(t *testing.T) {
	fields := (&pulsarpb.BaseCommand{}).ProtoReflect().Descriptor().Fields()
	withBody := func(typ pulsarpb.BaseCommand_Type) *pulsarpb.BaseCommand {
		cmd := &pulsarpb.BaseCommand{Type: typ.Enum()}
		fd := fields.ByNumber(protoreflect.FieldNumber(typ))
		cmd.ProtoReflect().Set(fd, cmd.ProtoReflect().NewField(fd))
		return cmd
	}
	for _, typ := range []pulsarpb.BaseCommand_Type{
		pulsarpb.BaseCommand_CONNECTED,
		pulsarpb.BaseCommand_SEND_RECEIPT,
		pulsarpb.BaseCommand_MESSAGE,
		pulsarpb.BaseCommand_SUCCESS,
		pulsarpb.BaseCommand_LOOKUP_RESPONSE,
		pulsarpb.BaseCommand_ACK_RESPONSE,
		pulsarpb.BaseCommand_TOPIC_MIGRATED,
	} {
		t.Run(typ.String(), func(t *testing.T) {
			s := pulsartest.NewServer()
			t.Cleanup(func() { _ = s.Close() })
			c := pipe(t, s)
			c.handshake()
			c.send(withBody(pulsarpb.BaseCommand_PONG))
			c.send(ping())
			c.expect(pulsarpb.BaseCommand_PONG)
			c.send(withBody(typ))
			c.expectClosed()
		})
	}
}

func TestNeverConnect(t *testing.T) {
	s := pulsartest.NewTCP(t)
	s.SetNeverConnect(true)
	c := dial(t, s)
	c.send(connectCmd())
	// The server handles a connection's commands in order: the PING after
	// CONNECT finds the handshake unfinished and gets the connection closed,
	// with no CONNECTED before.
	c.send(ping())
	c.expectClosed()
	require.NotNil(t, s.LastConnect())

	s.SetNeverConnect(false)
	dial(t, s).handshake()
}

func TestMaxMessageSize(t *testing.T) {
	s := pulsartest.NewTCP(t, pulsartest.WithMaxMessageSize(1024))
	c := dial(t, s)
	assert.EqualValues(t, 1024, c.handshake().GetMaxMessageSize())

	// A frame of up to max_message_size + 10 KiB is accepted...
	c.send(producerCmd(1, 1, "t", "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	b, _ := sendFrame(t, 1, 0, string(make([]byte, 1024+9*1024)))
	c.raw(b)
	c.expect(pulsarpb.BaseCommand_SEND_RECEIPT)
	// ...a larger one closes the connection.
	b, _ = sendFrame(t, 1, 1, string(make([]byte, 1024+10*1024)))
	c.raw(b)
	c.expectClosed()
}

func TestBasicAuthentication(t *testing.T) {
	basic := func(data string) func(*pulsarpb.CommandConnect) {
		return func(cc *pulsarpb.CommandConnect) {
			cc.AuthMethodName = proto.String("basic")
			cc.AuthData = []byte(data)
		}
	}
	tests := []struct {
		name    string
		connect func(*pulsarpb.CommandConnect)
		ok      bool
	}{
		{"right credentials", basic("alice:pw"), true},
		{"wrong password", basic("alice:guess"), false},
		{"token instead", withToken("alice:pw"), false},
		{"no credentials", func(*pulsarpb.CommandConnect) {}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := pulsartest.NewTCP(t, pulsartest.WithBasicAuth("alice", "pw"))
			c := dial(t, s)
			c.send(connectCmd(tt.connect))
			if tt.ok {
				c.expect(pulsarpb.BaseCommand_CONNECTED)
				return
			}
			e := c.expect(pulsarpb.BaseCommand_ERROR).GetError()
			assert.Equal(t, pulsarpb.ServerError_AuthenticationError, e.GetError())
			c.expectClosed()
		})
	}
}
