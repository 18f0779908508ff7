package message

import (
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// TestZstdInSeveralBubbles: decoding ZSTD in one synctest bubble and then
// in another works. The shared decoder used to be made on first use,
// inside the first bubble, which then owned its channels: the second
// bubble's decoding was a fatal error ("receive on synctest channel from
// outside bubble").
func TestZstdInSeveralBubbles(t *testing.T) {
	var enc Encoder
	enc.Compression = pulsarpb.CompressionType_ZSTD
	want := []byte("the same text, the same text, the same text")
	packed, err := enc.Compress(want)
	require.NoError(t, err)
	for range 2 {
		synctest.Test(t, func(t *testing.T) {
			got, err := Decompress(pulsarpb.CompressionType_ZSTD, packed, len(want), len(want))
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}
