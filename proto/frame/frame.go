// Package frame encodes and decodes Pulsar binary-protocol frames.
//
// A frame on the wire is:
//
//	[total size: uint32 BE] [command size: uint32 BE] [BaseCommand protobuf]
//
// and, for payload frames (SEND, MESSAGE), continues with:
//
//	[0x0e02] [size: uint32 BE] [BrokerEntryMetadata]   optional, broker to client only
//	[0x0e01] [CRC32C: uint32 BE]                        optional on old peers
//	[metadata size: uint32 BE] [MessageMetadata] [payload]
//
// The CRC32C (Castagnoli) covers everything after the checksum field: the
// metadata size, the metadata and the payload. Total size counts every byte
// after itself. All integers are big-endian.
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

const (
	// MagicChecksum introduces the CRC32C of a payload frame.
	MagicChecksum uint16 = 0x0e01
	// MagicBrokerEntryMetadata introduces broker entry metadata.
	MagicBrokerEntryMetadata uint16 = 0x0e02

	// DefaultMaxMessageSize is the broker's default max_message_size (5 MiB),
	// assumed until CONNECTED says otherwise.
	DefaultMaxMessageSize = 5 * 1024 * 1024
	// Padding is the room a frame may take beyond the max message size for
	// its command and metadata; the official clients use 10 KiB.
	Padding = 10 * 1024
	// DefaultMaxFrameSize is the largest total size accepted by default.
	DefaultMaxFrameSize = DefaultMaxMessageSize + Padding

	// minTotalSize is the smallest legal total size: the command-size field.
	minTotalSize = 4
)

// ProtocolVersion is the protocol revision this package speaks.
const ProtocolVersion = int32(pulsarpb.ProtocolVersion_v21)

// Decoding errors. Each is wrapped with detail; match with errors.Is.
var (
	// ErrFrameTooLarge: the total size exceeds the maximum frame size.
	ErrFrameTooLarge = errors.New("pulsarconn: frame too large")
	// ErrMalformed: the frame's sizes are inconsistent or its command is
	// not a valid BaseCommand.
	ErrMalformed = errors.New("pulsarconn: malformed frame")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC32C (Castagnoli) of b, as carried in payload
// frames.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Payload is the part of a payload frame after its command.
type Payload struct {
	// BrokerEntryMetadata holds the raw BrokerEntryMetadata protobuf when
	// the broker prepended one (magic 0x0e02), else nil.
	BrokerEntryMetadata []byte
	// HasChecksum reports whether the frame carried a CRC32C; old peers
	// send payload frames without one.
	HasChecksum bool
	// ChecksumOK is true when the carried CRC32C matches, or when there was
	// none to check.
	ChecksumOK bool
	// Checksum is the CRC32C the frame carried, as received; 0 when
	// HasChecksum is false.
	Checksum uint32
	// Metadata holds the raw MessageMetadata protobuf.
	Metadata []byte
	// Data is the message payload, as sent (possibly compressed or
	// batched).
	Data []byte
}

// DecodeMetadata unmarshals p.Metadata.
func (p *Payload) DecodeMetadata() (*pulsarpb.MessageMetadata, error) {
	md := new(pulsarpb.MessageMetadata)
	if err := proto.Unmarshal(p.Metadata, md); err != nil {
		return nil, fmt.Errorf("%w: message metadata: %v", ErrMalformed, err)
	}
	return md, nil
}

// DecodeBrokerEntryMetadata unmarshals p.BrokerEntryMetadata; it returns
// nil, nil when there is none.
func (p *Payload) DecodeBrokerEntryMetadata() (*pulsarpb.BrokerEntryMetadata, error) {
	if p.BrokerEntryMetadata == nil {
		return nil, nil
	}
	md := new(pulsarpb.BrokerEntryMetadata)
	if err := proto.Unmarshal(p.BrokerEntryMetadata, md); err != nil {
		return nil, fmt.Errorf("%w: broker entry metadata: %v", ErrMalformed, err)
	}
	return md, nil
}

// Frame is one decoded frame.
type Frame struct {
	// Command is the decoded command. A type number this schema does not
	// know (a newer peer's command) is kept as is: GetType returns it and
	// it matches none of the named values.
	Command *pulsarpb.BaseCommand
	// Payload is nil for a simple frame.
	Payload *Payload

	// rel is the allocation of a hot answer decoded by hand, which
	// Release recycles; nil for any other frame.
	rel recycler
}

// recycler is a hot answer's allocation: recycle clears it and hands it
// (and a MESSAGE's frame bytes) back for a later Parse.
type recycler interface{ recycle() }

// Release hands f back for a later Parse to reuse, when it is a kind of
// frame that is recycled: a PARTITIONED_METADATA_RESPONSE, SEND_RECEIPT
// or MESSAGE decoded by hand (a MESSAGE read by a Reader with the frame
// bytes its Payload points into). Any other frame, and nil, is left to
// the garbage collector.
//
// Only the frame's sole holder may call it, once: neither f nor its
// Command and Payload, nor anything they point to (Payload.Data and
// Metadata included), may be used afterwards, by it or by anyone it gave
// them to. Strings taken from it stay valid.
func (f *Frame) Release() {
	if f != nil && f.rel != nil {
		f.rel.recycle()
	}
}

// Parse decodes the body of one frame: the bytes after the total-size
// field. The returned Payload's slices alias body.
func Parse(body []byte) (*Frame, error) { return parse(body, nil) }

// parse is Parse, which decodes a MESSAGE in the plain shape into h
// unless h is nil (see parseMessage).
func parse(body []byte, h *hotMessage) (*Frame, error) {
	if len(body) < 4 {
		return nil, fmt.Errorf("%w: %d bytes is too short for a command size", ErrMalformed, len(body))
	}
	cmdSize := binary.BigEndian.Uint32(body)
	if uint64(cmdSize) > uint64(len(body)-4) {
		return nil, fmt.Errorf("%w: command size %d exceeds the frame's %d bytes", ErrMalformed, cmdSize, len(body)-4)
	}
	if f := parseHot(body[4:4+cmdSize], body[4+cmdSize:], h, nil); f != nil {
		return f, nil
	}
	cmd := new(pulsarpb.BaseCommand)
	if err := proto.Unmarshal(body[4:4+cmdSize], cmd); err != nil {
		return nil, fmt.Errorf("%w: command: %v", ErrMalformed, err)
	}
	if cmd.Type == nil {
		return nil, fmt.Errorf("%w: command has no type", ErrMalformed)
	}
	f := &Frame{Command: cmd}
	rest := body[4+cmdSize:]
	if len(rest) == 0 {
		return f, nil
	}
	p, err := parsePayload(rest)
	if err != nil {
		return nil, err
	}
	f.Payload = p
	return f, nil
}

// parseHotInPlace decodes body, read by fr, as Parse does when it is a
// hot answer without a payload, which keeps none of body's bytes;
// otherwise, or when Parse would report an error, it returns nil.
func parseHotInPlace(body []byte, fr *Reader) *Frame {
	if len(body) < 4 {
		return nil
	}
	cmdSize := binary.BigEndian.Uint32(body)
	if uint64(cmdSize) != uint64(len(body)-4) {
		return nil // a payload, which a MESSAGE's frame would alias, or a bad size
	}
	return parseHot(body[4:], nil, nil, fr)
}

func parsePayload(b []byte) (*Payload, error) {
	p := new(Payload)
	if err := p.parse(b); err != nil {
		return nil, err
	}
	return p, nil
}

// parse decodes b, the part of a payload frame after its command, into p,
// whose slices alias b.
func (p *Payload) parse(b []byte) error {
	p.ChecksumOK = true
	if len(b) >= 2 && binary.BigEndian.Uint16(b) == MagicBrokerEntryMetadata {
		if len(b) < 6 {
			return fmt.Errorf("%w: truncated broker entry metadata", ErrMalformed)
		}
		n := binary.BigEndian.Uint32(b[2:])
		if uint64(n) > uint64(len(b)-6) {
			return fmt.Errorf("%w: broker entry metadata size %d exceeds the frame", ErrMalformed, n)
		}
		p.BrokerEntryMetadata = b[6 : 6+n]
		b = b[6+n:]
	}
	if len(b) >= 2 && binary.BigEndian.Uint16(b) == MagicChecksum {
		if len(b) < 6 {
			return fmt.Errorf("%w: truncated checksum", ErrMalformed)
		}
		p.HasChecksum = true
		p.Checksum = binary.BigEndian.Uint32(b[2:])
		b = b[6:]
		p.ChecksumOK = Checksum(b) == p.Checksum
	}
	if len(b) < 4 {
		return fmt.Errorf("%w: truncated metadata size", ErrMalformed)
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return fmt.Errorf("%w: metadata size %d exceeds the frame", ErrMalformed, n)
	}
	p.Metadata = b[4 : 4+n]
	p.Data = b[4+n:]
	return nil
}

// AppendPartitionedMetadata appends the simple frame of a
// PARTITIONED_METADATA request for topic with request id id: byte for byte
// what AppendCommand writes for the BaseCommand of just those fields. It
// is the request a client sends most, written here without the generated
// code, which sizes and writes a BaseCommand by testing each of its
// seventy fields (six times the instructions).
func AppendPartitionedMetadata(dst []byte, topic string, id uint64) []byte {
	const (
		typeTag  = 1<<3 | 0  // BaseCommand.type, varint
		innerTag = 21<<3 | 2 // BaseCommand.partitionMetadata, bytes: two bytes as a varint
		topicTag = 1<<3 | 2  // CommandPartitionedTopicMetadata.topic
		idTag    = 2<<3 | 0  // CommandPartitionedTopicMetadata.request_id
	)
	inner := 1 + protowire.SizeBytes(len(topic)) + 1 + protowire.SizeVarint(id)
	size := 2 + 2 + protowire.SizeBytes(inner)
	dst = slices.Grow(dst, 8+size)
	dst = binary.BigEndian.AppendUint32(dst, uint32(size+4))
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	dst = append(dst, typeTag, byte(pulsarpb.BaseCommand_PARTITIONED_METADATA), innerTag&0x7f|0x80, innerTag>>7)
	dst = appendShortVarint(dst, inner)
	dst = append(dst, topicTag)
	dst = appendShortVarint(dst, len(topic))
	dst = append(dst, topic...)
	dst = append(dst, idTag)
	return protowire.AppendVarint(dst, id)
}

// appendShortVarint is protowire.AppendVarint for a length, which is
// most often one byte: written inline then.
func appendShortVarint(dst []byte, n int) []byte {
	if n < 0x80 {
		return append(dst, byte(n))
	}
	return protowire.AppendVarint(dst, uint64(n))
}

// AppendCommand appends a simple frame carrying cmd to dst. A plain
// PARTITIONED_METADATA request (BaseCommand.PlainPartitionedMetadata) is
// written by AppendPartitionedMetadata: the same bytes.
func AppendCommand(dst []byte, cmd *pulsarpb.BaseCommand) ([]byte, error) {
	if topic, id, ok := cmd.PlainPartitionedMetadata(); ok {
		return AppendPartitionedMetadata(dst, topic, id), nil
	}
	return appendCommand(dst, cmd, cmd.SizeVT(), 0)
}

// appendCommand appends a simple frame carrying cmd, whose encoding takes
// size bytes, to dst, growing dst once with room for extra more bytes: the
// rest of a payload frame.
func appendCommand(dst []byte, cmd *pulsarpb.BaseCommand, size, extra int) ([]byte, error) {
	orig := dst
	dst = slices.Grow(dst, 8+size+extra)
	dst = binary.BigEndian.AppendUint32(dst, uint32(size+4))
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	dst, err := appendEncoded(dst, cmd, size)
	if err != nil {
		return orig, fmt.Errorf("pulsarconn: encode %v: %w", cmd.GetType(), err)
	}
	return dst, nil
}

// appendEncoded appends the encoding of m, which takes size bytes (its
// SizeVT), to dst: the generated code writes it in place, without an
// intermediate buffer. The encoding is byte for byte proto.Marshal's.
func appendEncoded(dst []byte, m interface {
	MarshalToSizedBufferVT(dst []byte) (int, error)
}, size int) ([]byte, error) {
	start := len(dst)
	dst = slices.Grow(dst, size)[:start+size]
	n, err := m.MarshalToSizedBufferVT(dst[start:])
	if err != nil {
		return dst[:start], err
	}
	if n != size {
		// Only a message changed while being encoded gets here.
		return dst[:start], fmt.Errorf("message of %d bytes encoded to %d", size, n)
	}
	return dst, nil
}

// PayloadSize returns the size of the message payload (the bytes after
// the metadata) of encoded, one whole frame as AppendPayload builds it, or
// 0 for a simple frame or one too short to hold what its sizes say. It
// reads only the size fields and magic numbers: nothing is decoded.
func PayloadSize(encoded []byte) int {
	if len(encoded) < 8 {
		return 0
	}
	b := encoded[8:]
	cmdSize := uint64(binary.BigEndian.Uint32(encoded[4:]))
	if cmdSize > uint64(len(b)) {
		return 0
	}
	b = b[cmdSize:]
	if len(b) >= 6 && binary.BigEndian.Uint16(b) == MagicChecksum {
		b = b[6:]
	}
	if len(b) < 4 {
		return 0
	}
	mdSize := uint64(binary.BigEndian.Uint32(b))
	if mdSize > uint64(len(b)-4) {
		return 0
	}
	return len(b) - 4 - int(mdSize)
}

// payloadOverhead is what a payload frame (with checksum) takes beyond its
// command, metadata and payload: magic, checksum and metadata size.
const payloadOverhead = 2 + 4 + 4

// AppendPayload appends a payload frame (command, checksum, metadata,
// payload) to dst. metadata is the raw MessageMetadata protobuf; see
// AppendMessage to encode one.
func AppendPayload(dst []byte, cmd *pulsarpb.BaseCommand, metadata, payload []byte) ([]byte, error) {
	start := len(dst)
	dst, err := appendCommand(dst, cmd, cmd.SizeVT(), payloadOverhead+len(metadata)+len(payload))
	if err != nil {
		return dst, err
	}
	dst, crcAt := appendChecksumPlaceholder(dst, len(metadata))
	dst = append(dst, metadata...)
	dst = append(dst, payload...)
	return finishPayload(dst, start, crcAt), nil
}

// AppendMessage is AppendPayload with the metadata given as a message.
func AppendMessage(dst []byte, cmd *pulsarpb.BaseCommand, md *pulsarpb.MessageMetadata, payload []byte) ([]byte, error) {
	orig := dst
	start := len(dst)
	mdSize := md.SizeVT()
	dst, err := appendCommand(dst, cmd, cmd.SizeVT(), payloadOverhead+mdSize+len(payload))
	if err != nil {
		return dst, err
	}
	dst, crcAt := appendChecksumPlaceholder(dst, mdSize)
	if dst, err = appendEncoded(dst, md, mdSize); err != nil {
		return orig, fmt.Errorf("pulsarconn: encode message metadata: %w", err)
	}
	dst = append(dst, payload...)
	return finishPayload(dst, start, crcAt), nil
}

// appendChecksumPlaceholder appends the checksum section, its CRC32C left
// zero, and the metadata size; it returns where the CRC32C goes.
func appendChecksumPlaceholder(dst []byte, mdSize int) ([]byte, int) {
	dst = binary.BigEndian.AppendUint16(dst, MagicChecksum)
	crcAt := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(mdSize))
	return dst, crcAt
}

// finishPayload fills in the CRC32C at crcAt, over everything after it,
// and the total size of the frame that starts at start.
func finishPayload(dst []byte, start, crcAt int) []byte {
	binary.BigEndian.PutUint32(dst[crcAt:], Checksum(dst[crcAt+4:]))
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// TotalSize reports the total-size field of an encoded frame, and whether b
// is long enough to hold one.
func TotalSize(b []byte) (uint32, bool) {
	if len(b) < 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}
