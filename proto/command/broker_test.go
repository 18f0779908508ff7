package command_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/internal/testenv"
	"github.com/pulsarconn/pulsarconn/proto/command"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// TestWithBroker sends every producer and consumer builder's command
// through a Broker to pulsartest and checks the fake broker's answers and
// what it recorded: the commands are complete enough for a broker.
func TestWithBroker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const topic = "persistent://public/default/builders"
		e := testenv.Memory(t)
		ctx := testenv.Context(t)
		b, err := pulsarconn.Start(e.URL, pulsarconn.WithTransport(e.Network))
		require.NoError(t, err)
		defer b.Stop(context.Background())

		// A producer publishes two messages.
		pid := b.NewProducerID()
		receipts := make(chan *pulsarpb.CommandSendReceipt, 2)
		preg, err := b.RegisterProducer(ctx, pid, pulsarconn.HandlerFunc(func(p pulsarconn.Push) {
			if p.Kind == pulsarconn.PushReceipt {
				receipts <- p.Command.GetSendReceipt()
			}
		}))
		require.NoError(t, err)
		defer preg.Close(context.Background())
		resp, err := b.Request(ctx, command.Producer(topic, pid, command.ProducerOptions{Name: "builder"}))
		require.NoError(t, err)
		require.Equal(t, "builder", resp.GetProducerSuccess().GetProducerName())
		var sent []command.MessageID
		for seq, text := range []string{"m0", "m1"} {
			msg, err := frame.AppendMessage(nil, command.Send(pid, uint64(seq)),
				&pulsarpb.MessageMetadata{ProducerName: proto.String("builder"), SequenceId: proto.Uint64(uint64(seq)),
					PublishTime: proto.Uint64(uint64(time.Now().UnixMilli()))},
				[]byte(text))
			require.NoError(t, err)
			require.NoError(t, b.PublishMessage(ctx, msg))
			r := <-receipts
			require.Equal(t, uint64(seq), r.GetSequenceId())
			sent = append(sent, command.FromData(r.GetMessageId()))
		}
		require.Len(t, e.Server.Stored(topic), 2)

		// A consumer subscribes from the earliest message and gets both.
		cid := b.NewConsumerID()
		pushes := make(chan pulsarconn.Push, 8)
		creg, err := b.RegisterConsumer(ctx, cid, pulsarconn.HandlerFunc(func(p pulsarconn.Push) { pushes <- p }))
		require.NoError(t, err)
		defer creg.Close(context.Background())
		subscribe := command.Subscribe(topic, "sub", cid, pulsarpb.CommandSubscribe_Exclusive,
			command.SubscribeOptions{InitialPosition: pulsarpb.CommandSubscribe_Earliest, ConsumerName: "c"})
		_, err = b.Request(ctx, subscribe)
		require.NoError(t, err)
		receive := func() (command.MessageID, string) {
			t.Helper()
			p := <-pushes
			require.Equal(t, pulsarconn.PushMessage, p.Kind, "push %v: %v", p.Kind, p.Err)
			return command.FromData(p.Command.GetMessage().GetMessageId()), string(p.Payload.Data)
		}
		require.NoError(t, b.Send(ctx, command.Flow(cid, 10)))
		for i, want := range []string{"m0", "m1"} {
			id, text := receive()
			assert.Equal(t, want, text)
			assert.Equal(t, sent[i], id)
		}

		// Ack and redelivery requests reach the broker as sent.
		require.NoError(t, b.Send(ctx, command.Ack(cid, sent[0])))
		require.NoError(t, b.Send(ctx, command.Redeliver(cid, sent[1])))
		synctest.Wait()
		acks := e.Server.Acks(topic, "sub")
		require.Len(t, acks, 1)
		assert.Equal(t, pulsarpb.CommandAck_Individual, acks[0].Type)
		require.Len(t, acks[0].MessageIDs, 1)
		assert.Equal(t, sent[0].Entry, acks[0].MessageIDs[0].GetEntryId())
		redeliveries := e.Server.Redeliveries(topic, "sub")
		require.Len(t, redeliveries, 1)
		require.Len(t, redeliveries[0].MessageIDs, 1)
		assert.Equal(t, sent[1].Entry, redeliveries[0].MessageIDs[0].GetEntryId())
		_, text := receive() // the redelivery
		assert.Equal(t, "m1", text)

		// Sent with Request, an ACK asks for an ACK_RESPONSE.
		resp, err = b.Request(ctx, command.AckCumulative(cid, sent[1]))
		require.NoError(t, err)
		assert.Equal(t, pulsarpb.BaseCommand_ACK_RESPONSE, resp.GetType())

		resp, err = b.Request(ctx, command.GetLastMessageID(cid))
		require.NoError(t, err)
		last := resp.GetGetLastMessageIdResponse()
		assert.Equal(t, sent[1].Entry, command.FromData(last.GetLastMessageId()).Entry)
		assert.Equal(t, sent[1].Entry, last.GetConsumerMarkDeletePosition().GetEntryId(), "the cumulative ack moved the cursor")

		// A seek disconnects the consumer (CLOSE_CONSUMER, as a broker
		// does); subscribed again, it reads from the position sought.
		for _, seek := range []*pulsarpb.BaseCommand{command.SeekMessageID(cid, sent[0]), command.SeekTime(cid, time.Unix(0, 0))} {
			_, err = b.Request(ctx, seek)
			require.NoError(t, err)
			require.Equal(t, pulsarconn.PushClosed, (<-pushes).Kind)
			_, err = b.Request(ctx, subscribe)
			require.NoError(t, err)
			require.NoError(t, b.Send(ctx, command.Flow(cid, 1)))
			_, text = receive()
			assert.Equal(t, "m0", text)
		}

		_, err = b.Request(ctx, command.CloseProducer(pid))
		require.NoError(t, err)
		_, err = b.Request(ctx, command.CloseConsumer(cid))
		require.NoError(t, err)
		_, ok := e.Server.Subscription(topic, "sub")
		assert.True(t, ok, "CLOSE_CONSUMER keeps the subscription")

		// A second consumer deletes the subscription.
		_, err = b.Request(ctx, subscribe)
		require.NoError(t, err)
		_, err = b.Request(ctx, command.Unsubscribe(cid))
		require.NoError(t, err)
		_, ok = e.Server.Subscription(topic, "sub")
		assert.False(t, ok, "UNSUBSCRIBE deletes the subscription")
	})
}

// TestLookupAndSchemaWithBroker sends the lookup, metadata, namespace and
// schema builders' commands to pulsartest.
func TestLookupAndSchemaWithBroker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const topic = "persistent://public/default/schemas"
		e := testenv.Memory(t)
		e.Server.SetPartitions("persistent://public/default/parted", 3)
		ctx := testenv.Context(t)
		b, err := pulsarconn.Start(e.URL, pulsarconn.WithTransport(e.Network))
		require.NoError(t, err)
		defer b.Stop(context.Background())

		resp, err := b.Request(ctx, command.Lookup(topic))
		require.NoError(t, err)
		assert.Equal(t, e.URL, resp.GetLookupTopicResponse().GetBrokerServiceUrl())
		resp, err = b.Request(ctx, command.PartitionedMetadata("persistent://public/default/parted"))
		require.NoError(t, err)
		assert.Equal(t, uint32(3), resp.GetPartitionMetadataResponse().GetPartitions())

		schema := command.Schema(pulsarpb.Schema_String, "text", nil, nil)
		resp, err = b.Request(ctx, command.GetOrCreateSchema(topic, schema))
		require.NoError(t, err)
		version := resp.GetGetOrCreateSchemaResponse().GetSchemaVersion()
		resp, err = b.Request(ctx, command.GetSchema(topic, version))
		require.NoError(t, err)
		assert.Equal(t, pulsarpb.Schema_String, resp.GetGetSchemaResponse().GetSchema().GetType())

		resp, err = b.Request(ctx, command.TopicsOfNamespace("public/default"))
		require.NoError(t, err)
		assert.Contains(t, resp.GetGetTopicsOfNamespaceResponse().GetTopics(), "persistent://public/default/parted-partition-0")
	})
}
