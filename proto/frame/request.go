package frame

import (
	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// RequestID returns the request id a command carries and whether the
// command's type has one. Requests and their answers carry the same id.
func RequestID(cmd *pulsarpb.BaseCommand) (uint64, bool) {
	switch cmd.GetType() {
	case pulsarpb.BaseCommand_SUCCESS:
		return idOf(cmd.Success, cmd.Success.GetRequestId())
	case pulsarpb.BaseCommand_ERROR:
		return idOf(cmd.Error, cmd.Error.GetRequestId())
	case pulsarpb.BaseCommand_PRODUCER:
		return idOf(cmd.Producer, cmd.Producer.GetRequestId())
	case pulsarpb.BaseCommand_PRODUCER_SUCCESS:
		return idOf(cmd.ProducerSuccess, cmd.ProducerSuccess.GetRequestId())
	case pulsarpb.BaseCommand_SUBSCRIBE:
		return idOf(cmd.Subscribe, cmd.Subscribe.GetRequestId())
	case pulsarpb.BaseCommand_UNSUBSCRIBE:
		return idOf(cmd.Unsubscribe, cmd.Unsubscribe.GetRequestId())
	case pulsarpb.BaseCommand_SEEK:
		return idOf(cmd.Seek, cmd.Seek.GetRequestId())
	case pulsarpb.BaseCommand_CLOSE_PRODUCER:
		return idOf(cmd.CloseProducer, cmd.CloseProducer.GetRequestId())
	case pulsarpb.BaseCommand_CLOSE_CONSUMER:
		return idOf(cmd.CloseConsumer, cmd.CloseConsumer.GetRequestId())
	case pulsarpb.BaseCommand_LOOKUP:
		return idOf(cmd.LookupTopic, cmd.LookupTopic.GetRequestId())
	case pulsarpb.BaseCommand_LOOKUP_RESPONSE:
		return idOf(cmd.LookupTopicResponse, cmd.LookupTopicResponse.GetRequestId())
	case pulsarpb.BaseCommand_PARTITIONED_METADATA:
		return idOf(cmd.PartitionMetadata, cmd.PartitionMetadata.GetRequestId())
	case pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE:
		return idOf(cmd.PartitionMetadataResponse, cmd.PartitionMetadataResponse.GetRequestId())
	case pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID:
		return idOf(cmd.GetLastMessageId, cmd.GetLastMessageId.GetRequestId())
	case pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID_RESPONSE:
		return idOf(cmd.GetLastMessageIdResponse, cmd.GetLastMessageIdResponse.GetRequestId())
	case pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE:
		return idOf(cmd.GetTopicsOfNamespace, cmd.GetTopicsOfNamespace.GetRequestId())
	case pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE_RESPONSE:
		return idOf(cmd.GetTopicsOfNamespaceResponse, cmd.GetTopicsOfNamespaceResponse.GetRequestId())
	case pulsarpb.BaseCommand_GET_SCHEMA:
		return idOf(cmd.GetSchema, cmd.GetSchema.GetRequestId())
	case pulsarpb.BaseCommand_GET_SCHEMA_RESPONSE:
		return idOf(cmd.GetSchemaResponse, cmd.GetSchemaResponse.GetRequestId())
	case pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA:
		return idOf(cmd.GetOrCreateSchema, cmd.GetOrCreateSchema.GetRequestId())
	case pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA_RESPONSE:
		return idOf(cmd.GetOrCreateSchemaResponse, cmd.GetOrCreateSchemaResponse.GetRequestId())
	case pulsarpb.BaseCommand_ACK:
		// An ACK is a request only when it asks for an ACK_RESPONSE.
		if cmd.Ack != nil && cmd.Ack.RequestId != nil {
			return *cmd.Ack.RequestId, true
		}
	case pulsarpb.BaseCommand_ACK_RESPONSE:
		if cmd.AckResponse != nil && cmd.AckResponse.RequestId != nil {
			return *cmd.AckResponse.RequestId, true
		}
	}
	return 0, false
}

// idOf reports id when the sub-command m is present.
func idOf[M comparable](m M, id uint64) (uint64, bool) {
	var zero M
	return id, m != zero
}

// SetRequestID stores id in a request command's request id field,
// writing through the field's pointer when it is already set (so a caller
// that reuses its commands allocates nothing here). It
// reports false when cmd's type carries no request id or its sub-command is
// missing. An ACK becomes a request (one that asks for ACK_RESPONSE).
func SetRequestID(cmd *pulsarpb.BaseCommand, id uint64) bool {
	switch cmd.GetType() {
	case pulsarpb.BaseCommand_PRODUCER:
		if m := cmd.Producer; m != nil {
			setID(&m.RequestId, id)
			return true
		}
	case pulsarpb.BaseCommand_SUBSCRIBE:
		if m := cmd.Subscribe; m != nil {
			setID(&m.RequestId, id)
			return true
		}
	case pulsarpb.BaseCommand_UNSUBSCRIBE:
		if m := cmd.Unsubscribe; m != nil {
			setID(&m.RequestId, id)
			return true
		}
	case pulsarpb.BaseCommand_SEEK:
		if m := cmd.Seek; m != nil {
			setID(&m.RequestId, id)
			return true
		}
	case pulsarpb.BaseCommand_CLOSE_PRODUCER:
		if m := cmd.CloseProducer; m != nil {
			setID(&m.RequestId, id)
			return true
		}
	case pulsarpb.BaseCommand_CLOSE_CONSUMER:
		if m := cmd.CloseConsumer; m != nil {
			setID(&m.RequestId, id)
			return true
		}
	case pulsarpb.BaseCommand_LOOKUP:
		if m := cmd.LookupTopic; m != nil {
			setID(&m.RequestId, id)
			return true
		}
	case pulsarpb.BaseCommand_PARTITIONED_METADATA:
		if m := cmd.PartitionMetadata; m != nil {
			setID(&m.RequestId, id)
			return true
		}
	case pulsarpb.BaseCommand_GET_LAST_MESSAGE_ID:
		if m := cmd.GetLastMessageId; m != nil {
			setID(&m.RequestId, id)
			return true
		}
	case pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE:
		if m := cmd.GetTopicsOfNamespace; m != nil {
			setID(&m.RequestId, id)
			return true
		}
	case pulsarpb.BaseCommand_GET_SCHEMA:
		if m := cmd.GetSchema; m != nil {
			setID(&m.RequestId, id)
			return true
		}
	case pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA:
		if m := cmd.GetOrCreateSchema; m != nil {
			setID(&m.RequestId, id)
			return true
		}
	case pulsarpb.BaseCommand_ACK:
		if m := cmd.Ack; m != nil {
			setID(&m.RequestId, id)
			return true
		}
	}
	return false
}

// setID stores id in *p, reusing the pointed-to value when there is one.
func setID(p **uint64, id uint64) {
	if *p != nil {
		**p = id
		return
	}
	*p = proto.Uint64(id)
}
