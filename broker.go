package pulsarconn

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/adapters/tcp"
	tlstransport "github.com/pulsarconn/pulsarconn/adapters/tls"
	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/internal/engine"
	"github.com/pulsarconn/pulsarconn/ports"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Version is this library's version, sent in CONNECT's client_version.
const Version = "0.1.0"

// Broker is a managed connection to one Pulsar broker: it connects in the
// background, reconnects with backoff, keeps the connection alive, matches
// answers to requests, and routes the broker's pushes to the registered
// producers and consumers. All methods are safe for concurrent use.
//
// It is a façade over the driver's step engine (internal/engine), which
// drives the core state machine (package core) under one mutex and runs
// user code from one ordered delivery queue (internal/deliver). See
// docs/architecture.md.
type Broker struct {
	addr     BrokerAddress
	logical  string         // BrokerURL: the proxy target when proxied, else addr.URL
	registry ports.Registry // the Registry it was added to, if any
	e        *engine.Engine
}

// Start validates the URL and options (an option whose argument is out of
// range fails with an error matching ErrInvalidOption) and starts
// connecting in the background; it returns at once. Use WaitConnected to wait for the first
// connection. Stop releases everything Start started.
func Start(brokerURL string, opts ...BrokerOption) (*Broker, error) {
	addr, err := ParseURL(brokerURL)
	if err != nil {
		return nil, err
	}
	o, backoff, err := brokerOptions(opts)
	if err != nil {
		return nil, err
	}
	if o.transport == nil {
		if addr.TLS {
			o.transport = tlstransport.New()
		} else {
			o.transport = tcp.New()
		}
	}
	cfg := engine.Config{
		Core: core.Config{
			Address:           addr.HostPort,
			ClientVersion:     o.clientVersion,
			ConnectTimeout:    o.connectTimeout,
			OperationTimeout:  o.operationTimeout,
			KeepAliveInterval: o.keepAlive,
			Backoff:           backoff,
			RejectLimit:       o.maxRejected,
			RejectWindow:      o.rejectWindow,
			MaxPending:        o.maxPending,
		},
		URL:           addr.URL,
		Transport:     o.transport,
		Clock:         o.clock,
		Auth:          o.auth,
		Log:           o.logger.With(slog.String("broker", addr.URL)),
		FailFast:      o.failFast,
		WriteLimit:    o.writeQueueLimit,
		DeliveryLimit: o.deliveryQueueLimit,
	}
	if o.auth != nil {
		cfg.Core.AuthMethod = o.auth.Name()
	}
	logical := addr.URL
	if o.proxyToBroker != "" {
		target, err := ParseURL(o.proxyToBroker)
		if err != nil {
			return nil, fmt.Errorf("pulsarconn: proxy target: %w", err)
		}
		logical = target.URL
		// A proxy takes "host:port", as the Java and Go clients send
		// it: it refuses a URL with its scheme (it cannot resolve
		// "pulsar://host").
		cfg.Core.ProxyToBrokerURL = target.HostPort
	}
	b := &Broker{addr: addr, logical: logical}
	if o.observer != nil {
		cfg.Observe = observeAs(o.observer, logical)
	}
	made := make(chan struct{}) // closed once b.e is set
	if reg := o.registry; reg != nil {
		// Refused credentials end the Broker without a Stop: it leaves
		// the Registry then (a no-op if that comes before the Add below,
		// which then sees the Broker closed). That can happen before
		// engine.New has returned, and Remove may call the Broker.
		cfg.Ended = func() {
			<-made
			reg.Remove(b)
		}
	}
	// The engine exists before the Broker is listed: a reader of the
	// Registry may call it at once.
	b.e = engine.New(cfg)
	close(made)
	if o.registry != nil {
		if err := o.registry.Add(b); err != nil {
			b.e.Stop(context.Background(), func() {})
			return nil, fmt.Errorf("pulsarconn: start %s: %w", addr.URL, err)
		}
		b.registry = o.registry
		if b.State() == StateClosed {
			o.registry.Remove(b) // refused before it was listed
		}
	}
	return b, nil
}

// observeAs turns the engine's events into the Observer's.
func observeAs(o Observer, brokerURL string) func(engine.Event) {
	return func(ev engine.Event) {
		switch ev.Kind {
		case engine.ConnectionOpened:
			o.Observe(ConnectionOpened{BrokerURL: brokerURL, Reconnect: ev.Reconnect})
		case engine.ConnectionClosed:
			o.Observe(ConnectionClosed{BrokerURL: brokerURL, Err: ev.Err})
		case engine.HandshakeFailed:
			o.Observe(HandshakeFailed{BrokerURL: brokerURL, Err: ev.Err})
		case engine.RequestCompleted:
			o.Observe(RequestCompleted{BrokerURL: brokerURL, Type: ev.Type, Latency: ev.Latency, Err: ev.Err})
		}
	}
}

// BrokerURL returns the canonical URL of the broker this connection
// serves, e.g. "pulsar://host:6650": the URL it dials, or, through a proxy
// (WithProxyToBroker), the broker the proxy forwards to. It is the key
// under which the Broker is listed in its Registry.
func (b *Broker) BrokerURL() string { return b.logical }

// DialURL returns the canonical URL the Broker dials: BrokerURL, or the
// proxy's URL when proxied.
func (b *Broker) DialURL() string { return b.addr.URL }

// State returns the connection state.
func (b *Broker) State() State { return b.e.State() }

// WatchState returns the current state and a channel that is closed at the
// next change of state.
func (b *Broker) WatchState() (State, <-chan struct{}) { return b.e.WatchState() }

// WaitConnected waits until the Broker is connected, or ctx ends, or the
// Broker is stopped (ErrClosed) or ended by the broker's refusal of the
// credentials (that refusal, matching ErrAuthenticationError: see
// WithAuthenticator). A context error is wrapped together with the last
// connection error, if any.
func (b *Broker) WaitConnected(ctx context.Context) error { return b.e.WaitConnected(ctx) }

// Stats returns the irregular-event counters.
func (b *Broker) Stats() Stats { return b.e.Stats() }

// ServerVersion returns the broker's server_version and protocol_version
// from its CONNECTED.
func (b *Broker) ServerVersion() (string, int32) { return b.e.ServerVersion() }

// MaxMessageSize returns the broker's max message size from CONNECTED (5
// MiB until then).
func (b *Broker) MaxMessageSize() int { return b.e.MaxMessageSize() }

// Metrics returns the Broker's gauges and counters.
func (b *Broker) Metrics() Metrics { return Metrics(b.e.Metrics()) }

// Request sends cmd, a request-bearing command, and waits for its answer.
// The request id is assigned here (any id already in cmd is overwritten).
// The wait ends at the answer, the operation timeout (ErrRequestTimeout),
// the connection's loss (ErrDisconnected), the Broker's end (ErrClosed: Stop,
// or the broker's refusal of the credentials), or the end of ctx. An ERROR
// answer, and the failure variants of the lookup, partitioned-metadata, ack
// and schema answers, are returned as a *ServerError along with the answer. A
// PRODUCER answered producer_ready=false (queued for exclusive access) waits
// for the broker's second answer, within the same operation timeout,
// counted from the request.
//
// While disconnected, Request waits for the connection until ctx ends, or
// fails at once with ErrDisconnected under WithFailFast.
//
// At most WithMaxPendingRequests requests are in flight at once; beyond
// that Request waits for a slot until ctx ends (ErrTooManyPendingRequests).
// It also waits while the write queue is full (ErrQueueFull).
func (b *Broker) Request(ctx context.Context, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	return b.e.Request(ctx, cmd)
}

// RequestOn is Request bound to one connection: conn is a value of
// Connection. If that connection is gone (the Broker reconnected, or is
// reconnecting), it fails at once with an error matching ErrDisconnected
// instead of using the next connection. A producer library creates its
// producer with RequestOn and publishes with PublishMessageOn on the same
// connection, so that a SEND can never reach a connection before its
// PRODUCER.
func (b *Broker) RequestOn(ctx context.Context, conn uint64, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	return b.e.RequestOn(ctx, conn, cmd)
}

// Connection identifies the current established connection: a number that
// changes at every reconnection, or 0 while not connected. See RequestOn
// and PublishMessageOn.
func (b *Broker) Connection() uint64 { return b.e.Connection() }

// RequestAsync is Request without the wait: it sends cmd and returns once
// the command is queued for writing, and done receives the answer, or the
// request's failure, exactly once. ctx bounds the wait for the connection,
// a request slot and room in the write queue, as for Request; once sent,
// the request ends with its answer (for a PRODUCER queued for exclusive
// access, the second one), the operation timeout (WithOperationTimeout,
// counted from the request), the connection's loss, or the Broker's end
// (Stop, or a refusal of the credentials). If RequestAsync
// returns an error, the command was not sent and done is never called.
//
// done runs outside the Broker's lock, on the goroutine that delivers
// pushes (often the connection's reader), in order with them (after the
// pushes the broker sent before the answer). Like a Handler it must not
// block: it may call Send, PublishMessage and RequestAsync, but not
// Request, Stop, or anything that waits for an answer, which only this
// goroutine can deliver.
//
// Unlike Request, RequestAsync does not wait for a request slot: with
// WithMaxPendingRequests requests in flight it fails at once with
// ErrTooManyPendingRequests (a done function that waited for a slot
// could wait for answers queued behind itself). It may still wait, until
// ctx ends, for the connection or for room in the write queue, which
// other goroutines provide.
//
// RequestAsync is the connection layer's own form of a request: a
// producer library keeps many in flight from one goroutine without a
// goroutine, channel or timer per request.
func (b *Broker) RequestAsync(ctx context.Context, cmd *pulsarpb.BaseCommand, done func(resp *pulsarpb.BaseCommand, err error)) error {
	return b.e.RequestAsync(ctx, cmd, done, false)
}

// RequestAsyncLent is RequestAsync for a done function that is finished
// with the answer when it returns: resp, and everything it points to, is
// lent to done and may be reused for a later answer once done returns. A
// done function that keeps something copies it first (strings taken from
// resp stay valid); one that hands resp to another goroutine must use
// RequestAsync. In return the answers the connection decodes without the
// protobuf runtime (PARTITIONED_METADATA_RESPONSE) cost no allocation, as
// Push.Release saves a receipt's or a message's.
func (b *Broker) RequestAsyncLent(ctx context.Context, cmd *pulsarpb.BaseCommand, done func(resp *pulsarpb.BaseCommand, err error)) error {
	return b.e.RequestAsync(ctx, cmd, done, true)
}

// Send writes cmd, a command that expects no answer (FLOW, ACK without a
// request id, REDELIVER_UNACKNOWLEDGED_MESSAGES, ...). It returns once the
// command is queued for writing, waiting while the write queue is full
// (see WithWriteQueueLimit).
func (b *Broker) Send(ctx context.Context, cmd *pulsarpb.BaseCommand) error {
	return b.e.Send(ctx, cmd)
}

// PublishMessage queues an already-encoded frame (typically a SEND payload
// frame built with frame.AppendMessage) for writing, unchanged. It
// refuses, with ErrMessageTooLarge, a message whose payload (the bytes
// after its metadata) is larger than the broker's max message size, as
// the Pulsar clients do, or whose frame is larger than that size plus
// 10 KiB of frame padding; and with ErrProtocol a buffer whose total-size
// field does not match its length. Nothing of a refused message is
// written. The frame is copied; the
// caller may reuse it on return. Receipts come to the producer's Handler.
//
// While the connection's write queue has no room for the frame
// (WithWriteQueueLimit), PublishMessage waits for the writer to make some,
// outside the Broker's lock, until ctx ends; it then fails with an error
// matching both ErrQueueFull and ctx's error.
func (b *Broker) PublishMessage(ctx context.Context, encoded []byte) error {
	return b.e.PublishMessage(ctx, encoded)
}

// PublishMessageOn is PublishMessage bound to one connection (a value of
// Connection): if that connection is gone it fails at once with an error
// matching ErrDisconnected, so that a SEND never reaches a newer
// connection on which its producer was not created yet. See RequestOn.
func (b *Broker) PublishMessageOn(ctx context.Context, conn uint64, encoded []byte) error {
	return b.e.PublishMessageOn(ctx, conn, encoded)
}

// NewProducerID returns a producer id not handed out before by this Broker.
func (b *Broker) NewProducerID() uint64 { return b.e.NewProducerID() }

// NewConsumerID returns a consumer id not handed out before by this Broker.
func (b *Broker) NewConsumerID() uint64 { return b.e.NewConsumerID() }

// Registration is a producer or consumer registered on a Broker: its id,
// its Handler, and the connection its broker-side producer or consumer
// was created on.
//
// It lasts until Close, the end of the context it was registered with,
// the Broker's Stop, or the Broker's end after the broker refused its
// credentials. It survives reconnections: its Handler is told of each
// loss with a PushDisconnected, and its owner re-creates the broker-side
// producer or consumer with Create. When it ends, whatever the reason,
// its Handler gets one last push, PushEnded, whose Err says why (as Err
// does), Done is closed, and its calls fail with ErrRegistrationEnded. A
// registration for as long as a producer or consumer lives should have
// a context that lives as long (context.Background and Close, typically),
// not a request's timeout.
//
// Create, Publish, Send and Request are bound to the connection Create
// last succeeded on, so that a SEND, FLOW or ACK never reaches a
// connection on which the producer or consumer was not created: with no
// successful Create, or after the broker closed the producer or consumer
// (PushClosed), they fail at once with ErrNotCreated; once that
// connection is lost, with a retryable error matching ErrDisconnected;
// the owner then calls Create again. Broker.PublishMessage and Send
// remain the raw path, bound to no connection.
type Registration struct{ r *engine.Registration }

// ID returns the producer or consumer id.
func (r *Registration) ID() uint64 { return r.r.ID() }

// Close ends the registration: its Handler is told PushEnded (with an
// error matching ErrClosed) and, when connected, CLOSE_PRODUCER or
// CLOSE_CONSUMER is sent and Close waits for the broker's answer within
// ctx. Later calls return the first call's result.
func (r *Registration) Close(ctx context.Context) error { return r.r.Close(ctx) }

// Done returns a channel closed when the registration has ended (see
// Err). The Handler's PushEnded is queued by then, not necessarily
// delivered.
func (r *Registration) Done() <-chan struct{} { return r.r.Done() }

// Err returns nil while the registration is live, and then why it ended:
// an error matching ErrClosed after Close or Stop; wrapping the context's
// error (and its cause) after the registration's context ended; matching
// both ErrClosed and ErrAuthenticationError after the broker refused the
// credentials.
func (r *Registration) Err() error { return r.r.Err() }

// Create sends cmd, the PRODUCER command of a producer registration or the
// SUBSCRIBE of a consumer one, whose producer or consumer id must be the
// registration's, as Request does (waiting for a connection while
// disconnected), and on success binds the registration to the connection
// that answered: Publish, Send and Request go there. Call it again after
// each PushDisconnected or PushClosed. It fails with ErrRegistrationEnded
// once the registration has ended.
func (r *Registration) Create(ctx context.Context, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	return r.r.Create(ctx, cmd)
}

// Publish is Broker.PublishMessage bound to the connection Create
// succeeded on (a producer registration only). It fails at once with an
// error matching ErrRegistrationEnded (and why it ended) once the
// registration has ended; ErrNotCreated before Create succeeded or after
// the broker closed the producer; and a retryable error matching
// ErrDisconnected once that connection is gone, so that a SEND never
// reaches a connection before its PRODUCER. Otherwise it waits while the
// write queue is full, as PublishMessage does.
func (r *Registration) Publish(ctx context.Context, encoded []byte) error {
	return r.r.Publish(ctx, encoded)
}

// Send is Broker.Send bound as Publish is: for the registration's FLOW,
// ACK, REDELIVER_UNACKNOWLEDGED_MESSAGES, and other commands without an
// answer. It fails as Publish does.
func (r *Registration) Send(ctx context.Context, cmd *pulsarpb.BaseCommand) error {
	return r.r.Send(ctx, cmd)
}

// Request is Broker.Request bound as Publish is: for the registration's
// SEEK, GET_LAST_MESSAGE_ID, UNSUBSCRIBE, ACK with a request id, and
// other requests. It fails as Publish does, and then as Request does.
func (r *Registration) Request(ctx context.Context, cmd *pulsarpb.BaseCommand) (*pulsarpb.BaseCommand, error) {
	return r.r.Request(ctx, cmd)
}

func registration(r *engine.Registration, err error) (*Registration, error) {
	if err != nil {
		return nil, err
	}
	return &Registration{r}, nil
}

// RegisterProducer routes the pushes for producer id (receipts, send
// errors, close and migrate notices, disconnection, the end) to h. When
// ctx ends the registration ends and CLOSE_PRODUCER is sent, as by Close
// (the Handler's PushEnded then wraps ctx's error): pass a context that
// lives as long as the producer, not a request's timeout. The id must
// not be registered already (ErrDuplicateID). Create the broker-side
// producer with the Registration's Create and publish with its Publish.
func (b *Broker) RegisterProducer(ctx context.Context, id uint64, h Handler) (*Registration, error) {
	return registration(b.e.RegisterProducer(ctx, id, h))
}

// RegisterConsumer routes the pushes for consumer id (messages, active
// consumer changes, end of topic, close and migrate notices,
// disconnection, the end) to h. When ctx ends the registration ends and
// CLOSE_CONSUMER is sent, as by Close. Subscribe with the Registration's
// Create, and grant permits and ack with its Send.
func (b *Broker) RegisterConsumer(ctx context.Context, id uint64, h Handler) (*Registration, error) {
	return registration(b.e.RegisterConsumer(ctx, id, h))
}

// Producers returns the ids of the registered producers, ascending.
func (b *Broker) Producers() []uint64 { return b.e.Producers() }

// Consumers returns the ids of the registered consumers, ascending.
func (b *Broker) Consumers() []uint64 { return b.e.Consumers() }

var _ ports.Listing = (*Broker)(nil)

// Stop closes the Broker gracefully: it sends CLOSE_PRODUCER and
// CLOSE_CONSUMER for every registration and waits for their answers while
// ctx allows, then fails whatever is still pending with ErrClosed, ends
// every registration (its Handler's last push is PushEnded, with
// ErrClosed), closes the connection,
// removes the Broker from its Registry, and waits for every goroutine it
// started. It returns ctx's error if ctx ended before the broker answered
// the closes (an answer that refuses a close is only logged), or while a
// Handler or the Observer had not returned: Stop does not wait past ctx
// for user code, and what is abandoned then — the deliveries queued behind
// that call, and the goroutines that run them — finishes when it returns.
// The Broker is stopped either way. Later calls wait for the first and
// return its result.
func (b *Broker) Stop(ctx context.Context) error {
	return b.e.Stop(ctx, func() {
		if b.registry != nil {
			b.registry.Remove(b)
		}
	})
}

// LookupResult is a broker's answer to a topic lookup.
type LookupResult struct {
	// BrokerURL and BrokerURLTLS are the broker to connect to (Connect)
	// or to ask again (Redirect).
	BrokerURL, BrokerURLTLS string
	// Redirect is true when the answer is Redirect: look up again at
	// BrokerURL, passing Authoritative.
	Redirect bool
	// Authoritative is the flag to send with the next lookup.
	Authoritative bool
	// ProxyThroughServiceURL means: keep connecting through the service
	// URL (a proxy) and name BrokerURL as the proxy target.
	ProxyThroughServiceURL bool
}

// LookupTopic asks the broker which broker serves topic (LOOKUP). Pass the
// Authoritative flag of a previous Redirect answer. A Failed answer is
// returned as a *ServerError.
func (b *Broker) LookupTopic(ctx context.Context, topic string, authoritative bool) (*LookupResult, error) {
	resp, err := b.Request(ctx, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_LOOKUP.Enum(),
		LookupTopic: &pulsarpb.CommandLookupTopic{
			Topic:         proto.String(topic),
			Authoritative: proto.Bool(authoritative),
		},
	})
	if err != nil {
		return nil, err
	}
	r := resp.GetLookupTopicResponse()
	if r == nil {
		return nil, fmt.Errorf("%w: LOOKUP answered with %v", ErrProtocol, resp.GetType())
	}
	return &LookupResult{
		BrokerURL:              r.GetBrokerServiceUrl(),
		BrokerURLTLS:           r.GetBrokerServiceUrlTls(),
		Redirect:               r.GetResponse() == pulsarpb.CommandLookupTopicResponse_Redirect,
		Authoritative:          r.GetAuthoritative(),
		ProxyThroughServiceURL: r.GetProxyThroughServiceUrl(),
	}, nil
}

// PartitionedTopicMetadata returns how many partitions topic has
// (PARTITIONED_METADATA); 0 means the topic is not partitioned.
func (b *Broker) PartitionedTopicMetadata(ctx context.Context, topic string) (int, error) {
	return b.e.Partitions(ctx, topic)
}
