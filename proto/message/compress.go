package message

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// compressor compresses payloads with one codec after another, reusing
// its state and output buffer. It is not safe for concurrent use.
type compressor struct {
	out  []byte
	lz4  lz4.Compressor
	zbuf bytes.Buffer
	zw   *zlib.Writer
	zstd *zstd.Encoder
}

// compress returns src compressed with c, in a buffer reused by the next
// call.
func (z *compressor) compress(c pulsarpb.CompressionType, src []byte) ([]byte, error) {
	switch c {
	case pulsarpb.CompressionType_NONE:
		return src, nil
	case pulsarpb.CompressionType_LZ4:
		z.out = grow(z.out, lz4.CompressBlockBound(len(src)))
		n, err := z.lz4.CompressBlock(src, z.out)
		if err != nil {
			return nil, fmt.Errorf("pulsarconn: LZ4: %w", err)
		}
		if n == 0 && len(src) > 0 {
			return nil, errors.New("pulsarconn: LZ4: block did not compress into its bound")
		}
		return z.out[:n], nil
	case pulsarpb.CompressionType_ZLIB:
		z.zbuf.Reset()
		if z.zw == nil {
			z.zw = zlib.NewWriter(&z.zbuf)
		} else {
			z.zw.Reset(&z.zbuf)
		}
		if _, err := z.zw.Write(src); err != nil {
			return nil, fmt.Errorf("pulsarconn: ZLIB: %w", err)
		}
		if err := z.zw.Close(); err != nil {
			return nil, fmt.Errorf("pulsarconn: ZLIB: %w", err)
		}
		return z.zbuf.Bytes(), nil
	case pulsarpb.CompressionType_ZSTD:
		if z.zstd == nil {
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
			if err != nil {
				return nil, fmt.Errorf("pulsarconn: ZSTD: %w", err)
			}
			z.zstd = enc
		}
		z.out = z.zstd.EncodeAll(src, z.out[:0])
		return z.out, nil
	case pulsarpb.CompressionType_SNAPPY:
		z.out = grow(z.out, snappy.MaxEncodedLen(len(src)))
		return snappy.Encode(z.out, src), nil
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedCompression, c)
	}
}

// grow returns b with length n, reusing its array when it is large enough.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// zstdDecoder is shared by all decoding: its DecodeAll may be called
// concurrently, and with the cap limit it never writes beyond the
// capacity of the buffer it is given. It is made when the package is
// initialised, not on first use: made inside a testing/synctest bubble,
// its channels would belong to that bubble, and decoding from any other
// goroutine would be a fatal error.
var zstdDec, zstdErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecodeAllCapLimit(true))

func zstdDecoder() (*zstd.Decoder, error) { return zstdDec, zstdErr }

// Decompress returns data decompressed with c into a new buffer of exactly
// size bytes (what the metadata's uncompressed_size says); it fails with
// ErrTooLarge when size exceeds max, without allocating, and with
// ErrCorrupt when data is not a valid encoding of size bytes, stopping as
// soon as it would go beyond them (ZSTD by up to one block of 128 KiB).
// The decompressors' working buffers, a fixed size, come on top. For NONE it
// returns data itself. It is exported for chunked messages, whose chunks
// are decompressed as a whole once reassembled.
func Decompress(c pulsarpb.CompressionType, data []byte, size, max int) ([]byte, error) {
	if c == pulsarpb.CompressionType_NONE {
		return data, nil
	}
	if size < 0 || size > max {
		return nil, fmt.Errorf("%w: uncompressed size %d, limit %d", ErrTooLarge, size, max)
	}
	var out []byte
	var err error
	switch c {
	case pulsarpb.CompressionType_LZ4:
		out = make([]byte, size)
		var n int
		if n, err = lz4.UncompressBlock(data, out); err == nil {
			out = out[:n]
		}
	case pulsarpb.CompressionType_ZLIB:
		out, err = unzlib(data, size)
	case pulsarpb.CompressionType_ZSTD:
		var d *zstd.Decoder
		if d, err = zstdDecoder(); err == nil {
			out, err = d.DecodeAll(data, make([]byte, 0, size))
		}
	case pulsarpb.CompressionType_SNAPPY:
		var n int
		if n, err = snappy.DecodedLen(data); err == nil && n != size {
			err = fmt.Errorf("block says %d bytes", n)
		}
		if err == nil {
			out, err = snappy.DecodeStrict(make([]byte, size), data)
		}
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedCompression, c)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v: %v", ErrCorrupt, c, err)
	}
	if len(out) != size {
		return nil, fmt.Errorf("%w: %v: %d bytes decompressed, uncompressed size says %d", ErrCorrupt, c, len(out), size)
	}
	return out, nil
}

// unzlib inflates the zlib stream data, which must hold exactly size
// bytes, into a buffer of that size. A stream that ends right after those
// bytes without its final block and checksum is accepted: the Java
// client writes ZLIB that way (see testdata/captures/README.md).
func unzlib(data []byte, size int) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	out := make([]byte, size)
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, err
	}
	var one [1]byte
	switch n, err := io.ReadFull(r, one[:]); {
	case n > 0:
		return nil, errors.New("more data than the uncompressed size")
	case err == io.EOF: // only once the stream's checksum is verified
		return out, r.Close()
	case err == io.ErrUnexpectedEOF:
		// The Java client's stream stops after a sync flush, with no
		// final block and no Adler-32: it is complete once size bytes
		// are out, as the Java client's own inflater reads it.
		return out, nil
	default:
		return nil, err
	}
}
