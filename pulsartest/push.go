package pulsartest

import (
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// Broker-initiated commands. Producer and consumer ids are the client's and
// unique only per connection: a push by id goes to every connection that
// registered that id, and reports whether there was one.

// CloseProducer pushes CLOSE_PRODUCER for producerID, as a broker does when
// a topic is unloaded or moves; assignedURL and assignedURLTLS, when not
// empty, name the broker to reconnect to. The server forgets the producer;
// as a broker does, it ignores the SENDs for it that were already on their
// way, without closing the connection, until the client attaches it again.
func (s *Server) CloseProducer(producerID uint64, assignedURL, assignedURLTLS string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for c := range s.conns {
		if p := c.producers[producerID]; p != nil && c.state == stateConnected {
			s.pushCloseProducerLocked(p, assignedURL, assignedURLTLS)
			found = true
		}
	}
	return found
}

// CloseConsumer pushes CLOSE_CONSUMER for consumerID; see CloseProducer.
// The server detaches the consumer; its unacked messages will be sent
// again.
func (s *Server) CloseConsumer(consumerID uint64, assignedURL, assignedURLTLS string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for c := range s.conns {
		if cons := c.consumers[consumerID]; cons != nil && c.state == stateConnected {
			s.removeConsumerLocked(cons)
			_ = c.Send(closeConsumer(consumerID, assignedURL, assignedURLTLS))
			found = true
		}
	}
	return found
}

// TopicMigrated pushes TOPIC_MIGRATED for the producer or consumer id
// (per resourceType), naming the cluster's broker URLs it moved to.
func (s *Server) TopicMigrated(resourceType pulsarpb.CommandTopicMigrated_ResourceType, id uint64, url, urlTLS string) bool {
	tm := &pulsarpb.CommandTopicMigrated{
		ResourceId:   proto.Uint64(id),
		ResourceType: resourceType.Enum(),
	}
	if url != "" {
		tm.BrokerServiceUrl = proto.String(url)
	}
	if urlTLS != "" {
		tm.BrokerServiceUrlTls = proto.String(urlTLS)
	}
	cmd := &pulsarpb.BaseCommand{Type: pulsarpb.BaseCommand_TOPIC_MIGRATED.Enum(), TopicMigrated: tm}
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for c := range s.conns {
		if c.state != stateConnected {
			continue
		}
		has := c.consumers[id] != nil
		if resourceType == pulsarpb.CommandTopicMigrated_Producer {
			has = c.producers[id] != nil
		}
		if has {
			_ = c.Send(cmd)
			found = true
		}
	}
	return found
}

// ActiveConsumerChange pushes ACTIVE_CONSUMER_CHANGE to consumerID. (The
// server sends it by itself to Failover consumers when they subscribe and
// when the active one leaves.)
func (s *Server) ActiveConsumerChange(consumerID uint64, active bool) bool {
	return s.pushToConsumer(consumerID, activeConsumerChange(consumerID, active))
}

// ReachedEndOfTopic pushes REACHED_END_OF_TOPIC to consumerID, as a broker
// does when its terminated topic has nothing more to deliver.
func (s *Server) ReachedEndOfTopic(consumerID uint64) bool {
	return s.pushToConsumer(consumerID, &pulsarpb.BaseCommand{
		Type:              pulsarpb.BaseCommand_REACHED_END_OF_TOPIC.Enum(),
		ReachedEndOfTopic: &pulsarpb.CommandReachedEndOfTopic{ConsumerId: proto.Uint64(consumerID)},
	})
}

func (s *Server) pushToConsumer(consumerID uint64, cmd *pulsarpb.BaseCommand) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for c := range s.conns {
		if c.consumers[consumerID] != nil && c.state == stateConnected {
			_ = c.Send(cmd)
			found = true
		}
	}
	return found
}

// Push writes cmd to every live connection, whether or not its handshake
// is done, and returns how many.
func (s *Server) Push(cmd *pulsarpb.BaseCommand) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.Send(cmd) == nil {
			n++
		}
	}
	return n
}

// SendRaw writes b as is to every live connection (to test how a client
// takes malformed frames) and returns how many.
func (s *Server) SendRaw(b []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.SendRaw(b) == nil {
			n++
		}
	}
	return n
}
