package engine

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/adapters/memory"
	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// TestContextWatches: a context is watched from its second request in a
// row, at most maxWatches at once, an idle watch giving way to a newer
// context's; a context that is never done needs none; Stop ends them all,
// so no context keeps a stopped Engine reachable. (What callers see when a
// watched context ends is the contract suite's SharedContextsCancellation.)
func TestContextWatches(t *testing.T) {
	network := memory.NewNetwork()
	l, err := network.Listen("broker:6650")
	require.NoError(t, err)
	srv := pulsartest.NewServer()
	go srv.Serve(l)
	defer srv.Close()
	b := New(Config{
		Core: core.Config{
			Address: "broker:6650", ClientVersion: "test",
			ConnectTimeout: time.Minute, OperationTimeout: time.Minute, MaxPending: 8,
		},
		URL:       "pulsar://broker:6650",
		Transport: network,
		Clock:     memory.NewClock(time.Unix(0, 0)),
		Log:       slog.New(slog.DiscardHandler),
	})
	request := func(ctx context.Context) {
		t.Helper()
		_, err := b.Request(ctx, &pulsarpb.BaseCommand{
			Type:              pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
			PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: proto.String("persistent://public/default/t")},
		})
		require.NoError(t, err)
	}
	watched := func() []<-chan struct{} {
		b.mu.Lock()
		defer b.mu.Unlock()
		var dones []<-chan struct{}
		for _, cw := range b.watches {
			dones = append(dones, cw.done)
		}
		return dones
	}

	ctxs := make([]context.Context, maxWatches+1)
	for i := range ctxs {
		var cancel context.CancelFunc
		ctxs[i], cancel = context.WithCancel(context.Background())
		defer cancel()
		request(ctxs[i])
		assert.Len(t, watched(), min(i, maxWatches), "after context %d's first request", i)
		request(ctxs[i])
		assert.Len(t, watched(), min(i+1, maxWatches), "after its second", i)
		assert.Contains(t, watched(), ctxs[i].Done(), "context %d", i)
	}
	assert.NotContains(t, watched(), ctxs[0].Done(), "the oldest idle watch gave way")

	before := watched()
	request(context.Background())
	request(context.Background())
	assert.Equal(t, before, watched(), "a context never done is not watched")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, b.Stop(ctx, func() {}))
	assert.Empty(t, watched(), "Stop ends every watch")
}
