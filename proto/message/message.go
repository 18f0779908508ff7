package message

import (
	"errors"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Decoding and encoding errors. Each is wrapped with detail; match with
// errors.Is.
var (
	// ErrMalformed: the payload section, its metadata or a batch is not
	// laid out as the protocol says.
	ErrMalformed = errors.New("pulsarconn: malformed message")
	// ErrChecksum: the CRC32C the frame carried does not match its
	// contents.
	ErrChecksum = errors.New("pulsarconn: message checksum mismatch")
	// ErrTooLarge: the metadata's uncompressed_size exceeds the limit.
	ErrTooLarge = errors.New("pulsarconn: message too large")
	// ErrCorrupt: the data does not decompress to the uncompressed_size
	// the metadata says.
	ErrCorrupt = errors.New("pulsarconn: corrupt compressed message")
	// ErrUnsupportedCompression: a compression type this package does
	// not know.
	ErrUnsupportedCompression = errors.New("pulsarconn: unsupported compression")
	// ErrEncrypted: the message is encrypted (its metadata has encryption
	// keys); this package does not decrypt.
	ErrEncrypted = errors.New("pulsarconn: encrypted message")
	// ErrNoPayload: the frame is not a SEND or MESSAGE with a payload
	// section.
	ErrNoPayload = errors.New("pulsarconn: frame has no message payload")
)

// DefaultMaxSize is the largest uncompressed size a Decoder accepts by
// default, 5 MiB: the broker's default max_message_size, which bounds a
// message as sent, compressed (see Decoder.MaxSize).
const DefaultMaxSize = frame.DefaultMaxMessageSize

// Message is one message: what an Encoder encodes, and what a Decoder
// returns for each message of a payload section. A zero field is unset.
type Message struct {
	// Payload is the message's content. A decoded Payload aliases the
	// frame or the decompressed buffer.
	Payload []byte
	// SequenceID is the producer's sequence id of the message.
	SequenceID uint64
	// PublishTime is when it was published, in milliseconds since the
	// Unix epoch. An Encoder uses the current time when it is 0.
	PublishTime uint64
	// EventTime is the application's event time, in milliseconds since
	// the Unix epoch.
	EventTime uint64
	// Key is the partition key.
	Key string
	// KeyB64Encoded reports that Key is base64-encoded bytes.
	KeyB64Encoded bool
	// OrderingKey, when set, is used instead of Key for ordering on
	// Key_Shared subscriptions.
	OrderingKey []byte
	// Properties are the application's properties. An Encoder writes
	// them sorted by key.
	Properties map[string]string
	// NullValue marks a message whose value is null (a tombstone), as
	// opposed to an empty payload.
	NullValue bool
	// CompactedOut is set on a decoded message of a batch that
	// compaction removed.
	CompactedOut bool

	// The fields below live in the MessageMetadata: an Encoder writes
	// them only for a single message, and a Decoder sets them on every
	// message of a batch from the metadata the batch shares.

	// SchemaVersion is the version of the schema the payload is encoded
	// with.
	SchemaVersion []byte
	// DeliverAt, in milliseconds since the Unix epoch, delays delivery
	// until then.
	DeliverAt int64
	// Chunk is set on one chunk of a chunked message.
	Chunk Chunk
}

// Chunk describes one chunk of a message too large for one frame: the
// producer compresses the whole message, splits the result into chunks
// and sends each in its own SEND with the same sequence id. The consumer
// joins the chunks of a UUID in ID order and decompresses the whole with
// Decompress.
type Chunk struct {
	// UUID names the chunked message; chunks of one message share it.
	UUID string
	// ID is the chunk's index, from 0.
	ID int32
	// Count is the number of chunks of the message; 0 when the message
	// is not chunked.
	Count int32
	// TotalSize is the size of the whole compressed message (all its
	// chunks together).
	TotalSize int32
	// UncompressedSize is the size of the whole message once
	// decompressed.
	UncompressedSize uint32
}

// Entry is a decoded payload section: one stored entry of a topic, a
// single message or a batch.
type Entry struct {
	// HasChecksum reports whether the frame carried a CRC32C (old peers
	// send none); the Decoder fails with ErrChecksum when it does not
	// match.
	HasChecksum bool
	// Checksum is the CRC32C the frame carried, verified.
	Checksum uint32
	// BrokerEntry is the broker entry metadata the broker prepended, or
	// nil.
	BrokerEntry *pulsarpb.BrokerEntryMetadata
	// Metadata is the decoded MessageMetadata.
	Metadata *pulsarpb.MessageMetadata
	// Compression is the data's compression.
	Compression pulsarpb.CompressionType
	// Batched reports that the data is a batch (the metadata has
	// num_messages_in_batch), even of one message.
	Batched bool
	// Messages are the entry's messages in order: one for a single
	// message or a chunk, every message of a batch.
	Messages []Message
}
