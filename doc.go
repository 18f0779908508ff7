// Package pulsarconn manages a connection to an Apache Pulsar broker over
// the Pulsar binary protocol: the layer under Pulsar producers, consumers,
// proxies and admin tools.
//
// A Broker dials pulsar://host[:6650] (or pulsar+ssl://host[:6651] with a
// TLS transport), performs the handshake and authentication (answering the
// broker's AUTH_CHALLENGE at any time), keeps the connection alive with
// PING/PONG, reconnects with jittered exponential backoff, matches answers
// to requests by request id with timeouts, publishes already-encoded
// frames, and routes the broker's pushes — receipts, send errors, messages,
// close and migration notices — to the producers and consumers registered
// on it. Stop closes producers and consumers first, then everything else.
//
// The I/O is behind ports (package ports): the Transport (adapters/tcp,
// adapters/memory, or your own), the Clock (a fake one in tests makes
// every timeout deterministic), the Authenticator and the Registry. The
// protocol logic is a pure state machine (package core). Package
// pulsartest is a fake broker for tests.
//
// # Quick start
//
//	b, err := pulsarconn.Start("pulsar://localhost:6650")
//	if err != nil { ... }
//	defer b.Stop(context.Background())
//	if err := b.WaitConnected(ctx); err != nil { ... }
//	res, err := b.LookupTopic(ctx, "persistent://public/default/t", false)
//	n, err := b.PartitionedTopicMetadata(ctx, "persistent://public/default/t")
//
// # Producers and consumers
//
// RegisterProducer and RegisterConsumer route one producer's or consumer's
// pushes to a Handler and return a Registration, which lasts until Close,
// the end of the context it was registered with (give it one that lives as
// long as the producer, not a request's timeout), or the Broker's end; its
// Handler's last push is then PushEnded, and Done and Err say so. Create
// sends its PRODUCER or SUBSCRIBE and binds the Registration to the
// connection that answered; Publish, Send and Request go only there, so
// that a SEND never reaches a connection before its PRODUCER. After a
// PushDisconnected (a retryable ErrDisconnected) or a PushClosed
// (ErrNotCreated), call Create again:
//
//	reg, err := b.RegisterProducer(context.Background(), b.NewProducerID(), handler)
//	defer reg.Close(context.Background())
//	_, err = reg.Create(ctx, producerCommand) // PRODUCER with reg.ID()
//	err = reg.Publish(ctx, frame)              // a SEND frame (frame.AppendMessage)
//
// Broker.PublishMessage and Broker.Send are the raw path, bound to no
// connection nor registration.
//
// # Calls while disconnected
//
// By default a call made while the Broker is not connected waits for the
// connection until its context ends; WithFailFast makes it fail at once
// with ErrDisconnected. Requests already in flight when the connection is
// lost fail once with an error matching ErrDisconnected (IsRetryable
// reports true); they are never re-sent behind the caller's back.
//
// # Errors
//
// Every error wraps a sentinel of this package (ErrDisconnected,
// ErrClosed, ErrRequestTimeout, ErrMessageTooLarge, ErrRegistrationEnded,
// ErrNotCreated, ...) or a context
// error, and broker errors are a *ServerError that matches the code
// sentinels (ErrServiceNotReady, ErrTopicNotFound, ...) with errors.Is.
package pulsarconn
