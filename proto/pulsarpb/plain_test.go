package pulsarpb_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

func plainPartitionedMetadata() *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
		PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{
			Topic: proto.String("persistent://public/default/t"), RequestId: proto.Uint64(7),
		},
	}
}

// TestPlainPartitionedMetadataTestsEveryField: a PARTITIONED_METADATA of
// a topic and a request id is plain; the same with any one field of
// BaseCommand or of its sub-command toggled (set if unset, cleared if
// set), or with an unknown field, is not. A field added to the schema and
// not tested by PlainPartitionedMetadata fails here.
func TestPlainPartitionedMetadataTestsEveryField(t *testing.T) {
	topic, id, ok := plainPartitionedMetadata().PlainPartitionedMetadata()
	require.True(t, ok)
	assert.Equal(t, "persistent://public/default/t", topic)
	assert.Equal(t, uint64(7), id)

	for _, part := range []struct {
		name string
		of   func(*pulsarpb.BaseCommand) protoreflect.Message
	}{
		{"BaseCommand", func(c *pulsarpb.BaseCommand) protoreflect.Message { return c.ProtoReflect() }},
		{"CommandPartitionedTopicMetadata", func(c *pulsarpb.BaseCommand) protoreflect.Message { return c.PartitionMetadata.ProtoReflect() }},
	} {
		fields := part.of(plainPartitionedMetadata()).Descriptor().Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			cmd := plainPartitionedMetadata()
			m := part.of(cmd)
			if m.Has(fd) {
				m.Clear(fd)
			} else {
				m.Set(fd, m.NewField(fd))
				require.True(t, m.Has(fd), "%s set", fd.FullName())
			}
			_, _, ok := cmd.PlainPartitionedMetadata()
			assert.False(t, ok, "%s toggled", fd.FullName())
		}
		cmd := plainPartitionedMetadata()
		part.of(cmd).SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 1000, protowire.VarintType), 1))
		_, _, ok := cmd.PlainPartitionedMetadata()
		assert.False(t, ok, "%s with an unknown field", part.name)
	}

	cmd := plainPartitionedMetadata()
	cmd.Type = pulsarpb.BaseCommand_LOOKUP.Enum()
	_, _, ok = cmd.PlainPartitionedMetadata()
	assert.False(t, ok, "another type")
	_, _, ok = (*pulsarpb.BaseCommand)(nil).PlainPartitionedMetadata()
	assert.False(t, ok, "nil")
}
