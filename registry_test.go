package pulsarconn_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulsarconn/pulsarconn"
	"github.com/pulsarconn/pulsarconn/ports"
)

// listing is a ports.Listing for tests.
type listing struct {
	url       string
	producers []uint64
}

func (l *listing) BrokerURL() string   { return l.url }
func (l *listing) Producers() []uint64 { return l.producers }
func (l *listing) Consumers() []uint64 { return nil }

// valueListing is a listing of a non-comparable type.
type valueListing struct{ ids []uint64 }

func (valueListing) BrokerURL() string     { return "pulsar://value:6650" }
func (v valueListing) Producers() []uint64 { return v.ids }
func (valueListing) Consumers() []uint64   { return nil }

func TestRegistry(t *testing.T) {
	a := &listing{url: "pulsar://a:6650"}
	b := &listing{url: "pulsar://b:6650"}
	c := &listing{url: "pulsar://c:6650"}
	aNewer := &listing{url: "pulsar://a:6650"}

	type step struct {
		add, remove ports.Listing
		wantErr     error
	}
	tests := []struct {
		name  string
		steps []step
		want  []ports.Listing // All, in order
	}{
		{name: "empty", want: []ports.Listing{}},
		{
			name:  "All is ordered by URL",
			steps: []step{{add: c}, {add: a}, {add: b}},
			want:  []ports.Listing{a, b, c},
		},
		{
			name:  "a URL is held once",
			steps: []step{{add: a}, {add: aNewer, wantErr: ports.ErrAlreadyRegistered}},
			want:  []ports.Listing{a},
		},
		{
			name:  "adding the same listing twice fails",
			steps: []step{{add: a}, {add: a, wantErr: ports.ErrAlreadyRegistered}},
			want:  []ports.Listing{a},
		},
		{
			name:  "remove",
			steps: []step{{add: a}, {add: b}, {remove: a}},
			want:  []ports.Listing{b},
		},
		{
			name:  "a stale remove does not evict the newer listing",
			steps: []step{{add: a}, {remove: a}, {add: aNewer}, {remove: a}},
			want:  []ports.Listing{aNewer},
		},
		{
			name:  "removing what was never added is a no-op",
			steps: []step{{add: b}, {remove: a}, {remove: nil}},
			want:  []ports.Listing{b},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := pulsarconn.NewRegistry()
			for i, s := range tt.steps {
				if s.add != nil {
					err := r.Add(s.add)
					if s.wantErr != nil {
						assert.ErrorIs(t, err, s.wantErr, "step %d", i)
					} else {
						assert.NoError(t, err, "step %d", i)
					}
				}
				if s.remove != nil || s.add == nil {
					r.Remove(s.remove)
				}
			}
			all := r.All()
			require.Len(t, all, len(tt.want))
			for i := range all {
				assert.Same(t, tt.want[i], all[i], "All()[%d]", i)
			}
			for _, l := range tt.want {
				got, ok := r.Get(l.BrokerURL())
				assert.True(t, ok)
				assert.Same(t, l, got)
			}
		})
	}
}

func TestRegistryGetMissing(t *testing.T) {
	var r pulsarconn.Registry // the zero value is ready to use
	l, ok := r.Get("pulsar://nowhere:6650")
	assert.False(t, ok)
	assert.Nil(t, l)
}

func TestRegistryRejectsNonComparableListings(t *testing.T) {
	r := pulsarconn.NewRegistry()
	assert.PanicsWithValue(t,
		"pulsarconn: Registry.Add: listing type pulsarconn_test.valueListing is not comparable; use a pointer",
		func() { _ = r.Add(valueListing{}) })
	assert.Empty(t, r.All())
}

// TestRegistryConcurrentUse is for the race detector.
func TestRegistryConcurrentUse(t *testing.T) {
	r := pulsarconn.NewRegistry()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				l := &listing{url: fmt.Sprintf("pulsar://b%d-%d:6650", g, i)}
				assert.NoError(t, r.Add(l))
				_, _ = r.Get(l.url)
				_ = r.All()
				if i%2 == 0 {
					r.Remove(l)
				}
			}
		})
	}
	wg.Wait()
	assert.Len(t, r.All(), 8*50)
}

// readingRegistry lists what it is given at once, as a Registry read by
// another goroutine may.
type readingRegistry struct {
	*pulsarconn.Registry
	listed []uint64
}

func (r *readingRegistry) Add(l ports.Listing) error {
	r.listed = append(l.Producers(), l.Consumers()...)
	return r.Registry.Add(l)
}

// TestStartListsAReadyBroker: a Broker is usable from the moment its
// Registry is given it.
func TestStartListsAReadyBroker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := memoryEnv(t)
		rg := &readingRegistry{Registry: pulsarconn.NewRegistry()}
		b, err := pulsarconn.Start(e.url, pulsarconn.WithTransport(e.network), pulsarconn.WithRegistry(rg))
		require.NoError(t, err)
		defer b.Stop(context.Background())
		assert.Empty(t, rg.listed)
		got, ok := rg.Get(b.BrokerURL())
		assert.True(t, ok)
		assert.Same(t, b, got)
	})
}
