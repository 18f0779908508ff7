package pulsarpb

// This file is written by hand, not generated: scripts/genproto.sh
// replaces only the *.pb.go files.

// PlainPartitionedMetadata reports whether m is a PARTITIONED_METADATA
// request of a topic and a request id and nothing else, as a client sends
// one, and returns them. Such a command is encoded by hand
// (frame.AppendPartitionedMetadata): the generated encoder sizes and
// writes a BaseCommand by testing each of its fields twice. Every other
// field of both messages, known or unknown, is tested here once (a test
// sets each in turn), so a command carrying any more is left to the
// generated encoder.
func (m *BaseCommand) PlainPartitionedMetadata() (topic string, requestID uint64, ok bool) {
	if m == nil || m.Type == nil || *m.Type != BaseCommand_PARTITIONED_METADATA {
		return "", 0, false
	}
	pm := m.PartitionMetadata
	if pm == nil || pm.Topic == nil || pm.RequestId == nil ||
		pm.OriginalPrincipal != nil || pm.OriginalAuthData != nil || pm.OriginalAuthMethod != nil ||
		pm.MetadataAutoCreationEnabled != nil || len(pm.unknownFields) != 0 || len(m.unknownFields) != 0 {
		return "", 0, false
	}
	if m.Connect != nil || m.Connected != nil || m.Subscribe != nil ||
		m.Producer != nil || m.Send != nil || m.SendReceipt != nil ||
		m.SendError != nil || m.Message != nil || m.Ack != nil ||
		m.Flow != nil || m.Unsubscribe != nil || m.Success != nil ||
		m.Error != nil || m.CloseProducer != nil || m.CloseConsumer != nil ||
		m.ProducerSuccess != nil || m.Ping != nil || m.Pong != nil ||
		m.RedeliverUnacknowledgedMessages != nil || m.PartitionMetadataResponse != nil || m.LookupTopic != nil ||
		m.LookupTopicResponse != nil || m.ReachedEndOfTopic != nil || m.Seek != nil ||
		m.GetLastMessageId != nil || m.GetLastMessageIdResponse != nil || m.ActiveConsumerChange != nil ||
		m.GetTopicsOfNamespace != nil || m.GetTopicsOfNamespaceResponse != nil || m.GetSchema != nil ||
		m.GetSchemaResponse != nil || m.AuthChallenge != nil || m.AuthResponse != nil ||
		m.AckResponse != nil || m.GetOrCreateSchema != nil || m.GetOrCreateSchemaResponse != nil ||
		m.TopicMigrated != nil {
		return "", 0, false
	}
	return *pm.Topic, *pm.RequestId, true
}
