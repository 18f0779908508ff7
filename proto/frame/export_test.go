package frame

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// MaxFastDepth is how deep sub-messages may nest on the fast path: the top
// message is at depth 0.
const MaxFastDepth = maxFastDepth

// shapeFor is the shape of m, one of the messages this package decodes.
func shapeFor(m proto.Message) *shape {
	switch m.(type) {
	case *pulsarpb.BaseCommand:
		return commandShape
	case *pulsarpb.MessageMetadata:
		return metadataShape
	case *pulsarpb.BrokerEntryMetadata:
		return brokerEntryShape
	}
	panic(fmt.Sprintf("frame: no shape for %T", m))
}

// Unmarshal is the decoding Parse, DecodeMetadata and
// DecodeBrokerEntryMetadata use, exported for the tests: b into m, a new
// BaseCommand, MessageMetadata or BrokerEntryMetadata.
func Unmarshal(b []byte, m interface {
	proto.Message
	SizeVT() int
	MarshalToSizedBufferVT(dst []byte) (int, error)
	UnmarshalVT(b []byte) error
}) error {
	return unmarshal(b, m, shapeFor(m))
}

// FastPathOK reports whether Unmarshal would decode b, an encoded m, with
// UnmarshalVT.
func FastPathOK(b []byte, m proto.Message) bool {
	return shapeFor(m).fastPathOK(b, 0)
}
