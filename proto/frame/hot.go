package frame

import (
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// The answers read most often (one per request, one per message sent) are
// decoded here without the protobuf runtime, into one allocation that holds
// the Frame, the BaseCommand, the inner command and every scalar they point
// to: proto.Unmarshal makes one allocation for each of these and walks its
// tables by reflection. Only the plain shape is taken: each known field at
// most once, with its wire type, an enum value the schema names, valid
// UTF-8, nothing else. Anything else (an unknown or repeated field, a
// nested first_chunk_message_id, an ack_set) returns nil and Parse decodes
// it with proto.Unmarshal, so both ways give the same message; a fuzz test
// compares them. A MESSAGE's Payload shares its allocation too.

// hotPartitionedMetadata is a PARTITIONED_METADATA_RESPONSE in one
// allocation, of 512 bytes (TestHotStructSizes).
type hotPartitionedMetadata struct {
	f          Frame
	cmd        pulsarpb.BaseCommand
	typ        pulsarpb.BaseCommand_Type
	partitions uint32 // beside typ: no padding after either
	m          pulsarpb.CommandPartitionedTopicMetadataResponse
	requestID  uint64
	response   pulsarpb.CommandPartitionedTopicMetadataResponse_LookupType
	err        pulsarpb.ServerError
	message    string
	home       *returns // where Release puts it back; nil: the pool
}

// hotSendReceipt is a SEND_RECEIPT in one allocation.
type hotSendReceipt struct {
	f                 Frame
	cmd               pulsarpb.BaseCommand
	typ               pulsarpb.BaseCommand_Type
	m                 pulsarpb.CommandSendReceipt
	id                hotMessageID
	producerID        uint64
	sequenceID        uint64
	highestSequenceID uint64
	home              *returns // where Release puts it back; nil: the pool
}

// hotMessage is a MESSAGE and its Payload in one allocation.
type hotMessage struct {
	f               Frame
	cmd             pulsarpb.BaseCommand
	typ             pulsarpb.BaseCommand_Type
	redeliveryCount uint32 // beside typ: no padding after either
	m               pulsarpb.CommandMessage
	id              hotMessageID
	consumerID      uint64
	consumerEpoch   uint64
	p               Payload
	home            *returns // where Release puts it back; nil: the pool
	// body is the buffer a Reader copied the frame's bytes into, which p
	// points into (Reader.NextFrame); kept when the struct is recycled,
	// for the next frame. (One more word and the struct, with the
	// allocator's header, would take the next size class: 896 bytes
	// instead of 768; TestHotStructSizes.)
	body []byte
}

// hotMessageID is a MessageIdData and the scalars it points to.
type hotMessageID struct {
	id                  pulsarpb.MessageIdData
	ledgerID, entryID   uint64
	partition, batchIdx int32
	batchSize           int32
}

// parseHot decodes b, a BaseCommand, and rest, the frame's bytes after
// it, when they are one of the hot answers in the plain shape; otherwise
// it returns nil. Only a MESSAGE may have a rest. fr, if not nil, is the
// Reader that read them, whose kept answers are used first.
func parseHot(b, rest []byte, h *hotMessage, fr *Reader) *Frame {
	var typ uint64
	var inner []byte
	var innerNum protowire.Number
	for len(b) > 0 {
		num, wt, n := protowire.Number(b[0]>>3), protowire.Type(b[0]&7), 1
		if b[0]-8 >= 0x78 { // not a one-byte tag (8 to 127: below 8 is field number 0, an error)
			num, wt, n = protowire.ConsumeTag(b)
		}
		if n < 0 {
			return nil
		}
		b = b[n:]
		switch {
		case num == 1 && wt == protowire.VarintType && typ == 0:
			if len(b) > 0 && b[0] < 0x80 {
				typ, n = uint64(b[0]), 1
			} else {
				typ, n = protowire.ConsumeVarint(b)
			}
			if typ == 0 { // not a type this decodes
				return nil
			}
		case (num == 7 || num == 9 || num == 22) && wt == protowire.BytesType && innerNum == 0:
			if len(b) > 0 && b[0] < 0x80 && int(b[0]) < len(b) { // a one-byte length, read inline
				inner, n = b[1:1+b[0]], 1+int(b[0])
			} else {
				inner, n = protowire.ConsumeBytes(b)
			}
			innerNum = num
		default:
			return nil
		}
		if n < 0 {
			return nil
		}
		b = b[n:]
	}
	switch {
	case typ != uint64(innerNum):
		return nil
	case typ == 9:
		return parseMessage(inner, rest, h)
	case len(rest) != 0:
		return nil
	case typ == 22:
		return parsePartitionedMetadata(inner, fr)
	case typ == 7:
		return parseSendReceipt(inner, fr)
	}
	return nil
}

// The hot answers' allocations are recycled (Frame.Release): a caller
// that is done with an answer or a push once its handler returns, as
// Broker.PartitionedTopicMetadata is and a Handler that calls
// Push.Release, then makes no allocation per round trip, receipt or
// message. recycle clears a struct before it goes back; one that a parse
// gives up on part way is left to the garbage collector. Receipts and
// messages a Reader read, and its answers released elsewhere than by
// Reader.Recycle, go back to that Reader (returns.go), the rest to these
// pools.
var (
	pmFrames      = sync.Pool{New: func() any { return new(hotPartitionedMetadata) }}
	receiptFrames = sync.Pool{New: func() any { return new(hotSendReceipt) }}
	messageFrames = sync.Pool{New: func() any { return new(hotMessage) }}
)

func (h *hotPartitionedMetadata) recycle() {
	home := h.home
	*h = hotPartitionedMetadata{}
	if home != nil {
		home.putPM(h)
		return
	}
	pmFrames.Put(h)
}

func (h *hotSendReceipt) recycle() {
	home := h.home
	*h = hotSendReceipt{}
	if home != nil {
		home.putReceipt(h)
		return
	}
	receiptFrames.Put(h)
}

// recycle keeps the frame's buffer with the struct, for the next frame
// read into it (Reader.NextFrame), unless it is over maxKeptBody.
func (h *hotMessage) recycle() {
	body, home := h.body, h.home
	*h = hotMessage{}
	if cap(body) <= maxKeptBody {
		h.body = body[:0]
	}
	if home != nil {
		home.putMessage(h)
		return
	}
	messageFrames.Put(h)
}

// lookupTypes and serverErrors have bit v set for each value v the
// schema names, of 0 to 63: a test of the bit is one tenth of a look-up in
// the generated map of names. A value named outside that range is treated
// as unnamed: proto.Unmarshal then decodes the answer.
var (
	lookupTypes  = namedValues(pulsarpb.CommandPartitionedTopicMetadataResponse_LookupType_name)
	serverErrors = namedValues(pulsarpb.ServerError_name)
)

func namedValues(names map[int32]string) uint64 {
	var set uint64
	for v := range names {
		if v >= 0 && v < 64 {
			set |= 1 << v
		}
	}
	return set
}

// named reports whether the enum value v, decoded as proto.Unmarshal
// decodes it (its low 32 bits, as an int32), is in set.
func named(set uint64, v uint64) bool {
	e := int32(v)
	return e >= 0 && e < 64 && set>>e&1 != 0
}

func parsePartitionedMetadata(b []byte, fr *Reader) *Frame {
	var h *hotPartitionedMetadata
	if fr != nil && len(fr.pm) > 0 { // one of those Recycle kept: the blocking path's
		h, fr.pm = fr.pm[len(fr.pm)-1], fr.pm[:len(fr.pm)-1]
		h.home = fr.ret
	} else {
		h = fr.takePM()
	}
	var seen uint8
	for len(b) > 0 {
		num, wt, n := protowire.Number(b[0]>>3), protowire.Type(b[0]&7), 1
		if b[0]-8 >= 0x78 { // not a one-byte tag (8 to 127: below 8 is field number 0, an error)
			num, wt, n = protowire.ConsumeTag(b)
		}
		if n < 0 || num < 1 || num > 5 || seen&(1<<num) != 0 {
			return nil
		}
		seen |= 1 << num
		b = b[n:]
		if num == 5 {
			if wt != protowire.BytesType {
				return nil
			}
			s, n := protowire.ConsumeBytes(b)
			if n < 0 || !utf8.Valid(s) {
				return nil
			}
			h.message = string(s)
			h.m.Message = &h.message
			b = b[n:]
			continue
		}
		if wt != protowire.VarintType {
			return nil
		}
		v, n := uint64(0), 1
		if len(b) > 0 && b[0] < 0x80 { // a one-byte varint, decoded inline
			v = uint64(b[0])
		} else {
			v, n = protowire.ConsumeVarint(b)
		}
		if n < 0 {
			return nil
		}
		b = b[n:]
		switch num {
		case 1:
			h.partitions = uint32(v)
			h.m.Partitions = &h.partitions
		case 2:
			h.requestID = v
			h.m.RequestId = &h.requestID
		case 3:
			if !named(lookupTypes, v) {
				return nil
			}
			h.response = pulsarpb.CommandPartitionedTopicMetadataResponse_LookupType(v)
			h.m.Response = &h.response
		case 4:
			if !named(serverErrors, v) {
				return nil
			}
			h.err = pulsarpb.ServerError(v)
			h.m.Error = &h.err
		}
	}
	h.typ = pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE
	h.cmd.Type = &h.typ
	h.cmd.PartitionMetadataResponse = &h.m
	h.f.Command = &h.cmd
	h.f.rel = h
	return &h.f
}

func parseSendReceipt(b []byte, fr *Reader) *Frame {
	h := fr.takeReceipt()
	var seen uint8
	for len(b) > 0 {
		num, wt, n := protowire.Number(b[0]>>3), protowire.Type(b[0]&7), 1
		if b[0]-8 >= 0x78 { // not a one-byte tag (8 to 127: below 8 is field number 0, an error)
			num, wt, n = protowire.ConsumeTag(b)
		}
		if n < 0 || num < 1 || num > 4 || seen&(1<<num) != 0 {
			return nil
		}
		seen |= 1 << num
		b = b[n:]
		if num == 3 {
			if wt != protowire.BytesType {
				return nil
			}
			var id []byte
			if len(b) > 0 && b[0] < 0x80 && int(b[0]) < len(b) { // a one-byte length, read inline
				id, n = b[1:1+b[0]], 1+int(b[0])
			} else {
				id, n = protowire.ConsumeBytes(b)
			}
			if n < 0 || !h.id.parse(id) {
				return nil
			}
			h.m.MessageId = &h.id.id
			b = b[n:]
			continue
		}
		if wt != protowire.VarintType {
			return nil
		}
		v, n := uint64(0), 1
		if len(b) > 0 && b[0] < 0x80 { // a one-byte varint, decoded inline
			v = uint64(b[0])
		} else {
			v, n = protowire.ConsumeVarint(b)
		}
		if n < 0 {
			return nil
		}
		b = b[n:]
		switch num {
		case 1:
			h.producerID = v
			h.m.ProducerId = &h.producerID
		case 2:
			h.sequenceID = v
			h.m.SequenceId = &h.sequenceID
		case 4:
			h.highestSequenceID = v
			h.m.HighestSequenceId = &h.highestSequenceID
		}
	}
	h.typ = pulsarpb.BaseCommand_SEND_RECEIPT
	h.cmd.Type = &h.typ
	h.cmd.SendReceipt = &h.m
	h.f.Command = &h.cmd
	h.f.rel = h
	return &h.f
}

// parseMessage decodes b, a CommandMessage without ack_set, and rest, its
// payload (none when empty). It follows parseSendReceipt's shape: a
// shared field walker (tried with callbacks, and with an array of
// values) cost 3% more instructions per receipt and per delivery.
//
// These decoders read one-byte tags and varints (0 to 127) inline and
// call protowire only for longer ones: calling protowire.ConsumeTag and
// ConsumeVarint for every field took 6-8% more instructions per receipt
// and per delivery. A helper with the fallback call is over the
// compiler's inlining budget, and one call per field returning its tag
// and value counted as many instructions as the protowire calls.
func parseMessage(b, rest []byte, h *hotMessage) *Frame {
	if h == nil {
		h = messageFrames.Get().(*hotMessage)
		h.body = nil // a buffer it kept, which this frame does not use: not held with it
	}
	var seen uint8
	for len(b) > 0 {
		num, wt, n := protowire.Number(b[0]>>3), protowire.Type(b[0]&7), 1
		if b[0]-8 >= 0x78 { // not a one-byte tag (8 to 127: below 8 is field number 0, an error)
			num, wt, n = protowire.ConsumeTag(b)
		}
		if n < 0 || num < 1 || num > 5 || num == 4 || seen&(1<<num) != 0 {
			return nil
		}
		seen |= 1 << num
		b = b[n:]
		if num == 2 {
			if wt != protowire.BytesType {
				return nil
			}
			var id []byte
			if len(b) > 0 && b[0] < 0x80 && int(b[0]) < len(b) { // a one-byte length, read inline
				id, n = b[1:1+b[0]], 1+int(b[0])
			} else {
				id, n = protowire.ConsumeBytes(b)
			}
			if n < 0 || !h.id.parse(id) {
				return nil
			}
			h.m.MessageId = &h.id.id
			b = b[n:]
			continue
		}
		if wt != protowire.VarintType {
			return nil
		}
		v, n := uint64(0), 1
		if len(b) > 0 && b[0] < 0x80 { // a one-byte varint, decoded inline
			v = uint64(b[0])
		} else {
			v, n = protowire.ConsumeVarint(b)
		}
		if n < 0 {
			return nil
		}
		b = b[n:]
		switch num {
		case 1:
			h.consumerID = v
			h.m.ConsumerId = &h.consumerID
		case 3:
			h.redeliveryCount = uint32(v)
			h.m.RedeliveryCount = &h.redeliveryCount
		case 5:
			h.consumerEpoch = v
			h.m.ConsumerEpoch = &h.consumerEpoch
		}
	}
	if len(rest) != 0 {
		if h.p.parse(rest) != nil {
			return nil // Parse reports it
		}
		h.f.Payload = &h.p
	}
	h.typ = pulsarpb.BaseCommand_MESSAGE
	h.cmd.Type = &h.typ
	h.cmd.Message = &h.m
	h.f.Command = &h.cmd
	h.f.rel = h
	return &h.f
}

// parse decodes a MessageIdData without ack_set or first_chunk_message_id
// into h.id.
func (h *hotMessageID) parse(b []byte) bool {
	var seen uint8
	for len(b) > 0 {
		num, wt, n := protowire.Number(b[0]>>3), protowire.Type(b[0]&7), 1
		if b[0]-8 >= 0x78 { // not a one-byte tag (8 to 127: below 8 is field number 0, an error)
			num, wt, n = protowire.ConsumeTag(b)
		}
		if n < 0 || wt != protowire.VarintType || num < 1 || num > 6 || num == 5 || seen&(1<<num) != 0 {
			return false
		}
		seen |= 1 << num
		b = b[n:]
		v, n := uint64(0), 1
		if len(b) > 0 && b[0] < 0x80 { // a one-byte varint, decoded inline
			v = uint64(b[0])
		} else {
			v, n = protowire.ConsumeVarint(b)
		}
		if n < 0 {
			return false
		}
		b = b[n:]
		switch num {
		case 1:
			h.ledgerID = v
			h.id.LedgerId = &h.ledgerID
		case 2:
			h.entryID = v
			h.id.EntryId = &h.entryID
		case 3:
			h.partition = int32(v)
			h.id.Partition = &h.partition
		case 4:
			h.batchIdx = int32(v)
			h.id.BatchIndex = &h.batchIdx
		case 6:
			h.batchSize = int32(v)
			h.id.BatchSize = &h.batchSize
		}
	}
	return true
}
