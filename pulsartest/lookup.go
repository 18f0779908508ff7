package pulsartest

import (
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// handleLookupLocked answers LOOKUP: this broker serves every topic, so
// the answer is always Connect to the advertised URL.
func (s *Server) handleLookupLocked(c *Conn, cmd *pulsarpb.BaseCommand) {
	l := cmd.GetLookupTopic()
	if _, _, ok := parseTopic(l.GetTopic()); !ok {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_InvalidTopicName, "Invalid topic name: "+strconv.Quote(l.GetTopic())))
		return
	}
	resp := &pulsarpb.CommandLookupTopicResponse{
		RequestId:        proto.Uint64(l.GetRequestId()),
		Response:         pulsarpb.CommandLookupTopicResponse_Connect.Enum(),
		BrokerServiceUrl: proto.String(s.urlLocked()),
		// A broker's Connect answer is authoritative whatever the request
		// said: it names the owner.
		Authoritative:          proto.Bool(true),
		ProxyThroughServiceUrl: proto.Bool(false),
	}
	if s.cfg.advertisedURLTLS != "" {
		resp.BrokerServiceUrlTls = proto.String(s.cfg.advertisedURLTLS)
	}
	_ = c.Send(&pulsarpb.BaseCommand{
		Type:                pulsarpb.BaseCommand_LOOKUP_RESPONSE.Enum(),
		LookupTopicResponse: resp,
	})
}

// urlLocked is URL with mu held.
func (s *Server) urlLocked() string {
	if s.cfg.advertisedURL != "" {
		return s.cfg.advertisedURL
	}
	if s.firstAddr == "" {
		return ""
	}
	return "pulsar://" + s.firstAddr
}

func (s *Server) handlePartitionsLocked(c *Conn, cmd *pulsarpb.BaseCommand) {
	pm := cmd.GetPartitionMetadata()
	name, _, ok := parseTopic(pm.GetTopic())
	if !ok {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_InvalidTopicName, "Invalid topic name: "+strconv.Quote(pm.GetTopic())))
		return
	}
	_ = c.Send(&pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_PARTITIONED_METADATA_RESPONSE.Enum(),
		PartitionMetadataResponse: &pulsarpb.CommandPartitionedTopicMetadataResponse{
			RequestId:  proto.Uint64(pm.GetRequestId()),
			Partitions: proto.Uint32(uint32(s.partitions[name])),
			Response:   pulsarpb.CommandPartitionedTopicMetadataResponse_Success.Enum(),
		},
	})
}

// handleTopicsOfNamespaceLocked lists the topics of a namespace the server
// knows: those with messages, producers or subscriptions, and the
// partitions of those given to SetPartitions. The broker leaves filtering
// by topics_pattern to the client (filtered false).
func (s *Server) handleTopicsOfNamespaceLocked(c *Conn, req *pulsarpb.CommandGetTopicsOfNamespace) {
	prefix := "/" + req.GetNamespace() + "/"
	var names []string
	add := func(full string) {
		domain, rest, _ := strings.Cut(full, "://")
		switch req.GetMode() {
		case pulsarpb.CommandGetTopicsOfNamespace_PERSISTENT:
			if domain != "persistent" {
				return
			}
		case pulsarpb.CommandGetTopicsOfNamespace_NON_PERSISTENT:
			if domain != "non-persistent" {
				return
			}
		}
		if strings.HasPrefix("/"+rest, prefix) && !slices.Contains(names, full) {
			names = append(names, full)
		}
	}
	for name := range s.topics {
		add(name)
	}
	for name, n := range s.partitions {
		for i := range n {
			add(name + "-partition-" + strconv.Itoa(i))
		}
	}
	slices.Sort(names)
	_ = c.Send(&pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_GET_TOPICS_OF_NAMESPACE_RESPONSE.Enum(),
		GetTopicsOfNamespaceResponse: &pulsarpb.CommandGetTopicsOfNamespaceResponse{
			RequestId: proto.Uint64(req.GetRequestId()),
			Topics:    names,
			Filtered:  proto.Bool(false),
		},
	})
}
