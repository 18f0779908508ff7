package pulsartest_test

import (
	"io"
	"net"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// FuzzServerInput feeds whatever a client might send after a handshake:
// the server must neither panic nor hang, whatever the bytes.
func FuzzServerInput(f *testing.F) {
	frames := func(cmds ...*pulsarpb.BaseCommand) []byte {
		var b []byte
		for _, c := range cmds {
			b, _ = frame.AppendCommand(b, c)
		}
		return b
	}
	f.Add(frames(lookup(1, "t"), ping()))
	f.Add(frames(
		subscribeCmd(1, 1, "t", "s", pulsarpb.CommandSubscribe_Shared, pulsarpb.CommandSubscribe_Earliest),
		flow(1, 10),
		ackCmd(1, pulsarpb.CommandAck_Cumulative, proto.Uint64(2), 5),
		&pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_SEEK.Enum(),
			Seek: &pulsarpb.CommandSeek{ConsumerId: proto.Uint64(1), RequestId: proto.Uint64(3), MessagePublishTime: proto.Uint64(0)},
		},
	))
	send, _ := frame.AppendPayload(frames(producerCmd(1, 1, "t", "", pulsarpb.ProducerAccessMode_Shared)),
		&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND.Enum(), Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(1)}},
		[]byte{0x0a, 0x01, 'p'}, []byte("payload"))
	f.Add(send)
	f.Add([]byte{0, 0, 0, 2, 1, 2})
	connect := frames(connectCmd())

	f.Fuzz(func(t *testing.T, b []byte) {
		s := pulsartest.NewServer()
		defer s.Close()
		publish(s, "t", "m0", "m1")
		a, srv := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			_ = s.ServeConn(srv)
		}()
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			_, _ = io.Copy(io.Discard, a)
		}()
		_, _ = a.Write(append(append([]byte(nil), connect...), b...)) // fails if the server hung up
		_ = a.Close()
		<-served
		<-drained
	})
}
