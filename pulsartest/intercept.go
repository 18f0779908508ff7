package pulsartest

import (
	"math"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Action tells the server what to do with an intercepted command.
type Action int

const (
	// Pass handles the command as usual (after the interceptor ran).
	Pass Action = iota
	// Handled skips the usual handling: the interceptor answered the
	// command itself, or deliberately did not.
	Handled
	// Drop discards the command: it is never answered. (Anything the
	// interceptor sent with Reply is still written.)
	Drop
	// Close closes the connection, without answering.
	Close
)

// String names the action.
func (a Action) String() string {
	switch a {
	case Pass:
		return "Pass"
	case Handled:
		return "Handled"
	case Drop:
		return "Drop"
	case Close:
		return "Close"
	}
	return "Action(?)"
}

// Call is one command read from a client, handed to an interceptor.
type Call struct {
	conn  *Conn
	frame *frame.Frame
}

// Type is the command's type.
func (c *Call) Type() pulsarpb.BaseCommand_Type { return c.frame.Command.GetType() }

// Command is the decoded command. Do not modify it unless the action is
// Handled or Drop.
func (c *Call) Command() *pulsarpb.BaseCommand { return c.frame.Command }

// Frame is the whole decoded frame, with the payload of a SEND.
func (c *Call) Frame() *frame.Frame { return c.frame }

// RequestID is the command's request id, when its type carries one.
func (c *Call) RequestID() (uint64, bool) { return frame.RequestID(c.frame.Command) }

// Conn is the connection the command came on.
func (c *Call) Conn() *Conn { return c.conn }

// Reply writes cmd to the connection the command came on.
func (c *Call) Reply(cmd *pulsarpb.BaseCommand) error { return c.conn.Send(cmd) }

// ReplyError answers the command with a failure, in the form the protocol
// uses for its type: LOOKUP_RESPONSE or PARTITIONED_METADATA_RESPONSE with
// response Failed, SEND_ERROR for SEND, ACK_RESPONSE for ACK, the error
// fields of GET_SCHEMA_RESPONSE and GET_OR_CREATE_SCHEMA_RESPONSE, and
// ERROR with the command's request id for every other command (request id
// -1, as a broker sends it, for commands without one, such as CONNECT).
func (c *Call) ReplyError(code pulsarpb.ServerError, msg string) error {
	return c.conn.Send(errorAnswer(c.frame.Command, code, msg))
}

// errorAnswer builds the failure answer to cmd.
func errorAnswer(cmd *pulsarpb.BaseCommand, code pulsarpb.ServerError, msg string) *pulsarpb.BaseCommand {
	rid, _ := frame.RequestID(cmd)
	switch cmd.GetType() {
	case pulsarpb.BaseCommand_LOOKUP:
		return &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_LOOKUP_RESPONSE.Enum(),
			LookupTopicResponse: &pulsarpb.CommandLookupTopicResponse{
				RequestId: proto.Uint64(rid),
				Response:  pulsarpb.CommandLookupTopicResponse_Failed.Enum(),
				Error:     code.Enum(),
				Message:   proto.String(msg),
			},
		}
	case pulsarpb.BaseCommand_PARTITIONED_METADATA:
		return &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE.Enum(),
			PartitionMetadataResponse: &pulsarpb.CommandPartitionedTopicMetadataResponse{
				RequestId: proto.Uint64(rid),
				Response:  pulsarpb.CommandPartitionedTopicMetadataResponse_Failed.Enum(),
				Error:     code.Enum(),
				Message:   proto.String(msg),
			},
		}
	case pulsarpb.BaseCommand_SEND:
		return sendError(cmd.GetSend(), code, msg)
	case pulsarpb.BaseCommand_ACK:
		return &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_ACK_RESPONSE.Enum(),
			AckResponse: &pulsarpb.CommandAckResponse{
				ConsumerId: proto.Uint64(cmd.GetAck().GetConsumerId()),
				RequestId:  proto.Uint64(rid),
				Error:      code.Enum(),
				Message:    proto.String(msg),
			},
		}
	case pulsarpb.BaseCommand_GET_SCHEMA:
		return &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_GET_SCHEMA_RESPONSE.Enum(),
			GetSchemaResponse: &pulsarpb.CommandGetSchemaResponse{
				RequestId:    proto.Uint64(rid),
				ErrorCode:    code.Enum(),
				ErrorMessage: proto.String(msg),
			},
		}
	case pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA:
		return &pulsarpb.BaseCommand{
			Type: pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA_RESPONSE.Enum(),
			GetOrCreateSchemaResponse: &pulsarpb.CommandGetOrCreateSchemaResponse{
				RequestId:    proto.Uint64(rid),
				ErrorCode:    code.Enum(),
				ErrorMessage: proto.String(msg),
			},
		}
	}
	if _, ok := frame.RequestID(cmd); !ok {
		rid = noRequestID
	}
	return errorCommand(rid, code, msg)
}

// minusOne is -1 in a uint64 field, as a broker (written in Java, with
// signed longs) puts it on the wire.
const minusOne = math.MaxUint64

// noRequestID is the request id a broker puts in answers to commands that
// have none, and in the CLOSE_PRODUCER and CLOSE_CONSUMER it pushes: -1.
const noRequestID = minusOne

func errorCommand(rid uint64, code pulsarpb.ServerError, msg string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_ERROR.Enum(),
		Error: &pulsarpb.CommandError{
			RequestId: proto.Uint64(rid),
			Error:     code.Enum(),
			Message:   proto.String(msg),
		},
	}
}

func sendError(send *pulsarpb.CommandSend, code pulsarpb.ServerError, msg string) *pulsarpb.BaseCommand {
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SEND_ERROR.Enum(),
		SendError: &pulsarpb.CommandSendError{
			ProducerId: proto.Uint64(send.GetProducerId()),
			SequenceId: proto.Uint64(send.GetSequenceId()),
			Error:      code.Enum(),
			Message:    proto.String(msg),
		},
	}
}

// interceptor is one registered Intercept, InterceptEvery or Hold.
type interceptor struct {
	t    pulsarpb.BaseCommand_Type
	once bool
	fn   func(*Call) Action
	held *Held
}

// Intercept makes fn see the next command of type t, on any connection,
// before the server handles it; fn's Action says what happens next. fn
// runs on the connection's reader goroutine: until it returns, that
// connection reads nothing more. Interceptors registered for the same type
// are tried in the order registered; the first one that matches takes the
// command.
func (s *Server) Intercept(t pulsarpb.BaseCommand_Type, fn func(*Call) Action) {
	s.addInterceptor(&interceptor{t: t, once: true, fn: fn})
}

// InterceptEvery is Intercept for every command of type t, until the
// returned function is called.
func (s *Server) InterceptEvery(t pulsarpb.BaseCommand_Type, fn func(*Call) Action) (stop func()) {
	ic := &interceptor{t: t, fn: fn}
	s.addInterceptor(ic)
	return func() { s.removeInterceptor(ic) }
}

func (s *Server) addInterceptor(ic *interceptor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.interceptors = append(s.interceptors, ic)
}

func (s *Server) removeInterceptor(ic *interceptor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.interceptors {
		if x == ic {
			s.interceptors = append(s.interceptors[:i], s.interceptors[i+1:]...)
			return
		}
	}
}

// matchLocked returns the interceptor that takes a command of type t, and
// unregisters it when it is one-shot.
func (s *Server) matchLocked(t pulsarpb.BaseCommand_Type) *interceptor {
	for i, ic := range s.interceptors {
		if ic.t != t {
			continue
		}
		if ic.once {
			s.interceptors = append(s.interceptors[:i], s.interceptors[i+1:]...)
		}
		return ic
	}
	return nil
}

// Held is a command kept from the server's handling until Release. While
// it is held the connection goes on: later commands are handled, so a test
// can make answers come out of order, or delay one, without sleeping.
type Held struct {
	srv     *Server
	ic      *interceptor
	arrived chan struct{}

	mu       sync.Mutex
	call     *Call
	released bool
}

// Hold holds the next command of type t, on any connection: the server
// reads it, counts it and keeps it until Release.
func (s *Server) Hold(t pulsarpb.BaseCommand_Type) *Held {
	h := &Held{srv: s, arrived: make(chan struct{})}
	h.ic = &interceptor{t: t, once: true, held: h}
	s.addInterceptor(h.ic)
	return h
}

// Arrived is closed when the held command has been read.
func (h *Held) Arrived() <-chan struct{} { return h.arrived }

// Call returns the held command, or nil before it arrived.
func (h *Held) Call() *Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.call
}

// Release handles the held command as usual, on the calling goroutine,
// and returns once its answer is queued. Released before the command
// arrived, the hold is cancelled and the command will be handled as usual.
// Release is idempotent.
func (h *Held) Release() {
	h.mu.Lock()
	if h.released {
		h.mu.Unlock()
		return
	}
	h.released = true
	call := h.call
	h.mu.Unlock()
	if call == nil {
		h.srv.removeInterceptor(h.ic)
		return
	}
	h.srv.handle(call.conn, call.frame)
}

// take is called when the held command arrives. It reports false when the
// hold was released (cancelled) meanwhile: then the command passes.
func (h *Held) take(call *Call) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return false
	}
	h.call = call
	close(h.arrived)
	return true
}
