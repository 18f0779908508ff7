package pulsartest

import (
	"fmt"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/frame"
	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// producer is a producer attached to a connection under the client's id.
type producer struct {
	id        uint64
	conn      *Conn
	topic     *topic
	name      string
	requestID uint64
	mode      pulsarpb.ProducerAccessMode
	// ready is false while a WaitForExclusive producer is queued.
	ready bool
	// schemaVersion is the version of the schema it declared, if any.
	schemaVersion []byte
	// topicEpoch is the topic's epoch when a producer other than Shared
	// attached; nil for Shared producers.
	topicEpoch *uint64
	// metadata is the PRODUCER's metadata, for the admin API's stats.
	metadata []*pulsarpb.KeyValue
}

func producerSuccess(p *producer) *pulsarpb.BaseCommand {
	// A broker always sends a schema version, empty when the producer
	// declared no schema.
	version := p.schemaVersion
	if version == nil {
		version = []byte{}
	}
	var epoch *uint64
	if p.topicEpoch != nil && p.ready {
		epoch = proto.Uint64(*p.topicEpoch)
	}
	return &pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_PRODUCER_SUCCESS.Enum(),
		ProducerSuccess: &pulsarpb.CommandProducerSuccess{
			RequestId:      proto.Uint64(p.requestID),
			ProducerName:   proto.String(p.name),
			LastSequenceId: proto.Int64(-1),
			ProducerReady:  proto.Bool(p.ready),
			SchemaVersion:  version,
			TopicEpoch:     epoch,
		},
	}
}

func (s *Server) handleProducerLocked(c *Conn, cmd *pulsarpb.BaseCommand) {
	req := cmd.GetProducer()
	name, partition, ok := parseTopic(req.GetTopic())
	if !ok {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_InvalidTopicName, "Invalid topic name: "+strconv.Quote(req.GetTopic())))
		return
	}
	if p := c.producers[req.GetProducerId()]; p != nil {
		// A broker answers a repeated PRODUCER for an id already attached
		// with success, as the client may retry after a timeout.
		p.requestID = req.GetRequestId()
		_ = c.Send(producerSuccess(p))
		return
	}
	delete(c.closedProducers, req.GetProducerId())
	t := s.topicLocked(name, partition)
	p := &producer{
		id:        req.GetProducerId(),
		conn:      c,
		topic:     t,
		name:      req.GetProducerName(),
		requestID: req.GetRequestId(),
		mode:      req.GetProducerAccessMode(),
		ready:     true,
		metadata:  req.GetMetadata(),
	}
	if hasSchema(req.GetSchema()) {
		// The version goes back in PRODUCER_SUCCESS; the producer puts it
		// in the metadata of its messages.
		p.schemaVersion = s.getOrCreateSchemaLocked(schemaKey(name, partition), req.GetSchema())
	}
	if sub := req.GetInitialSubscriptionName(); sub != "" && t.subs[sub] == nil {
		// A broker creates the subscription the producer names, durable,
		// from the earliest message, before it attaches the producer.
		newSubscription(t, sub, true, 0)
	}
	if p.name == "" {
		s.nextProducer++
		p.name = "pulsartest-" + strconv.FormatUint(s.nextProducer, 10)
	}
	busy := func() {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_ProducerBusy,
			fmt.Sprintf("Topic %s has an exclusive producer or producers that prevent access mode %v", name, p.mode)))
	}
	exclusiveThere := false
	for q := range t.producers {
		if q.mode != pulsarpb.ProducerAccessMode_Shared {
			exclusiveThere = true
		}
	}
	switch p.mode {
	case pulsarpb.ProducerAccessMode_Shared:
		if exclusiveThere {
			busy()
			return
		}
	case pulsarpb.ProducerAccessMode_Exclusive:
		if len(t.producers) > 0 {
			// A broker fences an Exclusive producer off a topic that has
			// producers of any mode.
			_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_ProducerFenced,
				fmt.Sprintf("Topic %s has existing producers: no access for an Exclusive one", name)))
			return
		}
	case pulsarpb.ProducerAccessMode_ExclusiveWithFencing:
		// Fence: the producers there, or waiting, are closed and told so.
		for _, q := range slices.Clone(t.waiting) {
			s.pushCloseProducerLocked(q, "", "")
		}
		for q := range t.producers {
			s.pushCloseProducerLocked(q, "", "")
		}
	case pulsarpb.ProducerAccessMode_WaitForExclusive:
		if len(t.producers) > 0 {
			// The first answer says "not ready"; a second one, with the
			// same request id, follows when the topic is free.
			p.ready = false
			c.producers[p.id] = p
			t.waiting = append(t.waiting, p)
			_ = c.Send(producerSuccess(p))
			return
		}
	}
	// After the access mode, a broker checks the name: one producer per
	// name on a topic.
	for q := range t.producers {
		if q.name == p.name {
			_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_ProducerBusy,
				fmt.Sprintf("Producer with name '%s' is already connected to topic %s", p.name, name)))
			return
		}
	}
	c.producers[p.id] = p
	t.producers[p] = struct{}{}
	if p.mode != pulsarpb.ProducerAccessMode_Shared {
		p.topicEpoch = t.nextEpoch()
	}
	_ = c.Send(producerSuccess(p))
}

// removeProducerLocked forgets p; when that frees the topic, the first
// WaitForExclusive producer queued gets its second PRODUCER_SUCCESS.
func (s *Server) removeProducerLocked(p *producer) {
	delete(p.conn.producers, p.id)
	t := p.topic
	if !p.ready {
		for i, q := range t.waiting {
			if q == p {
				t.waiting = append(t.waiting[:i], t.waiting[i+1:]...)
				break
			}
		}
		return
	}
	delete(t.producers, p)
	if len(t.producers) == 0 && len(t.waiting) > 0 {
		next := t.waiting[0]
		t.waiting = t.waiting[1:]
		next.ready = true
		t.producers[next] = struct{}{}
		next.topicEpoch = t.nextEpoch()
		_ = next.conn.Send(producerSuccess(next))
	}
}

func (s *Server) handleSendLocked(c *Conn, f *frame.Frame) {
	send := f.Command.GetSend()
	p := c.producers[send.GetProducerId()]
	if _, closed := c.closedProducers[send.GetProducerId()]; p == nil && closed {
		// The client had this in flight when the server closed the
		// producer. A broker ignores such SENDs (it keeps the ids of
		// recently closed producers for that) and keeps the connection:
		// the client sends them again once the producer is back.
		return
	}
	if p == nil || !p.ready {
		// A broker closes the connection here; answering SEND_ERROR lets a
		// test see which message went astray.
		_ = c.Send(sendError(send, pulsarpb.ServerError_UnknownError,
			fmt.Sprintf("Producer %d is not ready on this connection", send.GetProducerId())))
		return
	}
	if f.Payload == nil {
		s.failLocked(c) // a SEND without a message is a malformed frame
		return
	}
	if !f.Payload.ChecksumOK {
		_ = c.Send(sendError(send, pulsarpb.ServerError_ChecksumError, "Checksum failed on the broker"))
		return
	}
	e := s.appendLocked(p.topic, f.Payload.Metadata, f.Payload.Data)
	// A broker echoes highest_sequence_id when the SEND carries one not
	// below its sequence id (a batch), and otherwise -1 (0 from a publish
	// context it has just allocated rather than recycled, as after a
	// restart); never the sequence id.
	highest := uint64(minusOne)
	if send.HighestSequenceId != nil && send.GetHighestSequenceId() >= send.GetSequenceId() {
		highest = send.GetHighestSequenceId()
	}
	_ = c.Send(&pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_SEND_RECEIPT.Enum(),
		SendReceipt: &pulsarpb.CommandSendReceipt{
			ProducerId:        proto.Uint64(p.id),
			SequenceId:        proto.Uint64(send.GetSequenceId()),
			HighestSequenceId: proto.Uint64(highest),
			MessageId: &pulsarpb.MessageIdData{
				LedgerId: proto.Uint64(p.topic.ledgerID),
				EntryId:  proto.Uint64(e.id),
			},
		},
	})
	// The receipt goes first, then the deliveries.
	s.deliverLocked(p.topic)
}

func (s *Server) handleCloseProducerLocked(c *Conn, req *pulsarpb.CommandCloseProducer) {
	// A broker answers SUCCESS even when the producer was not there.
	_ = c.Send(success(req.GetRequestId()))
	if p := c.producers[req.GetProducerId()]; p != nil {
		s.removeProducerLocked(p)
	}
}

// pushCloseProducerLocked detaches p and pushes CLOSE_PRODUCER for it,
// remembering its id so that the SENDs already on their way are ignored.
func (s *Server) pushCloseProducerLocked(p *producer, url, urlTLS string) {
	s.removeProducerLocked(p)
	if p.conn.closedProducers == nil {
		p.conn.closedProducers = make(map[uint64]struct{})
	}
	p.conn.closedProducers[p.id] = struct{}{}
	_ = p.conn.Send(closeProducer(p.id, url, urlTLS))
}

// closeProducer is the CLOSE_PRODUCER a broker pushes (request id -1).
func closeProducer(id uint64, url, urlTLS string) *pulsarpb.BaseCommand {
	cp := &pulsarpb.CommandCloseProducer{
		ProducerId: proto.Uint64(id),
		RequestId:  proto.Uint64(noRequestID),
	}
	if url != "" {
		cp.AssignedBrokerServiceUrl = proto.String(url)
	}
	if urlTLS != "" {
		cp.AssignedBrokerServiceUrlTls = proto.String(urlTLS)
	}
	return &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_CLOSE_PRODUCER.Enum(), CloseProducer: cp}
}
