package pulsartest

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Fault is a declared failure: the server answers the next commands of a
// type (optionally only those of a topic) with an error instead of
// handling them. See FailNext.
type Fault struct {
	srv   *Server
	t     pulsarpb.BaseCommand_Type
	code  pulsarpb.ServerError
	topic string // full name; "" for any
	msg   string
	close bool

	// Guarded by srv.mu.
	left  int
	fired int
}

// FaultOption refines a Fault.
type FaultOption func(*Fault)

// OnTopic restricts a fault to the commands about topic (a short name is
// normalised: "t" is "persistent://public/default/t"): PRODUCER,
// SUBSCRIBE, LOOKUP and PARTITIONED_METADATA name it; SEND, FLOW, ACK and
// the other commands of a producer or consumer are about the topic it is
// attached to. Commands about no topic never match.
func OnTopic(topic string) FaultOption {
	return func(f *Fault) {
		if name, _, ok := parseTopic(topic); ok {
			f.topic = name
		} else {
			f.topic = topic
		}
	}
}

// WithErrorMessage sets the message of the error answers. Default:
// "pulsartest: injected <code>".
func WithErrorMessage(msg string) FaultOption {
	return func(f *Fault) { f.msg = msg }
}

// ThenClose makes the fault close the connection after each error answer
// it sends, as a broker does after an authentication failure.
func ThenClose() FaultOption {
	return func(f *Fault) { f.close = true }
}

// FailNext declares a fault: the next n commands of type t (n < 0: all of
// them, until Cancel) are answered with the error code instead of being
// handled, in the form the protocol uses for that type (see
// Call.ReplyError: LOOKUP_RESPONSE Failed for LOOKUP, SEND_ERROR for SEND,
// ERROR for PRODUCER and SUBSCRIBE, ...). For example
//
//	s.FailNext(pulsarpb.BaseCommand_PRODUCER, 2, pulsarpb.ServerError_ServiceNotReady, pulsartest.OnTopic("orders"))
//
// makes the next two PRODUCER commands on topic "orders" fail as on a
// broker whose topic is being unloaded. Faults apply after interceptors
// (a command an interceptor takes is not counted) and before the usual
// handling; several faults are tried in the order declared.
func (s *Server) FailNext(t pulsarpb.BaseCommand_Type, n int, code pulsarpb.ServerError, opts ...FaultOption) *Fault {
	f := &Fault{srv: s, t: t, code: code, left: n, msg: "pulsartest: injected " + code.String()}
	for _, o := range opts {
		o(f)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n != 0 {
		s.x.faults = append(s.x.faults, f)
	}
	return f
}

// Fired reports how many commands the fault has answered.
func (f *Fault) Fired() int {
	f.srv.mu.Lock()
	defer f.srv.mu.Unlock()
	return f.fired
}

// Cancel withdraws the fault; the commands that follow are handled as
// usual.
func (f *Fault) Cancel() {
	f.srv.mu.Lock()
	defer f.srv.mu.Unlock()
	f.srv.x.removeFaultLocked(f)
}

// Wait blocks until the fault has answered n commands, or ctx ends.
func (f *Fault) Wait(ctx context.Context, n int) error {
	return f.srv.waitFor(ctx, func() bool { return f.fired >= n })
}

func (x *serverExt) removeFaultLocked(f *Fault) {
	for i, g := range x.faults {
		if g == f {
			x.faults = append(x.faults[:i], x.faults[i+1:]...)
			return
		}
	}
}

// faultLocked answers cmd with the first matching fault, and reports
// whether it did.
func (x *serverExt) faultLocked(s *Server, c *Conn, cmd *pulsarpb.BaseCommand) bool {
	for _, f := range x.faults {
		if f.t != cmd.GetType() {
			continue
		}
		if f.topic != "" && topicOfLocked(c, cmd) != f.topic {
			continue
		}
		f.fired++
		if f.left > 0 {
			f.left--
			if f.left == 0 {
				x.removeFaultLocked(f)
			}
		}
		_ = c.Send(errorAnswer(cmd, f.code, f.msg))
		if f.close {
			s.failLocked(c)
		}
		s.changedLocked()
		return true
	}
	return false
}

// topicOfLocked is the full name of the topic cmd is about, or "".
func topicOfLocked(c *Conn, cmd *pulsarpb.BaseCommand) string {
	var name string
	producerTopic := func(id uint64) string {
		if p := c.producers[id]; p != nil {
			return p.topic.name
		}
		return ""
	}
	consumerTopic := func(id uint64) string {
		if cons := c.consumers[id]; cons != nil {
			return cons.sub.topic.name
		}
		return ""
	}
	switch cmd.GetType() {
	case pulsarpb.BaseCommand_PRODUCER:
		name = cmd.GetProducer().GetTopic()
	case pulsarpb.BaseCommand_SUBSCRIBE:
		name = cmd.GetSubscribe().GetTopic()
	case pulsarpb.BaseCommand_LOOKUP:
		name = cmd.GetLookupTopic().GetTopic()
	case pulsarpb.BaseCommand_PARTITIONED_METADATA:
		name = cmd.GetPartitionMetadata().GetTopic()
	case pulsarpb.BaseCommand_SEND:
		return producerTopic(cmd.GetSend().GetProducerId())
	case pulsarpb.BaseCommand_CLOSE_PRODUCER:
		return producerTopic(cmd.GetCloseProducer().GetProducerId())
	case pulsarpb.BaseCommand_FLOW:
		return consumerTopic(cmd.GetFlow().GetConsumerId())
	case pulsarpb.BaseCommand_ACK:
		return consumerTopic(cmd.GetAck().GetConsumerId())
	case pulsarpb.BaseCommand_REDELIVER_UNACKNOWLEDGED_MESSAGES:
		return consumerTopic(cmd.GetRedeliverUnacknowledgedMessages().GetConsumerId())
	case pulsarpb.BaseCommand_UNSUBSCRIBE:
		return consumerTopic(cmd.GetUnsubscribe().GetConsumerId())
	case pulsarpb.BaseCommand_SEEK:
		return consumerTopic(cmd.GetSeek().GetConsumerId())
	case pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID:
		return consumerTopic(cmd.GetGetLastMessageId().GetConsumerId())
	case pulsarpb.BaseCommand_CLOSE_CONSUMER:
		return consumerTopic(cmd.GetCloseConsumer().GetConsumerId())
	default:
		return ""
	}
	full, _, ok := parseTopic(name)
	if !ok {
		return ""
	}
	return full
}

// DropAfterFrames cuts a connection after n more frames: the server
// counts the frames it reads and sends, on all its connections, from now
// on, and the connection that carries the nth is closed right after it (a
// frame sent is written first; a frame read is handled first, and what it
// answers written). The whole connection is closed: whatever the client
// sent after the nth frame, even if already read, is neither handled nor
// stored, and the connection's producers and consumers are detached as
// it closes (WaitConns tells when). n <= 0 cancels. Frames the handshake
// takes count too, so DropAfterFrames(2) on a fresh server lets CONNECT
// and CONNECTED through and cuts the connection there.
func (s *Server) DropAfterFrames(n int) {
	s.x.dropAfter.Store(int64(max(n, 0)))
}

// CorruptNextMessageChecksum makes the next MESSAGE frame the server sends,
// to any consumer, carry a wrong CRC32C (the stored message is intact), so
// that a client's checksum verification can be tested: a client should
// discard it and ask for it again (REDELIVER_UNACKNOWLEDGED_MESSAGES).
func (s *Server) CorruptNextMessageChecksum() {
	s.x.corruptMsg.Store(true)
}

// corruptChecksum flips a bit of the CRC32C of a payload frame body, and
// reports whether it found one.
func corruptChecksum(body []byte) bool {
	off := uint64(binary.BigEndian.Uint32(body)) + 4
	if off+2 <= uint64(len(body)) && binary.BigEndian.Uint16(body[off:]) == frame.MagicBrokerEntryMetadata {
		if off+6 > uint64(len(body)) {
			return false
		}
		off += 6 + uint64(binary.BigEndian.Uint32(body[off+2:]))
	}
	if off+6 > uint64(len(body)) || binary.BigEndian.Uint16(body[off:]) != frame.MagicChecksum {
		return false
	}
	body[off+2] ^= 0x01
	return true
}

// garbageFrame has a consistent size but no valid command: four 0xff
// bytes do not decode as a BaseCommand.
var garbageFrame = []byte{0, 0, 0, 8, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff}

// SendGarbage writes a frame a client cannot parse (consistent sizes, an
// undecodable command) to every live connection, and returns how many. A
// client should drop the connection.
func (s *Server) SendGarbage() int {
	return s.SendRaw(garbageFrame)
}

// SilentHandshake is SetNeverConnect: with true, CONNECT is read and
// recorded but never answered, so that a client's connect timeout fires.
func (s *Server) SilentHandshake(silent bool) {
	s.SetNeverConnect(silent)
}

// ChallengeEvery makes the server ask its clients for fresh credentials
// every d, on the server's clock (see WithClock): each time, it does what
// ChallengeAll does. d <= 0 stops it. Default: never.
func (s *Server) ChallengeEvery(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.x.stopChallengesLocked()
	if d <= 0 || s.closed {
		return
	}
	s.x.armChallengeLocked(s, d, s.x.challengeGen)
}

func (x *serverExt) stopChallengesLocked() {
	x.challengeGen++
	if x.challenge != nil {
		x.challenge.Stop()
		x.challenge = nil
	}
}

func (x *serverExt) armChallengeLocked(s *Server, d time.Duration, gen uint64) {
	x.challenge = x.clock.AfterFunc(d, func() {
		s.mu.Lock()
		live := !s.closed && x.challengeGen == gen
		s.mu.Unlock()
		if !live {
			return
		}
		s.ChallengeAll()
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.closed && x.challengeGen == gen {
			x.armChallengeLocked(s, d, gen)
		}
	})
}

// closeLocked stops what the hooks run on their own; called by Close.
func (x *serverExt) closeLocked() {
	x.stopChallengesLocked()
	x.closeAdminLocked()
}

// String describes the fault, for test failure messages.
func (f *Fault) String() string {
	where := ""
	if f.topic != "" {
		where = " on " + f.topic
	}
	return fmt.Sprintf("fail %v%s with %v", f.t, where, f.code)
}
