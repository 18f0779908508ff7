package pulsartest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// The HTTP lookup service, what a client with an http:// service URL
// calls instead of LOOKUP, PARTITIONED_METADATA (the admin API's
// /partitions), GET_TOPICS_OF_NAMESPACE (/namespaces/.../topics) and
// GET_SCHEMA (/schemas/...):
//
//	GET /lookup/v2/topic/{domain}/{tenant}/{namespace}/{topic}
//	GET /lookup/v2/topic/{domain}/{tenant}/{namespace}/{topic}/bundle

// lookupData is a broker's answer to an HTTP lookup.
type lookupData struct {
	BrokerURL    string `json:"brokerUrl"`
	BrokerURLTLS string `json:"brokerUrlTls,omitempty"`
	HTTPURL      string `json:"httpUrl,omitempty"`
	HTTPURLTLS   string `json:"httpUrlTls,omitempty"`
	NativeURL    string `json:"nativeUrl"`
	BrokerURLSsl string `json:"brokerUrlSsl"`
}

func (h *adminHandler) lookupRoute(q *adminRequest, notFound answer) answer {
	seg := q.seg
	if len(seg) != 7 && (len(seg) != 8 || seg[7] != "bundle") {
		return notFound
	}
	if q.r.Method != http.MethodGet {
		return answer{code: http.StatusMethodNotAllowed}
	}
	if seg[3] != "persistent" && seg[3] != "non-persistent" {
		return fail(http.StatusPreconditionFailed, "Invalid topic domain "+seg[3])
	}
	name, _, valid := parseTopic(seg[3] + "://" + seg[4] + "/" + seg[5] + "/" + seg[6])
	if !valid {
		return fail(http.StatusPreconditionFailed, "Topic name is not valid")
	}
	if len(seg) == 8 {
		hash := uint64(bundleHash(name))
		for i := 0; i+1 < len(bundleBoundaries); i++ {
			lo, hi := bundleBoundaries[i], bundleBoundaries[i+1]
			if hash >= lo && (hash < hi || hi == 0xffffffff) {
				// Unquoted, yet application/json, as from a broker.
				return answer{code: http.StatusOK, raw: fmt.Appendf(nil, "0x%08x_0x%08x", lo, hi), ctype: "application/json"}
			}
		}
	}
	s := h.store()
	if s.cfg.ext.noAutoCreate && !s.knownLocked(name) {
		return topicNotFound(name)
	}
	owner := h.srv
	if c := h.cluster; c != nil {
		owner = c.ownerLocked(name)
	}
	u := owner.urlLocked()
	data := lookupData{
		BrokerURL:    u,
		BrokerURLTLS: owner.cfg.advertisedURLTLS,
		NativeURL:    u,
	}
	if q.r.TLS != nil {
		data.HTTPURLTLS = "https://" + q.r.Host
	} else {
		data.HTTPURL = "http://" + q.r.Host
	}
	return okJSON(data)
}

// The schema registry's endpoints:
//
//	GET    /admin/v2/schemas/{tenant}/{namespace}/{topic}/schema[/{version}]
//	POST   /admin/v2/schemas/{tenant}/{namespace}/{topic}/schema
//	DELETE /admin/v2/schemas/{tenant}/{namespace}/{topic}/schema

// schemaInfo is a schema as the admin API shows it.
type schemaInfo struct {
	Version    int64             `json:"version"`
	Type       string            `json:"type"`
	Timestamp  int64             `json:"timestamp"`
	Data       string            `json:"data"`
	Properties map[string]string `json:"properties"`
}

// postSchema is the body of a schema upload.
type postSchema struct {
	Type       string            `json:"type"`
	Schema     string            `json:"schema"`
	Properties map[string]string `json:"properties"`
}

func (h *adminHandler) schemasRoute(q *adminRequest) *answer {
	seg := q.seg
	if len(seg) < 7 || len(seg) > 8 || seg[6] != "schema" {
		return nil
	}
	s := h.store()
	name, partition, valid := parseTopic("persistent://" + seg[3] + "/" + seg[4] + "/" + seg[5])
	if !valid {
		a := fail(http.StatusPreconditionFailed, "Topic name is not valid")
		return &a
	}
	key := schemaKey(name, partition)
	get := func(version int) answer {
		versions := s.schemas[key]
		if version < 0 {
			version = len(versions) - 1
		}
		if version < 0 || version >= len(versions) || versions[version] == nil {
			return fail(http.StatusNotFound, "Schema not found")
		}
		return okJSON(schemaInfoOf(versions[version], version))
	}
	if len(seg) == 8 {
		return method(q, map[string]func() answer{"GET": func() answer {
			v, err := strconv.Atoi(seg[7])
			if err != nil || v < 0 {
				return fail(http.StatusNotFound, "Schema not found")
			}
			return get(v)
		}})
	}
	return method(q, map[string]func() answer{
		"GET": func() answer { return get(-1) },
		"POST": func() answer {
			var p postSchema
			if err := json.Unmarshal(q.body, &p); err != nil {
				return badJSON(err)
			}
			t, known := schemaTypeOf(p.Type)
			if !known {
				return fail(http.StatusPreconditionFailed, "Invalid schema type "+p.Type)
			}
			sc := &pulsarpb.Schema{Name: proto.String(name), Type: t.Enum(), SchemaData: []byte(p.Schema)}
			for k, v := range p.Properties {
				sc.Properties = append(sc.Properties, &pulsarpb.KeyValue{Key: proto.String(k), Value: proto.String(v)})
			}
			v := s.getOrCreateSchemaLocked(key, sc)
			return okJSON(map[string]any{"version": map[string]any{"version": versionNumber(v)}})
		},
		"DELETE": func() answer {
			n := len(s.schemas[key])
			if n == 0 {
				return okJSON(map[string]any{"version": nil})
			}
			delete(s.schemas, key)
			return okJSON(map[string]any{"version": n})
		},
	})
}

func versionNumber(v []byte) int64 {
	var n int64
	for _, b := range v {
		n = n<<8 | int64(b)
	}
	return n
}

// schemaTypeNames are the names the admin API gives the schema types, by
// their number on the wire (and in the broker's SchemaType).
var schemaTypeNames = []string{
	"NONE", "STRING", "JSON", "PROTOBUF", "AVRO", "BOOLEAN", "INT8", "INT16", "INT32", "INT64",
	"FLOAT", "DOUBLE", "DATE", "TIME", "TIMESTAMP", "KEY_VALUE", "INSTANT", "LOCAL_DATE",
	"LOCAL_TIME", "LOCAL_DATE_TIME", "PROTOBUF_NATIVE",
}

func schemaTypeOf(name string) (pulsarpb.Schema_Type, bool) {
	name = strings.ToUpper(name)
	if name == "BYTES" {
		return pulsarpb.Schema_None, true
	}
	for i, n := range schemaTypeNames {
		if n == name {
			return pulsarpb.Schema_Type(i), true
		}
	}
	return 0, false
}

func schemaInfoOf(sc *pulsarpb.Schema, version int) schemaInfo {
	info := schemaInfo{Version: int64(version), Properties: map[string]string{}}
	if i := int(sc.GetType()); i >= 0 && i < len(schemaTypeNames) {
		info.Type = schemaTypeNames[i]
	}
	for _, kv := range sc.GetProperties() {
		info.Properties[kv.GetKey()] = kv.GetValue()
	}
	info.Data = printable(sc.GetSchemaData())
	return info
}

// printable is a schema definition as text: the definition of JSON,
// AVRO and PROTOBUF schemas is text already; other bytes are given in
// base64.
func printable(b []byte) string {
	for _, r := range string(b) {
		if r == unicode.ReplacementChar || (r < ' ' && r != '\n' && r != '\r' && r != '\t') {
			return base64.StdEncoding.EncodeToString(b)
		}
	}
	return string(b)
}
