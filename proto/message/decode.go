package message

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Decoder decodes the payload sections of SEND and MESSAGE frames. It is
// safe for concurrent use; the zero Decoder accepts messages of up to
// DefaultMaxSize bytes uncompressed.
type Decoder struct {
	// MaxSize bounds the uncompressed size of a message or batch (the
	// metadata's uncompressed_size), and so what decompression allocates;
	// 0 means DefaultMaxSize. The broker's max_message_size bounds only
	// the compressed size: a producer may send a message that is larger
	// once decompressed (Pulsar's Java consumer takes it whatever its
	// uncompressed_size), which fails here with ErrTooLarge. Set MaxSize
	// to the largest message the topic's producers send.
	MaxSize int
}

// Decode decodes a payload section with the zero Decoder.
func Decode(p *frame.Payload) (*Entry, error) { return Decoder{}.Decode(p) }

// DecodeFrame decodes one whole frame (starting with its total size), a
// SEND or MESSAGE, into its command and its entry. The entry's messages
// alias wire when the data is uncompressed.
func (d Decoder) DecodeFrame(wire []byte) (*pulsarpb.BaseCommand, *Entry, error) {
	total, ok := frame.TotalSize(wire)
	if !ok || uint64(total) != uint64(len(wire)-4) {
		return nil, nil, fmt.Errorf("%w: %d bytes do not hold one frame", ErrMalformed, len(wire))
	}
	f, err := frame.Parse(wire[4:])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch t := f.Command.GetType(); {
	case t != pulsarpb.BaseCommand_SEND && t != pulsarpb.BaseCommand_MESSAGE:
		return f.Command, nil, fmt.Errorf("%w: a %v frame", ErrNoPayload, t)
	case f.Payload == nil:
		return f.Command, nil, fmt.Errorf("%w: a %v frame without a payload section", ErrNoPayload, t)
	}
	e, err := d.Decode(f.Payload)
	return f.Command, e, err
}

// Decode verifies the checksum of a payload section, decodes its broker
// entry metadata and message metadata, decompresses its data and splits a
// batch into its messages. The messages alias p.Data when the data is
// uncompressed. A chunk of a chunked message (num_chunks_from_msg above
// 1) is returned as one message whose Payload is the chunk as received,
// still compressed: join the chunks and call Decompress.
func (d Decoder) Decode(p *frame.Payload) (*Entry, error) {
	if p.HasChecksum && !p.ChecksumOK {
		return nil, fmt.Errorf("%w: carried CRC32C %#08x", ErrChecksum, p.Checksum)
	}
	e := &Entry{HasChecksum: p.HasChecksum, Checksum: p.Checksum}
	var err error
	if e.BrokerEntry, err = p.DecodeBrokerEntryMetadata(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	md, err := p.DecodeMetadata()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	e.Metadata, e.Compression = md, md.GetCompression()
	if len(md.EncryptionKeys) > 0 {
		return nil, fmt.Errorf("%w: algorithm %q", ErrEncrypted, md.GetEncryptionAlgo())
	}
	e.Batched = md.NumMessagesInBatch != nil
	if md.GetNumChunksFromMsg() > 1 {
		if e.Batched {
			return nil, fmt.Errorf("%w: a chunk of a batch", ErrMalformed)
		}
		e.Messages = []Message{single(md, p.Data)}
		return e, nil
	}
	max := d.MaxSize
	if max <= 0 {
		max = DefaultMaxSize
	}
	data, err := Decompress(e.Compression, p.Data, int(md.GetUncompressedSize()), max)
	if err != nil {
		return nil, err
	}
	if !e.Batched {
		e.Messages = []Message{single(md, data)}
		return e, nil
	}
	if e.Messages, err = split(md, data); err != nil {
		return nil, err
	}
	return e, nil
}

// single returns the one message of a payload section that is not a
// batch, with data as its payload.
func single(md *pulsarpb.MessageMetadata, data []byte) Message {
	m := shared(md)
	m.Payload = data
	m.SequenceID = md.GetSequenceId()
	m.EventTime = md.GetEventTime()
	m.Key, m.KeyB64Encoded = md.GetPartitionKey(), md.GetPartitionKeyB64Encoded()
	m.OrderingKey = md.OrderingKey
	m.Properties = propertyMap(md.Properties)
	m.NullValue = md.GetNullValue()
	return m
}

// shared returns a message with the fields every message of md's payload
// section shares.
func shared(md *pulsarpb.MessageMetadata) Message {
	m := Message{
		PublishTime:   md.GetPublishTime(),
		SchemaVersion: md.SchemaVersion,
		DeliverAt:     md.GetDeliverAtTime(),
	}
	if md.Uuid != nil || md.NumChunksFromMsg != nil {
		m.Chunk = Chunk{
			UUID:             md.GetUuid(),
			ID:               md.GetChunkId(),
			Count:            md.GetNumChunksFromMsg(),
			TotalSize:        md.GetTotalChunkMsgSize(),
			UncompressedSize: md.GetUncompressedSize(),
		}
	}
	return m
}

// maxBatchPrealloc is the most messages split allocates room for before
// reading them (a Java producer batches up to 1000 by default).
const maxBatchPrealloc = 1024

// split splits the uncompressed data of a batch into the messages md
// announces: each is a 4-byte size, a SingleMessageMetadata of that size
// and payload_size bytes of payload, and nothing may follow the last.
func split(md *pulsarpb.MessageMetadata, data []byte) ([]Message, error) {
	n := md.GetNumMessagesInBatch()
	// Each message takes at least its 4-byte size.
	if n < 0 || int64(n) > int64(len(data)/4) {
		return nil, fmt.Errorf("%w: %d messages in a batch of %d bytes", ErrMalformed, n, len(data))
	}
	// A Message is some 40 times larger than the 4 bytes each may take:
	// grow out as messages are read rather than trusting n, so that a
	// hostile count costs no more than the messages actually there.
	out := make([]Message, 0, min(int(n), maxBatchPrealloc))
	for i := range int(n) {
		if len(data) < 4 {
			return nil, fmt.Errorf("%w: batch message %d: %d bytes left for its size", ErrMalformed, i, len(data))
		}
		size := binary.BigEndian.Uint32(data)
		data = data[4:]
		if uint64(size) > uint64(len(data)) {
			return nil, fmt.Errorf("%w: batch message %d: metadata size %d, %d bytes left", ErrMalformed, i, size, len(data))
		}
		smm := new(pulsarpb.SingleMessageMetadata)
		if err := proto.Unmarshal(data[:size], smm); err != nil {
			return nil, fmt.Errorf("%w: batch message %d: %v", ErrMalformed, i, err)
		}
		data = data[size:]
		ps := smm.GetPayloadSize()
		if ps < 0 || int64(ps) > int64(len(data)) {
			return nil, fmt.Errorf("%w: batch message %d: payload size %d, %d bytes left", ErrMalformed, i, ps, len(data))
		}
		m := shared(md)
		m.Payload, data = data[:ps:ps], data[ps:]
		m.SequenceID = md.GetSequenceId() + uint64(i)
		if smm.SequenceId != nil {
			m.SequenceID = smm.GetSequenceId()
		}
		m.EventTime = smm.GetEventTime()
		m.Key, m.KeyB64Encoded = smm.GetPartitionKey(), smm.GetPartitionKeyB64Encoded()
		m.OrderingKey = smm.OrderingKey
		m.Properties = propertyMap(smm.Properties)
		m.NullValue = smm.GetNullValue()
		m.CompactedOut = smm.GetCompactedOut()
		out = append(out, m)
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last of %d batch messages", ErrMalformed, len(data), n)
	}
	return out, nil
}

// propertyMap returns kvs as a map (a later duplicate key wins), or nil
// when there are none.
func propertyMap(kvs []*pulsarpb.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = kv.GetValue()
	}
	return m
}
