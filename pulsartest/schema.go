package pulsartest

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// A broker keeps a schema registry per topic (all partitions of a
// partitioned topic share one). Each schema registered gets the next
// version, numbered from 0 and put on the wire as an 8-byte big-endian
// long. The fake registers every schema it is given: it does not check
// compatibility, so it never answers IncompatibleSchema.

// schemaKey is the registry key of a normalised topic name: the name
// without its partition suffix.
func schemaKey(name string, partition int32) string {
	if partition < 0 {
		return name
	}
	return name[:len(name)-len("-partition-")-len(strconv.Itoa(int(partition)))]
}

// hasSchema reports whether sc declares a schema a broker registers: one
// of a type other than None (bytes) and AutoConsume.
func hasSchema(sc *pulsarpb.Schema) bool {
	if sc == nil {
		return false
	}
	t := sc.GetType()
	return t != pulsarpb.Schema_None && t != pulsarpb.Schema_AutoConsume
}

func schemaVersion(v int) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(v))
}

// sameSchema reports whether two schemas are the same registration: same
// type, definition and properties.
func sameSchema(a, b *pulsarpb.Schema) bool {
	if a.GetType() != b.GetType() || !bytes.Equal(a.GetSchemaData(), b.GetSchemaData()) {
		return false
	}
	return slices.EqualFunc(a.GetProperties(), b.GetProperties(), func(x, y *pulsarpb.KeyValue) bool {
		return x.GetKey() == y.GetKey() && x.GetValue() == y.GetValue()
	})
}

// getOrCreateSchemaLocked returns the version of sc on the topic, adding
// it as the next version when it is new.
func (s *Server) getOrCreateSchemaLocked(key string, sc *pulsarpb.Schema) []byte {
	if s.schemas == nil {
		s.schemas = make(map[string][]*pulsarpb.Schema)
	}
	versions := s.schemas[key]
	for v, known := range versions {
		if sameSchema(known, sc) {
			return schemaVersion(v)
		}
	}
	s.schemas[key] = append(versions, proto.CloneOf(sc))
	return schemaVersion(len(versions))
}

// addSchemaIfNoneLocked registers a consumer's schema on a topic that has
// none yet, as a broker does for a topic without schema; otherwise the
// consumer's schema is taken as compatible.
func (s *Server) addSchemaIfNoneLocked(key string, sc *pulsarpb.Schema) {
	if hasSchema(sc) && len(s.schemas[key]) == 0 {
		s.getOrCreateSchemaLocked(key, sc)
	}
}

// handleGetSchemaLocked answers GET_SCHEMA with the schema of the version
// asked for, or the latest one when none is named; a topic without it
// gets error TopicNotFound, as from a broker.
func (s *Server) handleGetSchemaLocked(c *Conn, cmd *pulsarpb.BaseCommand) {
	req := cmd.GetGetSchema()
	name, partition, ok := parseTopic(req.GetTopic())
	if !ok {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_InvalidTopicName, "Invalid topic name: "+strconv.Quote(req.GetTopic())))
		return
	}
	versions := s.schemas[schemaKey(name, partition)]
	v := len(versions) - 1
	if req.SchemaVersion != nil {
		v = -1
		if b := req.GetSchemaVersion(); len(b) == 8 {
			if n := binary.BigEndian.Uint64(b); n < uint64(len(versions)) {
				v = int(n)
			}
		}
	}
	if v < 0 {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_TopicNotFound, "Topic not found or no-schema"))
		return
	}
	sc := proto.CloneOf(versions[v])
	if sc.Name == nil {
		sc.Name = proto.String(name)
	}
	_ = c.Send(&pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_GET_SCHEMA_RESPONSE.Enum(),
		GetSchemaResponse: &pulsarpb.CommandGetSchemaResponse{
			RequestId:     proto.Uint64(req.GetRequestId()),
			Schema:        sc,
			SchemaVersion: schemaVersion(v),
		},
	})
}

// handleGetOrCreateSchemaLocked answers GET_OR_CREATE_SCHEMA, which a
// producer sends for a message whose schema differs from its own: the
// version of that schema, registered if new.
func (s *Server) handleGetOrCreateSchemaLocked(c *Conn, cmd *pulsarpb.BaseCommand) {
	req := cmd.GetGetOrCreateSchema()
	name, partition, ok := parseTopic(req.GetTopic())
	if !ok {
		_ = c.Send(errorAnswer(cmd, pulsarpb.ServerError_InvalidTopicName, "Invalid topic name: "+strconv.Quote(req.GetTopic())))
		return
	}
	var version []byte
	if hasSchema(req.GetSchema()) {
		version = s.getOrCreateSchemaLocked(schemaKey(name, partition), req.GetSchema())
	}
	_ = c.Send(&pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_GET_OR_CREATE_SCHEMA_RESPONSE.Enum(),
		GetOrCreateSchemaResponse: &pulsarpb.CommandGetOrCreateSchemaResponse{
			RequestId:     proto.Uint64(req.GetRequestId()),
			SchemaVersion: version,
		},
	})
}
