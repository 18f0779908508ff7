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
// and PersistenceError. An error that matches ErrClosed or
// ErrAuthenticationError is not, whatever wraps it: the broker's refusal of
// the credentials ends a Broker for good (see WithAuthenticator), while an
// Authenticator's own failure (ErrAuthentication) is retried by the Broker,
// and a call that fails with it while disconnected is retryable.
func IsRetryable(err error) bool {
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrAuthenticationError) {
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

// The kinds of push.
const (
	PushReceipt              = core.PushReceipt
	PushSendError            = core.PushSendError
	PushMessage              = core.PushMessage
	PushActiveConsumerChange = core.PushActiveConsumerChange
	PushReachedEndOfTopic    = core.PushReachedEndOfTopic
	PushClosed               = core.PushClosed
	PushTopicMigrated        = core.PushTopicMigrated
	PushDisconnected         = core.PushDisconnected
)

// Handler receives the pushes of one registered producer or consumer. It is
// called one push at a time, in the order the broker sent them; it must not
// block for long, and must not call Broker.Stop. While a Handler blocks,
// pushes queue up to WithDeliveryQueueLimit, and then the connection stops
// reading from the broker until it returns.
type Handler = core.Handler

// HandlerFunc adapts a function to Handler.
type HandlerFunc = core.HandlerFunc

// Stats counts the irregular events a Broker has seen.
type Stats = core.Stats
