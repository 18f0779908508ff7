package message_test

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/message"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

func TestSingleRoundTrip(t *testing.T) {
	for _, c := range compressions {
		t.Run(c.String(), func(t *testing.T) {
			enc := &message.Encoder{ProducerName: "prod-1", Compression: c}
			m := fullMessage()
			wire, err := enc.AppendSend(nil, 5, &m)
			require.NoError(t, err)

			cmd, e := decodeFrame(t, wire)
			assert.Equal(t, pulsarpb.BaseCommand_SEND, cmd.GetType())
			assert.Equal(t, uint64(5), cmd.GetSend().GetProducerId())
			assert.Equal(t, uint64(41), cmd.GetSend().GetSequenceId())
			assert.Nil(t, cmd.GetSend().NumMessages, "a single message does not say num_messages")
			assert.False(t, cmd.GetSend().GetIsChunk())

			assert.True(t, e.HasChecksum)
			crcAt := 8 + int(binary.BigEndian.Uint32(wire[4:])) + 2
			assert.Equal(t, binary.BigEndian.Uint32(wire[crcAt:]), e.Checksum)
			assert.Equal(t, frame.Checksum(wire[crcAt+4:]), e.Checksum)
			assert.Nil(t, e.BrokerEntry)
			assert.Equal(t, c, e.Compression)
			assert.False(t, e.Batched)
			assert.Equal(t, "prod-1", e.Metadata.GetProducerName())
			assert.Nil(t, e.Metadata.NumMessagesInBatch)
			if c == pulsarpb.CompressionType_NONE {
				assert.Nil(t, e.Metadata.Compression)
				assert.Nil(t, e.Metadata.UncompressedSize)
			} else {
				assert.Equal(t, uint32(len(m.Payload)), e.Metadata.GetUncompressedSize())
				assert.Less(t, len(wire), len(m.Payload), "the text compresses")
			}
			require.Len(t, e.Messages, 1)
			assert.Equal(t, m, e.Messages[0])
		})
	}
}

func TestSingleMinimal(t *testing.T) {
	// A message with nothing set but its sequence id: no optional field is
	// written, and the publish time is the current time.
	for _, c := range compressions {
		t.Run(c.String(), func(t *testing.T) {
			enc := &message.Encoder{Compression: c}
			before := uint64(time.Now().UnixMilli())
			wire, err := enc.AppendSend(nil, 1, &message.Message{SequenceID: 0})
			require.NoError(t, err)
			after := uint64(time.Now().UnixMilli())
			_, e := decodeFrame(t, wire)
			md := e.Metadata
			assert.Equal(t, "", md.GetProducerName())
			assert.Nil(t, md.PartitionKey)
			assert.Nil(t, md.PartitionKeyB64Encoded)
			assert.Nil(t, md.OrderingKey)
			assert.Nil(t, md.EventTime)
			assert.Nil(t, md.NullValue)
			assert.Nil(t, md.DeliverAtTime)
			assert.Nil(t, md.SchemaVersion)
			assert.Nil(t, md.Uuid)
			assert.Empty(t, md.Properties)
			require.Len(t, e.Messages, 1)
			got := e.Messages[0]
			assert.Empty(t, got.Payload)
			assert.GreaterOrEqual(t, got.PublishTime, before)
			assert.LessOrEqual(t, got.PublishTime, after)
			got.PublishTime, got.Payload = 0, nil
			assert.Equal(t, message.Message{}, got)
		})
	}
}

func TestBatchRoundTrip(t *testing.T) {
	for _, c := range compressions {
		t.Run(c.String(), func(t *testing.T) {
			enc := &message.Encoder{ProducerName: "batcher", Compression: c}
			msgs := batchMessages()
			wire, err := enc.AppendBatch(nil, 9, msgs)
			require.NoError(t, err)

			cmd, e := decodeFrame(t, wire)
			send := cmd.GetSend()
			assert.Equal(t, uint64(9), send.GetProducerId())
			assert.Equal(t, uint64(10), send.GetSequenceId(), "the first message's")
			assert.Equal(t, uint64(12), send.GetHighestSequenceId(), "the last message's")
			assert.Equal(t, int32(3), send.GetNumMessages())

			assert.True(t, e.Batched)
			assert.Equal(t, c, e.Compression)
			assert.Equal(t, int32(3), e.Metadata.GetNumMessagesInBatch())
			assert.Equal(t, "batcher", e.Metadata.GetProducerName())
			assert.Equal(t, uint64(10), e.Metadata.GetSequenceId())
			require.Len(t, e.Messages, 3)
			for i, want := range msgs {
				// What the batch shares comes from the first message.
				want.PublishTime, want.SchemaVersion = msgs[0].PublishTime, msgs[0].SchemaVersion
				assert.Equal(t, want, e.Messages[i], "message %d", i)
			}
		})
	}
}

func TestBatchMetadataForTheBroker(t *testing.T) {
	// The broker reads a batch's MessageMetadata, never its single
	// messages': deduplication rebuilds each producer's last sequence id
	// from the stored entries' highest_sequence_id, and Key_Shared routes
	// an entry by its partition or ordering key.
	enc := &message.Encoder{ProducerName: "p"}
	msgs := batchMessages()
	msgs[0].OrderingKey = []byte("o1")
	wire, err := enc.AppendBatch(nil, 1, msgs)
	require.NoError(t, err)
	_, e := decodeFrame(t, wire)
	assert.Equal(t, uint64(10), e.Metadata.GetSequenceId())
	assert.Equal(t, uint64(12), e.Metadata.GetHighestSequenceId(), "the last message's")
	assert.Equal(t, "k1", e.Metadata.GetPartitionKey(), "the first message's")
	assert.False(t, e.Metadata.GetPartitionKeyB64Encoded())
	assert.Equal(t, []byte("o1"), e.Metadata.GetOrderingKey(), "the first message's")

	// The next batch's first message has no partition key: none is left
	// over from the last batch.
	wire, err = enc.AppendBatch(nil, 1, msgs[1:2])
	require.NoError(t, err)
	_, e = decodeFrame(t, wire)
	assert.Nil(t, e.Metadata.PartitionKey)
	assert.Equal(t, []byte("ok"), e.Metadata.GetOrderingKey())
	assert.Nil(t, e.Metadata.HighestSequenceId, "a batch of one has no higher sequence id")
}

func TestBatchLayout(t *testing.T) {
	// An uncompressed batch is, for each message, its 4-byte metadata size,
	// its SingleMessageMetadata and its payload; read it here by hand.
	enc := &message.Encoder{ProducerName: "p"}
	msgs := batchMessages()
	wire, err := enc.AppendBatch(nil, 1, msgs)
	require.NoError(t, err)
	f, err := frame.Parse(wire[4:])
	require.NoError(t, err)
	data := f.Payload.Data
	for i, m := range msgs {
		require.GreaterOrEqual(t, len(data), 4)
		n := binary.BigEndian.Uint32(data)
		smm := new(pulsarpb.SingleMessageMetadata)
		require.NoError(t, proto.Unmarshal(data[4:4+n], smm))
		assert.Equal(t, int32(len(m.Payload)), smm.GetPayloadSize(), "message %d", i)
		assert.Equal(t, m.SequenceID, smm.GetSequenceId(), "message %d", i)
		data = data[4+n:]
		assert.Equal(t, m.Payload, data[:len(m.Payload)], "message %d", i)
		data = data[len(m.Payload):]
	}
	assert.Empty(t, data)
}

func TestCompressionFormats(t *testing.T) {
	// The wire formats Pulsar's clients use, checked without this
	// package's libraries where the standard library can: ZLIB is a zlib
	// stream, ZSTD a zstd frame, SNAPPY a Snappy block (its uncompressed
	// length first, as a uvarint), LZ4 a raw block (no frame magic).
	payload := text(2000)
	data := func(c pulsarpb.CompressionType) []byte {
		enc := &message.Encoder{Compression: c}
		wire, err := enc.AppendSend(nil, 1, &message.Message{Payload: payload})
		require.NoError(t, err)
		f, err := frame.Parse(wire[4:])
		require.NoError(t, err)
		return f.Payload.Data
	}
	z, err := zlib.NewReader(bytes.NewReader(data(pulsarpb.CompressionType_ZLIB)))
	require.NoError(t, err)
	inflated, err := io.ReadAll(z)
	require.NoError(t, err)
	assert.Equal(t, payload, inflated)

	assert.Equal(t, []byte{0x28, 0xb5, 0x2f, 0xfd}, data(pulsarpb.CompressionType_ZSTD)[:4], "zstd frame magic")

	n, k := binary.Uvarint(data(pulsarpb.CompressionType_SNAPPY))
	assert.Positive(t, k)
	assert.Equal(t, uint64(len(payload)), n, "snappy block header")

	lz := data(pulsarpb.CompressionType_LZ4)
	assert.NotEqual(t, []byte{0x04, 0x22, 0x4d, 0x18}, lz[:4], "no LZ4 frame magic")
	out, err := message.Decompress(pulsarpb.CompressionType_LZ4, lz, len(payload), len(payload))
	require.NoError(t, err)
	assert.Equal(t, payload, out)
}

func TestChunks(t *testing.T) {
	// A message too large for one frame: compressed whole, split in three
	// chunks of one sequence id, decoded one by one, joined and
	// decompressed.
	for _, c := range compressions {
		t.Run(c.String(), func(t *testing.T) { testChunks(t, c) })
	}
}

func testChunks(t *testing.T, c pulsarpb.CompressionType) {
	payload := text(10_000)
	enc := &message.Encoder{ProducerName: "big", Compression: c}
	whole, err := enc.Compress(payload)
	require.NoError(t, err)
	whole = bytes.Clone(whole)
	size := (len(whole) + 2) / 3
	var joined []byte
	var chunk0 message.Chunk
	for id := range 3 {
		part := whole[min(id*size, len(whole)):min((id+1)*size, len(whole))]
		chunk := message.Chunk{UUID: "big-7", ID: int32(id), Count: 3, TotalSize: int32(len(whole)), UncompressedSize: uint32(len(payload))}
		wire, err := enc.AppendSend(nil, 2, &message.Message{Payload: part, SequenceID: 7, PublishTime: 1, Chunk: chunk})
		require.NoError(t, err)

		cmd, e := decodeFrame(t, wire)
		assert.True(t, cmd.GetSend().GetIsChunk())
		assert.Equal(t, uint64(7), cmd.GetSend().GetSequenceId())
		assert.Equal(t, c, e.Compression)
		require.Len(t, e.Messages, 1)
		got := e.Messages[0]
		assert.Equal(t, chunk, got.Chunk)
		assert.Equal(t, part, got.Payload, "a chunk is returned as received")
		joined = append(joined, got.Payload...)
		if id == 0 {
			chunk0 = got.Chunk
		}
	}
	out, err := message.Decompress(c, joined, int(chunk0.UncompressedSize), message.DefaultMaxSize)
	require.NoError(t, err)
	assert.Equal(t, payload, out)
}

func TestBrokerEntryMetadata(t *testing.T) {
	for _, c := range compressions {
		t.Run(c.String(), func(t *testing.T) {
			enc := &message.Encoder{Compression: c}
			send, err := enc.AppendBatch(nil, 1, batchMessages())
			require.NoError(t, err)
			bem := &pulsarpb.BrokerEntryMetadata{BrokerTimestamp: new(uint64(1_700_000_000_999)), Index: new(uint64(42))}
			cmd, e := decodeFrame(t, asMessage(t, send, bem))
			assert.Equal(t, pulsarpb.BaseCommand_MESSAGE, cmd.GetType())
			require.NotNil(t, e.BrokerEntry)
			assert.Equal(t, uint64(1_700_000_000_999), e.BrokerEntry.GetBrokerTimestamp())
			assert.Equal(t, uint64(42), e.BrokerEntry.GetIndex())
			assert.Len(t, e.Messages, 3)
		})
	}
}

func TestNoChecksum(t *testing.T) {
	// Old peers send no CRC32C: the entry says so and decodes.
	md := &pulsarpb.MessageMetadata{ProducerName: new("old"), SequenceId: new(uint64(1)), PublishTime: new(uint64(2))}
	mdBytes, err := md.MarshalVT()
	require.NoError(t, err)
	wire, err := frame.AppendCommand(nil, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SEND.Enum(),
		Send: &pulsarpb.CommandSend{ProducerId: new(uint64(1)), SequenceId: new(uint64(1))},
	})
	require.NoError(t, err)
	wire = binary.BigEndian.AppendUint32(wire, uint32(len(mdBytes)))
	wire = append(append(wire, mdBytes...), "hello"...)
	binary.BigEndian.PutUint32(wire, uint32(len(wire)-4))

	_, e := decodeFrame(t, wire)
	assert.False(t, e.HasChecksum)
	assert.Zero(t, e.Checksum)
	require.Len(t, e.Messages, 1)
	assert.Equal(t, []byte("hello"), e.Messages[0].Payload)
}

func TestEncodingIsDeterministic(t *testing.T) {
	// Properties are written sorted by key, whatever the map's order.
	enc := &message.Encoder{ProducerName: "p"}
	m := fullMessage()
	first, err := enc.AppendSend(nil, 1, &m)
	require.NoError(t, err)
	for range 20 {
		again, err := enc.AppendSend(nil, 1, &m)
		require.NoError(t, err)
		require.Equal(t, first, again)
	}
	_, e := decodeFrame(t, first)
	var keys []string
	for _, kv := range e.Metadata.Properties {
		keys = append(keys, kv.GetKey())
	}
	assert.Equal(t, []string{"a", "b", "empty"}, keys)
}

func TestEncoderReuse(t *testing.T) {
	// What one message set does not leak into the next one.
	enc := &message.Encoder{ProducerName: "p", Compression: pulsarpb.CompressionType_LZ4}
	full := fullMessage()
	_, err := enc.AppendSend(nil, 1, &full)
	require.NoError(t, err)
	_, err = enc.AppendBatch(nil, 1, batchMessages())
	require.NoError(t, err)
	wire, err := enc.AppendSend(nil, 1, &message.Message{Payload: []byte("x"), SequenceID: 3, PublishTime: 4})
	require.NoError(t, err)
	cmd, e := decodeFrame(t, wire)
	assert.Nil(t, cmd.GetSend().NumMessages)
	assert.Nil(t, cmd.GetSend().HighestSequenceId)
	assert.False(t, e.Batched)
	assert.Equal(t, []message.Message{{Payload: []byte("x"), SequenceID: 3, PublishTime: 4}}, e.Messages)
}

func TestEncodeSingleAllocatesNothing(t *testing.T) {
	enc := &message.Encoder{ProducerName: "prod-1"}
	m := fullMessage()
	m.PublishTime = 0 // the current time costs nothing either
	buf := make([]byte, 0, 8192)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		m.SequenceID++
		if buf, err = enc.AppendSend(buf[:0], 1, &m); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
	_, e := decodeFrame(t, buf)
	assert.Equal(t, m.SequenceID, e.Messages[0].SequenceID, "the last run's frame")
}

func TestDecodePayload(t *testing.T) {
	// Decode takes the payload section proto/frame split off, as a
	// consumer gets it with each MESSAGE push.
	enc := &message.Encoder{Compression: pulsarpb.CompressionType_SNAPPY}
	wire, err := enc.AppendBatch(nil, 1, batchMessages())
	require.NoError(t, err)
	f, err := frame.Parse(wire[4:])
	require.NoError(t, err)
	e, err := message.Decode(f.Payload)
	require.NoError(t, err)
	_, want := decodeFrame(t, wire)
	assert.Equal(t, want, e)
	assert.Equal(t, f.Payload.Checksum, e.Checksum)
}
