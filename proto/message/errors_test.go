package message_test

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/message"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// sendFrame encodes a SEND frame with md and data as they are, for inputs
// an Encoder would never build.
func sendFrame(t *testing.T, md *pulsarpb.MessageMetadata, data []byte) []byte {
	t.Helper()
	wire, err := frame.AppendMessage(nil, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SEND.Enum(),
		Send: &pulsarpb.CommandSend{ProducerId: new(uint64(1)), SequenceId: new(uint64(1))},
	}, md, data)
	require.NoError(t, err)
	return wire
}

// compressed returns payload as e compresses it.
func compressed(t *testing.T, c pulsarpb.CompressionType, payload []byte) []byte {
	t.Helper()
	out, err := (&message.Encoder{Compression: c}).Compress(payload)
	require.NoError(t, err)
	return bytes.Clone(out)
}

// batch builds the uncompressed data of a batch from its parts: each
// entry is a SingleMessageMetadata and a payload.
func batch(t *testing.T, parts ...any) []byte {
	t.Helper()
	var out []byte
	for i := 0; i < len(parts); i += 2 {
		b, err := parts[i].(*pulsarpb.SingleMessageMetadata).MarshalVT()
		require.NoError(t, err)
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
		out = append(out, parts[i+1].([]byte)...)
	}
	return out
}

// decodeCase is a frame that must fail to decode with want, decoded with
// max as the Decoder's MaxSize.
type decodeCase struct {
	name string
	wire func(t *testing.T) []byte
	max  int
	want error
}

func TestDecodeErrors(t *testing.T) {
	payload := text(1000)
	smm := func(size int32) *pulsarpb.SingleMessageMetadata {
		return &pulsarpb.SingleMessageMetadata{PayloadSize: new(size)}
	}
	md := func(c pulsarpb.CompressionType, size uint32) *pulsarpb.MessageMetadata {
		return &pulsarpb.MessageMetadata{Compression: c.Enum(), UncompressedSize: new(size)}
	}
	batchMD := func(n int32) *pulsarpb.MessageMetadata {
		return &pulsarpb.MessageMetadata{NumMessagesInBatch: new(n)}
	}
	cases := []decodeCase{
		{"a PING", func(t *testing.T) []byte {
			w, err := frame.AppendCommand(nil, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PING.Enum(), Ping: &pulsarpb.CommandPing{}})
			require.NoError(t, err)
			return w
		}, 0, message.ErrNoPayload},
		{"a SEND without payload", func(t *testing.T) []byte {
			w, err := frame.AppendCommand(nil, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SEND.Enum(), Send: &pulsarpb.CommandSend{}})
			require.NoError(t, err)
			return w
		}, 0, message.ErrNoPayload},
		{"a truncated frame", func(t *testing.T) []byte {
			w := sendFrame(t, &pulsarpb.MessageMetadata{}, payload)
			return w[:len(w)-1]
		}, 0, message.ErrMalformed},
		{"bad metadata", func(t *testing.T) []byte {
			w := sendFrame(t, &pulsarpb.MessageMetadata{}, nil)
			// The metadata of no bytes becomes one bad byte.
			w = append(w, 0xff)
			binary.BigEndian.PutUint32(w[len(w)-5:], 1)
			binary.BigEndian.PutUint32(w, uint32(len(w)-4))
			fixChecksum(w)
			return w
		}, 0, message.ErrMalformed},
		{"a checksum mismatch", func(t *testing.T) []byte {
			w := sendFrame(t, &pulsarpb.MessageMetadata{}, payload)
			w[len(w)-1] ^= 1
			return w
		}, 0, message.ErrChecksum},
		{"bad broker entry metadata", func(t *testing.T) []byte {
			w := asMessage(t, sendFrame(t, &pulsarpb.MessageMetadata{}, payload), &pulsarpb.BrokerEntryMetadata{Index: new(uint64(1))})
			i := bytes.Index(w, []byte{0x0e, 0x02})
			w[i+6] = 0xff // its first tag
			return w
		}, 0, message.ErrMalformed},
		{"encrypted", func(t *testing.T) []byte {
			return sendFrame(t, &pulsarpb.MessageMetadata{EncryptionKeys: []*pulsarpb.EncryptionKeys{{Key: new("k"), Value: []byte{1}}}}, payload)
		}, 0, message.ErrEncrypted},
		{"an unknown compression", func(t *testing.T) []byte {
			return sendFrame(t, md(pulsarpb.CompressionType(9), 1000), payload)
		}, 0, message.ErrUnsupportedCompression},
		{"over the limit", func(t *testing.T) []byte {
			return sendFrame(t, md(pulsarpb.CompressionType_ZLIB, 1000), compressed(t, pulsarpb.CompressionType_ZLIB, payload))
		}, 999, message.ErrTooLarge},
		{"over the default limit", func(t *testing.T) []byte {
			return sendFrame(t, md(pulsarpb.CompressionType_LZ4, message.DefaultMaxSize+1), compressed(t, pulsarpb.CompressionType_LZ4, payload))
		}, 0, message.ErrTooLarge},
		{"a batch count beyond its data", func(t *testing.T) []byte {
			return sendFrame(t, batchMD(3), batch(t, smm(2), []byte("ab"), smm(1), []byte("c")))
		}, 0, message.ErrMalformed},
		{"a huge batch count", func(t *testing.T) []byte {
			return sendFrame(t, batchMD(1<<30), batch(t, smm(2), []byte("ab")))
		}, 0, message.ErrMalformed},
		{"a negative batch count", func(t *testing.T) []byte {
			return sendFrame(t, batchMD(-1), batch(t, smm(2), []byte("ab")))
		}, 0, message.ErrMalformed},
		{"bytes after a batch", func(t *testing.T) []byte {
			return sendFrame(t, batchMD(1), append(batch(t, smm(2), []byte("ab")), 0))
		}, 0, message.ErrMalformed},
		{"a payload size beyond the batch", func(t *testing.T) []byte {
			return sendFrame(t, batchMD(1), batch(t, smm(3), []byte("ab")))
		}, 0, message.ErrMalformed},
		{"a negative payload size", func(t *testing.T) []byte {
			return sendFrame(t, batchMD(1), batch(t, smm(-1), []byte("ab")))
		}, 0, message.ErrMalformed},
		{"a metadata size beyond the batch", func(t *testing.T) []byte {
			return sendFrame(t, batchMD(1), []byte{0, 0, 1, 0, 1, 2})
		}, 0, message.ErrMalformed},
		{"bad single message metadata", func(t *testing.T) []byte {
			return sendFrame(t, batchMD(1), []byte{0, 0, 0, 1, 0xff})
		}, 0, message.ErrMalformed},
	}
	for _, c := range compressions[1:] {
		cases = append(cases,
			decodeCase{c.String() + " garbage", func(t *testing.T) []byte {
				return sendFrame(t, md(c, 1000), bytes.Repeat([]byte{0xff}, 50))
			}, 0, message.ErrCorrupt},
			decodeCase{c.String() + " bigger than its uncompressed size", func(t *testing.T) []byte {
				return sendFrame(t, md(c, 999), compressed(t, c, payload))
			}, 0, message.ErrCorrupt},
			decodeCase{c.String() + " smaller than its uncompressed size", func(t *testing.T) []byte {
				return sendFrame(t, md(c, 1001), compressed(t, c, payload))
			}, 0, message.ErrCorrupt},
		)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, e, err := message.Decoder{MaxSize: tc.max}.DecodeFrame(tc.wire(t))
			require.ErrorIs(t, err, tc.want)
			assert.Nil(t, e)
		})
	}
}

// fixChecksum recomputes the CRC32C of a SEND frame built by sendFrame.
func fixChecksum(w []byte) {
	crcAt := 8 + int(binary.BigEndian.Uint32(w[4:])) + 2
	binary.BigEndian.PutUint32(w[crcAt:], frame.Checksum(w[crcAt+4:]))
}

func TestDecompressLimits(t *testing.T) {
	payload := text(1000)
	for _, c := range compressions[1:] {
		t.Run(c.String(), func(t *testing.T) {
			data := compressed(t, c, payload)
			out, err := message.Decompress(c, data, len(payload), len(payload))
			require.NoError(t, err)
			assert.Equal(t, payload, out)
			assert.Equal(t, len(payload), cap(out), "no more than the uncompressed size is allocated")

			_, err = message.Decompress(c, data, len(payload), len(payload)-1)
			assert.ErrorIs(t, err, message.ErrTooLarge)
			_, err = message.Decompress(c, data, -1, len(payload))
			assert.ErrorIs(t, err, message.ErrTooLarge)
		})
	}
	out, err := message.Decompress(pulsarpb.CompressionType_NONE, payload, 0, 0)
	require.NoError(t, err)
	assert.Equal(t, payload, out, "NONE is the data itself")
}

func TestBatchCountBoundsNothingAllocated(t *testing.T) {
	// A small frame says its 1 MiB of 0xff (compressed to a few hundred
	// bytes) is a batch of 2^18 messages, as many as 4-byte sizes fit.
	// The first message's size is already too large: decoding must fail
	// having allocated about the decompressed data, not room for 2^18
	// messages.
	const size = 1 << 20
	data := compressed(t, pulsarpb.CompressionType_ZSTD, bytes.Repeat([]byte{0xff}, size))
	wire := sendFrame(t, &pulsarpb.MessageMetadata{
		ProducerName: new("p"), SequenceId: new(uint64(1)), PublishTime: new(uint64(1)),
		Compression: pulsarpb.CompressionType_ZSTD.Enum(), UncompressedSize: new(uint32(size)),
		NumMessagesInBatch: new(int32(size / 4)),
	}, data)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := message.Decoder{}.DecodeFrame(wire)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, message.ErrMalformed)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(3*size), "bytes allocated")
}

func TestCompressedMessageLargerThanDefault(t *testing.T) {
	// A message within the broker's limit as sent, compressed, but larger
	// than DefaultMaxSize once decompressed: the default refuses it, a
	// MaxSize raised to the producers' largest message takes it.
	payload := text(message.DefaultMaxSize + 1)
	enc := &message.Encoder{ProducerName: "p", Compression: pulsarpb.CompressionType_LZ4}
	wire, err := enc.AppendSend(nil, 1, &message.Message{Payload: payload, SequenceID: 1})
	require.NoError(t, err)
	require.Less(t, len(wire), message.DefaultMaxSize)
	_, _, err = message.Decoder{}.DecodeFrame(wire)
	require.ErrorIs(t, err, message.ErrTooLarge)
	_, e, err := message.Decoder{MaxSize: 2 * message.DefaultMaxSize}.DecodeFrame(wire)
	require.NoError(t, err)
	assert.Equal(t, payload, e.Messages[0].Payload)
}

func TestEncodeErrors(t *testing.T) {
	enc := &message.Encoder{}
	dst := []byte("kept")
	out, err := enc.AppendBatch(dst, 1, nil)
	assert.ErrorIs(t, err, message.ErrMalformed)
	assert.Equal(t, dst, out)

	enc.Compression = pulsarpb.CompressionType(9)
	out, err = enc.AppendSend(dst, 1, &message.Message{Payload: []byte("x")})
	assert.ErrorIs(t, err, message.ErrUnsupportedCompression)
	assert.Equal(t, dst, out)
	_, err = enc.AppendBatch(dst, 1, []message.Message{{Payload: []byte("x")}})
	assert.ErrorIs(t, err, message.ErrUnsupportedCompression)
}
