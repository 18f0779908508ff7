package pulsarconn

import (
	"errors"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/internal/engine"
)

// ServerError is an error reported by the broker; errors.Is matches it
// against the code sentinels below (ErrServiceNotReady, ...).
type ServerError = core.ServerError

// Errors. Every error the package returns wraps one of these (or a
// context error) with %w; match them with errors.Is.
var (
	ErrDisconnected     = core.ErrDisconnected
	ErrClosed           = core.ErrClosed
	ErrRequestTimeout   = core.ErrRequestTimeout
	ErrMessageTooLarge  = core.ErrMessageTooLarge
	ErrFrameTooLarge    = core.ErrFrameTooLarge
	ErrProtocol         = core.ErrProtocol
	ErrConnectTimeout   = core.ErrConnectTimeout
	ErrKeepaliveTimeout = core.ErrKeepaliveTimeout
	ErrAuthentication   = core.ErrAuthentication
	ErrDuplicateID      = core.ErrDuplicateID
	ErrNotRequest       = core.ErrNotRequest

	// ErrQueueFull: the connection's write queue stayed full
	// (WithWriteQueueLimit) until the caller's context ended. Retryable.
	ErrQueueFull = engine.ErrQueueFull
	// ErrTooManyPendingRequests: every request slot stayed taken
	// (WithMaxPendingRequests) until the caller's context ended. Retryable.
	ErrTooManyPendingRequests = core.ErrTooManyPending

	// ErrRegistrationEnded: a call on a Registration that has ended
	// (Close, its context, Stop, or the Broker's end); the error also
	// wraps why, as Registration.Err says it. Not retryable.
	ErrRegistrationEnded = engine.ErrRegistrationEnded
	// ErrNotCreated: a Registration's Publish, Send or Request before its
	// Create succeeded, or after the broker closed its producer or
	// consumer (PushClosed): call Create. Not retryable as it is.
	ErrNotCreated = engine.ErrNotCreated
)

// Code sentinels: a *ServerError matches the one with its code.
// ErrAuthenticationError is also the broker's refusal of the credentials,
// which ends a Broker for good (see WithAuthenticator).
var (
	ErrUnknownServerError  = core.ErrUnknownServerError
	ErrMetadata            = core.ErrMetadata
	ErrPersistence         = core.ErrPersistence
	ErrAuthenticationError = core.ErrAuthenticationError
	ErrAuthorization       = core.ErrAuthorization
	ErrConsumerBusy        = core.ErrConsumerBusy
	ErrServiceNotReady     = core.ErrServiceNotReady
	ErrChecksum            = core.ErrChecksum
	ErrTopicNotFound       = core.ErrTopicNotFound
	ErrTooManyRequests     = core.ErrTooManyRequests
	ErrTopicTerminated     = core.ErrTopicTerminated
	ErrProducerBusy        = core.ErrProducerBusy
	ErrInvalidTopicName    = core.ErrInvalidTopicName
)

// IsRetryable reports whether an operation that failed with err may succeed
// if tried again: connection loss, timeouts, a full write queue or request
// table, and the broker's ServiceNotReady, TooManyRequests, MetadataError
// and PersistenceError. An error that matches ErrClosed,
// ErrAuthenticationError, ErrRegistrationEnded or ErrNotCreated is not,
// whatever wraps it: the broker's refusal of
// the credentials ends a Broker for good (see WithAuthenticator), while an
// Authenticator's own failure (ErrAuthentication) is retried by the Broker,
// and a call that fails with it while disconnected is retryable.
func IsRetryable(err error) bool {
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrAuthenticationError) ||
		errors.Is(err, ErrRegistrationEnded) || errors.Is(err, ErrNotCreated) {
		return false
	}
	return core.IsRetryable(err) || errors.Is(err, ErrQueueFull) || errors.Is(err, ErrTooManyPendingRequests)
}

// State is a Broker's connection state.
type State = core.State

// The connection states.
const (
	StateDisconnected = core.StateDisconnected
	StateConnecting   = core.StateConnecting
	StateHandshaking  = core.StateHandshaking
	StateConnected    = core.StateConnected
	StateClosing      = core.StateClosing
	StateClosed       = core.StateClosed
)

// Push is one broker push routed to a registered producer or consumer.
type Push = core.Push

// PushKind says what a Push carries.
type PushKind = core.PushKind

// The kinds of push a Handler gets. Push.Command is the broker's command
// (nil for PushDisconnected and PushEnded), Push.ID the producer or
// consumer id, and Push.Err is set only where said.
const (
	// PushReceipt: SEND_RECEIPT, to a producer: the broker stored the
	// message of Command.SendReceipt's sequence id at its message id.
	PushReceipt = core.PushReceipt
	// PushSendError: SEND_ERROR, to a producer: the broker did not store
	// the message of that sequence id. Err is the broker's error, a *ServerError (errors.Is matches
	// its code sentinel, e.g. ErrChecksum).
	PushSendError = core.PushSendError
	// PushMessage: MESSAGE, to a consumer, with Payload (its metadata and
	// bytes); Payload.ChecksumOK is the checksum verdict.
	PushMessage = core.PushMessage
	// PushActiveConsumerChange: ACTIVE_CONSUMER_CHANGE, to a consumer of a
	// failover subscription: whether it is now the active one.
	PushActiveConsumerChange = core.PushActiveConsumerChange
	// PushReachedEndOfTopic: REACHED_END_OF_TOPIC, to a consumer: the
	// topic was terminated and every message delivered.
	PushReachedEndOfTopic = core.PushReachedEndOfTopic
	// PushClosed: the broker closed the producer or consumer
	// (CLOSE_PRODUCER / CLOSE_CONSUMER), maybe naming in BrokerURL and
	// BrokerURLTLS the broker that now serves the topic. The registration
	// stays, but its Publish, Send and Request fail with ErrNotCreated
	// until the owner creates it again (Create, after a new lookup) or
	// Closes it.
	PushClosed = core.PushClosed
	// PushTopicMigrated: TOPIC_MIGRATED: the topic moved to another
	// cluster, whose URLs are in BrokerURL and BrokerURLTLS.
	PushTopicMigrated = core.PushTopicMigrated
	// PushDisconnected: the connection was lost; Err says why and matches
	// ErrDisconnected. The broker-side producer or consumer is gone; the
	// registration stays, and its owner calls Create again (it waits for
	// the next connection). Messages not receipted may or may not have
	// been stored.
	PushDisconnected = core.PushDisconnected
	// PushEnded: the registration has ended, and this is its Handler's
	// last push. Err says why, as Registration.Err does: matching
	// ErrClosed after Close or the Broker's Stop; wrapping the context's
	// error after the registration's context ended; matching ErrClosed and
	// ErrAuthenticationError when the broker refused the credentials.
	PushEnded = core.PushEnded
)

// Handler receives the pushes of one registered producer or consumer. It is
// called one push at a time, in the order the broker sent them; it must not
// block for long, and must not call Broker.Stop. It may call the Broker
// and its Registration (Create and Close included: the connection goes on
// reading the answer while the Handler waits, unless the pushes queued
// behind reach WithDeliveryQueueLimit). While a Handler blocks,
// pushes queue up to WithDeliveryQueueLimit, and then the connection stops
// reading from the broker until it returns.
type Handler = core.Handler

// HandlerFunc adapts a function to Handler.
type HandlerFunc = core.HandlerFunc

// Stats counts the irregular events a Broker has seen.
type Stats = core.Stats
