package core

import (
	"errors"
	"fmt"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Sentinel errors. The root package re-exports each under the same name;
// match them with errors.Is.
var (
	// ErrDisconnected: the connection is down, or went down while the
	// request was in flight. Retryable.
	ErrDisconnected = errors.New("pulsarconn: disconnected")
	// ErrClosed: the connection was stopped for good.
	ErrClosed = errors.New("pulsarconn: closed")
	// ErrRequestTimeout: no answer within the operation timeout. Retryable.
	ErrRequestTimeout = errors.New("pulsarconn: request timed out")
	// ErrMessageTooLarge: a message to publish has a payload larger than
	// the broker's max message size, or a frame larger than that plus
	// frame padding.
	ErrMessageTooLarge = errors.New("pulsarconn: message too large")
	// ErrFrameTooLarge: a received frame exceeds the max frame size.
	ErrFrameTooLarge = frame.ErrFrameTooLarge
	// ErrProtocol: the broker sent something the protocol does not allow
	// (a malformed frame, a command out of place).
	ErrProtocol = errors.New("pulsarconn: protocol error")
	// ErrConnectTimeout: dial and handshake did not finish within the
	// connect timeout. Retryable.
	ErrConnectTimeout = errors.New("pulsarconn: connect timed out")
	// ErrKeepaliveTimeout: nothing was received for two keepalive
	// intervals, so the connection was declared dead. Retryable.
	ErrKeepaliveTimeout = errors.New("pulsarconn: keepalive timed out")
	// ErrAuthentication: the Authenticator failed to produce credentials
	// (not the broker's refusal of them: ErrAuthenticationError). The
	// handshake fails, or the live connection is dropped, and the Conn
	// connects again after the backoff.
	ErrAuthentication = errors.New("pulsarconn: authentication failed")
	// ErrTooManyPending: Config.MaxPending requests are in flight.
	// Retryable.
	ErrTooManyPending = errors.New("pulsarconn: too many pending requests")
	// ErrDuplicateID: a producer or consumer id is already registered.
	ErrDuplicateID = errors.New("pulsarconn: id already registered")
	// ErrNotRequest: the command's type carries no request id, so it
	// cannot be sent as a request.
	ErrNotRequest = errors.New("pulsarconn: command carries no request id")
)

// ServerError is an error reported by the broker: in ERROR, SEND_ERROR,
// a failed lookup or a failed partitioned-metadata answer.
//
// errors.Is matches a ServerError against the code sentinels
// (ErrServiceNotReady, ErrTopicNotFound, ...), which are ServerErrors with
// no message: any ServerError with the same code matches.
type ServerError struct {
	Code    pulsarpb.ServerError
	Message string
}

// Error implements error.
func (e *ServerError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("pulsarconn: server error %v", e.Code)
	}
	return fmt.Sprintf("pulsarconn: server error %v: %s", e.Code, e.Message)
}

// Is reports whether target is a code sentinel with e's code.
func (e *ServerError) Is(target error) bool {
	t, ok := target.(*ServerError)
	return ok && t.Message == "" && t.Code == e.Code
}

// Code sentinels for the broker errors callers most often branch on.
// ErrAuthenticationError is also the broker's refusal of the credentials,
// which ends a Conn for good (its Final error matches it and ErrClosed).
var (
	ErrUnknownServerError  = &ServerError{Code: pulsarpb.ServerError_UnknownError}
	ErrMetadata            = &ServerError{Code: pulsarpb.ServerError_MetadataError}
	ErrPersistence         = &ServerError{Code: pulsarpb.ServerError_PersistenceError}
	ErrAuthenticationError = &ServerError{Code: pulsarpb.ServerError_AuthenticationError}
	ErrAuthorization       = &ServerError{Code: pulsarpb.ServerError_AuthorizationError}
	ErrConsumerBusy        = &ServerError{Code: pulsarpb.ServerError_ConsumerBusy}
	ErrServiceNotReady     = &ServerError{Code: pulsarpb.ServerError_ServiceNotReady}
	ErrChecksum            = &ServerError{Code: pulsarpb.ServerError_ChecksumError}
	ErrTopicNotFound       = &ServerError{Code: pulsarpb.ServerError_TopicNotFound}
	ErrTooManyRequests     = &ServerError{Code: pulsarpb.ServerError_TooManyRequests}
	ErrTopicTerminated     = &ServerError{Code: pulsarpb.ServerError_TopicTerminatedError}
	ErrProducerBusy        = &ServerError{Code: pulsarpb.ServerError_ProducerBusy}
	ErrInvalidTopicName    = &ServerError{Code: pulsarpb.ServerError_InvalidTopicName}
)

// IsRetryable reports whether the operation that failed with err may
// succeed if tried again (after a backoff, and for lookups a fresh lookup):
// connection loss, timeouts, and the broker's ServiceNotReady,
// TooManyRequests, MetadataError and PersistenceError. An error that
// matches ErrClosed or ErrAuthenticationError (the broker refused the
// credentials) is not, whatever wraps it.
func IsRetryable(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrClosed), errors.Is(err, ErrAuthenticationError):
		return false
	case errors.Is(err, ErrDisconnected),
		errors.Is(err, ErrRequestTimeout),
		errors.Is(err, ErrConnectTimeout),
		errors.Is(err, ErrKeepaliveTimeout),
		errors.Is(err, ErrServiceNotReady),
		errors.Is(err, ErrTooManyRequests),
		errors.Is(err, ErrMetadata),
		errors.Is(err, ErrPersistence):
		return true
	}
	return false
}
