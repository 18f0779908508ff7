package core_test

import (
	"encoding/binary"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Producer and consumer ids are separate spaces: producer 2 and consumer 2
// are different registrations.
var (
	pushProducerIDs = []uint64{1, 2, 3, 1 << 40}
	pushConsumerIDs = []uint64{2, 3, 5}
)

func TestPushRouting(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cmd      *pulsarpb.BaseCommand
		producer bool
		id       uint64
		kind     core.PushKind
		check    func(t *testing.T, p core.Push)
	}{
		{"SEND_RECEIPT", sendReceipt(2, 41), true, 2, core.PushReceipt, func(t *testing.T, p core.Push) {
			assert.Equal(t, uint64(41), p.Command.GetSendReceipt().GetSequenceId())
			assert.NoError(t, p.Err)
		}},
		{"SEND_RECEIPT to a large id", sendReceipt(1<<40, 1), true, 1 << 40, core.PushReceipt, nil},
		{"SEND_ERROR", sendError(3, 9, pulsarpb.ServerError_ChecksumError, "checksum mismatch"), true, 3, core.PushSendError,
			func(t *testing.T, p core.Push) {
				var se *core.ServerError
				require.ErrorAs(t, p.Err, &se)
				assert.Equal(t, pulsarpb.ServerError_ChecksumError, se.Code)
				assert.Equal(t, "checksum mismatch", se.Message)
				assert.ErrorIs(t, p.Err, core.ErrChecksum)
				assert.Equal(t, uint64(9), p.Command.GetSendError().GetSequenceId())
			}},
		{"CLOSE_PRODUCER", closeProducerPush(1, "", ""), true, 1, core.PushClosed, func(t *testing.T, p core.Push) {
			assert.Empty(t, p.BrokerURL)
			assert.Empty(t, p.BrokerURLTLS)
		}},
		{"CLOSE_PRODUCER with an assigned broker",
			closeProducerPush(2, "pulsar://broker-9:6650", "pulsar+ssl://broker-9:6651"), true, 2, core.PushClosed,
			func(t *testing.T, p core.Push) {
				assert.Equal(t, "pulsar://broker-9:6650", p.BrokerURL)
				assert.Equal(t, "pulsar+ssl://broker-9:6651", p.BrokerURLTLS)
			}},
		{"CLOSE_CONSUMER", closeConsumerPush(3, "", ""), false, 3, core.PushClosed, func(t *testing.T, p core.Push) {
			assert.Empty(t, p.BrokerURL)
		}},
		{"CLOSE_CONSUMER with an assigned broker",
			closeConsumerPush(5, "pulsar://broker-8:6650", "pulsar+ssl://broker-8:6651"), false, 5, core.PushClosed,
			func(t *testing.T, p core.Push) {
				assert.Equal(t, "pulsar://broker-8:6650", p.BrokerURL)
				assert.Equal(t, "pulsar+ssl://broker-8:6651", p.BrokerURLTLS)
			}},
		{"ACTIVE_CONSUMER_CHANGE", activeConsumerChange(2, true), false, 2, core.PushActiveConsumerChange,
			func(t *testing.T, p core.Push) { assert.True(t, p.Command.GetActiveConsumerChange().GetIsActive()) }},
		{"REACHED_END_OF_TOPIC", reachedEndOfTopic(3), false, 3, core.PushReachedEndOfTopic, nil},
		{"TOPIC_MIGRATED producer",
			topicMigrated(pulsarpb.CommandTopicMigrated_Producer, 3, "pulsar://green:6650", "pulsar+ssl://green:6651"),
			true, 3, core.PushTopicMigrated, func(t *testing.T, p core.Push) {
				assert.Equal(t, "pulsar://green:6650", p.BrokerURL)
				assert.Equal(t, "pulsar+ssl://green:6651", p.BrokerURLTLS)
			}},
		{"TOPIC_MIGRATED consumer",
			topicMigrated(pulsarpb.CommandTopicMigrated_Consumer, 3, "pulsar://blue:6650", "pulsar+ssl://blue:6651"),
			false, 3, core.PushTopicMigrated, func(t *testing.T, p core.Push) {
				assert.Equal(t, "pulsar://blue:6650", p.BrokerURL)
				assert.Equal(t, "pulsar+ssl://blue:6651", p.BrokerURLTLS)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newRegistered(t, core.Config{}, pushProducerIDs, pushConsumerIDs)
			h.recv(tc.cmd)

			target := h.consumers[tc.id]
			if tc.producer {
				target = h.producers[tc.id]
			}
			require.NotNil(t, target)
			h.each(func(producer bool, id uint64, rec *recorder) {
				if rec != target {
					assert.Empty(t, rec.pushes, "producer %v id %d got a push for another", producer, id)
				}
			})
			require.Len(t, target.pushes, 1)
			p := target.pushes[0]
			assert.Equal(t, tc.kind, p.Kind)
			assert.Equal(t, tc.id, p.ID)
			assert.True(t, proto.Equal(tc.cmd, p.Command), "the push carries the broker's command")
			assert.Nil(t, p.Payload)
			if tc.check != nil {
				tc.check(t, p)
			}
			assert.Equal(t, core.Stats{}, h.c.Stats())
			assert.Empty(t, h.written())
			assert.Equal(t, core.StateConnected, h.c.State())
		})
	}
}

func TestPushesKeepBrokerOrder(t *testing.T) {
	h := newRegistered(t, core.Config{}, []uint64{1, 2}, nil)
	for seq := range uint64(50) {
		h.recv(sendReceipt(1+seq%2, seq))
	}
	for id, rec := range h.producers {
		require.Len(t, rec.pushes, 25)
		for i, p := range rec.pushes {
			assert.Equal(t, uint64(2*i)+id-1, p.Command.GetSendReceipt().GetSequenceId())
		}
	}
}

func TestMessagePush(t *testing.T) {
	h := newRegistered(t, core.Config{}, []uint64{2}, pushConsumerIDs)
	h.recvBytes(h.c.Gen(), messageFrame(t, 3, 17, "hello, pulsar"))

	require.Len(t, h.consumers[3].pushes, 1)
	p := h.consumers[3].pushes[0]
	assert.Equal(t, core.PushMessage, p.Kind)
	assert.Equal(t, uint64(3), p.ID)
	assert.Equal(t, uint64(17), p.Command.GetMessage().GetMessageId().GetEntryId())
	require.NotNil(t, p.Payload)
	assert.True(t, p.Payload.HasChecksum)
	assert.True(t, p.Payload.ChecksumOK)
	assert.Equal(t, []byte("hello, pulsar"), p.Payload.Data)
	md, err := p.Payload.DecodeMetadata()
	require.NoError(t, err)
	assert.Equal(t, "standalone-0-1", md.GetProducerName())
	assert.Empty(t, h.producers[2].pushes, "producer 2 is not consumer 2")
	assert.Empty(t, h.consumers[2].pushes)
	assert.Equal(t, core.Stats{}, h.c.Stats())
}

func TestMessageWithBadChecksumStillDelivered(t *testing.T) {
	h := newRegistered(t, core.Config{}, nil, []uint64{5})
	b := messageFrame(t, 5, 1, "payload")
	b[len(b)-1] ^= 0xff // corrupt the payload after the checksum was computed
	h.recvBytes(h.c.Gen(), b)

	require.Len(t, h.consumers[5].pushes, 1)
	p := h.consumers[5].pushes[0]
	assert.Equal(t, core.PushMessage, p.Kind)
	assert.True(t, p.Payload.HasChecksum)
	assert.False(t, p.Payload.ChecksumOK, "the consumer decides what to do with a corrupt message")
	assert.Equal(t, uint64(1), h.c.Stats().BadChecksums)
	logs := only(h.effects(), core.EffectLog)
	require.Len(t, logs, 1)
	assert.Equal(t, slog.LevelWarn, logs[0].Level)
	assert.Equal(t, core.StateConnected, h.c.State())

	h.recvBytes(h.c.Gen(), messageFrame(t, 5, 2, "fine"))
	assert.Equal(t, uint64(1), h.c.Stats().BadChecksums, "only bad checksums count")
	assert.True(t, h.consumers[5].pushes[1].Payload.ChecksumOK)
}

// An old broker sends MESSAGE without the checksum section.
func TestMessageWithoutChecksum(t *testing.T) {
	h := newRegistered(t, core.Config{}, nil, []uint64{5})
	b, err := frame.AppendCommand(nil, messageCmd(5, 1, 1))
	require.NoError(t, err)
	md, err := proto.Marshal(&pulsarpb.MessageMetadata{ProducerName: proto.String("old"),
		SequenceId: proto.Uint64(1), PublishTime: proto.Uint64(1)})
	require.NoError(t, err)
	b = binary.BigEndian.AppendUint32(b, uint32(len(md)))
	b = append(b, md...)
	b = append(b, "legacy"...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	h.recvBytes(h.c.Gen(), b)

	require.Len(t, h.consumers[5].pushes, 1)
	p := h.consumers[5].pushes[0].Payload
	assert.False(t, p.HasChecksum)
	assert.True(t, p.ChecksumOK)
	assert.Equal(t, []byte("legacy"), p.Data)
	assert.Zero(t, h.c.Stats().BadChecksums)
}

func TestMessageWithoutPayload(t *testing.T) {
	h := newRegistered(t, core.Config{}, nil, []uint64{5})
	require.NotPanics(t, func() { h.recv(messageCmd(5, 1, 1)) })
	assert.Empty(t, h.consumers[5].pushes, "a MESSAGE without a payload is not delivered")
	assert.Len(t, only(h.effects(), core.EffectLog), 1)
	assert.Equal(t, uint64(1), h.c.Stats().UnknownCommands)
	assert.Equal(t, core.StateConnected, h.c.State())
}

func TestPushForUnknownID(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cmd       *pulsarpb.BaseCommand
		raw       func(t *testing.T) []byte
		producers uint64
		consumers uint64
		attr      string
	}{
		{name: "SEND_RECEIPT", cmd: sendReceipt(99, 1), producers: 1, attr: "producer_id"},
		{name: "SEND_ERROR", cmd: sendError(99, 1, pulsarpb.ServerError_PersistenceError, "x"), producers: 1, attr: "producer_id"},
		{name: "CLOSE_PRODUCER", cmd: closeProducerPush(99, "", ""), producers: 1, attr: "producer_id"},
		{name: "TOPIC_MIGRATED producer", cmd: topicMigrated(pulsarpb.CommandTopicMigrated_Producer, 5, "u", "v"),
			producers: 1, attr: "producer_id"},
		{name: "MESSAGE", raw: func(t *testing.T) []byte { return messageFrame(t, 99, 1, "x") }, consumers: 1, attr: "consumer_id"},
		{name: "CLOSE_CONSUMER", cmd: closeConsumerPush(1, "", ""), consumers: 1, attr: "consumer_id"},
		{name: "ACTIVE_CONSUMER_CHANGE", cmd: activeConsumerChange(99, false), consumers: 1, attr: "consumer_id"},
		{name: "REACHED_END_OF_TOPIC", cmd: reachedEndOfTopic(99), consumers: 1, attr: "consumer_id"},
		{name: "TOPIC_MIGRATED consumer", cmd: topicMigrated(pulsarpb.CommandTopicMigrated_Consumer, 1, "u", "v"),
			consumers: 1, attr: "consumer_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newRegistered(t, core.Config{}, pushProducerIDs, pushConsumerIDs)
			require.NotPanics(t, func() {
				if tc.raw != nil {
					h.recvBytes(h.c.Gen(), tc.raw(t))
				} else {
					h.recv(tc.cmd)
				}
			})
			h.each(func(producer bool, id uint64, rec *recorder) {
				assert.Empty(t, rec.pushes, "producer %v id %d", producer, id)
			})
			st := h.c.Stats()
			assert.Equal(t, tc.producers, st.UnknownProducers)
			assert.Equal(t, tc.consumers, st.UnknownConsumers)
			effs := h.effects()
			require.Equal(t, []core.EffectKind{core.EffectLog}, kinds(effs))
			assert.Equal(t, slog.LevelWarn, effs[0].Level)
			names := map[string]bool{}
			for _, a := range effs[0].Attrs {
				names[a.Key] = true
			}
			assert.True(t, names[tc.attr], "the log names the %s: %v", tc.attr, effs[0].Attrs)
			assert.Equal(t, core.StateConnected, h.c.State())
		})
	}
}

// unknownTypeFrame encodes a BaseCommand whose type number this schema
// does not know, as a newer broker might send.
func unknownTypeFrame(t *testing.T, typ int32) []byte {
	t.Helper()
	var cmd []byte
	cmd = protowire.AppendTag(cmd, 1, protowire.VarintType)
	cmd = protowire.AppendVarint(cmd, uint64(typ))
	cmd = protowire.AppendTag(cmd, protowire.Number(typ), protowire.BytesType)
	cmd = protowire.AppendBytes(cmd, []byte{0x08, 0x01})
	b := binary.BigEndian.AppendUint32(nil, uint32(4+len(cmd)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(cmd)))
	return append(b, cmd...)
}

func TestUnknownCommandType(t *testing.T) {
	t.Run("connected", func(t *testing.T) {
		h := newRegistered(t, core.Config{}, []uint64{1}, []uint64{1})
		h.recvBytes(h.c.Gen(), unknownTypeFrame(t, 200))
		assert.Equal(t, uint64(1), h.c.Stats().UnknownCommands)
		assert.Len(t, only(h.effects(), core.EffectLog), 1)
		assert.Equal(t, core.StateConnected, h.c.State())
		assert.Empty(t, h.written())
		assert.Empty(t, h.producers[1].pushes)
	})
	t.Run("handshaking", func(t *testing.T) {
		// Before CONNECTED only the handshake's commands are allowed; a
		// type we do not know cannot be one of them.
		h := newHarness(t, core.Config{})
		h.start()
		h.connUp()
		h.recvBytes(h.c.Gen(), unknownTypeFrame(t, 201))
		assert.Equal(t, core.StateDisconnected, h.c.State())
		assert.ErrorIs(t, h.c.LastError(), core.ErrProtocol)
	})
	t.Run("unexpected known commands", func(t *testing.T) {
		h := newHarness(t, core.Config{})
		h.connect()
		for i, cmd := range []*pulsarpb.BaseCommand{
			connected("again", 0),
			flowCmd(1, 1),
			lookup("t"), // a request, from the broker
			{Type: pulsarpb.BaseCommand_CONNECT.Enum(), Connect: &pulsarpb.CommandConnect{}},
		} {
			h.recv(cmd)
			assert.Equal(t, uint64(i+1), h.c.Stats().UnknownCommands, "%v", cmd.GetType())
		}
		assert.Equal(t, core.StateConnected, h.c.State())
		assert.Empty(t, h.written())
	})
}
