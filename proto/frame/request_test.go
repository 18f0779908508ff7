package frame_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// requestIDCommands lists every command type that carries a request id, and
// whether it is a request (sent by the client, which chooses the id) rather
// than an answer (which echoes it).
var requestIDCommands = []struct {
	typ     pulsarpb.BaseCommand_Type
	request bool
}{
	{pulsarpb.BaseCommand_PRODUCER, true},
	{pulsarpb.BaseCommand_PRODUCER_SUCCESS, false},
	{pulsarpb.BaseCommand_SUBSCRIBE, true},
	{pulsarpb.BaseCommand_UNSUBSCRIBE, true},
	{pulsarpb.BaseCommand_SEEK, true},
	{pulsarpb.BaseCommand_CLOSE_PRODUCER, true},
	{pulsarpb.BaseCommand_CLOSE_CONSUMER, true},
	{pulsarpb.BaseCommand_LOOKUP, true},
	{pulsarpb.BaseCommand_LOOKUP_RESPONSE, false},
	{pulsarpb.BaseCommand_PARTITIONED_METADATA, true},
	{pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE, false},
	{pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID, true},
	{pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID_RESPONSE, false},
	{pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE, true},
	{pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE_RESPONSE, false},
	{pulsarpb.BaseCommand_GET_SCHEMA, true},
	{pulsarpb.BaseCommand_GET_SCHEMA_RESPONSE, false},
	{pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA, true},
	{pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA_RESPONSE, false},
	// An ACK is a request only when it carries a request id.
	{pulsarpb.BaseCommand_ACK, true},
	{pulsarpb.BaseCommand_ACK_RESPONSE, false},
	{pulsarpb.BaseCommand_SUCCESS, false},
	{pulsarpb.BaseCommand_ERROR, false},
}

var baseCommandFields = (&pulsarpb.BaseCommand{}).ProtoReflect().Descriptor().Fields()

// subCommandField returns the BaseCommand field that holds the sub-command
// of typ: by the protocol's rule, the field whose number is the type's.
func subCommandField(typ pulsarpb.BaseCommand_Type) protoreflect.FieldDescriptor {
	return baseCommandFields.ByNumber(protoreflect.FieldNumber(typ))
}

// withSubCommand returns a command of type typ with an empty sub-command.
func withSubCommand(t *testing.T, typ pulsarpb.BaseCommand_Type) *pulsarpb.BaseCommand {
	t.Helper()
	fd := subCommandField(typ)
	require.NotNil(t, fd, "no field %d for %v", typ, typ)
	cmd := &pulsarpb.BaseCommand{Type: typ.Enum()}
	cmd.ProtoReflect().Mutable(fd) // sets an empty sub-command
	return cmd
}

// setRawRequestID writes request_id into cmd's sub-command by reflection,
// bypassing SetRequestID.
func setRawRequestID(t *testing.T, cmd *pulsarpb.BaseCommand, id uint64) {
	t.Helper()
	sub := cmd.ProtoReflect().Get(subCommandField(cmd.GetType())).Message()
	fd := sub.Descriptor().Fields().ByName("request_id")
	require.NotNil(t, fd)
	sub.Set(fd, protoreflect.ValueOfUint64(id))
}

func TestSubCommandFieldNumbers(t *testing.T) {
	// In the protocol, the sub-command is in the field whose number equals the
	// type's number (TOPIC_MIGRATED = 68 in field 68). Types without a field
	// are the ones pulsarconn does not speak (consumer stats, transactions,
	// topic-list watchers).
	values := pulsarpb.BaseCommand_PING.Descriptor().Values()
	var withoutField []pulsarpb.BaseCommand_Type
	for i := range values.Len() {
		typ := pulsarpb.BaseCommand_Type(values.Get(i).Number())
		fd := subCommandField(typ)
		if fd == nil {
			withoutField = append(withoutField, typ)
			continue
		}
		assert.Equal(t, protoreflect.MessageKind, fd.Kind(), "%v", typ)
	}
	for _, typ := range withoutField {
		n := int(typ)
		assert.True(t, n == 25 || n == 26 || 50 <= n && n <= 67, "%v has no sub-command field", typ)
	}
	assert.Equal(t, protoreflect.FieldNumber(68), subCommandField(pulsarpb.BaseCommand_TOPIC_MIGRATED).Number())
}

func TestRequestIDCoversEveryCommandWithOne(t *testing.T) {
	// Every command type whose sub-command has a request_id field must be in
	// requestIDCommands (so RequestID and SetRequestID are tested for it),
	// and every other type must report no request id.
	listed := map[pulsarpb.BaseCommand_Type]bool{}
	for _, rc := range requestIDCommands {
		listed[rc.typ] = true
	}
	values := pulsarpb.BaseCommand_PING.Descriptor().Values()
	for i := range values.Len() {
		typ := pulsarpb.BaseCommand_Type(values.Get(i).Number())
		fd := subCommandField(typ)
		hasField := fd != nil && fd.Message().Fields().ByName("request_id") != nil
		assert.Equal(t, hasField, listed[typ], "%v: has request_id = %v, listed = %v", typ, hasField, listed[typ])
		if hasField || fd == nil {
			continue
		}
		cmd := withSubCommand(t, typ)
		_, ok := frame.RequestID(cmd)
		assert.False(t, ok, "%v carries no request id", typ)
		assert.False(t, frame.SetRequestID(cmd, 1), "%v carries no request id", typ)
	}
}

func TestRequestID(t *testing.T) {
	const id = uint64(1)<<40 + 12345
	for _, rc := range requestIDCommands {
		t.Run(rc.typ.String(), func(t *testing.T) {
			// Without its sub-command, a command has no request id, and
			// SetRequestID refuses it rather than panicking.
			bare := &pulsarpb.BaseCommand{Type: rc.typ.Enum()}
			_, ok := frame.RequestID(bare)
			assert.False(t, ok)
			assert.False(t, frame.SetRequestID(bare, id))
			assert.True(t, proto.Equal(&pulsarpb.BaseCommand{Type: rc.typ.Enum()}, bare), "a refused SetRequestID changes nothing")

			cmd := withSubCommand(t, rc.typ)
			if rc.request {
				require.True(t, frame.SetRequestID(cmd, id))
			} else {
				assert.False(t, frame.SetRequestID(cmd, id), "answers echo the request's id; it is not set on them")
				setRawRequestID(t, cmd, id)
			}
			got, ok := frame.RequestID(cmd)
			require.True(t, ok)
			assert.Equal(t, id, got)

			// The id survives the wire.
			out, err := frame.AppendCommand(nil, cmd)
			require.NoError(t, err)
			f, err := frame.Parse(out[4:])
			require.NoError(t, err)
			got, ok = frame.RequestID(f.Command)
			require.True(t, ok)
			assert.Equal(t, id, got)

			// SetRequestID overwrites an id already there.
			if rc.request {
				require.True(t, frame.SetRequestID(cmd, 7))
				got, _ = frame.RequestID(cmd)
				assert.Equal(t, uint64(7), got)
			}
		})
	}
}

func TestRequestIDOptionalOnAck(t *testing.T) {
	// An ACK without a request id asks for no ACK_RESPONSE: it is not a
	// request, and neither is an ACK_RESPONSE without one.
	for _, typ := range []pulsarpb.BaseCommand_Type{pulsarpb.BaseCommand_ACK, pulsarpb.BaseCommand_ACK_RESPONSE} {
		_, ok := frame.RequestID(withSubCommand(t, typ))
		assert.False(t, ok, "%v", typ)
	}
	// For the other types a present sub-command has a request id, 0 when
	// unset (the protocol requires the field).
	id, ok := frame.RequestID(withSubCommand(t, pulsarpb.BaseCommand_LOOKUP))
	assert.True(t, ok)
	assert.Zero(t, id)

	ack := &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_ACK.Enum(),
		Ack:  &pulsarpb.CommandAck{ConsumerId: proto.Uint64(3)},
	}
	require.True(t, frame.SetRequestID(ack, 99))
	assert.Equal(t, uint64(99), ack.GetAck().GetRequestId())
	assert.Equal(t, uint64(3), ack.GetAck().GetConsumerId())
}

func TestRequestIDMismatchedSubCommand(t *testing.T) {
	// The type decides: a sub-command in another type's field is ignored.
	cmd := &pulsarpb.BaseCommand{
		Type:    pulsarpb.BaseCommand_LOOKUP.Enum(),
		Success: &pulsarpb.CommandSuccess{RequestId: proto.Uint64(5)},
	}
	_, ok := frame.RequestID(cmd)
	assert.False(t, ok)
	assert.False(t, frame.SetRequestID(cmd, 6))
	assert.Equal(t, uint64(5), cmd.GetSuccess().GetRequestId())
}

func TestRequestIDNil(t *testing.T) {
	assert.NotPanics(t, func() {
		_, ok := frame.RequestID(nil)
		assert.False(t, ok)
		assert.False(t, frame.SetRequestID(nil, 1))
		_, ok = frame.RequestID(&pulsarpb.BaseCommand{})
		assert.False(t, ok)
		assert.False(t, frame.SetRequestID(&pulsarpb.BaseCommand{}, 1))
	})
}
