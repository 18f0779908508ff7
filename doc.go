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
// ErrClosed, ErrRequestTimeout, ErrMessageTooLarge, ...) or a context
// error, and broker errors are a *ServerError that matches the code
// sentinels (ErrServiceNotReady, ErrTopicNotFound, ...) with errors.Is.
package pulsarconn
