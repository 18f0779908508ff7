package fidelity

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Bounds of the waits of a step. A step never sleeps: it waits for a
// frame, with a deadline.
const (
	// AnswerWait bounds the wait for an answer a step expects.
	AnswerWait = 10 * time.Second
	// QuietWait is how long a step that asserts the absence of a frame
	// watches the connection.
	QuietWait = 300 * time.Millisecond
)

// errAbort stops a scenario whose connection is gone or whose answer did
// not come: what follows could not be compared.
var errAbort = errors.New("fidelity: scenario aborted")

// Session is a scenario's view of a Target: one raw connection at a time,
// and the transcript being recorded.
type Session struct {
	ctx    context.Context
	target Target
	run    string
	norm   *normaliser
	tr     *Transcript

	conn   net.Conn
	frames chan received
	nextID uint64
}

// received is one frame read by a connection's reader, or the error that
// ended it.
type received struct {
	f   *frame.Frame
	err error
}

// Topic names a topic of this run: the same suffix gives the same
// transcript name ({run}-suffix) on every run, and a different topic on
// the broker.
func (s *Session) Topic(suffix string) string {
	return "persistent://public/default/" + s.run + "-" + suffix
}

// ID returns a fresh request, producer or consumer id.
func (s *Session) ID() uint64 {
	s.nextID++
	return s.nextID
}

// OwnProducerName declares a producer name the scenario chose, which the
// transcript keeps (the names a broker generates are normalised).
func (s *Session) OwnProducerName(name string) { s.norm.ownProducers[name] = true }

// Partitioned creates a partitioned topic on the target.
func (s *Session) Partitioned(topic string, n int) {
	if err := s.target.CreatePartitioned(s.ctx, topic, n); err != nil {
		panic(fmt.Errorf("create partitioned topic %s: %w", topic, err))
	}
}

// Dial opens a new connection (closing the previous one) without a
// handshake.
func (s *Session) Dial(step string) {
	s.hangUp()
	nc, err := s.target.Dial(s.ctx)
	if err != nil {
		panic(fmt.Errorf("step %s: dial %s: %w", step, s.target.Name, err))
	}
	s.conn = nc
	ch := make(chan received, 64)
	s.frames = ch
	go func() {
		defer close(ch)
		r := frame.NewReader(nc, maxFrame)
		for {
			f, err := r.Next()
			ch <- received{f, err}
			if err != nil {
				return
			}
		}
	}()
}

// hangUp closes the current connection and waits for its reader.
func (s *Session) hangUp() {
	if s.conn == nil {
		return
	}
	_ = s.conn.Close()
	for range s.frames {
	}
	s.conn, s.frames = nil, nil
}

// Connect opens a new connection and performs the handshake (CONNECT at
// protocol version v, 0 for the codec's). With detail, the CONNECTED is
// recorded with its fields; else by type only.
func (s *Session) Connect(step string, v int32, detail bool) {
	s.Dial(step)
	if v == 0 {
		v = frame.ProtocolVersion
	}
	s.Send(step, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_CONNECT.Enum(),
		Connect: &pulsarpb.CommandConnect{
			ClientVersion:   proto.String("pulsarconn-fidelity"),
			ProtocolVersion: proto.Int32(v),
			FeatureFlags: &pulsarpb.FeatureFlags{
				SupportsAuthRefresh:         proto.Bool(true),
				SupportsBrokerEntryMetadata: proto.Bool(false),
				SupportsPartialProducer:     proto.Bool(true),
			},
		},
	})
	got := s.await(step, func(c *pulsarpb.BaseCommand) bool {
		return c.GetType() == pulsarpb.BaseCommand_CONNECTED || c.GetType() == pulsarpb.BaseCommand_ERROR
	})
	if !detail && got != nil && got.GetType() == pulsarpb.BaseCommand_CONNECTED {
		s.tr.Events[len(s.tr.Events)-1].Fields = nil
	}
}

// Lookup sends LOOKUP for topic, as a client does before it attaches a
// producer or consumer (a broker serves only the topics of the bundles it
// owns, and takes a bundle on at a lookup: right after a restart, PRODUCER
// without one is refused with ServiceNotReady). The answer is recorded by
// type only: the lookup scenario compares its fields.
func (s *Session) Lookup(step, topic string) {
	rid := s.ID()
	s.Send(step, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_LOOKUP.Enum(),
		LookupTopic: &pulsarpb.CommandLookupTopic{
			Topic: proto.String(topic), RequestId: proto.Uint64(rid),
		},
	})
	got := s.await(step, func(c *pulsarpb.BaseCommand) bool {
		id, ok := frame.RequestID(c)
		return ok && id == rid
	})
	if got.GetType() == pulsarpb.BaseCommand_LOOKUP_RESPONSE &&
		got.GetLookupTopicResponse().GetResponse() == pulsarpb.CommandLookupTopicResponse_Connect {
		s.tr.Events[len(s.tr.Events)-1].Fields = nil
	}
}

// Send writes cmd and records it.
func (s *Session) Send(step string, cmd *pulsarpb.BaseCommand) {
	b, err := frame.AppendCommand(nil, cmd)
	if err != nil {
		panic(fmt.Errorf("step %s: encode %v: %w", step, cmd.GetType(), err))
	}
	s.write(step, cmd, b)
}

// SendMessage writes a payload frame (SEND) and records it.
func (s *Session) SendMessage(step string, cmd *pulsarpb.BaseCommand, md *pulsarpb.MessageMetadata, payload []byte) {
	b, err := frame.AppendMessage(nil, cmd, md, payload)
	if err != nil {
		panic(fmt.Errorf("step %s: encode %v: %w", step, cmd.GetType(), err))
	}
	s.write(step, cmd, b)
}

func (s *Session) write(step string, cmd *pulsarpb.BaseCommand, b []byte) {
	s.tr.Events = append(s.tr.Events, Event{Step: step, Dir: Sent, Type: cmd.GetType().String()})
	_ = s.conn.SetWriteDeadline(time.Now().Add(AnswerWait))
	if _, err := s.conn.Write(b); err != nil {
		// The target may have closed the connection: the reader says so.
		return
	}
}

// Request writes cmd and waits for the answer that carries its request id,
// recording every frame received until then. It returns the answer, or
// nil when the connection closed first.
func (s *Session) Request(step string, cmd *pulsarpb.BaseCommand) *pulsarpb.BaseCommand {
	rid, ok := frame.RequestID(cmd)
	if !ok {
		panic(fmt.Errorf("step %s: %v carries no request id", step, cmd.GetType()))
	}
	s.Send(step, cmd)
	return s.await(step, func(c *pulsarpb.BaseCommand) bool {
		if c.GetType() == pulsarpb.BaseCommand_CLOSE_CONSUMER || c.GetType() == pulsarpb.BaseCommand_CLOSE_PRODUCER {
			if c.GetCloseConsumer().GetRequestId() != rid && c.GetCloseProducer().GetRequestId() != rid {
				return false // a push, not the answer
			}
		}
		id, ok := frame.RequestID(c)
		return ok && id == rid
	})
}

// Publish writes a SEND of payload for producer and waits for its
// SEND_RECEIPT or SEND_ERROR.
func (s *Session) Publish(step string, producer, seq uint64, md *pulsarpb.MessageMetadata, payload []byte) *pulsarpb.BaseCommand {
	s.SendMessage(step, &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SEND.Enum(),
		Send: &pulsarpb.CommandSend{ProducerId: proto.Uint64(producer), SequenceId: proto.Uint64(seq)},
	}, md, payload)
	return s.await(step, func(c *pulsarpb.BaseCommand) bool {
		switch c.GetType() {
		case pulsarpb.BaseCommand_SEND_RECEIPT:
			return c.GetSendReceipt().GetProducerId() == producer && c.GetSendReceipt().GetSequenceId() == seq
		case pulsarpb.BaseCommand_SEND_ERROR:
			return c.GetSendError().GetProducerId() == producer && c.GetSendError().GetSequenceId() == seq
		}
		return false
	})
}

// Expect records frames until n of type t have come.
func (s *Session) Expect(step string, t pulsarpb.BaseCommand_Type, n int) {
	for range n {
		s.await(step, func(c *pulsarpb.BaseCommand) bool { return c.GetType() == t })
	}
}

// ExpectNothing watches the connection for QuietWait and records what
// comes, or Nothing.
func (s *Session) ExpectNothing(step string) {
	timer := time.NewTimer(QuietWait)
	defer timer.Stop()
	for {
		select {
		case r, ok := <-s.frames:
			if !ok {
				return
			}
			if s.record(step, r) == nil {
				return
			}
		case <-timer.C:
			s.tr.Events = append(s.tr.Events, Event{Step: step, Dir: Received, Type: Nothing})
			return
		}
	}
}

// await records frames until one that match accepts, which it returns.
// A closed connection or AnswerWait without the answer is recorded and
// aborts the scenario.
func (s *Session) await(step string, match func(*pulsarpb.BaseCommand) bool) *pulsarpb.BaseCommand {
	timer := time.NewTimer(AnswerWait)
	defer timer.Stop()
	for {
		select {
		case r, ok := <-s.frames:
			if !ok {
				panic(errAbort)
			}
			c := s.record(step, r)
			if c == nil {
				panic(errAbort)
			}
			if match(c) {
				return c
			}
		case <-timer.C:
			s.tr.Events = append(s.tr.Events, Event{Step: step, Dir: Received, Type: Timeout})
			panic(errAbort)
		case <-s.ctx.Done():
			panic(s.ctx.Err())
		}
	}
}

// AwaitClose records frames until the target closes the connection.
func (s *Session) AwaitClose(step string) {
	s.await(step, func(*pulsarpb.BaseCommand) bool { return false })
}

// record adds a received frame to the transcript (answering a PING, which
// is not recorded: a broker sends them on its own schedule). It returns
// nil when the connection ended, which it records as Closed.
func (s *Session) record(step string, r received) *pulsarpb.BaseCommand {
	if r.err != nil {
		s.tr.Events = append(s.tr.Events, Event{Step: step, Dir: Received, Type: Closed})
		return nil
	}
	c := r.f.Command
	if c.GetType() == pulsarpb.BaseCommand_PING {
		b, _ := frame.AppendCommand(nil, &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_PONG.Enum(), Pong: &pulsarpb.CommandPong{}})
		_, _ = s.conn.Write(b)
		return c
	}
	fields, err := s.norm.fields(r.f)
	if err != nil {
		panic(fmt.Errorf("step %s: normalise %v: %w", step, c.GetType(), err))
	}
	s.tr.Events = append(s.tr.Events, Event{Step: step, Dir: Received, Type: c.GetType().String(), Fields: fields})
	return c
}
