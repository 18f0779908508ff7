package core_test

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

func TestRegistrationDuplicateID(t *testing.T) {
	h := newHarness(t, core.Config{})
	first := &recorder{}
	require.NoError(t, h.c.AddProducer(7, first))
	err := h.c.AddProducer(7, &recorder{})
	assert.ErrorIs(t, err, core.ErrDuplicateID)
	assert.NoError(t, h.c.AddConsumer(7, &recorder{}), "consumer ids are another space")
	assert.ErrorIs(t, h.c.AddConsumer(7, &recorder{}), core.ErrDuplicateID)

	h.connect()
	h.recv(sendReceipt(7, 1))
	assert.Len(t, first.pushes, 1, "the first registration stays")
}

func TestRegistrationsSorted(t *testing.T) {
	h := newHarness(t, core.Config{})
	for _, id := range []uint64{42, 3, 1 << 50, 17, 0, 8} {
		require.NoError(t, h.c.AddProducer(id, &recorder{}))
	}
	for _, id := range []uint64{9, 2, 100} {
		require.NoError(t, h.c.AddConsumer(id, &recorder{}))
	}
	assert.Equal(t, []uint64{0, 3, 8, 17, 42, 1 << 50}, h.c.Producers())
	assert.Equal(t, []uint64{2, 9, 100}, h.c.Consumers())
	assert.Empty(t, core.New(core.Config{}).Producers())
}

func TestRemoveWhenConnected(t *testing.T) {
	for _, tc := range []struct {
		name     string
		producer bool
		typ      pulsarpb.BaseCommand_Type
	}{
		{"producer", true, pulsarpb.BaseCommand_CLOSE_PRODUCER},
		{"consumer", false, pulsarpb.BaseCommand_CLOSE_CONSUMER},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newRegistered(t, core.Config{}, []uint64{4, 5}, []uint64{4, 5})
			_, earlier := h.request(lookup("t")) // takes request id 1
			h.written()

			remove := h.c.RemoveConsumer
			if tc.producer {
				remove = h.c.RemoveProducer
			}
			w := &waiter{}
			require.True(t, remove(h.now, 4, w))
			h.step()

			cmd := h.writtenOne(tc.typ)
			if tc.producer {
				assert.Equal(t, uint64(4), cmd.GetCloseProducer().GetProducerId())
				assert.Equal(t, []uint64{5}, h.c.Producers())
				assert.Equal(t, []uint64{4, 5}, h.c.Consumers())
			} else {
				assert.Equal(t, uint64(4), cmd.GetCloseConsumer().GetConsumerId())
				assert.Equal(t, []uint64{4, 5}, h.c.Producers())
				assert.Equal(t, []uint64{5}, h.c.Consumers())
			}
			id := requestID(t, cmd)
			assert.Equal(t, uint64(2), id, "CLOSE_* is a request like any other")
			assert.Equal(t, 2, h.c.Pending())
			assert.Zero(t, w.calls)

			h.recv(success(id))
			require.Equal(t, 1, w.calls)
			assert.NoError(t, w.err)
			assert.Equal(t, pulsarpb.BaseCommand_SUCCESS, w.result.GetType())
			assert.Zero(t, earlier.calls)

			// The removed registration gets nothing more, not even the
			// news of a loss.
			removed := h.consumers[4]
			if tc.producer {
				removed = h.producers[4]
			}
			if tc.producer {
				h.recv(sendReceipt(4, 1))
				assert.Equal(t, uint64(1), h.c.Stats().UnknownProducers)
			} else {
				h.recv(reachedEndOfTopic(4))
				assert.Equal(t, uint64(1), h.c.Stats().UnknownConsumers)
			}
			h.connFailed(io.EOF)
			assert.Empty(t, removed.pushes)
			assert.Len(t, h.producers[5].pushes, 1)

			assert.False(t, remove(h.now, 4, nil), "already removed")
		})
	}
}

func TestRemoveWhenConnectedErrorAnswer(t *testing.T) {
	h := newRegistered(t, core.Config{}, []uint64{1}, nil)
	w := &waiter{}
	require.True(t, h.c.RemoveProducer(h.now, 1, w))
	h.step()
	id := requestID(t, h.writtenOne(pulsarpb.BaseCommand_CLOSE_PRODUCER))
	h.recv(errorAnswer(id, pulsarpb.ServerError_UnknownError, "no such producer"))
	require.Equal(t, 1, w.calls)
	assert.ErrorIs(t, w.err, core.ErrUnknownServerError)
}

func TestRemoveWithNilWaiter(t *testing.T) {
	h := newRegistered(t, core.Config{}, nil, []uint64{1})
	require.True(t, h.c.RemoveConsumer(h.now, 1, nil))
	h.step()
	id := requestID(t, h.writtenOne(pulsarpb.BaseCommand_CLOSE_CONSUMER))
	require.NotPanics(t, func() { h.recv(success(id)) })
	assert.Zero(t, h.c.Pending())
	assert.Zero(t, h.c.Stats().UnknownRequests, "the answer was expected, though nobody waits for it")
}

func TestRemoveWhenDisconnected(t *testing.T) {
	h := newHarness(t, core.Config{})
	p, c := &recorder{}, &recorder{}
	require.NoError(t, h.c.AddProducer(1, p))
	require.NoError(t, h.c.AddConsumer(1, c))
	h.connect()
	h.connFailed(io.EOF)
	p.take()
	c.take()
	h.written()
	h.effects()

	w := &waiter{}
	assert.False(t, h.c.RemoveProducer(h.now, 1, w), "nothing is sent while disconnected")
	assert.False(t, h.c.RemoveConsumer(h.now, 1, w))
	h.step()
	assert.Empty(t, h.written())
	assert.Empty(t, h.effects())
	assert.Zero(t, w.calls, "the waiter is not used")
	assert.Empty(t, h.c.Producers())
	assert.Empty(t, h.c.Consumers())

	h.redial()
	h.handshake()
	h.connFailed(io.EOF)
	assert.Empty(t, p.pushes, "removed registrations are not told")
	assert.Empty(t, c.pushes)

	assert.False(t, h.c.RemoveProducer(h.now, 99, w), "unknown id")
}

func TestRemoveUnknownWhenConnected(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.connect()
	assert.False(t, h.c.RemoveProducer(h.now, 3, &waiter{}))
	assert.False(t, h.c.RemoveConsumer(h.now, 3, &waiter{}))
	h.step()
	assert.Empty(t, h.written(), "no CLOSE_* for an id never registered")
	assert.Zero(t, h.c.Pending())
}
