// Package batch reads what a Pulsar producer puts in one entry, for the
// interop tests that check what other clients published: the payload's
// compression and the messages of a batch.
package batch

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Message is one message of a batch.
type Message struct {
	Meta    *pulsarpb.SingleMessageMetadata
	Payload []byte
}

// Split splits an uncompressed batch payload into its n messages, each
// written as [metadata size: uint32 BE] [SingleMessageMetadata]
// [payload_size bytes of payload], and fails if anything is left over.
func Split(data []byte, n int) ([]Message, error) {
	out := make([]Message, 0, n)
	for i := range n {
		if len(data) < 4 {
			return nil, fmt.Errorf("batch message %d: %d bytes left, want a 4-byte size", i, len(data))
		}
		size := binary.BigEndian.Uint32(data)
		data = data[4:]
		if uint64(size) > uint64(len(data)) {
			return nil, fmt.Errorf("batch message %d: metadata size %d, %d bytes left", i, size, len(data))
		}
		meta := new(pulsarpb.SingleMessageMetadata)
		if err := proto.Unmarshal(data[:size], meta); err != nil {
			return nil, fmt.Errorf("batch message %d: %v", i, err)
		}
		data = data[size:]
		ps := int(meta.GetPayloadSize())
		if ps < 0 || ps > len(data) {
			return nil, fmt.Errorf("batch message %d: payload size %d, %d bytes left", i, ps, len(data))
		}
		out = append(out, Message{Meta: meta, Payload: data[:ps]})
		data = data[ps:]
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%d bytes after the last of %d batch messages", len(data), n)
	}
	return out, nil
}

// Decompress undoes the compression md names: LZ4 as a raw block
// (Pulsar's LZ4 is the block format, its size in the metadata), ZLIB as a
// zlib stream (which may end without its final block), ZSTD as a frame,
// SNAPPY as a raw block. The result must
// have the metadata's uncompressed_size.
func Decompress(md *pulsarpb.MessageMetadata, data []byte) ([]byte, error) {
	var out []byte
	switch md.GetCompression() {
	case pulsarpb.CompressionType_NONE:
		return data, nil
	case pulsarpb.CompressionType_LZ4:
		out = make([]byte, md.GetUncompressedSize())
		n, err := lz4.UncompressBlock(data, out)
		if err != nil {
			return nil, fmt.Errorf("LZ4: %w", err)
		}
		out = out[:n]
	case pulsarpb.CompressionType_ZLIB:
		r, err := zlib.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("ZLIB: %w", err)
		}
		// Read only uncompressed_size bytes: the Java client ends its
		// stream with a sync flush, without the final block and checksum.
		out = make([]byte, md.GetUncompressedSize())
		if _, err := io.ReadFull(r, out); err != nil {
			return nil, fmt.Errorf("ZLIB: %w", err)
		}
	case pulsarpb.CompressionType_SNAPPY:
		var err error
		if out, err = snappy.Decode(nil, data); err != nil {
			return nil, fmt.Errorf("SNAPPY: %w", err)
		}
	case pulsarpb.CompressionType_ZSTD:
		d, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		if out, err = d.DecodeAll(data, nil); err != nil {
			return nil, fmt.Errorf("ZSTD: %w", err)
		}
	default:
		return nil, fmt.Errorf("compression %v not handled", md.GetCompression())
	}
	if len(out) != int(md.GetUncompressedSize()) {
		return nil, fmt.Errorf("%v gave %d bytes, the metadata says %d", md.GetCompression(), len(out), md.GetUncompressedSize())
	}
	return out, nil
}
