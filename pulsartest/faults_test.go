package pulsartest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

func TestFailNextOnTopic(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	f := s.FailNext(pulsarpb.BaseCommand_PRODUCER, 2, pulsarpb.ServerError_ServiceNotReady, pulsartest.OnTopic("orders"))
	c := pipe(t, s)
	c.handshake()

	c.send(producerCmd(1, 1, "other", "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	for rid := uint64(2); rid <= 3; rid++ {
		c.send(producerCmd(rid, 2, "persistent://public/default/orders", "", pulsarpb.ProducerAccessMode_Shared))
		e := c.expect(pulsarpb.BaseCommand_ERROR).GetError()
		assert.Equal(t, rid, e.GetRequestId())
		assert.Equal(t, pulsarpb.ServerError_ServiceNotReady, e.GetError())
	}
	c.send(producerCmd(4, 2, "orders", "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	assert.Equal(t, 2, f.Fired())
	require.NoError(t, f.Wait(ctx(t), 2))
	assert.Contains(t, f.String(), "PRODUCER on persistent://public/default/orders")
}

func TestFailNextAnswersInTheFormOfTheCommand(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	c.send(producerCmd(1, 1, "t", "", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)

	send := s.FailNext(pulsarpb.BaseCommand_SEND, -1, pulsarpb.ServerError_PersistenceError,
		pulsartest.OnTopic("t"), pulsartest.WithErrorMessage("bookies down"))
	for seq := range uint64(2) {
		b, _ := sendFrame(t, 1, seq, "x")
		c.raw(b)
		se := c.expect(pulsarpb.BaseCommand_SEND_ERROR).GetSendError()
		assert.Equal(t, seq, se.GetSequenceId())
		assert.Equal(t, pulsarpb.ServerError_PersistenceError, se.GetError())
		assert.Equal(t, "bookies down", se.GetMessage())
	}
	send.Cancel()
	b, _ := sendFrame(t, 1, 2, "x")
	c.raw(b)
	c.expect(pulsarpb.BaseCommand_SEND_RECEIPT)
	assert.Equal(t, 2, send.Fired())

	s.FailNext(pulsarpb.BaseCommand_LOOKUP, 1, pulsarpb.ServerError_TooManyRequests)
	c.send(lookup(9, "t"))
	r := c.expect(pulsarpb.BaseCommand_LOOKUP_RESPONSE).GetLookupTopicResponse()
	assert.Equal(t, pulsarpb.CommandLookupTopicResponse_Failed, r.GetResponse())
	assert.Equal(t, pulsarpb.ServerError_TooManyRequests, r.GetError())

	s.FailNext(pulsarpb.BaseCommand_PING, 1, pulsarpb.ServerError_UnknownError, pulsartest.ThenClose())
	c.send(ping())
	assert.Equal(t, uint64(1<<64-1), c.expect(pulsarpb.BaseCommand_ERROR).GetError().GetRequestId())
	c.expectClosed()
}

func TestDropAfterFrames(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })

	// The handshake's two frames pass, then the connection is cut.
	s.DropAfterFrames(2)
	c := pipe(t, s)
	c.handshake()
	c.expectClosed()
	require.NoError(t, s.WaitConns(ctx(t), 0))

	// A frame read is handled, its answer written, then the cut.
	c = pipe(t, s)
	c.handshake()
	s.DropAfterFrames(1)
	c.send(ping())
	c.expect(pulsarpb.BaseCommand_PONG)
	c.expectClosed()

	// Cancelled: nothing happens.
	s.DropAfterFrames(5)
	s.DropAfterFrames(0)
	c = pipe(t, s)
	c.handshake()
	for range 5 {
		c.send(ping())
		c.expect(pulsarpb.BaseCommand_PONG)
	}
}

// A cut closes the whole connection: frames the client sent after the
// last one to pass, even in the same write (so read with it), are not
// handled, and nothing of them is stored.
func TestDropAfterFramesHandlesNothingAfterTheCut(t *testing.T) {
	s := pulsartest.NewTCP(t)
	c := dial(t, s)
	c.handshake()
	c.send(producerCmd(1, 10, "t", "p", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)

	// Inbound cut: the first SEND passes, the two behind it do not.
	s.DropAfterFrames(1)
	var burst []byte
	for seq := range 3 {
		b, _ := sendFrame(t, 10, uint64(seq), "m")
		burst = append(burst, b...)
	}
	c.raw(burst)
	c.expect(pulsarpb.BaseCommand_SEND_RECEIPT) // the first SEND's answer
	c.expectClosed()
	require.NoError(t, s.WaitConns(ctx(t), 0))
	assert.Len(t, s.Messages("t"), 1)
	assert.Equal(t, 1, s.Received(pulsarpb.BaseCommand_SEND), "nothing read after the cut is handled")

	// Outbound cut: the MESSAGE pushed to a consumer is the last frame;
	// a SEND the client writes afterwards is not stored.
	c = dial(t, s)
	c.handshake()
	c.send(producerCmd(1, 10, "t", "p", pulsarpb.ProducerAccessMode_Shared))
	c.expect(pulsarpb.BaseCommand_PRODUCER_SUCCESS)
	c.send(subscribeCmd(2, 1, "t", "s", exclusive, latest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 10))
	require.NoError(t, s.WaitReceived(ctx(t), pulsarpb.BaseCommand_FLOW, 1))
	s.DropAfterFrames(1)
	publish(s, "t", "pushed")
	c.expect(pulsarpb.BaseCommand_MESSAGE)
	b, _ := sendFrame(t, 10, 7, "after")
	_, _ = c.nc.Write(b) // may fail: the server may have closed already
	c.expectClosed()
	require.NoError(t, s.WaitConns(ctx(t), 0))
	assert.Len(t, s.Messages("t"), 2, "the SEND after the cut is not stored")
}

func TestCorruptNextMessageChecksum(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	publish(s, "t", "m0", "m1")
	c := pipe(t, s)
	c.handshake()
	c.send(subscribeCmd(1, 1, "t", "s", exclusive, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	s.CorruptNextMessageChecksum()
	c.send(flow(1, 2))
	f := c.next()
	require.Equal(t, pulsarpb.BaseCommand_MESSAGE, f.Command.GetType())
	assert.True(t, f.Payload.HasChecksum)
	assert.False(t, f.Payload.ChecksumOK)
	assert.Equal(t, "m0", string(f.Payload.Data), "only the checksum is wrong")
	_, payload := c.expectMessage() // the next one is intact
	assert.Equal(t, "m1", payload)
	assert.Equal(t, []byte("m0"), s.Messages("t")[0])
}

func TestSendGarbage(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake()
	assert.Equal(t, 1, s.SendGarbage())
	require.NoError(t, c.nc.SetReadDeadline(deadline()))
	body, err := c.r.NextBody()
	require.NoError(t, err)
	_, err = frame.Parse(body)
	assert.True(t, errors.Is(err, frame.ErrMalformed), "%v", err)
	recs := s.Frames()
	assert.Equal(t, pulsarpb.BaseCommand_Type(0), recs[len(recs)-1].Type)
	assert.Nil(t, recs[len(recs)-1].Command)
}

func TestSilentHandshake(t *testing.T) {
	s := pulsartest.NewServer()
	t.Cleanup(func() { _ = s.Close() })
	s.SilentHandshake(true)
	c := pipe(t, s)
	c.send(connectCmd())
	require.NoError(t, s.WaitReceived(ctx(t), pulsarpb.BaseCommand_CONNECT, 1))
	require.NotNil(t, s.LastConnect())
	s.SilentHandshake(false)
	c = pipe(t, s)
	c.handshake()
}

func TestChallengeEveryOnAFakeClock(t *testing.T) {
	clock := memory.NewClock(time.Unix(1_700_000_000, 0))
	s := pulsartest.NewServer(pulsartest.WithClock(pulsartest.ClockOf(clock)), pulsartest.WithToken("tok"))
	t.Cleanup(func() { _ = s.Close() })
	c := pipe(t, s)
	c.handshake(withToken("tok"))

	s.ChallengeEvery(time.Minute)
	for round := range 2 {
		clock.Advance(time.Minute)
		ch := c.expect(pulsarpb.BaseCommand_AUTH_CHALLENGE).GetAuthChallenge()
		assert.Equal(t, "PulsarAuthRefresh", string(ch.GetChallenge().GetAuthData()), "round %d", round)
		c.send(authResponse("token", "tok"))
		require.NoError(t, s.WaitReceived(ctx(t), pulsarpb.BaseCommand_AUTH_RESPONSE, round+1))
	}
	s.ChallengeEvery(0)
	assert.Equal(t, 0, clock.Pending())
	clock.Advance(time.Hour)
	c.send(ping())
	c.expect(pulsarpb.BaseCommand_PONG) // and no AUTH_CHALLENGE before it

	s.ChallengeEvery(time.Second)
	require.NoError(t, s.Close())
	assert.Equal(t, 0, clock.Pending(), "Close stops the schedule")
}

func TestClockStampsBrokerEntryMetadata(t *testing.T) {
	at := time.UnixMilli(1_700_000_123_456)
	s := pulsartest.NewServer(pulsartest.WithClock(pulsartest.ClockOf(memory.NewClock(at))), pulsartest.WithBrokerEntryMetadata())
	t.Cleanup(func() { _ = s.Close() })
	publish(s, "t", "m0")
	c := pipe(t, s)
	c.handshake(func(cc *pulsarpb.CommandConnect) {
		cc.FeatureFlags.SupportsBrokerEntryMetadata = proto.Bool(true)
	})
	c.send(subscribeCmd(1, 1, "t", "s", exclusive, earliest))
	c.expect(pulsarpb.BaseCommand_SUCCESS)
	c.send(flow(1, 1))
	f := c.next()
	bem, err := f.Payload.DecodeBrokerEntryMetadata()
	require.NoError(t, err)
	assert.Equal(t, uint64(at.UnixMilli()), bem.GetBrokerTimestamp())
	assert.Equal(t, at, s.Frames()[0].Time)
}
