package pulsartest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

func TestProduceStoresMessagesAndAnswersReceipts(t *testing.T) {
	s := pulsartest.NewTCP(t)
	c := dial(t, s)
	c.handshake()

	c.send(producerCmd(1, 10, "orders", "", pulsarpb.ProducerAccessMode_Shared))
	ps := c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS).GetProducerSuccess()
	assert.Equal(t, uint64(1), ps.GetRequestId())
	assert.Regexp(t, `^pulsartest-\d+$`, ps.GetProducerName())
	assert.Equal(t, int64(-1), ps.GetLastSequenceId())
	assert.True(t, ps.GetProducerReady())

	c.send(producerCmd(2, 11, "orders", "mine", pulsarpb.ProducerAccessMode_Shared))
	assert.Equal(t, "mine", c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS).GetProducerSuccess().GetProducerName())

	var mds [][]byte
	var ledger uint64
	for seq, payload := range []string{"a", "b", "c"} {
		b, md := sendFrame(t, 10, uint64(seq), payload)
		mds = append(mds, md)
		c.raw(b)
		r := c.expect(pulsarpb.BaseCommand_SEND_RECEIPT).GetSendReceipt()
		assert.Equal(t, uint64(10), r.GetProducerId())
		assert.Equal(t, uint64(seq), r.GetSequenceId())
		assert.Equal(t, uint64(seq), r.GetMessageId().GetEntryId(), "entry ids increase per topic")
		if seq == 0 {
			ledger = r.GetMessageId().GetLedgerId()
		}
		assert.Equal(t, ledger, r.GetMessageId().GetLedgerId())
	}
	assert.Equal(t, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, s.Messages("persistent://public/default/orders"))
	stored := s.Stored("orders")
	require.Len(t, stored, 3)
	for i, m := range stored {
		assert.Equal(t, mds[i], m.Metadata, "metadata is stored exactly as sent")
		assert.Equal(t, uint64(i), m.EntryID)
	}
	require.NoError(t, s.WaitMessages(ctx(t), "orders", 3))
}

func TestSendErrors(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	c.send(producerCmd(1, 1, "t", "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)

	b, _ := sendFrame(t, 99, 5, "lost")
	c.raw(b)
	e := c.expect(pulsarpb.BaseCommand_SEND_ERROR).GetSendError()
	assert.Equal(t, uint64(99), e.GetProducerId())
	assert.Equal(t, uint64(5), e.GetSequenceId())

	b, _ = sendFrame(t, 1, 6, "corrupted")
	b[len(b)-1] ^= 0xff // the checksum no longer matches
	c.raw(b)
	e = c.expect(pulsarpb.BaseCommand_SEND_ERROR).GetSendError()
	assert.Equal(t, pulsarpb.ServerError_ChecksumError, e.GetError())
	assert.Equal(t, uint64(6), e.GetSequenceId())
	assert.Empty(t, s.Messages("t"))
}

func TestProducerAccessModes(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()

	c.send(producerCmd(1, 1, "t", "first", pulsarpb.ProducerAccessMode_Exclusive))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	c.send(producerCmd(2, 2, "t", "", pulsarpb.ProducerAccessMode_Exclusive))
	e := c.expect(pulsarpb.BaseCommand_ERROR).GetError()
	assert.Equal(t, uint64(2), e.GetRequestId())
	// As from a broker (internal/fidelity error-second-exclusive-producer).
	assert.Equal(t, pulsarpb.ServerError_ProducerFenced, e.GetError())

	// WaitForExclusive: PRODUCER is answered twice, with the same request id.
	c.send(producerCmd(3, 3, "t", "patient", pulsarpb.ProducerAccessMode_WaitForExclusive))
	ps := c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS).GetProducerSuccess()
	assert.Equal(t, uint64(3), ps.GetRequestId())
	assert.False(t, ps.GetProducerReady())

	c.send(&pulsarpb.BaseCommand{
		Type:          pulsarpb.BaseCommand_CLOSE_PRODUCER.Enum(),
		CloseProducer: &pulsarpb.CommandCloseProducer{ProducerId: proto.Uint64(1), RequestId: proto.Uint64(4)},
	})
	assert.Equal(t, uint64(4), c.expect(pulsarpb.BaseCommand_SUCCESS).GetSuccess().GetRequestId())
	ps = c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS).GetProducerSuccess()
	assert.Equal(t, uint64(3), ps.GetRequestId())
	assert.True(t, ps.GetProducerReady())
	assert.Equal(t, "patient", ps.GetProducerName())
}

func TestCloseProducerFromClient(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	c.send(producerCmd(1, 1, "t", "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	for rid := uint64(2); rid <= 3; rid++ { // the second time, it is unknown
		c.send(&pulsarpb.BaseCommand{
			Type:          pulsarpb.BaseCommand_CLOSE_PRODUCER.Enum(),
			CloseProducer: &pulsarpb.CommandCloseProducer{ProducerId: proto.Uint64(1), RequestId: proto.Uint64(rid)},
		})
		assert.Equal(t, rid, c.expect(pulsarpb.BaseCommand_SUCCESS).GetSuccess().GetRequestId())
	}
	b, _ := sendFrame(t, 1, 0, "after close")
	c.raw(b)
	c.expect(pulsarpb.BaseCommand_SEND_ERROR)
}
