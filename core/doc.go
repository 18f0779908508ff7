// Package core is the sans-I/O state machine of one managed connection to a
// Pulsar broker.
//
// A Conn performs no I/O, starts no goroutines and never reads a clock:
// every input is a method call that carries the current time, and every
// output is either bytes to write (Output), an Effect for the driver to
// carry out (Effects), or the next deadline at which Tick must be called
// (NextDeadline). This makes the whole connection lifecycle — handshake,
// authentication, keepalive, request correlation and timeouts, push
// routing, reconnection with backoff — testable deterministically, with
// time as a plain value.
//
// # States
//
//	disconnected → connecting → handshaking → connected → closing → closed
//
// A lost connection, a failed dial, a refused or timed-out handshake or a
// keepalive expiry goes back to disconnected, and after the backoff delay to
// connecting again.
//
// # Usage
//
// The driver owns one Conn and serialises every call to it. In order:
//
//  1. Create it with New and call Start(now).
//  2. After every call, carry out the step's results, in this order:
//     write Output() to the current connection; carry out each of
//     Effects() in order (dial, close, ask the Authenticator, complete a
//     Waiter, deliver a Push to a Handler, note the new State, log);
//     then arm one timer for NextDeadline().
//  3. Report what happened: ConnUp or ConnFailed for a dial or a broken
//     connection, HandleFrame for each frame read, AuthResult for each
//     EffectAuth, Tick when the timer fires.
//  4. Serve the API: Request (the Waiter is completed exactly once, by a
//     later EffectComplete), Cancel when its caller gives up, Send,
//     CheckPublish before writing a pre-encoded frame, AddProducer,
//     AddConsumer, RemoveProducer, RemoveConsumer.
//  5. Stop with BeginClose, wait for the CLOSE_PRODUCER / CLOSE_CONSUMER
//     requests it sent (or give up), then FinishClose.
//
// Generations: each dial gets a new generation number; inputs that carry
// an old generation are ignored (or, for ConnUp, answered with
// EffectClose), so a late event from a dead connection cannot disturb the
// current one.
package core
