package pulsarconn_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// TestObserverAndHandlerCallBackIntoTheBroker: user code runs from the
// delivery queue, never under the Broker's lock, so an Observer (on
// ConnectionOpened), a Handler (on a receipt) and a RequestAsync done
// function may each call Metrics, State, Send and RequestAsync.
func TestObserverAndHandlerCallBackIntoTheBroker(t *testing.T) {
	e := memoryEnv(t)
	ctx := testContext(t)
	var self atomic.Pointer[pulsarconn.Broker]
	ready := make(chan struct{})
	results := make(chan string, 16)
	// callBack makes every call from the goroutine of user code who, and
	// reports each outcome; the RequestAsync's done calls back too.
	callBack := func(who string) {
		b := self.Load()
		m := b.Metrics()
		results <- who + " Metrics " + m.State.String()
		results <- who + " State " + b.State().String()
		flow := &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_FLOW.Enum(),
			Flow: &pulsarpb.CommandFlow{ConsumerId: proto.Uint64(9), MessagePermits: proto.Uint32(1)}}
		if err := b.Send(ctx, flow); err != nil {
			results <- who + " Send " + err.Error()
		} else {
			results <- who + " Send ok"
		}
		cmd := &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PARTITIONED_METADATA.Enum(),
			PartitionMetadata: &pulsarpb.CommandPartitionedTopicMetadata{Topic: proto.String("t")}}
		err := b.RequestAsync(ctx, cmd, func(_ *pulsarpb.BaseCommand, err error) {
			if err != nil {
				results <- who + " done " + err.Error()
				return
			}
			results <- who + " done ok, then " + b.State().String() + " " + b.Metrics().State.String()
		})
		if err != nil {
			results <- who + " RequestAsync " + err.Error()
		}
	}
	var once atomic.Bool
	obs := pulsarconn.ObserverFunc(func(ev pulsarconn.Event) {
		<-ready
		if _, ok := ev.(pulsarconn.ConnectionOpened); ok {
			callBack("observer")
		}
	})
	b, err := pulsarconn.Start(e.url, pulsarconn.WithTransport(e.transport), pulsarconn.WithObserver(obs))
	require.NoError(t, err)
	defer b.Stop(context.Background())
	self.Store(b)
	close(ready)
	require.NoError(t, b.WaitConnected(ctx))

	_, err = b.RegisterProducer(ctx, 1, pulsarconn.HandlerFunc(func(p pulsarconn.Push) {
		if p.Kind == pulsarconn.PushReceipt && once.CompareAndSwap(false, true) {
			callBack("handler")
		}
	}))
	require.NoError(t, err)
	_, err = b.Request(ctx, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PRODUCER.Enum(), Producer: &pulsarpb.CommandProducer{
		Topic: proto.String("persistent://public/default/t"), ProducerId: proto.Uint64(1)}})
	require.NoError(t, err)
	require.NoError(t, b.PublishMessage(ctx, sendFrame(t, 0, 10)))

	want := map[string]bool{}
	for _, who := range []string{"observer", "handler"} {
		for _, r := range []string{" Metrics connected", " State connected", " Send ok", " done ok, then connected connected"} {
			want[who+r] = true
		}
	}
	for len(want) > 0 {
		select {
		case r := <-results:
			assert.True(t, want[r], "unexpected outcome %q", r)
			delete(want, r)
		case <-ctx.Done():
			t.Fatalf("deadlock: still waiting for %v", want)
		}
	}
}
