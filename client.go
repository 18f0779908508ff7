package pulsarconn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pulsarconn/pulsarconn/core/lookup"
	"github.com/pulsarconn/pulsarconn/internal/pool"
	"github.com/pulsarconn/pulsarconn/ports"
)

// Client errors.
var (
	// ErrTooManyRedirects: a lookup was redirected more often than
	// WithMaxLookupRedirects allows.
	ErrTooManyRedirects = lookup.ErrTooManyRedirects
	// ErrTooManyLookups: the Client's lookup slots and queue are full
	// (WithLookupLimit).
	ErrTooManyLookups = errors.New("pulsarconn: too many lookups")
)

// Client is what an application or library holds for a Pulsar cluster: it
// finds the broker that owns a topic (following Redirect answers, through a
// proxy when the cluster says so) and keeps one Broker connection per broker
// URL, created on demand, reused, and listed in a Registry.
//
// The Client holds a Broker while a lookup uses it, and keeps the service
// hosts' Brokers and those LookupTopic returned; it stops the others (the
// brokers a lookup was only redirected through, whether it then succeeded
// or failed) when the last lookup using them ends. A Broker it keeps that
// has no producer or consumer registered and no request in flight for
// WithConnectionMaxIdleTime (3 minutes by default) is stopped and removed
// too: calls on it then fail with ErrClosed, and the next lookup starts a
// new one.
type Client struct {
	hosts []string // the service hosts' URLs
	tls   bool
	opts  []BrokerOption // passed on to every Broker
	o     options        // o.registry is set

	sem    chan struct{} // lookup slots
	queued atomic.Int64  // lookups waiting for a slot
	next   atomic.Int64  // the service host to ask next, round robin

	pool *pool.Pool[*Broker] // the Brokers it holds, by BrokerURL
}

// NewClient returns a Client for serviceURL: pulsar:// or pulsar+ssl://
// with one host or several, comma-separated
// ("pulsar://h1:6650,h2:6650"). The options that Start takes too (the
// Options) apply to every Broker the Client starts; WithRegistry sets the
// Registry they are listed in (default: a private one). It fails with an
// error matching ErrInvalidOption if an option's argument is out of range.
// No connection is made until first needed.
func NewClient(serviceURL string, opts ...ClientOption) (*Client, error) {
	scheme, hosts, ok := strings.Cut(serviceURL, "://")
	if !ok || hosts == "" {
		return nil, fmt.Errorf("%w %q: want pulsar://host[:port][,host[:port]...]", ErrInvalidURL, serviceURL)
	}
	o, forward, err := clientOptions(opts)
	if err != nil {
		return nil, err
	}
	c := &Client{o: o}
	for _, h := range strings.Split(hosts, ",") {
		addr, err := ParseURL(scheme + "://" + strings.TrimSpace(h))
		if err != nil {
			return nil, err
		}
		c.hosts, c.tls = append(c.hosts, addr.URL), addr.TLS
	}
	c.o.registry = cmp.Or[ports.Registry](c.o.registry, NewRegistry())
	c.opts = append(forward, WithRegistry(c.o.registry))
	c.sem = make(chan struct{}, c.o.maxLookups)
	c.pool = pool.New(pool.Config[*Broker]{Start: c.start, Keep: c.hosts, Clock: c.o.clock, MaxIdle: c.o.maxIdle,
		CloseIfUnused: func(b *Broker, cutoff time.Time) (time.Time, bool) { return b.e.CloseIfUnused(cutoff) },
		Forget:        func(b *Broker) { c.o.registry.Remove(b) }})
	return c, nil
}

// Registry returns the Registry the Client's Brokers are listed in.
func (c *Client) Registry() ports.Registry { return c.o.registry }

// Brokers returns the broker connections the Client holds, ordered by URL
// (see Client for which it keeps). One that the broker's refusal of the
// credentials closed stays listed until a lookup replaces it or the idle
// release removes it.
func (c *Client) Brokers() []*Broker { return c.pool.All() }

// Producers lists the producer ids registered on the Client's connection
// to brokerURL.
func (c *Client) Producers(brokerURL string) ([]uint64, error) {
	return ProducersAt(c.o.registry, brokerURL)
}

// Consumers lists the consumer ids registered on the Client's connection
// to brokerURL.
func (c *Client) Consumers(brokerURL string) ([]uint64, error) {
	return ConsumersAt(c.o.registry, brokerURL)
}

// broker returns the Broker for url (dialling proxy instead, naming url as
// the proxy target, when proxy is set), starting it if needed, and counts
// it among the lease's uses (once).
func (c *Client) broker(lease *pool.Lease[*Broker], url, proxy string) (*Broker, error) {
	addr, err := ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("pulsarconn: broker URL from the cluster: %w", err)
	}
	return lease.Get(addr.URL, proxy)
}

// start starts the Broker for url, through proxy if set (pool.Config.Start).
func (c *Client) start(url, proxy string) (*Broker, error) {
	dial, opts := url, c.opts
	if proxy != "" && proxy != url {
		dial = proxy
		opts = append(slices.Clip(opts), WithProxyToBroker(url))
	}
	return Start(dial, opts...)
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
// ctx or the operation timeout ends. With several service hosts, a host
// whose connection attempt fails is passed over for the next at once.
//
// The Brokers the lookup was only redirected through, whether it succeeds
// or fails, are stopped when it ends, unless another lookup uses them or
// the Client keeps them (see Client). The Broker returned is kept, and
// returned again for the same owner, until Close, or until it has been
// idle for WithConnectionMaxIdleTime: the Client then stops it, calls on
// it fail with ErrClosed, and the next LookupTopic starts a new one. A
// caller that holds a Broker with no producer or consumer registered
// should look the topic up again rather than hold it.
func (c *Client) LookupTopic(ctx context.Context, topic string) (*Broker, error) {
	release, err := c.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	start := c.o.clock.Now()
	lease := c.pool.Lease()
	m, end := c.run(ctx, lease, lookup.Config{Topic: topic, TLS: c.tls, MaxRedirects: c.o.maxRedirects})
	var owner *Broker
	err = end.Err
	if end.Kind == lookup.Done {
		owner, err = c.broker(lease, end.Target, end.Proxy)
	}
	lease.End(owner)
	if c.o.observer != nil {
		ev := LookupCompleted{Topic: topic, Redirects: m.Redirects(), Latency: c.o.clock.Now().Sub(start), Err: err}
		if owner != nil {
			ev.BrokerURL = owner.BrokerURL()
		}
		c.o.observer.Observe(ev)
	}
	return owner, err
}

// PartitionedTopicMetadata returns the number of partitions of topic (0
// for a non-partitioned topic), asking a service host, with the same
// retries as LookupTopic.
func (c *Client) PartitionedTopicMetadata(ctx context.Context, topic string) (int, error) {
	lease := c.pool.Lease()
	_, end := c.run(ctx, lease, lookup.Config{Topic: topic, Partitions: true})
	lease.End(nil)
	return end.Partitions, end.Err
}

// run drives a lookup machine (core/lookup) to its end, Done or Fail: it
// carries out each Action with the Client's Brokers, reports what came of
// it, and sleeps through its backoffs. The Brokers it uses are counted
// among lease's uses.
func (c *Client) run(ctx context.Context, lease *pool.Lease[*Broker], cfg lookup.Config) (*lookup.Machine, lookup.Action) {
	cfg.Hosts, cfg.First = c.hosts, int(c.next.Load())
	cfg.Timeout = c.o.operationTimeout
	cfg.Backoff, _ = c.o.backoff() // checked by NewClient
	now := c.o.clock.Now()
	m := lookup.New(now, cfg)
	ctx, cancel := context.WithTimeout(ctx, m.Deadline().Sub(now))
	defer cancel()
	var from *Broker // the Broker that answered last
	act := m.Action()
	for {
		switch act.Kind {
		case lookup.Done, lookup.Fail:
			return m, act
		case lookup.Wait:
			act = c.wait(ctx, m, act.Until)
			continue
		}
		b, answer, err := c.carryOut(ctx, lease, cfg, act, from)
		if b != nil {
			from = b
		}
		now := c.o.clock.Now()
		switch {
		case err != nil && ctx.Err() != nil:
			act = m.Cancelled(now, err, ctx.Err())
		case err != nil:
			// Any failed connection attempt passes to the next host.
			retryable := IsRetryable(err) || (act.Kind == lookup.Connect && !errors.Is(err, ErrClosed))
			act = m.Failed(now, err, retryable)
		case act.Kind == lookup.Connect:
			act = m.Connected(now)
		default:
			act = m.Answered(now, answer)
		}
	}
}

// carryOut performs a Connect or a Send with the Broker for its target,
// which it returns; from is the Broker that answered last.
func (c *Client) carryOut(ctx context.Context, lease *pool.Lease[*Broker], cfg lookup.Config, act lookup.Action, from *Broker) (*Broker, lookup.Answer, error) {
	if act.Host >= 0 {
		c.next.Store(int64(act.Host) + 1) // the next lookup asks the next host
	}
	b, err := c.broker(lease, act.Target, act.Proxy)
	if err != nil {
		return nil, lookup.Answer{}, err
	}
	if act.Redirect && c.o.observer != nil {
		c.o.observer.Observe(LookupRedirected{Topic: cfg.Topic, From: from.BrokerURL(), To: b.BrokerURL()})
	}
	switch {
	case act.Kind == lookup.Connect:
		return b, lookup.Answer{}, b.e.Attempt(ctx)
	case cfg.Partitions:
		n, err := b.PartitionedTopicMetadata(ctx, cfg.Topic)
		return b, lookup.Answer{Partitions: n}, err
	}
	res, err := b.LookupTopic(ctx, cfg.Topic, act.Authoritative)
	if err != nil {
		return b, lookup.Answer{}, err
	}
	return b, lookup.Answer{BrokerURL: res.BrokerURL, BrokerURLTLS: res.BrokerURLTLS, Redirect: res.Redirect,
		Authoritative: res.Authoritative, ProxyThroughServiceURL: res.ProxyThroughServiceURL}, nil
}

// wait sleeps until the lookup's backoff ends at until, or ctx ends.
func (c *Client) wait(ctx context.Context, m *lookup.Machine, until time.Time) lookup.Action {
	fired := make(chan struct{})
	t := c.o.clock.AfterFunc(until.Sub(c.o.clock.Now()), func() { close(fired) })
	select {
	case <-fired:
		return m.Tick(c.o.clock.Now())
	case <-ctx.Done():
		t.Stop()
		return m.Cancelled(c.o.clock.Now(), nil, ctx.Err())
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

// Close stops every Broker of the Client gracefully (see Broker.Stop),
// concurrently, within ctx.
func (c *Client) Close(ctx context.Context) error { return c.pool.Close(ctx) }
