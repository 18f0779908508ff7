// Package message encodes and decodes the payload section of Pulsar's
// payload frames (SEND and MESSAGE): the message metadata, compression and
// batches.
//
// A payload frame is a command followed by its payload section (see
// package frame for the whole frame):
//
//	[0x0e02] [size: uint32 BE] [BrokerEntryMetadata]   optional, broker to client only
//	[0x0e01] [CRC32C: uint32 BE]                        optional on old peers
//	[metadata size: uint32 BE] [MessageMetadata] [data]
//
// The CRC32C covers the metadata size, the metadata and the data. The data
// is compressed as the metadata's compression says (NONE, LZ4 as a raw LZ4
// block, ZLIB as a zlib stream, ZSTD as a zstd frame, SNAPPY as a Snappy
// block), and uncompressed_size gives its size once decompressed.
//
// When the metadata has num_messages_in_batch, the decompressed data is a
// batch of that many single messages, each laid out as:
//
//	[size: uint32 BE] [SingleMessageMetadata] [payload: payload_size bytes]
//
// The SingleMessageMetadata holds what differs per message (key, ordering
// key, properties, event time, sequence id, null value); the
// MessageMetadata holds what the batch shares (producer name, publish time,
// compression, schema version) and what the broker reads of it: its first
// and highest sequence ids and its first message's keys. Without num_messages_in_batch the data is
// one message's payload, and the MessageMetadata holds all its fields.
//
// An Encoder builds whole SEND frames, reusing its buffers and metadata so
// that an uncompressed single message costs no allocation; a Decoder takes
// a SEND or MESSAGE frame's payload section apart again, verifying the
// checksum and bounding what decompression may allocate.
package message
