package core_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

func TestRequestIDsIncreaseFromOne(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.connect()
	reqs := []*pulsarpb.BaseCommand{
		lookup("persistent://public/default/a"),
		partitionedMetadata("persistent://public/default/a"),
		producerCmd(1, "persistent://public/default/a"),
		subscribeCmd(1, "persistent://public/default/a", "sub"),
		getLastMessageID(1),
		ackCmd(1, 7, 3),
		unsubscribeCmd(1),
	}
	for i, cmd := range reqs {
		id, _ := h.request(cmd)
		assert.Equal(t, uint64(i+1), id)
	}
	written := h.written()
	require.Len(t, written, len(reqs))
	for i, cmd := range written {
		assert.Equal(t, reqs[i].GetType(), cmd.GetType())
		assert.Equal(t, uint64(i+1), requestID(t, cmd), "the written %v carries its id", cmd.GetType())
	}
	assert.Equal(t, len(reqs), h.c.Pending())
	assert.Equal(t, t0.Add(30*time.Second), h.c.NextDeadline(), "the first request's timeout comes with the first PING")
}

func TestRequestOfCommandWithoutRequestID(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.connect()
	for _, cmd := range []*pulsarpb.BaseCommand{
		ping(),
		flowCmd(1, 1000),
		{Type: pulsarpb.BaseCommand_SEND.Enum(), Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(1)}},
		{Type: pulsarpb.BaseCommand_LOOKUP.Enum()}, // the sub-command is missing
	} {
		w := &waiter{}
		id, err := h.c.Request(h.now, cmd, w)
		h.step()
		assert.ErrorIs(t, err, core.ErrNotRequest, "%v", cmd.GetType())
		assert.Zero(t, id)
		assert.Zero(t, w.calls, "the Waiter of a refused request is not completed")
	}
	assert.Empty(t, h.written())
	assert.Zero(t, h.c.Pending())
	id, _ := h.request(lookup("t"))
	assert.Equal(t, uint64(1), id, "refused requests use no id")
}

func TestRequestRefusedWhenNotConnected(t *testing.T) {
	errReset := errors.New("connection reset by peer")
	for _, tc := range []struct {
		name    string
		prepare func(h *harness)
		want    error
	}{
		{"before Start", func(h *harness) {}, core.ErrDisconnected},
		{"connecting", func(h *harness) { h.start() }, core.ErrDisconnected},
		{"handshaking", func(h *harness) { h.start(); h.connUp() }, core.ErrDisconnected},
		{"after a loss", func(h *harness) { h.connect(); h.connFailed(errReset) }, errReset},
		{"closing", func(h *harness) { h.connect(); h.c.BeginClose(h.now, nil); h.step() }, core.ErrClosed},
		{"closed", func(h *harness) { h.connect(); h.c.FinishClose(h.now); h.step() }, core.ErrClosed},
		{"closed before Start", func(h *harness) { h.c.FinishClose(h.now); h.step() }, core.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, core.Config{})
			tc.prepare(h)
			h.written()
			h.effects()

			w := &waiter{}
			_, err := h.c.Request(h.now, lookup("t"), w)
			h.step()
			assert.ErrorIs(t, err, tc.want)
			if tc.want != core.ErrClosed {
				assert.ErrorIs(t, err, core.ErrDisconnected)
				assert.True(t, core.IsRetryable(err))
			} else {
				assert.False(t, core.IsRetryable(err))
			}
			assert.Zero(t, w.calls, "the Waiter of a refused request is not completed")
			assert.Empty(t, h.effects())
			assert.Empty(t, h.written())
			assert.Zero(t, h.c.Pending())

			assert.ErrorIs(t, h.c.Send(h.now, flowCmd(1, 10)), tc.want)
			assert.ErrorIs(t, h.c.CheckPublish(100), tc.want)
			h.step()
			assert.Empty(t, h.written())
		})
	}
}

func TestSend(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.connect()
	require.NoError(t, h.c.Send(h.now, flowCmd(3, 1000)))
	h.step()
	f := h.writtenOne(pulsarpb.BaseCommand_FLOW).GetFlow()
	assert.Equal(t, uint64(3), f.GetConsumerId())
	assert.Equal(t, uint32(1000), f.GetMessagePermits())
	assert.Zero(t, h.c.Pending(), "a Send expects no answer")
}

func TestCheckPublish(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.start()
	h.connUp()
	h.recv(connected("s", 1<<20))
	limit := 1<<20 + 10*1024 // max message size + padding, after the total-size field
	assert.NoError(t, h.c.CheckPublish(limit+4))
	err := h.c.CheckPublish(limit + 5)
	assert.ErrorIs(t, err, core.ErrMessageTooLarge)
	assert.False(t, core.IsRetryable(err))
}

// answerCase is one request type with the answers a broker may give it.
type answerCase struct {
	name    string
	request *pulsarpb.BaseCommand
	answer  func(id uint64) *pulsarpb.BaseCommand
	// wantCode is the ServerError code the waiter sees, or -1 for none.
	wantCode pulsarpb.ServerError
}

const noError = pulsarpb.ServerError(-1)

var answerCases = []answerCase{
	{"SUCCESS", unsubscribeCmd(1), success, noError},
	{"ERROR", subscribeCmd(2, "t", "s"),
		func(id uint64) *pulsarpb.BaseCommand {
			return errorAnswer(id, pulsarpb.ServerError_ConsumerBusy, "Exclusive consumer is already connected")
		}, pulsarpb.ServerError_ConsumerBusy},
	{"PRODUCER_SUCCESS", producerCmd(1, "t"),
		func(id uint64) *pulsarpb.BaseCommand { return producerSuccess(id, "standalone-0-7", true) }, noError},
	{"LOOKUP_RESPONSE Connect", lookup("t1"),
		func(id uint64) *pulsarpb.BaseCommand { return lookupConnect(id, "pulsar://broker-3:6650") }, noError},
	{"LOOKUP_RESPONSE Redirect", lookup("t2"),
		func(id uint64) *pulsarpb.BaseCommand { return lookupRedirect(id, "pulsar://broker-4:6650") }, noError},
	{"LOOKUP_RESPONSE Failed", lookup("t3"),
		func(id uint64) *pulsarpb.BaseCommand {
			return lookupFailed(id, pulsarpb.ServerError_ServiceNotReady, "namespace bundle is being unloaded")
		}, pulsarpb.ServerError_ServiceNotReady},
	{"PARTITIONED_METADATA_RESPONSE", partitionedMetadata("t"),
		func(id uint64) *pulsarpb.BaseCommand { return partitionsAnswer(id, 16) }, noError},
	{"PARTITIONED_METADATA_RESPONSE Failed", partitionedMetadata("t4"),
		func(id uint64) *pulsarpb.BaseCommand {
			return partitionsFailed(id, pulsarpb.ServerError_TopicNotFound, "no such topic")
		}, pulsarpb.ServerError_TopicNotFound},
	{"GET_LAST_MESSAGE_ID_RESPONSE", getLastMessageID(5),
		func(id uint64) *pulsarpb.BaseCommand { return lastMessageIDAnswer(id, 12, 345) }, noError},
	{"ACK_RESPONSE", ackCmd(6, 12, 1),
		func(id uint64) *pulsarpb.BaseCommand { return ackAnswer(id, 6) }, noError},
	{"ACK_RESPONSE error", ackCmd(6, 12, 2),
		func(id uint64) *pulsarpb.BaseCommand {
			return ackFailed(id, 6, pulsarpb.ServerError_TransactionConflict, "conflict")
		}, pulsarpb.ServerError_TransactionConflict},
}

func TestEachAnswerType(t *testing.T) {
	for _, tc := range answerCases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, core.Config{})
			h.connect()
			id, w := h.request(proto.Clone(tc.request).(*pulsarpb.BaseCommand))
			answer := tc.answer(id)
			h.recv(answer)
			require.Equal(t, 1, w.calls)
			assert.True(t, proto.Equal(answer, w.result), "the waiter gets the broker's answer: %v", w.result)
			checkAnswerError(t, tc.wantCode, w.err)
			assert.Zero(t, h.c.Pending())
			assert.Equal(t, core.Stats{}, h.c.Stats())
		})
	}
}

func checkAnswerError(t *testing.T, wantCode pulsarpb.ServerError, err error) {
	t.Helper()
	if wantCode == noError {
		assert.NoError(t, err)
		return
	}
	var se *core.ServerError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, wantCode, se.Code)
	assert.NotEmpty(t, se.Message)
	assert.ErrorIs(t, err, &core.ServerError{Code: wantCode})
}

// TestAnswersCorrelatedOutOfOrder puts every request type in flight at
// once, several times over, and answers them in a shuffled order.
func TestAnswersCorrelatedOutOfOrder(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			h := newHarness(t, core.Config{})
			h.connect()
			type inflight struct {
				tc answerCase
				id uint64
				w  *waiter
			}
			var all []inflight
			for range 3 {
				for _, tc := range answerCases {
					id, w := h.request(proto.Clone(tc.request).(*pulsarpb.BaseCommand))
					all = append(all, inflight{tc, id, w})
				}
			}
			require.Len(t, h.written(), len(all))
			require.Equal(t, len(all), h.c.Pending())

			r := rand.New(rand.NewPCG(seed, 0))
			r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			for n, f := range all {
				answer := f.tc.answer(f.id)
				h.recv(answer)
				require.Equal(t, 1, f.w.calls, "%s (request %d)", f.tc.name, f.id)
				require.True(t, proto.Equal(answer, f.w.result), "%s (request %d) got %v", f.tc.name, f.id, f.w.result)
				checkAnswerError(t, f.tc.wantCode, f.w.err)
				require.Equal(t, len(all)-n-1, h.c.Pending())
				for _, g := range all[n+1:] {
					require.Zero(t, g.w.calls, "request %d completed by the answer to %d", g.id, f.id)
				}
			}
			assert.Equal(t, core.Stats{}, h.c.Stats())
		})
	}
}

// TestProducerNotReadyBoundedByOperationTimeout: a PRODUCER answered
// producer_ready=false stays pending for its second answer, and its
// operation timeout, counted from the request, bounds the whole wait for
// exclusive access (as the Java client's producer creation): it fails with
// ErrRequestTimeout, freeing its slot, and a late answer is ignored.
func TestProducerNotReadyBoundedByOperationTimeout(t *testing.T) {
	h := newHarness(t, core.Config{OperationTimeout: 30 * time.Second, KeepAliveInterval: time.Hour, MaxPending: 2})
	h.connect()
	id, w := h.request(producerCmd(1, "persistent://public/default/exclusive"))
	quick, wq := h.request(producerCmd(2, "persistent://public/default/exclusive"))

	h.advance(time.Second)
	h.recv(producerSuccess(id, "p", false))
	h.recv(producerSuccess(quick, "q", false))
	assert.Zero(t, w.calls+wq.calls, "producer_ready=false is not the final answer")
	assert.Equal(t, 2, h.c.Pending())
	assert.Equal(t, t0.Add(30*time.Second), h.c.NextDeadline(), "the timeout still runs")

	h.advance(19 * time.Second)
	final := producerSuccess(quick, "q", true)
	h.recv(final)
	require.Equal(t, 1, wq.calls, "ready within the timeout")
	assert.NoError(t, wq.err)
	assert.True(t, proto.Equal(final, wq.result))

	h.advance(10*time.Second - time.Nanosecond)
	assert.Zero(t, w.calls, "not before the operation timeout")
	h.advance(time.Nanosecond)
	require.Equal(t, 1, w.calls)
	assert.ErrorIs(t, w.err, core.ErrRequestTimeout)
	assert.Zero(t, h.c.Pending(), "its slot is free")
	require.NoError(t, h.c.Reserve(pulsarpb.BaseCommand_PRODUCER))
	require.NoError(t, h.c.Reserve(pulsarpb.BaseCommand_PRODUCER))

	h.recv(producerSuccess(id, "p", true))
	assert.Equal(t, 1, w.calls, "a late answer is ignored")
	assert.EqualValues(t, 1, h.c.Stats().UnknownRequests)
}

func TestProducerNotReadyThenError(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.connect()
	id, w := h.request(producerCmd(1, "t"))
	h.recv(producerSuccess(id, "p", false))
	h.recv(errorAnswer(id, pulsarpb.ServerError_ProducerFenced, "fenced"))
	require.Equal(t, 1, w.calls)
	assert.ErrorIs(t, w.err, &core.ServerError{Code: pulsarpb.ServerError_ProducerFenced})
}

// A "not ready" PRODUCER_SUCCESS keeps a PRODUCER pending, and a PRODUCER
// only: answering any other request (a broker bug) it completes that
// request. Found by the simulation (seed 1 in testdata/sim/regressions.txt),
// when a "not ready" answer stopped the operation timeout.
func TestProducerNotReadyAnsweringOtherRequestCompletesIt(t *testing.T) {
	h := newHarness(t, core.Config{OperationTimeout: 30 * time.Second, KeepAliveInterval: time.Hour})
	h.connect()
	id, w := h.request(lookup("t"))
	answer := producerSuccess(id, "p", false)
	h.recv(answer)
	require.Equal(t, 1, w.calls, "the lookup is completed by the answer, whatever its type")
	assert.NoError(t, w.err)
	assert.True(t, proto.Equal(answer, w.result))
	assert.Zero(t, h.c.Pending())
}

func TestRequestTimeout(t *testing.T) {
	h := newHarness(t, core.Config{OperationTimeout: 30 * time.Second, KeepAliveInterval: time.Hour})
	h.connect()
	id1, w1 := h.request(lookup("a"))
	h.advance(10 * time.Second)
	id2, w2 := h.request(lookup("b"))
	require.Equal(t, 2, h.c.Pending())
	assert.Equal(t, t0.Add(30*time.Second), h.c.NextDeadline())

	h.advanceTo(t0.Add(30*time.Second - time.Nanosecond))
	require.Zero(t, w1.calls)
	h.advance(time.Nanosecond)
	require.Equal(t, 1, w1.calls)
	assert.ErrorIs(t, w1.err, core.ErrRequestTimeout)
	assert.True(t, core.IsRetryable(w1.err))
	assert.Nil(t, w1.result)
	assert.Equal(t, 1, h.c.Pending(), "the timed-out request is forgotten")
	assert.Zero(t, w2.calls)
	assert.Equal(t, t0.Add(40*time.Second), h.c.NextDeadline(), "the second request has its own deadline")

	h.advanceTo(t0.Add(40 * time.Second))
	require.Equal(t, 1, w2.calls)
	assert.ErrorIs(t, w2.err, core.ErrRequestTimeout)
	assert.Zero(t, h.c.Pending())

	h.advance(time.Hour - 41*time.Second)
	assert.Equal(t, 1, w1.calls, "completed exactly once")
	assert.Equal(t, 1, w2.calls, "completed exactly once")

	// The broker answers at last: nobody is waiting any more.
	h.recv(lookupConnect(id1, "pulsar://late:6650"))
	h.recv(errorAnswer(id2, pulsarpb.ServerError_UnknownError, "late"))
	assert.Equal(t, 1, w1.calls)
	assert.Equal(t, 1, w2.calls)
	assert.ErrorIs(t, w1.err, core.ErrRequestTimeout)
	assert.Equal(t, uint64(2), h.c.Stats().UnknownRequests)
	logs := only(h.effects(), core.EffectLog)
	require.NotEmpty(t, logs, "unknown answers are logged")
	assert.Equal(t, core.StateConnected, h.c.State(), "a late answer is no reason to drop the connection")
}

func TestCancel(t *testing.T) {
	h := newHarness(t, core.Config{OperationTimeout: 30 * time.Second, KeepAliveInterval: time.Hour})
	h.connect()
	id1, w1 := h.request(lookup("a"))
	h.advance(5 * time.Second)
	_, w2 := h.request(lookup("b"))

	assert.True(t, h.c.Cancel(id1))
	h.step()
	assert.Equal(t, 1, h.c.Pending())
	assert.False(t, h.c.Cancel(id1), "already forgotten")
	assert.False(t, h.c.Cancel(999))
	assert.Empty(t, only(h.effects(), core.EffectComplete), "Cancel completes nothing")
	assert.Equal(t, t0.Add(35*time.Second), h.c.NextDeadline(), "the cancelled request's deadline is gone")

	h.advance(time.Minute)
	assert.Zero(t, w1.calls, "a cancelled request does not time out")
	assert.Equal(t, 1, w2.calls)
	assert.ErrorIs(t, w2.err, core.ErrRequestTimeout)

	h.recv(lookupConnect(id1, "pulsar://x:6650"))
	assert.Zero(t, w1.calls, "nor is it completed by its answer")
	assert.Equal(t, uint64(1), h.c.Stats().UnknownRequests)
}

func TestAnswerWithoutRequestIDIsUnknown(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.connect()
	_, w := h.request(unsubscribeCmd(1))
	h.recv(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_SUCCESS.Enum()}) // no sub-command
	h.recv(&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_ACK_RESPONSE.Enum(),
		AckResponse: &pulsarpb.CommandAckResponse{ConsumerId: proto.Uint64(1)}}) // no request id
	assert.Zero(t, w.calls)
	assert.Equal(t, uint64(2), h.c.Stats().UnknownRequests)
	assert.Equal(t, 1, h.c.Pending())
}

func TestOtherAnswerTypes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		request  *pulsarpb.BaseCommand
		answer   func(id uint64) *pulsarpb.BaseCommand
		wantCode pulsarpb.ServerError
	}{
		{"GET_TOPICS_OF_NAMESPACE_RESPONSE",
			&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE.Enum(),
				GetTopicsOfNamespace: &pulsarpb.CommandGetTopicsOfNamespace{Namespace: proto.String("public/default")}},
			func(id uint64) *pulsarpb.BaseCommand {
				return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE_RESPONSE.Enum(),
					GetTopicsOfNamespaceResponse: &pulsarpb.CommandGetTopicsOfNamespaceResponse{
						RequestId: proto.Uint64(id), Topics: []string{"persistent://public/default/a"}}}
			}, noError},
		{"GET_SCHEMA_RESPONSE error",
			&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_SCHEMA.Enum(),
				GetSchema: &pulsarpb.CommandGetSchema{Topic: proto.String("t")}},
			func(id uint64) *pulsarpb.BaseCommand {
				return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_SCHEMA_RESPONSE.Enum(),
					GetSchemaResponse: &pulsarpb.CommandGetSchemaResponse{
						RequestId: proto.Uint64(id), ErrorCode: pulsarpb.ServerError_TopicNotFound.Enum(),
						ErrorMessage: proto.String("no schema")}}
			}, pulsarpb.ServerError_TopicNotFound},
		{"GET_OR_CREATE_SCHEMA_RESPONSE",
			&pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA.Enum(),
				GetOrCreateSchema: &pulsarpb.CommandGetOrCreateSchema{Topic: proto.String("t")}},
			func(id uint64) *pulsarpb.BaseCommand {
				return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA_RESPONSE.Enum(),
					GetOrCreateSchemaResponse: &pulsarpb.CommandGetOrCreateSchemaResponse{
						RequestId: proto.Uint64(id), SchemaVersion: []byte{0, 1}}}
			}, noError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, core.Config{})
			h.connect()
			id, w := h.request(tc.request)
			h.recv(tc.answer(id))
			require.Equal(t, 1, w.calls)
			checkAnswerError(t, tc.wantCode, w.err)
		})
	}
}

// TestManyRequestsFoundAfterTheFrontMoves: pending requests are found by
// id, answered, timed out and cancelled correctly while the answered
// front of the requests sent is dropped and the rest moved down.
func TestManyRequestsFoundAfterTheFrontMoves(t *testing.T) {
	const n = 300
	h := newHarness(t, core.Config{OperationTimeout: 30 * time.Second, KeepAliveInterval: time.Hour})
	h.connect()
	ws := make([]*waiter, n+1) // by request id
	for i := 1; i <= n; i++ {
		id, w := h.request(lookup(fmt.Sprint("t", i)))
		require.Equal(t, uint64(i), id)
		ws[i] = w
		h.advance(time.Millisecond)
	}
	start := t0 // request i was sent at start + (i-1) ms
	answer := func(id int) {
		t.Helper()
		h.recv(lookupConnect(uint64(id), fmt.Sprintf("pulsar://b%d:6650", id)))
		require.Equal(t, 1, ws[id].calls, "request %d", id)
		require.NoError(t, ws[id].err)
		require.Equal(t, fmt.Sprintf("pulsar://b%d:6650", id), ws[id].result.GetLookupTopicResponse().GetBrokerServiceUrl())
	}
	for id := 1; id <= n/2; id++ {
		answer(id)
	}
	for id := n; id > 3*n/4; id-- {
		answer(id)
	}
	for id := n/2 + 1; id <= 3*n/4; id++ {
		require.Zero(t, ws[id].calls, "request %d", id)
	}
	require.Equal(t, n/4, h.c.Pending())

	h.recv(lookupConnect(5, "pulsar://late:6650"))
	assert.Equal(t, 1, ws[5].calls, "an answered request is not completed again")
	assert.Equal(t, uint64(1), h.c.Stats().UnknownRequests)

	first := n/2 + 1
	deadline := start.Add(time.Duration(first-1)*time.Millisecond + 30*time.Second)
	require.Equal(t, deadline, h.c.NextDeadline(), "the oldest pending request's deadline is next")
	h.advanceTo(deadline)
	require.Equal(t, 1, ws[first].calls)
	assert.ErrorIs(t, ws[first].err, core.ErrRequestTimeout)
	assert.Equal(t, deadline.Add(time.Millisecond), h.c.NextDeadline())

	assert.True(t, h.c.Cancel(200))
	assert.False(t, h.c.Cancel(5), "answered long ago")
	assert.False(t, h.c.Cancel(n+1), "never sent")
	h.advance(time.Minute)
	for id := first + 1; id <= 3*n/4; id++ {
		want := 1
		if id == 200 {
			want = 0
		}
		require.Equal(t, want, ws[id].calls, "request %d", id)
	}
	assert.Zero(t, h.c.Pending())
	id, _ := h.request(lookup("after"))
	assert.Equal(t, uint64(n+1), id)
	assert.Equal(t, 1, h.c.Pending())
}

// TestRequestPartitions: RequestPartitions writes the frame Request
// writes for the same PARTITIONED_METADATA command, and its request is
// tracked as any other: answered, timed out, refused when not connected
// or when every slot is taken, with ids shared with Request's.
func TestRequestPartitions(t *testing.T) {
	h := newHarness(t, core.Config{OperationTimeout: 30 * time.Second, KeepAliveInterval: time.Hour, MaxPending: 3})
	w := &waiter{}
	_, err := h.c.RequestPartitions(h.now, "a", w)
	assert.ErrorIs(t, err, core.ErrDisconnected)
	h.connect()
	h.take()

	id1, w1 := h.request(partitionedMetadata("a"))
	want := h.take()
	id2, err := h.c.RequestPartitions(h.now, "a", w)
	h.step()
	require.NoError(t, err)
	assert.Equal(t, id1+1, id2)
	wantFrame, err := frame.AppendCommand(nil, withID(t, want, id2))
	require.NoError(t, err)
	assert.Equal(t, wantFrame, h.take(), "the bytes Request writes")
	h.advance(10 * time.Second)
	w3 := &waiter{}
	id3, err := h.c.RequestPartitions(h.now, "b", w3)
	h.step()
	require.NoError(t, err)
	assert.Equal(t, 3, h.c.Pending())
	_, err = h.c.RequestPartitions(h.now, "c", &waiter{})
	assert.ErrorIs(t, err, core.ErrTooManyPending)

	h.recv(partitionsAnswer(id2, 4))
	require.Equal(t, 1, w.calls)
	require.NoError(t, w.err)
	assert.Equal(t, uint32(4), w.result.GetPartitionMetadataResponse().GetPartitions())
	h.recv(partitionsAnswer(id1, 1))
	assert.Equal(t, 1, w1.calls)
	h.advanceTo(t0.Add(40 * time.Second))
	require.Equal(t, 1, w3.calls)
	assert.ErrorIs(t, w3.err, core.ErrRequestTimeout, "request %d has its own deadline", id3)
	assert.Zero(t, h.c.Pending())
}

// withID decodes b, one frame, and sets its request id to id.
func withID(t *testing.T, b []byte, id uint64) *pulsarpb.BaseCommand {
	cmds := decodeAll(t, b)
	require.Len(t, cmds, 1)
	require.True(t, frame.SetRequestID(cmds[0], id))
	return cmds[0]
}

// TestOutputAlone: requests sent leave their frames as all there is to
// carry out (a driver may then queue them and AdvanceOutput without
// Ready); an answer's completion or a PING's PONG is more, and a request
// refused leaves nothing.
func TestOutputAlone(t *testing.T) {
	h := newHarness(t, core.Config{MaxPending: 2})
	h.connect()
	_, alone := h.c.OutputAlone()
	require.True(t, alone, "carried out by the harness")

	w1, w2 := &waiter{}, &waiter{}
	id1, err := h.c.RequestPartitions(h.now, "a", w1)
	require.NoError(t, err)
	_, err = h.c.Request(h.now, lookup("b"), w2)
	require.NoError(t, err)
	out, alone := h.c.OutputAlone()
	assert.True(t, alone)
	assert.Len(t, decodeAll(t, out), 2, "both requests' frames")
	h.c.AdvanceOutput()
	out, alone = h.c.OutputAlone()
	assert.True(t, alone)
	assert.Empty(t, out)
	_, err = h.c.RequestPartitions(h.now, "c", &waiter{})
	require.ErrorIs(t, err, core.ErrTooManyPending)
	out, _ = h.c.OutputAlone()
	assert.Empty(t, out, "a refused request writes nothing")

	f, err := frame.NewReader(bytes.NewReader(mustFrame(t, partitionsAnswer(id1, 3))), 0).Next()
	require.NoError(t, err)
	h.c.HandleFrame(h.now, h.c.Gen(), f)
	_, alone = h.c.OutputAlone()
	assert.False(t, alone, "a completion to carry out")
	h.step()
	assert.Equal(t, 1, w1.calls)

	f, err = frame.NewReader(bytes.NewReader(mustFrame(t, ping())), 0).Next()
	require.NoError(t, err)
	h.c.HandleFrame(h.now, h.c.Gen(), f)
	_, alone = h.c.OutputAlone()
	assert.False(t, alone, "a PONG to write")
	h.step()
}

func mustFrame(t *testing.T, cmd *pulsarpb.BaseCommand) []byte {
	t.Helper()
	b, err := frame.AppendCommand(nil, cmd)
	require.NoError(t, err)
	return b
}
