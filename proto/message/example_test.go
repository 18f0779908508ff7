package message_test

import (
	"fmt"

	"github.com/pulsarconn/pulsarconn/proto/message"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// An Encoder per producer builds its SEND frames, here a batch of two
// messages compressed with LZ4, ready for Registration.Publish; its
// buffers are reused from frame to frame.
func ExampleEncoder() {
	enc := &message.Encoder{ProducerName: "orders-1", Compression: pulsarpb.CompressionType_LZ4}
	var buf []byte
	buf, err := enc.AppendBatch(buf[:0], 1, []message.Message{
		{Payload: []byte("first"), SequenceID: 10, Key: "customer-7", Properties: map[string]string{"origin": "web"}},
		{Payload: []byte("second"), SequenceID: 11, EventTime: 1_700_000_000_000},
	})
	if err != nil {
		panic(err)
	}
	// The same frame, decoded again.
	cmd, e, err := message.Decoder{}.DecodeFrame(buf)
	if err != nil {
		panic(err)
	}
	fmt.Println(cmd.GetType(), "sequence ids", cmd.GetSend().GetSequenceId(), "to", cmd.GetSend().GetHighestSequenceId())
	fmt.Println(e.Compression, "batched:", e.Batched, "messages:", len(e.Messages))
	// Output:
	// SEND sequence ids 10 to 11
	// LZ4 batched: true messages: 2
}

// A consumer decodes the payload section of each MESSAGE it receives
// (core.Push.Payload, or a frame's Payload), with a limit on what
// decompression may allocate: the largest message its producers send.
func ExampleDecoder() {
	// A MESSAGE as a broker delivers it: here built from a producer's
	// SEND, compressed with ZSTD.
	enc := &message.Encoder{ProducerName: "orders-1", Compression: pulsarpb.CompressionType_ZSTD}
	wire, err := enc.AppendBatch(nil, 1, []message.Message{
		{Payload: []byte("first"), SequenceID: 10, Key: "customer-7", Properties: map[string]string{"origin": "web"}},
		{Payload: []byte("second"), SequenceID: 11, EventTime: 1_700_000_000_000},
	})
	if err != nil {
		panic(err)
	}

	dec := message.Decoder{MaxSize: 5 << 20}
	_, entry, err := dec.DecodeFrame(wire)
	if err != nil {
		panic(err) // errors.Is(err, message.ErrChecksum), ErrTooLarge, ...
	}
	fmt.Println("CRC32C carried and verified:", entry.HasChecksum) // its value: entry.Checksum
	for _, m := range entry.Messages {
		fmt.Printf("%d %q key=%q props=%v event=%d\n", m.SequenceID, m.Payload, m.Key, m.Properties, m.EventTime)
	}
	// Output:
	// CRC32C carried and verified: true
	// 10 "first" key="customer-7" props=map[origin:web] event=0
	// 11 "second" key="" props=map[] event=1700000000000
}
