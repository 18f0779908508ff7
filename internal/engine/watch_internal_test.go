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
	b, _ := newTestEngine(t, memory.NewClock(time.Unix(0, 0)), core.Config{OperationTimeout: time.Minute, MaxPending: 8})
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

// newTestEngine starts an Engine on clock, connecting through the memory
// network to a pulsartest server, with cfg's address and client version
// filled in; Stop and the server's Close are the test's cleanup.
func newTestEngine(t *testing.T, clock *memory.Clock, cfg core.Config) (*Engine, *pulsartest.Server) {
	t.Helper()
	network := memory.NewNetwork()
	l, err := network.Listen("broker:6650")
	require.NoError(t, err)
	srv := pulsartest.NewServer()
	go srv.Serve(l)
	t.Cleanup(func() { _ = srv.Close() })
	cfg.Address, cfg.ClientVersion = "broker:6650", "test"
	cfg.ConnectTimeout = time.Minute
	b := New(Config{
		Core:      cfg,
		URL:       "pulsar://broker:6650",
		Transport: network,
		Clock:     clock,
		Log:       slog.New(slog.DiscardHandler),
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = b.Stop(ctx, func() {})
	})
	return b, srv
}
