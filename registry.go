package pulsarconn

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"

	"github.com/pulsarconn/pulsarconn/ports"
)

// ErrNotRegistered is returned when a registry holds no Broker for a URL.
var ErrNotRegistered = errors.New("pulsarconn: no broker registered for URL")

// ProducersAt lists the producer ids registered on the broker connection
// that r holds under brokerURL (canonicalised, so "pulsar://h" finds
// "pulsar://h:6650").
func ProducersAt(r ports.Registry, brokerURL string) ([]uint64, error) {
	l, err := listingAt(r, brokerURL)
	if err != nil {
		return nil, err
	}
	return l.Producers(), nil
}

// ConsumersAt lists the consumer ids registered on the broker connection
// that r holds under brokerURL.
func ConsumersAt(r ports.Registry, brokerURL string) ([]uint64, error) {
	l, err := listingAt(r, brokerURL)
	if err != nil {
		return nil, err
	}
	return l.Consumers(), nil
}

func listingAt(r ports.Registry, brokerURL string) (ports.Listing, error) {
	addr, err := ParseURL(brokerURL)
	if err != nil {
		return nil, err
	}
	l, ok := r.Get(addr.URL)
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrNotRegistered, addr.URL)
	}
	return l, nil
}

// Registry is a ports.Registry kept in a map: the one a Client uses unless
// given another (WithRegistry). Listings are compared by identity, so they
// must be of a comparable type (in practice, pointers). The zero value is
// an empty registry ready to use.
type Registry struct {
	mu       sync.RWMutex
	listings map[string]ports.Listing
}

var _ ports.Registry = (*Registry)(nil)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Add stores l under l.BrokerURL(), or fails with ports.ErrAlreadyRegistered
// if a listing is already stored there (even l itself). It panics if l is
// not of a comparable type, which Remove could not match by identity.
func (r *Registry) Add(l ports.Listing) error {
	if l == nil {
		panic("pulsarconn: Registry.Add: nil listing")
	}
	if !reflect.TypeOf(l).Comparable() {
		panic(fmt.Sprintf("pulsarconn: Registry.Add: listing type %T is not comparable; use a pointer", l))
	}
	url := l.BrokerURL()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, taken := r.listings[url]; taken {
		return ports.ErrAlreadyRegistered
	}
	if r.listings == nil {
		r.listings = make(map[string]ports.Listing)
	}
	r.listings[url] = l
	return nil
}

// Remove deletes l if it is the listing stored under its URL; a listing
// that has since been replaced by another under the same URL is left alone.
func (r *Registry) Remove(l ports.Listing) {
	if l == nil {
		return
	}
	url := l.BrokerURL()
	r.mu.Lock()
	defer r.mu.Unlock()
	if stored, ok := r.listings[url]; ok && stored == l {
		delete(r.listings, url)
	}
}

// Get returns the listing stored under brokerURL.
func (r *Registry) Get(brokerURL string) (ports.Listing, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	l, ok := r.listings[brokerURL]
	return l, ok
}

// All returns every listing, ordered by broker URL.
func (r *Registry) All() []ports.Listing {
	r.mu.RLock()
	defer r.mu.RUnlock()
	all := make([]ports.Listing, 0, len(r.listings))
	for _, url := range slices.Sorted(maps.Keys(r.listings)) {
		all = append(all, r.listings[url])
	}
	return all
}
