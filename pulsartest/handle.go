package pulsartest

import (
	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// receive counts a command, gives it to the interceptor registered for its
// type, if any, and handles it unless the interceptor took it. body is
// the frame's body, as read.
func (s *Server) receive(c *Conn, f *frame.Frame, body []byte) {
	t := f.Command.GetType()
	s.mu.Lock()
	s.received[t]++
	drop := s.x.receivedLocked(s, c, f, body)
	ic := s.matchLocked(t)
	s.changedLocked()
	s.mu.Unlock()
	if drop {
		// DropAfterFrames: this was the last frame to pass; it is
		// handled, and nothing read after it.
		c.cut.Store(true)
		defer c.closeAfterFlush()
	}
	defer s.processed(t)
	if ic != nil {
		call := &Call{conn: c, frame: f}
		if ic.held != nil {
			if ic.held.take(call) {
				return
			}
		} else {
			switch ic.fn(call) {
			case Pass:
			case Close:
				_ = c.Close()
				return
			default:
				return
			}
		}
	}
	s.handle(c, f)
}

// processed counts a command whose handling is over (or that an
// interceptor took), for WaitReceived.
func (s *Server) processed(t pulsarpb.BaseCommand_Type) {
	s.mu.Lock()
	s.handled[t]++
	s.changedLocked()
	s.mu.Unlock()
}

// handle is the broker's usual handling of one command.
func (s *Server) handle(c *Conn, f *frame.Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := f.Command
	if c.state != stateClosed && !carriesBody(cmd) {
		// A broker's decoder checks that a command carries the
		// sub-message its type names before anything else, and drops
		// the connection when it does not.
		s.failLocked(c)
		return
	}
	if c.state == stateConnected && s.deniedLocked(c, cmd) {
		return // WithAuthorization: not for this role
	}
	if c.state != stateClosed && s.x.gateLocked(s, c, f) {
		return // a declared fault, or a cluster's answer
	}
	switch c.state {
	case stateClosed:
		return
	case stateAwaitConnect:
		if cmd.GetType() == pulsarpb.BaseCommand_CONNECT {
			s.handleConnectLocked(c, cmd.GetConnect())
			return
		}
		s.failLocked(c)
		return
	case stateChallenging:
		if cmd.GetType() == pulsarpb.BaseCommand_AUTH_RESPONSE {
			s.handleAuthResponseLocked(c, cmd.GetAuthResponse())
			return
		}
		s.failLocked(c)
		return
	case stateConnectSeen:
		// The handshake never completes; anything else is a violation.
		s.failLocked(c)
		return
	}

	switch cmd.GetType() {
	case pulsarpb.BaseCommand_CONNECT:
		// A second CONNECT is a protocol violation; a broker drops the
		// connection.
		s.failLocked(c)
	case pulsarpb.BaseCommand_AUTH_RESPONSE:
		s.handleAuthResponseLocked(c, cmd.GetAuthResponse())
	case pulsarpb.BaseCommand_PING:
		if s.answerPings {
			_ = c.Send(&pulsarpb.BaseCommand{
				Type: pulsarpb.BaseCommand_PONG.Enum(),
				Pong: &pulsarpb.CommandPong{},
			})
		}
	case pulsarpb.BaseCommand_PONG:
		// Answer to a PING we never send; nothing to do.
	case pulsarpb.BaseCommand_LOOKUP:
		s.handleLookupLocked(c, cmd)
	case pulsarpb.BaseCommand_PARTITIONED_METADATA:
		s.handlePartitionsLocked(c, cmd)
	case pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE:
		s.handleTopicsOfNamespaceLocked(c, cmd.GetGetTopicsOfNamespace())
	case pulsarpb.BaseCommand_PRODUCER:
		s.handleProducerLocked(c, cmd)
	case pulsarpb.BaseCommand_SEND:
		s.handleSendLocked(c, f)
	case pulsarpb.BaseCommand_CLOSE_PRODUCER:
		s.handleCloseProducerLocked(c, cmd.GetCloseProducer())
	case pulsarpb.BaseCommand_SUBSCRIBE:
		s.handleSubscribeLocked(c, cmd)
	case pulsarpb.BaseCommand_FLOW:
		s.handleFlowLocked(c, cmd.GetFlow())
	case pulsarpb.BaseCommand_ACK:
		s.handleAckLocked(c, cmd)
	case pulsarpb.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES:
		s.handleRedeliverLocked(c, cmd.GetRedeliverUnacknowledgedMessages())
	case pulsarpb.BaseCommand_UNSUBSCRIBE:
		s.handleUnsubscribeLocked(c, cmd)
	case pulsarpb.BaseCommand_SEEK:
		s.handleSeekLocked(c, cmd)
	case pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID:
		s.handleLastMessageIDLocked(c, cmd)
	case pulsarpb.BaseCommand_CLOSE_CONSUMER:
		s.handleCloseConsumerLocked(c, cmd.GetCloseConsumer())
	case pulsarpb.BaseCommand_GET_SCHEMA:
		s.handleGetSchemaLocked(c, cmd)
	case pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA:
		s.handleGetOrCreateSchemaLocked(c, cmd)
	default:
		if brokerOnly[cmd.GetType()] {
			// A broker has no handler for them: its decoder throws,
			// and the connection is dropped.
			s.failLocked(c)
		}
		// Types the fake does not serve (transactions, topic
		// watchers, consumer stats) are counted and ignored.
	}
}

// brokerOnly are the types only a broker sends. A client that sends one
// has its connection closed, as on a broker (fidelity scenario
// error-broker-only-command).
var brokerOnly = map[pulsarpb.BaseCommand_Type]bool{
	pulsarpb.BaseCommand_CONNECTED:                        true,
	pulsarpb.BaseCommand_SEND_RECEIPT:                     true,
	pulsarpb.BaseCommand_SEND_ERROR:                       true,
	pulsarpb.BaseCommand_MESSAGE:                          true,
	pulsarpb.BaseCommand_SUCCESS:                          true,
	pulsarpb.BaseCommand_ERROR:                            true,
	pulsarpb.BaseCommand_PRODUCER_SUCCESS:                 true,
	pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE:    true,
	pulsarpb.BaseCommand_LOOKUP_RESPONSE:                  true,
	pulsarpb.BaseCommand_CONSUMER_STATS_RESPONSE:          true,
	pulsarpb.BaseCommand_REACHED_END_OF_TOPIC:             true,
	pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID_RESPONSE:     true,
	pulsarpb.BaseCommand_ACTIVE_CONSUMER_CHANGE:           true,
	pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE_RESPONSE: true,
	pulsarpb.BaseCommand_GET_SCHEMA_RESPONSE:              true,
	pulsarpb.BaseCommand_AUTH_CHALLENGE:                   true,
	pulsarpb.BaseCommand_ACK_RESPONSE:                     true,
	pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA_RESPONSE:    true,
	pulsarpb.BaseCommand_NEW_TXN_RESPONSE:                 true,
	pulsarpb.BaseCommand_ADD_PARTITION_TO_TXN_RESPONSE:    true,
	pulsarpb.BaseCommand_ADD_SUBSCRIPTION_TO_TXN_RESPONSE: true,
	pulsarpb.BaseCommand_END_TXN_RESPONSE:                 true,
	pulsarpb.BaseCommand_TC_CLIENT_CONNECT_RESPONSE:       true,
	pulsarpb.BaseCommand_WATCH_TOPIC_LIST_SUCCESS:         true,
	pulsarpb.BaseCommand_WATCH_TOPIC_UPDATE:               true,
	pulsarpb.BaseCommand_TOPIC_MIGRATED:                   true,
}

// baseFields are BaseCommand's fields: each command type's sub-message is
// the field numbered as the type.
var baseFields = (&pulsarpb.BaseCommand{}).ProtoReflect().Descriptor().Fields()

// carriesBody reports whether cmd carries the sub-message its type names.
// Types the schema gives no sub-message (transactions, topic watchers,
// consumer stats) pass: the fake ignores them.
func carriesBody(cmd *pulsarpb.BaseCommand) bool {
	fd := baseFields.ByNumber(protoreflect.FieldNumber(cmd.GetType()))
	return fd == nil || cmd.ProtoReflect().Has(fd)
}

// success is the plain SUCCESS answer to request rid.
func success(rid uint64) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type:    pulsarpb.BaseCommand_SUCCESS.Enum(),
		Success: &pulsarpb.CommandSuccess{RequestId: &rid},
	}
}
