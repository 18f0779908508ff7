package pulsartest_test

import (
	"fmt"
	"net"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// A fake broker on a loopback listener, its handshake, and an interceptor
// that makes the broker refuse one lookup.
func Example() {
	s := pulsartest.NewServer(pulsartest.WithToken("s3cret"))
	defer s.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	if err := s.Start(l); err != nil {
		panic(err)
	}

	nc, err := net.Dial("tcp", strings.TrimPrefix(s.URL(), "pulsar://"))
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	r := frame.NewReader(nc, 0)
	roundTrip := func(cmd *pulsarpb.BaseCommand) *pulsarpb.BaseCommand {
		b, _ := frame.AppendCommand(nil, cmd)
		if _, err := nc.Write(b); err != nil {
			panic(err)
		}
		f, err := r.Next()
		if err != nil {
			panic(err)
		}
		return f.Command
	}

	connected := roundTrip(&pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_CONNECT.Enum(),
		Connect: &pulsarpb.CommandConnect{
			ClientVersion:   proto.String("example"),
			ProtocolVersion: proto.Int32(21),
			AuthMethodName:  proto.String("token"),
			AuthData:        []byte("s3cret"),
		},
	})
	fmt.Println(connected.GetType(), "protocol version", connected.GetConnected().GetProtocolVersion())

	s.Intercept(pulsarpb.BaseCommand_LOOKUP, func(c *pulsartest.Call) pulsartest.Action {
		_ = c.ReplyError(pulsarpb.ServerError_ServiceNotReady, "try again")
		return pulsartest.Handled
	})
	lookup := func(rid uint64) *pulsarpb.CommandLookupTopicResponse {
		return roundTrip(&pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_LOOKUP.Enum(),
			LookupTopic: &pulsarpb.CommandLookupTopic{
				Topic:     proto.String("persistent://public/default/orders"),
				RequestId: proto.Uint64(rid),
			},
		}).GetLookupTopicResponse()
	}
	first := lookup(1)
	fmt.Println(first.GetRequestId(), first.GetResponse(), first.GetError())
	second := lookup(2)
	fmt.Println(second.GetRequestId(), second.GetResponse(), second.GetBrokerServiceUrl() == s.URL())
	// Output:
	// CONNECTED protocol version 21
	// 1 Failed ServiceNotReady
	// 2 Connect true
}
