package core_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// TestInUse: a request in flight, a reserved slot and a registration each
// put the connection in use, until they end.
func TestInUse(t *testing.T) {
	h := newHarness(t, core.Config{})
	h.connect()
	assert.False(t, h.c.InUse(), "connected, nothing else")

	require.NoError(t, h.c.Reserve(pulsarpb.BaseCommand_LOOKUP))
	assert.True(t, h.c.InUse(), "a slot reserved")
	h.c.Unreserve()
	assert.False(t, h.c.InUse())

	id, _ := h.request(lookup("persistent://public/default/t"))
	assert.True(t, h.c.InUse(), "a request in flight")
	h.c.Cancel(id)
	assert.False(t, h.c.InUse())
	h.written() // the LOOKUP, taken out of the way

	require.NoError(t, h.c.AddConsumer(1, &recorder{}))
	assert.True(t, h.c.InUse(), "a consumer registered")
	h.c.RemoveConsumer(h.now, 1, nil)
	h.step()
	assert.True(t, h.c.InUse(), "its CLOSE_CONSUMER in flight")
	h.recv(success(requestID(t, h.writtenOne(pulsarpb.BaseCommand_CLOSE_CONSUMER))))
	assert.False(t, h.c.InUse())
}
