// Package core is the sans-I/O state machine of one managed connection to a
// Pulsar broker.
//
// A Conn performs no I/O, starts no goroutines and never reads a clock:
// every input is a method call that carries the current time, and the
// outputs of a step are one Ready: bytes to write, dials, closes, requests
// for the Authenticator, completions, deliveries, changes of state with
// their cause and the connection event they make, logs, and the next
// deadline at which Tick must be called, computed from the pending timers.
// This makes the whole connection lifecycle — handshake, authentication,
// keepalive, request correlation and timeouts, the request limit, push
// routing, reconnection with backoff, dropping a connection the broker
// keeps rejecting — testable deterministically, with time as a plain value.
//
// # States
//
//	disconnected → connecting → handshaking → connected → closing → closed
//
// A lost connection, a failed dial, a refused or timed-out handshake or a
// keepalive expiry goes back to disconnected, and after the backoff delay to
// connecting again; but the broker's refusal of the credentials (ERROR
// AuthenticationError in the handshake, or with request id -1 on a live
// connection) goes to closed, for good (see Final).
//
// # Usage
//
// The driver owns one Conn and serialises every call to it. In order:
//
//  1. Create it with New and call Start(now).
//  2. After the calls of a step, take Ready() and carry it out: Dials,
//     Closes and Auths; then the notices — Completions, Deliveries,
//     States, Logs — in the order Walk visits them; arm one timer for
//     Deadline; write Output to the current connection, then the Latest
//     frames, keeping at most one of each kind unwritten (a newer one
//     replaces an older one still waiting). Then call Advance.
//  3. Report what happened: ConnUp or ConnFailed for a dial or a broken
//     connection, HandleFrame for each frame read, AuthResult for each
//     AuthRequest, Tick when the timer fires.
//  4. Serve the API: Request (the Waiter is completed exactly once, by a
//     later Completion), Cancel when its caller gives up, Send,
//     CheckPublish before writing a pre-encoded frame, AddProducer,
//     AddConsumer, RemoveProducer, RemoveConsumer.
//  5. Stop with BeginClose, wait for the CLOSE_PRODUCER / CLOSE_CONSUMER
//     requests it sent (or give up), then FinishClose.
//
// Generations: each dial gets a new generation number; inputs that carry
// an old generation are ignored (or, for ConnUp, answered with a
// Close), so a late event from a dead connection cannot disturb the
// current one.
package core
