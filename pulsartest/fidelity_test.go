package pulsartest_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// Behaviours the official Go client depends on (see interop/), checked
// here with the tiny client.

func jsonSchema(def string) *pulsarpb.Schema {
	return &pulsarpb.Schema{Name: proto.String("r"), Type: pulsarpb.Schema_Json.Enum(), SchemaData: []byte(def)}
}

func version(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func TestSchemaRegistry(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()

	// A producer's schema is registered; PRODUCER_SUCCESS carries its
	// version, numbered from 0 as an 8-byte big-endian long.
	p := producerCmd(1, 1, "t", "", pulsarpb.ProducerAccessMode_Shared)
	p.GetProducer().Schema = jsonSchema(`{"a":1}`)
	c.send(p)
	assert.Equal(t, version(0), c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS).GetProducerSuccess().GetSchemaVersion())

	// The same schema again, from a partition of the topic, has the same
	// version; a new one gets the next.
	getOrCreate := func(rid uint64, topic string, sc *pulsarpb.Schema) *pulsarpb.CommandGetOrCreateSchemaResponse {
		c.send(&pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA.Enum(),
			GetOrCreateSchema: &pulsarpb.CommandGetOrCreateSchema{
				RequestId: proto.Uint64(rid), Topic: proto.String(topic), Schema: sc,
			},
		})
		r := c.expect(pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA_RESPONSE).GetGetOrCreateSchemaResponse()
		assert.Equal(t, rid, r.GetRequestId())
		return r
	}
	assert.Equal(t, version(0), getOrCreate(2, "t", jsonSchema(`{"a":1}`)).GetSchemaVersion())
	str := &pulsarpb.Schema{Name: proto.String("s"), Type: pulsarpb.Schema_String.Enum()}
	assert.Equal(t, version(1), getOrCreate(3, "persistent://public/default/t", str).GetSchemaVersion())

	// GET_SCHEMA answers a version, or the latest, or TopicNotFound.
	getSchema := func(rid uint64, topic string, v []byte) *pulsarpb.CommandGetSchemaResponse {
		c.send(&pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_GET_SCHEMA.Enum(),
			GetSchema: &pulsarpb.CommandGetSchema{
				RequestId: proto.Uint64(rid), Topic: proto.String(topic), SchemaVersion: v,
			},
		})
		r := c.expect(pulsarpb.BaseCommand_GET_SCHEMA_RESPONSE).GetGetSchemaResponse()
		assert.Equal(t, rid, r.GetRequestId())
		return r
	}
	r := getSchema(4, "t", version(0))
	assert.Equal(t, pulsarpb.Schema_Json, r.GetSchema().GetType())
	assert.Equal(t, `{"a":1}`, string(r.GetSchema().GetSchemaData()))
	r = getSchema(5, "t", nil)
	assert.Equal(t, pulsarpb.Schema_String, r.GetSchema().GetType())
	assert.Equal(t, version(1), r.GetSchemaVersion())
	r = getSchema(6, "t", version(7))
	assert.Equal(t, pulsarpb.ServerError_TopicNotFound, r.GetErrorCode())
	r = getSchema(7, "other", nil)
	assert.Equal(t, pulsarpb.ServerError_TopicNotFound, r.GetErrorCode())
}

func TestBatchIndexAck(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	md, err := proto.Marshal(&pulsarpb.MessageMetadata{
		ProducerName: proto.String("p"), SequenceId: proto.Uint64(0), PublishTime: proto.Uint64(1),
		NumMessagesInBatch: proto.Int32(4),
	})
	require.NoError(t, err)
	s.Publish("t", md, []byte("batch-of-4"))

	subscribeAndFlow := func(c *client) *pulsarpb.CommandMessage {
		c.send(subscribeCmd(1, 1, "t", "sub", exclusive, earliest))
		c.expect(pulsarpb.BaseCommand_SUCCESS)
		c.send(flow(1, 10))
		m, _ := c.expectMessage()
		return m
	}
	ackSet := func(rid uint64, c *client, bits int64) {
		a := ackCmd(1, pulsarpb.CommandAck_Individual, proto.Uint64(rid), 0)
		a.GetAck().GetMessageId()[0].AckSet = []int64{bits}
		c.send(a)
		c.expect(pulsarpb.BaseCommand_ACK_RESPONSE)
	}

	c := pipe(t, s)
	c.handshake()
	assert.Empty(t, subscribeAndFlow(c).GetAckSet(), "nothing acknowledged yet")
	// Messages 0 and 2 acknowledged (ack_set bits: 1 = not acknowledged).
	ackSet(2, c, 0b1010)
	// And message 3: the sets intersect.
	ackSet(3, c, 0b0111)
	backlog, _ := s.Backlog("t", "sub")
	assert.Equal(t, 1, backlog, "a batch partly acknowledged is still in the backlog")
	require.NoError(t, c.nc.Close())
	require.NoError(t, s.WaitConns(ctx(t), 0))

	// Delivered again, the batch carries what is left: message 1.
	c = pipe(t, s)
	c.handshake()
	assert.Equal(t, []int64{0b0010}, subscribeAndFlow(c).GetAckSet())
	ackSet(2, c, 0)
	backlog, _ = s.Backlog("t", "sub")
	assert.Equal(t, 0, backlog)
}

func TestKeySharedKeepsKeysTogether(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	for id := uint64(1); id <= 2; id++ {
		c.send(subscribeCmd(id, id, "t", "sub", pulsarpb.CommandSubscribe_Key_Shared, earliest))
		c.expect(pulsarpb.BaseCommand_SUCCESS)
		c.send(flow(id, 100))
	}
	keys := []string{"a", "b", "c", "d", "e"}
	for round := range 4 {
		for i, k := range keys {
			md, err := proto.Marshal(&pulsarpb.MessageMetadata{
				ProducerName: proto.String("p"), SequenceId: proto.Uint64(uint64(round*len(keys) + i)),
				PublishTime: proto.Uint64(1), PartitionKey: proto.String(k),
			})
			require.NoError(t, err)
			s.Publish("t", md, []byte(k))
		}
	}
	owner := map[string]uint64{}
	consumers := map[uint64]bool{}
	for range 4 * len(keys) {
		m, key := c.expectMessage()
		if o, ok := owner[key]; ok {
			assert.Equal(t, o, m.GetConsumerId(), "key %q went to two consumers", key)
		}
		owner[key] = m.GetConsumerId()
		consumers[m.GetConsumerId()] = true
	}
	assert.Len(t, consumers, 2, "both consumers get keys")
}

func TestSendForProducerClosedByServerIsIgnored(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	c.send(producerCmd(1, 7, "t", "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	require.True(t, s.CloseProducer(7, "", ""))
	c.expect(pulsarpb.BaseCommand_CLOSE_PRODUCER)

	// A SEND already on its way is ignored, and the connection stays.
	b, _ := sendFrame(t, 7, 0, "in flight")
	c.raw(b)
	c.send(ping())
	c.expect(pulsarpb.BaseCommand_PONG)
	assert.Empty(t, s.Messages("t"))

	// Back again, the producer's SENDs are stored.
	c.send(producerCmd(2, 7, "t", "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	c.raw(b)
	assert.Equal(t, uint64(0), c.expect(pulsarpb.BaseCommand_SEND_RECEIPT).GetSendReceipt().GetSequenceId())
	assert.Equal(t, [][]byte{[]byte("in flight")}, s.Messages("t"))

	// A producer id never seen still gets SEND_ERROR.
	b, _ = sendFrame(t, 8, 0, "astray")
	c.raw(b)
	c.expect(pulsarpb.BaseCommand_SEND_ERROR)
}
