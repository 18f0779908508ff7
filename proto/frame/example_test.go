package frame_test

import (
	"bytes"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// A PING is the smallest frame: total size 9, command size 5, then the
// BaseCommand {type: PING, ping: {}}.
func ExampleAppendCommand() {
	out, err := frame.AppendCommand(nil, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_PING.Enum(),
		Ping: &pulsarpb.CommandPing{},
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", out)
	// Output:
	// 00 00 00 09 00 00 00 05 08 12 92 01 00
}

// Frames are appended to one buffer, as a writer coalesces them into one
// write, and a Reader takes them apart again from the stream.
func ExampleReader() {
	var buf []byte
	buf, _ = frame.AppendCommand(buf, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_PING.Enum(),
		Ping: &pulsarpb.CommandPing{},
	})
	buf, _ = frame.AppendMessage(buf,
		&pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_SEND.Enum(),
			Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(1), SequenceId: proto.Uint64(0)},
		},
		&pulsarpb.MessageMetadata{
			ProducerName: proto.String("standalone-0-1"),
			SequenceId:   proto.Uint64(0),
			PublishTime:  proto.Uint64(1_700_000_000_000),
		},
		[]byte("hello"))

	r := frame.NewReader(bytes.NewReader(buf), frame.DefaultMaxFrameSize)
	for {
		f, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		if f.Payload == nil {
			fmt.Println(f.Command.GetType())
			continue
		}
		md, err := f.Payload.DecodeMetadata()
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Printf("%v from %s: %q, checksum ok: %v\n",
			f.Command.GetType(), md.GetProducerName(), f.Payload.Data, f.Payload.ChecksumOK)
	}
	// Output:
	// PING
	// SEND from standalone-0-1: "hello", checksum ok: true
}
