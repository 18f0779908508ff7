package pulsarconn

import (
	"errors"
	"fmt"

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
