package pulsarconn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/ports"
)

// Client errors.
var (
	// ErrTooManyRedirects: a lookup was redirected more often than
	// WithMaxLookupRedirects allows.
	ErrTooManyRedirects = errors.New("pulsarconn: too many lookup redirects")
	// ErrTooManyLookups: the Client's lookup slots and queue are full
	// (WithLookupLimit).
	ErrTooManyLookups = errors.New("pulsarconn: too many lookups")
)

// Client is what an application or library holds for a Pulsar cluster: it
// finds the broker that owns a topic (following Redirect answers, through a
// proxy when the cluster says so) and keeps one Broker connection per broker
// URL, created on demand, reused, and listed in a Registry.
type Client struct {
	service  []BrokerAddress
	tls      bool
	opts     []Option
	o        options
	registry ports.Registry

	sem    chan struct{} // lookup slots
	queued atomic.Int64  // lookups waiting for a slot

	mu      sync.Mutex
	brokers map[string]*Broker // by BrokerURL
	next    int                // round robin over service hosts
	closed  bool
}

// NewClient returns a Client for serviceURL: pulsar:// or pulsar+ssl://
// with one host or several, comma-separated
// ("pulsar://h1:6650,h2:6650"). The options apply to every Broker the
// Client starts; WithRegistry sets the Registry they are listed in
// (default: a private in-memory one). No connection is made until first
// needed.
func NewClient(serviceURL string, opts ...Option) (*Client, error) {
	scheme, hosts, ok := strings.Cut(serviceURL, "://")
	if !ok || hosts == "" {
		return nil, fmt.Errorf("%w %q: want pulsar://host[:port][,host[:port]...]", ErrInvalidURL, serviceURL)
	}
	c := &Client{o: defaultOptions(), brokers: make(map[string]*Broker)}
	for _, h := range strings.Split(hosts, ",") {
		addr, err := ParseURL(scheme + "://" + strings.TrimSpace(h))
		if err != nil {
			return nil, err
		}
		c.service = append(c.service, addr)
	}
	c.tls = c.service[0].TLS
	for _, opt := range opts {
		opt(&c.o)
	}
	c.registry = c.o.registry
	if c.registry == nil {
		c.registry = NewRegistry()
	}
	c.opts = append(slices.Clip(opts), WithRegistry(c.registry))
	if c.o.maxLookups <= 0 {
		c.o.maxLookups = 1
	}
	c.sem = make(chan struct{}, c.o.maxLookups)
	return c, nil
}

// Registry returns the Registry the Client's Brokers are listed in.
func (c *Client) Registry() ports.Registry { return c.registry }

// Brokers returns the Client's live broker connections, ordered by URL.
func (c *Client) Brokers() []*Broker {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Broker, 0, len(c.brokers))
	for _, b := range c.brokers {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b *Broker) int { return strings.Compare(a.BrokerURL(), b.BrokerURL()) })
	return out
}

// Producers lists the producer ids registered on the Client's connection
// to brokerURL.
func (c *Client) Producers(brokerURL string) ([]uint64, error) {
	return ProducersAt(c.registry, brokerURL)
}

// Consumers lists the consumer ids registered on the Client's connection
// to brokerURL.
func (c *Client) Consumers(brokerURL string) ([]uint64, error) {
	return ConsumersAt(c.registry, brokerURL)
}

// broker returns the Broker for url (dialling proxy instead, naming url as
// the proxy target, when proxy is set), starting it if needed.
func (c *Client) broker(url string, proxy *BrokerAddress) (*Broker, error) {
	addr, err := ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("pulsarconn: broker URL from the cluster: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if b, ok := c.brokers[addr.URL]; ok {
		if b.State() != StateClosed {
			return b, nil
		}
		delete(c.brokers, addr.URL)
	}
	dial, opts := addr.URL, c.opts
	if proxy != nil && proxy.URL != addr.URL {
		dial = proxy.URL
		opts = append(slices.Clip(opts), WithProxyToBroker(addr.URL))
	}
	b, err := Start(dial, opts...)
	if err != nil {
		return nil, err
	}
	c.brokers[addr.URL] = b
	return b, nil
}

// serviceBroker returns the connection to the next service host, round
// robin, so that lookups spread over them and skip one that is down.
func (c *Client) serviceBroker() (*Broker, *BrokerAddress, error) {
	c.mu.Lock()
	addr := c.service[c.next%len(c.service)]
	c.next++
	c.mu.Unlock()
	b, err := c.broker(addr.URL, nil)
	return b, &addr, err
}

// reachableServiceBroker returns the connection to a service host that
// is connected, trying each host in turn, round robin. With one host it
// returns that host's Broker at once (a lookup then waits for it to
// connect). With several, a host whose connection attempt fails — refused,
// or not connected within the connect timeout — is passed over for the
// next at once, so that one host down costs at most one connect timeout;
// when every host failed its attempt, the error wraps ErrDisconnected, so
// that the caller retries after a backoff.
func (c *Client) reachableServiceBroker(ctx context.Context) (*Broker, *BrokerAddress, error) {
	var failed []error
	for range len(c.service) {
		b, addr, err := c.serviceBroker()
		if err != nil || len(c.service) == 1 {
			return b, addr, err
		}
		err = b.attempt(ctx)
		if err == nil {
			return b, addr, nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return nil, addr, err
		}
		failed = append(failed, err)
	}
	// ErrDisconnected makes it retryable: the hosts are tried again after
	// a backoff.
	return nil, nil, fmt.Errorf("%w: no service host reachable: %w", ErrDisconnected, errors.Join(failed...))
}

// attempt waits until the Broker is connected, or its current connection
// attempt has failed (it is disconnected with an error), or ctx ends.
func (b *Broker) attempt(ctx context.Context) error {
	for {
		st, ch, last := b.e.Watch()
		switch {
		case st == StateConnected:
			return nil
		case st == StateClosing || st == StateClosed:
			return ErrClosed
		case st == StateDisconnected && last != nil:
			return fmt.Errorf("%s: %w", b.addr.URL, last)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// acquire takes a lookup slot, waiting in the bounded queue if all are
// taken.
func (c *Client) acquire(ctx context.Context) (func(), error) {
	release := func() { <-c.sem }
	select {
	case c.sem <- struct{}{}:
		return release, nil
	default:
	}
	if c.queued.Add(1) > int64(c.o.maxQueuedLookups) {
		c.queued.Add(-1)
		return nil, fmt.Errorf("%w: %d in flight and %d queued", ErrTooManyLookups, c.o.maxLookups, c.o.maxQueuedLookups)
	}
	defer c.queued.Add(-1)
	select {
	case c.sem <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("pulsarconn: waiting for a lookup slot: %w", ctx.Err())
	}
}

// LookupTopic finds the broker that owns topic and returns the connection
// to it: it asks a service host, follows Redirect answers (sending the
// authoritative flag back) up to the redirect limit, and connects through
// the service URL, naming the broker as proxy target, when the answer says
// proxy_through_service_url. Retryable failures (disconnection,
// ServiceNotReady, TooManyRequests, ...) are retried with backoff until
// ctx or the operation timeout ends.
func (c *Client) LookupTopic(ctx context.Context, topic string) (*Broker, error) {
	release, err := c.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	start := c.o.clock.Now()
	var owner *Broker
	var redirects int
	err = c.retry(ctx, func(ctx context.Context) error {
		owner, redirects, err = c.lookup(ctx, topic)
		return err
	})
	if c.o.observer != nil {
		ev := LookupCompleted{Topic: topic, Redirects: redirects, Latency: c.o.clock.Now().Sub(start), Err: err}
		if owner != nil {
			ev.BrokerURL = owner.BrokerURL()
		}
		c.o.observer.Observe(ev)
	}
	return owner, err
}

// lookup runs one lookup from a service host to the owner, returning the
// owner's connection and how many redirects it took.
func (c *Client) lookup(ctx context.Context, topic string) (*Broker, int, error) {
	b, service, err := c.reachableServiceBroker(ctx)
	if err != nil {
		return nil, 0, err
	}
	authoritative := false
	for redirects := 0; ; redirects++ {
		res, err := b.LookupTopic(ctx, topic, authoritative)
		if err != nil {
			return nil, redirects, err
		}
		url := res.BrokerURL
		if c.tls {
			url = res.BrokerURLTLS
			if url == "" {
				return nil, redirects, fmt.Errorf("%w: lookup of %s named no TLS broker URL", ErrProtocol, topic)
			}
		}
		var proxy *BrokerAddress
		if res.ProxyThroughServiceURL {
			proxy = service
		}
		if !res.Redirect {
			owner, err := c.broker(url, proxy)
			return owner, redirects, err
		}
		if redirects >= c.o.maxRedirects {
			return nil, redirects, fmt.Errorf("%w: %s redirected more than %d times (last to %s)", ErrTooManyRedirects, topic, c.o.maxRedirects, url)
		}
		from := b.BrokerURL()
		if b, err = c.broker(url, proxy); err != nil {
			return nil, redirects, err
		}
		if c.o.observer != nil {
			c.o.observer.Observe(LookupRedirected{Topic: topic, From: from, To: b.BrokerURL()})
		}
		authoritative = res.Authoritative
	}
}

// ClientMetrics are a Client's gauges: its connections, its lookups, and
// the sum of its Brokers' Metrics.
type ClientMetrics struct {
	Connections   int // Brokers held
	Open          int // of those, connected
	Lookups       int // lookups in flight
	QueuedLookups int // lookups waiting for a slot
	// Total sums the Brokers' Metrics (its State is not meaningful).
	Total Metrics
}

// Metrics returns the Client's gauges.
func (c *Client) Metrics() ClientMetrics {
	m := ClientMetrics{Lookups: len(c.sem), QueuedLookups: int(c.queued.Load())}
	for _, b := range c.Brokers() {
		bm := b.Metrics()
		m.Connections++
		if bm.State == StateConnected {
			m.Open++
		}
		m.Total.Pending += bm.Pending
		m.Total.Producers += bm.Producers
		m.Total.Consumers += bm.Consumers
		m.Total.FramesIn += bm.FramesIn
		m.Total.FramesOut += bm.FramesOut
		m.Total.BytesIn += bm.BytesIn
		m.Total.BytesOut += bm.BytesOut
		m.Total.Reconnects += bm.Reconnects
	}
	return m
}

// PartitionedTopicMetadata returns the number of partitions of topic (0
// for a non-partitioned topic), asking a service host, with the same
// retries as LookupTopic.
func (c *Client) PartitionedTopicMetadata(ctx context.Context, topic string) (int, error) {
	var n int
	err := c.retry(ctx, func(ctx context.Context) error {
		b, _, err := c.reachableServiceBroker(ctx)
		if err != nil {
			return err
		}
		n, err = b.PartitionedTopicMetadata(ctx, topic)
		return err
	})
	return n, err
}

// retry runs op until it succeeds, fails with an error that is not
// retryable, or ctx or the operation timeout ends, backing off between
// tries.
func (c *Client) retry(ctx context.Context, op func(context.Context) error) error {
	timeout := c.o.operationTimeout
	if timeout <= 0 {
		timeout = core.DefaultOperationTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	backoff := core.Backoff{Min: c.o.backoffMin, Max: c.o.backoffMax, Rand: c.o.rand}
	if backoff.Min <= 0 {
		backoff.Min = core.DefaultBackoffMin
	}
	if backoff.Max <= 0 {
		backoff.Max = core.DefaultBackoffMax
	}
	var last error
	for {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			// Report the last real failure along with why retrying
			// stopped.
			if errors.Is(err, cerr) && last != nil {
				err = last
			}
			if !errors.Is(err, cerr) {
				err = fmt.Errorf("%w (retries ended: %w)", err, cerr)
			}
			return err
		}
		if !IsRetryable(err) {
			return err
		}
		last = err
		wait := make(chan struct{})
		t := c.o.clock.AfterFunc(backoff.Next(), func() { close(wait) })
		select {
		case <-wait:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retries ended: %w)", err, ctx.Err())
		}
	}
}

// Close stops every Broker of the Client gracefully (see Broker.Stop),
// concurrently, within ctx.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	brokers := make([]*Broker, 0, len(c.brokers))
	for _, b := range c.brokers {
		brokers = append(brokers, b)
	}
	clear(c.brokers)
	c.mu.Unlock()
	errs := make([]error, len(brokers))
	var wg sync.WaitGroup
	for i, b := range brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Stop(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
