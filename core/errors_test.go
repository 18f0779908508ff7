package core_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pulsarconn/pulsarconn/core"
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

func TestServerErrorMatchesCodeSentinels(t *testing.T) {
	sentinels := map[pulsarpb.ServerError]error{
		pulsarpb.ServerError_UnknownError:         core.ErrUnknownServerError,
		pulsarpb.ServerError_MetadataError:        core.ErrMetadata,
		pulsarpb.ServerError_PersistenceError:     core.ErrPersistence,
		pulsarpb.ServerError_AuthenticationError:  core.ErrAuthenticationError,
		pulsarpb.ServerError_AuthorizationError:   core.ErrAuthorization,
		pulsarpb.ServerError_ConsumerBusy:         core.ErrConsumerBusy,
		pulsarpb.ServerError_ServiceNotReady:      core.ErrServiceNotReady,
		pulsarpb.ServerError_ChecksumError:        core.ErrChecksum,
		pulsarpb.ServerError_TopicNotFound:        core.ErrTopicNotFound,
		pulsarpb.ServerError_TooManyRequests:      core.ErrTooManyRequests,
		pulsarpb.ServerError_TopicTerminatedError: core.ErrTopicTerminated,
		pulsarpb.ServerError_ProducerBusy:         core.ErrProducerBusy,
		pulsarpb.ServerError_InvalidTopicName:     core.ErrInvalidTopicName,
	}
	for code, sentinel := range sentinels {
		assert.Equal(t, code, sentinel.(*core.ServerError).Code)
		err := error(&core.ServerError{Code: code, Message: "broker says no"})
		wrapped := fmt.Errorf("lookup persistent://a/b/c: %w", err)
		for other, s := range sentinels {
			assert.Equal(t, code == other, errors.Is(err, s), "%v vs sentinel %v", code, other)
			assert.Equal(t, code == other, errors.Is(wrapped, s), "wrapped %v vs sentinel %v", code, other)
		}
		var se *core.ServerError
		if assert.ErrorAs(t, wrapped, &se) {
			assert.Equal(t, code, se.Code)
		}
	}
	// Only a sentinel (no message) matches by code.
	a := &core.ServerError{Code: pulsarpb.ServerError_TopicNotFound, Message: "a"}
	b := &core.ServerError{Code: pulsarpb.ServerError_TopicNotFound, Message: "b"}
	assert.NotErrorIs(t, a, b)
	assert.NotErrorIs(t, core.ErrTopicNotFound, a, "a sentinel is not an instance")
	assert.NotErrorIs(t, a, core.ErrDisconnected)
}

func TestServerErrorText(t *testing.T) {
	for _, tc := range []struct {
		err  *core.ServerError
		want string
	}{
		{&core.ServerError{Code: pulsarpb.ServerError_TopicNotFound, Message: "Topic not found"},
			"pulsarconn: server error TopicNotFound: Topic not found"},
		{&core.ServerError{Code: pulsarpb.ServerError_ServiceNotReady},
			"pulsarconn: server error ServiceNotReady"},
		{core.ErrProducerBusy, "pulsarconn: server error ProducerBusy"},
	} {
		assert.Equal(t, tc.want, tc.err.Error())
	}
}

func TestSentinelsHavePackagePrefix(t *testing.T) {
	for _, err := range []error{
		core.ErrDisconnected, core.ErrClosed, core.ErrRequestTimeout, core.ErrMessageTooLarge,
		core.ErrFrameTooLarge, core.ErrProtocol, core.ErrConnectTimeout, core.ErrKeepaliveTimeout,
		core.ErrAuthentication, core.ErrDuplicateID, core.ErrNotRequest, core.ErrUnknownServerError,
	} {
		assert.True(t, strings.HasPrefix(err.Error(), "pulsarconn: "), "%q", err)
	}
	assert.ErrorIs(t, fmt.Errorf("read: %w", frame.ErrFrameTooLarge), core.ErrFrameTooLarge)
}

func TestIsRetryable(t *testing.T) {
	se := func(code pulsarpb.ServerError) error { return &core.ServerError{Code: code, Message: "m"} }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"disconnected", core.ErrDisconnected, true},
		{"disconnected by EOF", fmt.Errorf("%w: %w", core.ErrDisconnected, io.EOF), true},
		{"disconnected by an authenticator failure",
			fmt.Errorf("%w: %w", core.ErrDisconnected, fmt.Errorf("%w: x", core.ErrAuthentication)), true},
		{"request timeout", fmt.Errorf("%w: LOOKUP", core.ErrRequestTimeout), true},
		{"connect timeout", core.ErrConnectTimeout, true},
		{"keepalive timeout", core.ErrKeepaliveTimeout, true},
		{"closed", core.ErrClosed, false},
		{"closed wins over disconnected", fmt.Errorf("%w: %w", core.ErrDisconnected, core.ErrClosed), false},
		{"ServiceNotReady", se(pulsarpb.ServerError_ServiceNotReady), true},
		{"TooManyRequests", se(pulsarpb.ServerError_TooManyRequests), true},
		{"MetadataError", se(pulsarpb.ServerError_MetadataError), true},
		{"PersistenceError", se(pulsarpb.ServerError_PersistenceError), true},
		{"wrapped ServiceNotReady", fmt.Errorf("lookup: %w", se(pulsarpb.ServerError_ServiceNotReady)), true},
		{"TopicNotFound", se(pulsarpb.ServerError_TopicNotFound), false},
		{"AuthenticationError", se(pulsarpb.ServerError_AuthenticationError), false},
		{"a refusal of the credentials, wrapped as a disconnection",
			fmt.Errorf("%w: %w", core.ErrDisconnected, se(pulsarpb.ServerError_AuthenticationError)), false},
		{"AuthorizationError", se(pulsarpb.ServerError_AuthorizationError), false},
		{"ProducerBusy", se(pulsarpb.ServerError_ProducerBusy), false},
		{"TopicTerminated", se(pulsarpb.ServerError_TopicTerminatedError), false},
		{"authentication", core.ErrAuthentication, false},
		{"protocol", core.ErrProtocol, false},
		{"message too large", core.ErrMessageTooLarge, false},
		{"duplicate id", core.ErrDuplicateID, false},
		{"not a request", core.ErrNotRequest, false},
		{"context canceled", context.Canceled, false},
		{"other", errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, core.IsRetryable(tc.err))
		})
	}
}

func TestStringers(t *testing.T) {
	for s, want := range map[core.State]string{
		core.StateDisconnected: "disconnected", core.StateConnecting: "connecting",
		core.StateHandshaking: "handshaking", core.StateConnected: "connected",
		core.StateClosing: "closing", core.StateClosed: "closed", core.State(42): "State(42)",
	} {
		assert.Equal(t, want, s.String())
	}
	for k, want := range map[core.PushKind]string{
		core.PushReceipt: "Receipt", core.PushSendError: "SendError", core.PushMessage: "Message",
		core.PushActiveConsumerChange: "ActiveConsumerChange", core.PushReachedEndOfTopic: "ReachedEndOfTopic",
		core.PushClosed: "Closed", core.PushTopicMigrated: "TopicMigrated", core.PushDisconnected: "Disconnected", core.PushEnded: "Ended",
		core.PushKind(0): "PushKind(?)", core.PushKind(200): "PushKind(?)",
	} {
		assert.Equal(t, want, k.String())
	}
}

func TestHandlerFunc(t *testing.T) {
	var got core.Push
	var h core.Handler = core.HandlerFunc(func(p core.Push) { got = p })
	h.HandlePush(core.Push{Kind: core.PushReceipt, ID: 3})
	assert.Equal(t, core.Push{Kind: core.PushReceipt, ID: 3}, got)
}
