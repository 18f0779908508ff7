package message

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Encoder builds SEND frames for one producer. It keeps the protobuf
// messages and buffers of the last frame and reuses them, so that encoding
// an uncompressed single message into a buffer with room for it allocates
// nothing. The zero Encoder sends uncompressed with no producer name; set
// the fields before the first use (ProducerName may change later, when the
// broker assigns one). An Encoder is not safe for concurrent use.
type Encoder struct {
	// ProducerName is the producer's name, as the broker confirmed it in
	// PRODUCER_SUCCESS.
	ProducerName string
	// Compression compresses each single message and each batch as a
	// whole.
	Compression pulsarpb.CompressionType

	cmd   pulsarpb.BaseCommand
	send  pulsarpb.CommandSend
	md    pulsarpb.MessageMetadata
	smm   pulsarpb.SingleMessageMetadata
	props props
	batch []byte
	z     compressor
	v     values
}

// values holds what the reused protobuf messages point to.
type values struct {
	cmdType                            pulsarpb.BaseCommand_Type
	producerID, seq, highest, pubTime  uint64
	numMessages, numInBatch            int32
	producerName, key, uuid            string
	compression                        pulsarpb.CompressionType
	uncompressed                       uint32
	eventTime                          uint64
	deliverAt                          int64
	chunkID, numChunks, totalChunkSize int32
	yes                                bool
	smmSeq, smmEventTime               uint64
	smmKey                             string
	smmSize                            int32
}

// AppendSend appends to dst one SEND frame (command, checksum, metadata and
// payload) carrying m as a single message of producer producerID,
// compressed with e.Compression. The SEND's sequence id is m.SequenceID.
// When m.Chunk.Count is set, m.Payload is one chunk of a message the
// caller compressed with e.Compression and it is sent as is.
func (e *Encoder) AppendSend(dst []byte, producerID uint64, m *Message) ([]byte, error) {
	e.command(producerID, m.SequenceID, 0, 0)
	e.metadata(m)
	data := m.Payload
	v := &e.v
	if m.Chunk.Count > 0 {
		v.uuid, v.chunkID, v.numChunks, v.totalChunkSize = m.Chunk.UUID, m.Chunk.ID, m.Chunk.Count, m.Chunk.TotalSize
		e.md.Uuid, e.md.ChunkId, e.md.NumChunksFromMsg, e.md.TotalChunkMsgSize = &v.uuid, &v.chunkID, &v.numChunks, &v.totalChunkSize
		e.send.IsChunk = e.flag(true)
		e.setCompression(0)
		// A chunk says the whole message's size, compressed or not.
		v.uncompressed = m.Chunk.UncompressedSize
		e.md.UncompressedSize = &v.uncompressed
	} else {
		var err error
		if data, err = e.compress(data); err != nil {
			return dst, err
		}
	}
	e.key(m)
	e.md.Properties = e.props.set(m.Properties)
	if m.EventTime != 0 {
		v.eventTime = m.EventTime
		e.md.EventTime = &v.eventTime
	}
	e.md.NullValue = e.flag(m.NullValue)
	return frame.AppendMessage(dst, &e.cmd, &e.md, data)
}

// AppendBatch appends to dst one SEND frame carrying msgs as a batch,
// compressed as a whole with e.Compression. The sequence id of the SEND and
// of the batch's metadata is the first message's, and their highest
// sequence id the last one's when that is higher, as the broker's
// deduplication expects (it rebuilds a producer's last sequence id from
// the stored metadata). The publish time, schema version, partition key
// and ordering key of the batch's metadata are the first message's: a
// Key_Shared subscription routes the whole batch by them, so batch only
// messages of one key for Key_Shared consumers. The DeliverAt and Chunk
// fields of the messages are not sent (a Pulsar producer neither delays
// nor chunks a batch): send such messages with AppendSend.
func (e *Encoder) AppendBatch(dst []byte, producerID uint64, msgs []Message) ([]byte, error) {
	if len(msgs) == 0 {
		return dst, fmt.Errorf("%w: an empty batch", ErrMalformed)
	}
	first, last := &msgs[0], &msgs[len(msgs)-1]
	highest := uint64(0)
	if last.SequenceID > first.SequenceID {
		highest = last.SequenceID
	}
	e.command(producerID, first.SequenceID, int32(len(msgs)), highest)
	e.metadata(first)
	e.md.DeliverAtTime = nil
	if highest > 0 {
		e.md.HighestSequenceId = &e.v.highest
	}
	e.key(first)
	e.v.numInBatch = int32(len(msgs))
	e.md.NumMessagesInBatch = &e.v.numInBatch
	e.batch = e.batch[:0]
	for i := range msgs {
		var err error
		if e.batch, err = e.appendSingle(e.batch, &msgs[i]); err != nil {
			return dst, err
		}
	}
	data, err := e.compress(e.batch)
	if err != nil {
		return dst, err
	}
	return frame.AppendMessage(dst, &e.cmd, &e.md, data)
}

// appendSingle appends one message of a batch: its size, its
// SingleMessageMetadata and its payload.
func (e *Encoder) appendSingle(dst []byte, m *Message) ([]byte, error) {
	s, v := &e.smm, &e.v
	s.Reset()
	v.smmSeq, v.smmSize = m.SequenceID, int32(len(m.Payload))
	s.SequenceId, s.PayloadSize = &v.smmSeq, &v.smmSize
	if m.Key != "" {
		v.smmKey = m.Key
		s.PartitionKey = &v.smmKey
		s.PartitionKeyB64Encoded = e.flag(m.KeyB64Encoded)
	}
	s.OrderingKey = m.OrderingKey
	s.Properties = e.props.set(m.Properties)
	if m.EventTime != 0 {
		v.smmEventTime = m.EventTime
		s.EventTime = &v.smmEventTime
	}
	s.NullValue = e.flag(m.NullValue)
	size := s.SizeVT()
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	start := len(dst)
	dst = slices.Grow(dst, size+len(m.Payload))[:start+size]
	if n, err := s.MarshalToSizedBufferVT(dst[start:]); err != nil || n != size {
		return dst[:start-4], fmt.Errorf("pulsarconn: encode single message metadata: %d of %d bytes: %v", n, size, err)
	}
	return append(dst, m.Payload...), nil
}

// key sets the metadata's partition and ordering keys to m's.
func (e *Encoder) key(m *Message) {
	if m.Key != "" {
		e.v.key = m.Key
		e.md.PartitionKey = &e.v.key
		e.md.PartitionKeyB64Encoded = e.flag(m.KeyB64Encoded)
	}
	e.md.OrderingKey = m.OrderingKey
}

// command sets up the SEND command.
func (e *Encoder) command(producerID, seq uint64, numMessages int32, highest uint64) {
	v := &e.v
	v.cmdType = pulsarpb.BaseCommand_SEND
	v.producerID, v.seq, v.numMessages, v.highest = producerID, seq, numMessages, highest
	e.send.Reset()
	e.send.ProducerId, e.send.SequenceId = &v.producerID, &v.seq
	if numMessages > 0 {
		e.send.NumMessages = &v.numMessages
	}
	if highest > 0 {
		e.send.HighestSequenceId = &v.highest
	}
	e.cmd.Type, e.cmd.Send = &v.cmdType, &e.send
}

// metadata sets up the MessageMetadata fields a single message and a batch
// share, from m.
func (e *Encoder) metadata(m *Message) {
	v := &e.v
	e.md.Reset()
	v.producerName, v.seq, v.pubTime = e.ProducerName, m.SequenceID, m.PublishTime
	if v.pubTime == 0 {
		v.pubTime = uint64(time.Now().UnixMilli())
	}
	e.md.ProducerName, e.md.SequenceId, e.md.PublishTime = &v.producerName, &v.seq, &v.pubTime
	e.md.SchemaVersion = m.SchemaVersion
	if m.DeliverAt != 0 {
		v.deliverAt = m.DeliverAt
		e.md.DeliverAtTime = &v.deliverAt
	}
}

// Compress returns payload compressed with e.Compression (payload itself
// for NONE), for a message the caller splits into chunks (see Chunk),
// which AppendSend then sends as they are. The result is valid until the
// next Compress, AppendBatch, or AppendSend of a message that is not a
// chunk: those reuse its buffer.
func (e *Encoder) Compress(payload []byte) ([]byte, error) {
	return e.z.compress(e.Compression, payload)
}

// compress compresses data with e.Compression and records it, and the
// uncompressed size, in the metadata.
func (e *Encoder) compress(data []byte) ([]byte, error) {
	out, err := e.z.compress(e.Compression, data)
	if err != nil {
		return nil, err
	}
	e.setCompression(uint32(len(data)))
	return out, nil
}

// setCompression records e.Compression and the uncompressed size in the
// metadata; an uncompressed message has neither.
func (e *Encoder) setCompression(size uint32) {
	if e.Compression == pulsarpb.CompressionType_NONE {
		return
	}
	e.v.compression, e.v.uncompressed = e.Compression, size
	e.md.Compression, e.md.UncompressedSize = &e.v.compression, &e.v.uncompressed
}

// flag returns a pointer to true when b is set, else nil (unset).
func (e *Encoder) flag(b bool) *bool {
	if !b {
		return nil
	}
	e.v.yes = true
	return &e.v.yes
}

// props holds a message's properties as KeyValues, reused from message to
// message.
type props struct {
	keys, vals []string
	kvs        []pulsarpb.KeyValue
	ptrs       []*pulsarpb.KeyValue
}

// set returns m's properties sorted by key, in storage valid until the next
// call.
func (p *props) set(m map[string]string) []*pulsarpb.KeyValue {
	if len(m) == 0 {
		return nil
	}
	p.keys = p.keys[:0]
	for k := range m {
		p.keys = append(p.keys, k)
	}
	slices.Sort(p.keys)
	n := len(p.keys)
	if cap(p.ptrs) < n {
		p.vals = make([]string, n)
		p.kvs = make([]pulsarpb.KeyValue, n)
		p.ptrs = make([]*pulsarpb.KeyValue, n)
	}
	p.vals, p.ptrs = p.vals[:n], p.ptrs[:n]
	for i, k := range p.keys {
		p.vals[i] = m[k]
		kv := &p.kvs[i]
		kv.Key, kv.Value = &p.keys[i], &p.vals[i]
		p.ptrs[i] = kv
	}
	return p.ptrs
}
